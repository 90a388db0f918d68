/*
 * libgreen: gevent's programming model in C.
 *
 * Cheap cooperative threads ("greenlets") on ucontext stacks, one libev
 * hub per OS thread.  Every blocking-style call below parks only the
 * calling greenlet; the hub resumes it when its libev watcher fires.
 *
 * Error model: functions returning int return 0 (or a count) on success
 * and -1 with errno set on failure; functions returning pointers return
 * NULL with errno set.  Blocking calls fail with ETIMEDOUT (their timeout
 * or an enclosing green_timeout expired), ECANCELED (the greenlet was
 * killed; sticky: every later blocking call fails the same way), EBADF
 * (another greenlet green_close()d the fd), EDEADLK (blocking where it is
 * impossible: the hub, a libev callback, a link callback; or a wait that
 * can never end) and EAGAIN (timeout 0 and the call would block).
 * Timeouts are double seconds: < 0 waits forever, 0 does not wait, NaN
 * is EINVAL.  Objects owned by another thread's hub give EXDEV.
 *
 * The checks of a blocking call run once, in this order: its arguments
 * (NaN timeout: EINVAL); then whether it can complete at once (it then
 * succeeds, even in the hub, in a callback, after a kill or an expired
 * green_timeout); then timeout 0 (EAGAIN, also in the hub or a
 * callback); then whether this context can block (EDEADLK); then a kill
 * (ECANCELED) and an expired green_timeout (ETIMEDOUT).
 */
#ifndef GREEN_H_INCLUDED
#define GREEN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <poll.h>
#include <netdb.h>

#ifdef __cplusplus
extern "C" {
#endif

/******************************************************************************/
/*  Version                                                                   */
/******************************************************************************/

#define GREEN_VERSION_MAJOR 0
#define GREEN_VERSION_MINOR 1
#define GREEN_VERSION_PATCH 0

/*  ABI version (libtool current:revision:age), read by configure.ac through
    abi_version.sh.  Do not change it unless you are releasing: bump
    REVISION for a release without interface changes; on any interface
    change bump CURRENT and set REVISION to 0; if the change only added
    interfaces bump AGE, if it removed or changed any set AGE to 0. */
#define GREEN_ABI_CURRENT 0
#define GREEN_ABI_REVISION 0
#define GREEN_ABI_AGE 0

#if defined(__GNUC__) || defined(__clang__)
#define GREEN_EXPORT __attribute__((visibility("default")))
#else
#define GREEN_EXPORT
#endif

/* "0.1.0" */
GREEN_EXPORT const char *green_version_string(void);

/******************************************************************************/
/*  Lifecycle                                                                 */
/******************************************************************************/

/* An opaque, reference-counted greenlet. */
typedef struct green green_t;
typedef void *(*green_fn)(void *arg);

/* Creation attributes.  A zero stack_size means the default (256 KiB, or
   GREEN_STACK_SIZE from the environment); a name is copied (at most 31
   bytes kept). */
typedef struct green_attr {
    size_t stack_size;
    const char *name;
} green_attr_t;

/* Create a greenlet running fn(arg) and schedule it (it runs after every
   greenlet runnable now).  The caller owns one reference: release it with
   green_release.  Errors: EINVAL (fn NULL), ENOMEM (no memory or no more
   stack mappings: see README "Limits"). */
GREEN_EXPORT green_t *green_spawn(green_fn fn, void *arg);

/* Like green_spawn, but the greenlet starts after `seconds`.  Errors as
   green_spawn, plus EINVAL for NaN. */
GREEN_EXPORT green_t *green_spawn_later(double seconds, green_fn fn,
                                        void *arg);

/* Create a greenlet without starting it; attr may be NULL.  Errors: EINVAL
   (fn NULL, stack size below 16 KiB), ENOMEM. */
GREEN_EXPORT green_t *green_new(green_fn fn, void *arg,
                                const green_attr_t *attr);

/* Schedule a greenlet made with green_new.  Errors: EINVAL (NULL, already
   started or finished), EXDEV (another thread's greenlet). */
GREEN_EXPORT int green_start(green_t *g);

/* Schedule it after `seconds`.  Errors as green_start, EINVAL for NaN. */
GREEN_EXPORT int green_start_later(green_t *g, double seconds);

/* Drop the caller's reference.  A running greenlet keeps running; its
   memory is freed once it is done and every reference is released. */
GREEN_EXPORT void green_release(green_t *g);

/* Take one more reference; returns g. */
GREEN_EXPORT green_t *green_retain(green_t *g);

/* Wait until g is done.  Errors: EINVAL (NULL), EDEADLK (g is the caller,
   or blocking is impossible here), EXDEV, ETIMEDOUT, ECANCELED, EAGAIN
   (timeout 0 and g not done). */
GREEN_EXPORT int green_join(green_t *g, double timeout);

/* Wait until all n greenlets are done (NULL entries are skipped); the
   timeout covers the whole wait.  Errors as green_join. */
GREEN_EXPORT int green_joinall(green_t *const *gs, size_t n, double timeout);

/* Cancel g: if it has not started it never runs; if it is blocked, that
   call returns -1/ECANCELED, and so does every later blocking call it
   makes.  Then wait up to timeout for it to finish (0: do not wait).
   Killing a finished greenlet is a no-op.  Errors: EINVAL, EDEADLK
   (g is the caller), EXDEV, ETIMEDOUT (still running after timeout). */
GREEN_EXPORT int green_kill(green_t *g, double timeout);

/* Kill every greenlet in gs (NULL entries skipped), then wait for all of
   them up to timeout.  Errors as green_kill. */
GREEN_EXPORT int green_killall(green_t *const *gs, size_t n, double timeout);

/* Finish the current greenlet with value (as if fn returned it).  Called
   on the main greenlet it ends the calling thread (pthread_exit). */
GREEN_EXPORT _Noreturn void green_exit(void *value);

/* Finish the current greenlet with error err (gevent's exception):
   green_error returns err and green_value NULL. */
GREEN_EXPORT _Noreturn void green_fail(int err);

/* 1 once g finished (returned, exited, failed or was killed), else 0. */
GREEN_EXPORT int green_done(const green_t *g);

/* What fn returned or green_exit passed; NULL until done. */
GREEN_EXPORT void *green_value(const green_t *g);

/* 0, ECANCELED if g was killed, or the code passed to green_fail. */
GREEN_EXPORT int green_error(const green_t *g);

/* The running greenlet (the main greenlet on the thread's own stack). */
GREEN_EXPORT green_t *green_current(void);

/* The name given in green_attr_t, or "greenlet-<id>"; "main", "hub". */
GREEN_EXPORT const char *green_name(const green_t *g);

/* A process-wide unique id, starting at 1. */
GREEN_EXPORT uint64_t green_id(const green_t *g);

/* Call cb(g, arg) in the hub once g is done (at once, from the hub, if it
   already is).  Callbacks run in link order and must not block (EDEADLK).
   Errors: EINVAL, ENOMEM, EXDEV. */
GREEN_EXPORT int green_link(green_t *g, void (*cb)(green_t *g, void *arg),
                            void *arg);

/******************************************************************************/
/*  Scheduling and time                                                       */
/******************************************************************************/

/* Sleep for seconds; 0 (or less) yields: every greenlet runnable now runs
   before the caller resumes.  Errors: EINVAL (NaN), ECANCELED, ETIMEDOUT
   (an enclosing green_timeout expired), EDEADLK (in the hub). */
GREEN_EXPORT int green_sleep(double seconds);

/* Same as green_sleep(0). */
GREEN_EXPORT int green_yield(void);

/* Run the hub until no greenlet is alive and no watcher is active.
   Returns 0, or -1/EDEADLK if greenlets remain blocked on something that
   can never happen (or when called from a greenlet other than main). */
GREEN_EXPORT int green_run(void);

/* A deadline for every blocking call the current greenlet makes until it
   is cancelled.  Once it expires, blocking calls fail with ETIMEDOUT
   until green_timeout_cancel.  Nested timeouts: the earliest deadline
   wins.  seconds < 0 never expires.  Errors: EINVAL (NaN), ENOMEM,
   EDEADLK (in the hub). */
typedef struct green_timeout green_timeout_t;
GREEN_EXPORT green_timeout_t *green_timeout_start(double seconds);

/* 1 once t expired (a call failed or would fail with ETIMEDOUT). */
GREEN_EXPORT int green_timeout_expired(const green_timeout_t *t);

/* Disarm and free t (NULL is a no-op). */
GREEN_EXPORT void green_timeout_cancel(green_timeout_t *t);

/******************************************************************************/
/*  Cooperative I/O                                                           */
/******************************************************************************/

/* Wait until fd is readable / writable (timeout 0: report readiness now
   without waiting, allowed from the hub and callbacks too).  Several
   greenlets may wait on one fd; all wake.  Errors: EBADF (fd negative,
   not open, a number the process cannot have, an epoll fd, or closed
   while waiting: by green_close, or by a plain close(2) before the loop
   polled again), ETIMEDOUT, ECANCELED, EAGAIN (timeout 0 and not ready),
   EDEADLK, EINVAL (NaN). */
GREEN_EXPORT int green_wait_read(int fd, double timeout);
GREEN_EXPORT int green_wait_write(int fd, double timeout);

/* The libc calls, waiting cooperatively instead of blocking.  Any fd
   works: it is put in O_NONBLOCK on first use.  Results and errno are the
   libc call's, plus the blocking errors above; EAGAIN never reaches the
   caller (except recv* / send* with MSG_DONTWAIT, which asks for it).
   Socket writes use MSG_NOSIGNAL (EPIPE, never SIGPIPE); writes to a
   pipe or FIFO block SIGPIPE in the calling thread for the call and
   consume the one they raised, so they fail with EPIPE too, and the
   process's dispositions are never changed.  On a socket, SO_RCVTIMEO
   (reads, accept) and SO_SNDTIMEO (writes, connect) bound the call as
   they bound a blocking socket's: after that time it fails with
   -1/EAGAIN (connect: EINPROGRESS), whatever it already waited; an
   enclosing green_timeout still gives ETIMEDOUT.  A negative fd, or one
   at or above RLIMIT_NOFILE that is not open, is EBADF at once. */
GREEN_EXPORT ssize_t green_read(int fd, void *buf, size_t n);
GREEN_EXPORT ssize_t green_write(int fd, const void *buf, size_t n);
/* Write all n bytes (loops over short writes); returns n or -1 (also
   when an error or SO_SNDTIMEO stops it after a partial write). */
GREEN_EXPORT ssize_t green_write_all(int fd, const void *buf, size_t n);
GREEN_EXPORT ssize_t green_readv(int fd, const struct iovec *iov, int iovcnt);
GREEN_EXPORT ssize_t green_writev(int fd, const struct iovec *iov,
                                  int iovcnt);
GREEN_EXPORT ssize_t green_recv(int fd, void *buf, size_t n, int flags);
GREEN_EXPORT ssize_t green_send(int fd, const void *buf, size_t n, int flags);
GREEN_EXPORT ssize_t green_recvfrom(int fd, void *buf, size_t n, int flags,
                                    struct sockaddr *addr, socklen_t *len);
GREEN_EXPORT ssize_t green_sendto(int fd, const void *buf, size_t n,
                                  int flags, const struct sockaddr *addr,
                                  socklen_t len);
GREEN_EXPORT ssize_t green_recvmsg(int fd, struct msghdr *msg, int flags);
GREEN_EXPORT ssize_t green_sendmsg(int fd, const struct msghdr *msg,
                                   int flags);
/* sendfile(2), waiting cooperatively whenever out_fd (a socket or pipe)
   is full: it returns once count bytes are sent, in_fd reaches its end
   (fewer bytes), or an error stops it (the bytes sent so far, or -1 if
   none).  offset as sendfile's (NULL: in_fd's file position advances).
   No SIGPIPE: a closed peer is EPIPE.  SO_SNDTIMEO bounds it (EAGAIN).
   Errors: sendfile(2)'s (EBADF, EINVAL, EPIPE, ...), plus ECANCELED,
   ETIMEDOUT, EDEADLK, ENOMEM. */
GREEN_EXPORT ssize_t green_sendfile(int out_fd, int in_fd, off_t *offset,
                                    size_t count);
/* Accepted fds are non-blocking and close-on-exec. */
GREEN_EXPORT int green_accept(int fd, struct sockaddr *addr, socklen_t *len);
/* Completes or fails as a blocking connect would (e.g. ECONNREFUSED;
   EINPROGRESS once SO_SNDTIMEO passed). */
GREEN_EXPORT int green_connect(int fd, const struct sockaddr *addr,
                               socklen_t len);
/* Wake every greenlet waiting on fd with -1/EBADF, then close it (and
   forget libgreen's state for the number, so a new fd that reuses it
   starts fresh).  Close fds used with green_* through green_close (or
   the patch library): after a plain close(2) libgreen may still believe
   a reused number is registered and non-blocking.  Errors: close(2)'s. */
GREEN_EXPORT int green_close(int fd);
/* poll(2) and select(2), waiting cooperatively: the kernel computes the
   results (revents, the modified fd_sets, the count; select updates *tv
   to the time left, as on Linux), so they match libc.  No fds with a
   timeout is a sleep.  An fd another greenlet green_close()s while the
   call waits shows as POLLNVAL (select: EBADF), even if a new fd took
   its number meanwhile.  select accepts nfds above FD_SETSIZE (sets
   the caller allocated for nfds bits, as libc allows; only the first
   nfds bits are read and written).  POLLPRI alone is re-checked every 10 ms,
   and an fd with events 0 does not wake the caller by itself.  Errors:
   the libc call's, plus ECANCELED, ETIMEDOUT (a green_timeout), EDEADLK,
   ENOMEM. */
GREEN_EXPORT int green_poll(struct pollfd *fds, nfds_t n, int timeout_ms);
GREEN_EXPORT int green_select(int nfds, fd_set *r, fd_set *w, fd_set *e,
                              struct timeval *tv);
/* getaddrinfo(3) in the threadpool (numeric addresses and services are
   resolved inline); returns 0 or getaddrinfo's EAI_* code unchanged.
   libgreen's own failures are EAI_SYSTEM with errno set: EINVAL (res
   NULL), ECANCELED, ETIMEDOUT, EDEADLK, ENOMEM, EAGAIN. */
GREEN_EXPORT int green_getaddrinfo(const char *node, const char *service,
                                   const struct addrinfo *hints,
                                   struct addrinfo **res);
/* A listening TCP socket (IPv4 or IPv6; NULL, "" or "*" host: all
   interfaces, dual-stack when the host has IPv6; port 0 picks one;
   SO_REUSEADDR; backlog <= 0 means SOMAXCONN), non-blocking and
   close-on-exec.  host is a numeric address or a name; names are
   resolved with a blocking getaddrinfo (use green_getaddrinfo for
   remote names).  Returns the fd or -1: EINVAL (port outside 0..65535),
   ENOENT (host not found), or bind(2)/listen(2)'s errors. */
GREEN_EXPORT int green_tcp_listen(const char *host, int port, int backlog);
/* A connected TCP socket (non-blocking, close-on-exec), trying each
   address of host in turn within one overall timeout (NULL host:
   loopback).  Returns the fd or -1: ECONNREFUSED and connect(2)'s other
   errors, ETIMEDOUT, ECANCELED, EAGAIN (timeout 0), EDEADLK, EINVAL
   (port, NaN), ENOENT (host not found). */
GREEN_EXPORT int green_tcp_connect(const char *host, int port,
                                   double timeout);

/******************************************************************************/
/*  Threadpool                                                                */
/******************************************************************************/

/* Run *result = fn(arg) in a worker thread of this hub's pool while the
   caller waits cooperatively (result may be NULL).  Workers are created on
   demand, have no hub and block asynchronous signals; fn must return (not
   pthread_exit) and should not call libgreen.  If the caller is killed it
   returns -1/ECANCELED at once (ETIMEDOUT for an expired green_timeout):
   a job no worker took yet is withdrawn and never runs, a running one
   finishes in the background and its result is dropped, so arg must stay
   valid until fn returns.  green_shutdown waits for running jobs.  In a
   green_fork child a call whose job was running fails with ECANCELED.
   Errors: EINVAL (fn NULL), ECANCELED, ETIMEDOUT, EDEADLK (in the hub),
   ENOMEM, EAGAIN (no thread could be created). */
GREEN_EXPORT int green_threadpool_call(green_fn fn, void *arg, void **result);

/* Set the maximum number of worker threads of this thread's pool
   (default 10, like gevent's; 1 to 1024, else EINVAL).  Extra idle
   workers exit when it shrinks. */
GREEN_EXPORT int green_threadpool_set_size(size_t n);

/******************************************************************************/
/*  Synchronisation                                                           */
/******************************************************************************/

/* Every object below belongs to the hub of the thread that created it:
   using it from another thread fails with EXDEV.  Waiters are served in
   FIFO order, so a program with the same inputs runs the same way every
   time.  A waiter that times out or is killed leaves the queue and never
   consumes a wake-up meant for another: a unit, an item, a lock or a
   result always goes to the oldest greenlet still waiting.

   Every wait takes a timeout (< 0 forever, 0 do not wait: EAGAIN, NaN:
   EINVAL) and fails like any blocking call: ETIMEDOUT (its timeout or an
   enclosing green_timeout), ECANCELED (killed), EDEADLK (in the hub or a
   callback, or nothing could ever wake it).  An operation that does not
   need to wait succeeds without those checks, also from a libev callback.

   Freeing: the *_free functions accept NULL.  Freeing an object while
   greenlets wait on it wakes each of them with -1/EBADF (they do not touch
   it again); free objects from their own thread, before green_shutdown. */

typedef struct green_event green_event_t;
typedef struct green_result green_result_t;
typedef struct green_sem green_sem_t;
typedef struct green_lock green_lock_t;
typedef struct green_cond green_cond_t;
typedef struct green_queue green_queue_t;

/* Event (gevent.event.Event): a flag.  green_event_set sets it and wakes
   every waiter, in wait order (a waiter woken by set returns 0 even if
   the event is cleared before it runs); green_event_clear resets it;
   green_event_wait returns 0 at once if it is set.  is_set returns 1 or 0
   (0 for NULL).  Errors: EINVAL (NULL, NaN), EXDEV, and for wait
   ETIMEDOUT, ECANCELED, EAGAIN, EDEADLK, EBADF (freed meanwhile). */
GREEN_EXPORT green_event_t *green_event_new(void);
GREEN_EXPORT int green_event_set(green_event_t *e);
GREEN_EXPORT int green_event_clear(green_event_t *e);
GREEN_EXPORT int green_event_is_set(const green_event_t *e);
GREEN_EXPORT int green_event_wait(green_event_t *e, double timeout);
GREEN_EXPORT void green_event_free(green_event_t *e);

/* AsyncResult: completed once, with a value (set) or an error err > 0
   (set_error); completing it again is -1/EINVAL.  Every getter wakes, in
   wait order.  green_result_get stores the value in *value (value may be
   NULL) and returns 0, or returns -1 with errno = the stored error (and
   *value = NULL).  ready returns 1 once completed (0 for NULL).  Errors:
   EINVAL (NULL, NaN, err <= 0, already set), EXDEV, and for get
   ETIMEDOUT, ECANCELED, EAGAIN, EDEADLK, EBADF (freed meanwhile). */
GREEN_EXPORT green_result_t *green_result_new(void);
GREEN_EXPORT int green_result_set(green_result_t *r, void *value);
GREEN_EXPORT int green_result_set_error(green_result_t *r, int err);
GREEN_EXPORT int green_result_ready(const green_result_t *r);
GREEN_EXPORT int green_result_get(green_result_t *r, double timeout,
                                  void **value);
GREEN_EXPORT void green_result_free(green_result_t *r);

/* Counting semaphore starting at value; bound 0 = unbounded, else
   releasing past it is -1/EOVERFLOW (and value > bound is EINVAL at
   creation).  Acquire takes a unit or waits for one; release hands its
   unit straight to the oldest waiter if there is one.  Errors: EINVAL,
   EXDEV, EOVERFLOW (release), and for acquire ETIMEDOUT, ECANCELED,
   EAGAIN, EDEADLK, EBADF (freed meanwhile). */
GREEN_EXPORT green_sem_t *green_sem_new(unsigned value, unsigned bound);
GREEN_EXPORT int green_sem_acquire(green_sem_t *s, double timeout);
GREEN_EXPORT int green_sem_release(green_sem_t *s);
GREEN_EXPORT void green_sem_free(green_sem_t *s);

/* Lock owned by a greenlet (gevent.lock.RLock if recursive, else Lock).
   The holder acquiring a non-recursive lock again gets -1/EDEADLK;
   a recursive lock counts acquisitions and is free after as many
   releases.  Releasing a lock you do not hold is -1/EPERM.  On release
   the lock passes directly to the oldest waiter.  A greenlet that ends
   while holding a lock leaves it held.  Errors: EINVAL, EXDEV, EPERM,
   EDEADLK, EOVERFLOW (recursion count), and for acquire ETIMEDOUT,
   ECANCELED, EAGAIN, EBADF (freed meanwhile). */
GREEN_EXPORT green_lock_t *green_lock_new(int recursive);
GREEN_EXPORT int green_lock_acquire(green_lock_t *l, double timeout);
GREEN_EXPORT int green_lock_release(green_lock_t *l);
GREEN_EXPORT void green_lock_free(green_lock_t *l);

/* Condition variable used with a green_lock the caller holds (else
   -1/EPERM).  green_cond_wait releases l completely (whatever its
   recursion depth), waits for a signal, then takes l back with the same
   depth before returning, like pthread_cond_wait: that last step waits as
   long as it takes, even after a kill or timeout, so the caller holds l
   again on every return except EBADF (l was freed meanwhile: l is gone,
   nothing is held and l is never touched again) and EDEADLK from the
   re-acquire (nothing can ever release l).  If the wait cannot start
   (EDEADLK, ECANCELED, ETIMEDOUT, EAGAIN for timeout 0) l is not released
   at all.  signal wakes the oldest waiter, broadcast all of them, in wait
   order; neither needs the lock.  Errors: EINVAL, EXDEV, EPERM, and for
   wait ETIMEDOUT, ECANCELED, EAGAIN, EDEADLK, EIDRM (c was freed
   meanwhile; l is held again), EBADF (l was freed meanwhile). */
GREEN_EXPORT green_cond_t *green_cond_new(void);
GREEN_EXPORT int green_cond_wait(green_cond_t *c, green_lock_t *l,
                                 double timeout);
GREEN_EXPORT int green_cond_signal(green_cond_t *c);
GREEN_EXPORT int green_cond_broadcast(green_cond_t *c);
GREEN_EXPORT void green_cond_free(green_cond_t *c);

/* FIFO queue of void * items (gevent.queue.JoinableQueue); capacity 0 =
   unbounded.  put waits while the queue is full, get while it is empty;
   timeout 0 gives EAGAIN instead of waiting.  An item goes straight to
   the oldest waiting getter, and a get from a full queue moves the oldest
   waiting putter's item in, so items are never lost or duplicated.
   size is the number of items queued (0 for NULL).  Every accepted item
   counts as unfinished until green_queue_task_done; green_queue_join
   waits until none is (task_done with none unfinished is -1/EINVAL).
   After green_queue_close (idempotent) puts fail with EPIPE at once,
   waiting putters fail with EPIPE (their items are not queued), and gets
   fail with EPIPE once the queue is drained.  Freeing a queue drops the
   items still in it (they are the caller's pointers).  Errors: EINVAL
   (NULL queue or item pointer, NaN), EXDEV, EPIPE, ENOMEM (an unbounded
   queue could not grow), and for waits ETIMEDOUT, ECANCELED, EAGAIN,
   EDEADLK, EBADF (freed meanwhile). */
GREEN_EXPORT green_queue_t *green_queue_new(size_t capacity);
/* Rendezvous channel (gevent.queue.Channel): nothing is buffered, a put
   completes only when a getter takes the item (with timeout 0 it
   succeeds only if a getter is already waiting). */
GREEN_EXPORT green_queue_t *green_channel_new(void);
GREEN_EXPORT int green_queue_put(green_queue_t *q, void *item,
                                 double timeout);
GREEN_EXPORT int green_queue_get(green_queue_t *q, void **item,
                                 double timeout);
GREEN_EXPORT size_t green_queue_size(const green_queue_t *q);
GREEN_EXPORT int green_queue_task_done(green_queue_t *q);
GREEN_EXPORT int green_queue_join(green_queue_t *q, double timeout);
GREEN_EXPORT int green_queue_close(green_queue_t *q);
GREEN_EXPORT void green_queue_free(green_queue_t *q);

/******************************************************************************/
/*  Pools and groups                                                          */
/******************************************************************************/

typedef struct green_pool green_pool_t;
typedef struct green_imap green_imap_t;

/* A pool runs at most size greenlets at once; size 0 = unlimited (a
   group, which just tracks its greenlets).  Owned by the creating
   thread's hub: EXDEV from any other thread.  A greenlet's slot is freed
   once it is done and its green_link callbacks ran. */
GREEN_EXPORT green_pool_t *green_pool_new(size_t size);
/* Spawn fn(arg) in the pool, first waiting (FIFO among spawners, no
   timeout of its own: use green_timeout) while size greenlets run.  The
   caller owns one reference (green_release).  Errors: EINVAL (NULL),
   EXDEV, ENOMEM, and while waiting ETIMEDOUT, ECANCELED, EDEADLK, EBADF
   (the pool was freed meanwhile). */
GREEN_EXPORT green_t *green_pool_spawn(green_pool_t *p, green_fn fn,
                                       void *arg);
/* Wait until no greenlet of the pool runs.  Errors: EINVAL, EXDEV,
   EDEADLK (called by one of its greenlets, or in the hub), ETIMEDOUT,
   ECANCELED, EAGAIN, EBADF (freed meanwhile). */
GREEN_EXPORT int green_pool_join(green_pool_t *p, double timeout);
/* Kill every greenlet running in the pool, then wait up to timeout for
   the pool to be empty (0: do not wait).  Errors as green_pool_join. */
GREEN_EXPORT int green_pool_kill(green_pool_t *p, double timeout);
/* Greenlets running in the pool (0 for NULL). */
GREEN_EXPORT size_t green_pool_running(const green_pool_t *p);
/* results[i] = fn(args[i]) for i < n, at most size in flight, in input
   order.  Returns 0, or -1 with errno = the error of the first failed
   worker (green_fail or killed; its result is NULL, the others are
   filled in), or with the caller's own wait error (ECANCELED, ETIMEDOUT,
   EDEADLK: then outstanding workers are killed and results is partly
   written).  Errors also: EINVAL (NULL p or fn, NULL arrays with n > 0),
   EXDEV, ENOMEM. */
GREEN_EXPORT int green_pool_map(green_pool_t *p, green_fn fn,
                                void *const *args, void **results, size_t n);
/* Iterators over fn(args[i]): workers are spawned through the pool at
   once (at most size in flight) by a feeder greenlet; imap yields the
   results in input order, imap_unordered in completion order.  The args
   array is copied.  Errors: EINVAL, EXDEV, ENOMEM. */
GREEN_EXPORT green_imap_t *green_pool_imap(green_pool_t *p, green_fn fn,
                                           void *const *args, size_t n);
GREEN_EXPORT green_imap_t *green_pool_imap_unordered(green_pool_t *p,
                                                     green_fn fn,
                                                     void *const *args,
                                                     size_t n);
/* Next result, waiting for it: 0 and *result (result may be NULL).  If
   that worker failed, -1 with errno = its error (the item is consumed
   all the same).  -1/ENOENT when exhausted.  Errors also: EINVAL, EXDEV,
   ECANCELED, ETIMEDOUT, EDEADLK (the caller's own wait; nothing consumed),
   EBADF (freed meanwhile). */
GREEN_EXPORT int green_imap_next(green_imap_t *it, void **result);
/* Free an iterator, consumed or not: outstanding workers are killed and
   joined (only killed when the caller cannot block: they finish on their
   own), unconsumed results are dropped. */
GREEN_EXPORT void green_imap_free(green_imap_t *it);
/* Free the pool: waiting spawners and joiners fail with EBADF; greenlets
   still running keep running (kill or join them first to stop them), and
   the memory goes when the last one is done.  Free the pool's iterators
   before green_shutdown. */
GREEN_EXPORT void green_pool_free(green_pool_t *p);

/******************************************************************************/
/*  Servers                                                                   */
/******************************************************************************/

typedef struct green_server green_server_t;

/* address: "127.0.0.1:8080", "[::1]:0", ":8080" (all interfaces),
   "localhost:0", "unix:/path".  The socket is bound and listening when
   this returns (so green_server_port works at once); nothing is
   accepted before green_server_start.  One greenlet per connection runs
   handler(fd, arg); fd (non-blocking, close-on-exec) is closed when the
   handler returns, fails or is killed: the handler must not close it.
   Errors: EINVAL (NULL, bad address), ENOENT, ENOMEM, bind's errors. */
GREEN_EXPORT green_server_t *green_server_new(const char *address,
                                              void (*handler)(int fd,
                                                              void *arg),
                                              void *arg);
/* Hold accept while `max` handlers run (0: no limit); new connections
   wait in the kernel's backlog meanwhile.  Errors: EINVAL, EXDEV. */
GREEN_EXPORT int green_server_set_max_connections(green_server_t *s,
                                                  size_t max);
/* Start accepting in a greenlet of this hub and return (again: no-op).
   When accept runs out of fds (EMFILE, ENFILE) or memory, the acceptor
   backs off (10 ms doubling to 0.5 s) and keeps serving.  Errors:
   EINVAL (NULL, stopped), EXDEV, ENOMEM. */
GREEN_EXPORT int green_server_start(green_server_t *s);
/* Start, then wait until green_server_stop; returns 0 then.  If the
   caller is killed, the server is stopped (handlers killed) and it
   returns -1/ECANCELED. */
GREEN_EXPORT int green_server_serve_forever(green_server_t *s);
/* Stop accepting and close the listening socket (a unix socket's file
   is removed), wait up to timeout for running handlers, then kill the
   rest (and wait up to 1 s for them).  Stopped already: 0.  Errors:
   EINVAL (NULL, NaN), EXDEV. */
GREEN_EXPORT int green_server_stop(green_server_t *s, double timeout);
/* The bound TCP port (0 for a unix socket), or -1/EINVAL. */
GREEN_EXPORT int green_server_port(const green_server_t *s);
/* Stop (timeout 0) if needed, and free; NULL is a no-op. */
GREEN_EXPORT void green_server_free(green_server_t *s);

/******************************************************************************/
/*  Process, signals, threads, embedding                                      */
/******************************************************************************/

struct ev_loop;
typedef struct green_hub green_hub_t;

/* Wait until signum arrives (ev_signal); every greenlet waiting for it
   wakes.  A signal arriving while nobody waits is not remembered: outside
   waits the process's own disposition applies (libgreen restores it after
   the last waiter, including SIG_IGN and user handlers).  libev lets one
   loop at a time watch a signal: a signal held by another thread's hub is
   EBUSY (and SIGCHLD is EBUSY while an application created libev's
   default loop, which owns it, and the hub runs another loop).  Errors: EINVAL (signum invalid, SIGKILL, SIGSTOP,
   SIGSEGV, SIGBUS, SIGFPE, SIGILL; NaN), EBUSY, EAGAIN (timeout 0),
   ETIMEDOUT, ECANCELED, EDEADLK. */
GREEN_EXPORT int green_signal_wait(int signum, double timeout);
/* waitpid(2), waiting cooperatively: pid > 0 or -1 (process groups: 0 and
   < -1 are EINVAL); options WNOHANG, WUNTRACED, WCONTINUED (WNOHANG never
   waits, so it also works in the hub).  libgreen reaps only the children
   it is asked for, on any hub: a plain waitpid(), system() or pclose()
   elsewhere keeps working.  For pid > 0 without WUNTRACED/WCONTINUED the
   wait is on the child's pidfd (Linux 5.3); otherwise, or without
   pidfds, waitpid(WNOHANG) is polled 1 ms to 50 ms apart.
   Errors: as waitpid (ECHILD), EINVAL, ECANCELED, ETIMEDOUT, EDEADLK. */
GREEN_EXPORT pid_t green_waitpid(pid_t pid, int *status, int options);
/* fork(2); the child gets a re-initialised hub (ev_loop_fork) and keeps
   every greenlet (gevent's policy): the caller continues, the others run
   only when it yields to the hub and may be killed there.  The threadpool
   starts new workers on demand; green_waitpid waiters for the parent's
   children get ECHILD.  Only the calling thread exists in the child, so
   other threads' hubs are unusable there.  A plain fork() leaves the
   child's hub sharing kernel objects with the parent: use green_fork. */
GREEN_EXPORT pid_t green_fork(void);
/* Embed in a daemon that runs ev_run(loop) itself: greenlets spawned from
   its callbacks start on the next loop iteration and are resumed from
   inside its ev_run; blocking from a plain callback is EDEADLK; the app's
   own watchers keep firing while greenlets wait.  green_shutdown (from
   outside every greenlet) detaches: it stops every libgreen watcher and
   leaves the loop to the application.  Errors: EINVAL (NULL), EBUSY (this
   thread's standalone hub has live greenlets), ENOMEM. */
GREEN_EXPORT int green_hub_attach(struct ev_loop *loop);
GREEN_EXPORT struct ev_loop *green_hub_loop(void);
/* This thread's hub (created if needed), as a handle for green_hub_spawn
   from any thread.  The handle is valid until that hub shuts down; after
   that green_hub_spawn fails with ESRCH (keep a hub alive while other
   threads may spawn into it: a later hub could reuse its address).
   NULL/ENOMEM on failure. */
GREEN_EXPORT green_hub_t *green_hub_current(void);
/* Thread-safe, from any thread (with or without a hub of its own): start
   fn(arg) as a greenlet in hub's thread, on its next loop iteration, each
   request exactly once and in order per caller (from hub's own thread it
   is green_spawn).  Requests still queued when the hub shuts down never
   run.  Errors: EINVAL (NULL), ESRCH (hub shut down), ENOMEM. */
GREEN_EXPORT int green_hub_spawn(green_hub_t *hub, green_fn fn, void *arg);
/* Free this thread's hub (and every greenlet it still holds), from
   outside every greenlet (the thread's own stack; embedded: a callback of
   the application's loop).  From a greenlet, or a link callback of a
   standalone hub, it does nothing.  From a link callback of an embedded
   hub it takes effect once the callbacks of that loop iteration return. */
GREEN_EXPORT void green_shutdown(void);

/******************************************************************************/
/*  Patching (libgreen-patch)                                                 */
/******************************************************************************/

/* These two live in libgreen-patch, not libgreen: link with
   -lgreen-patch (pkg-config libgreen-patch), or load libgreen-patch.so
   with LD_PRELOAD (a program that does not reference them can set
   GREEN_PATCH_ALL=1 in the environment instead).  The library
   interposes the blocking libc calls (read, write, recv*, send*, accept,
   connect, poll, select, sleep, usleep, nanosleep, getaddrinfo, close,
   fcntl, ...) and is inert until green_patch_all().  After it, such a
   call made by a greenlet waits cooperatively, with the blocking errors
   above (ETIMEDOUT from an enclosing green_timeout, ECANCELED when
   killed, EBADF when the fd is closed); made outside any greenlet, by
   the hub or a callback, or in a thread without a hub, it behaves as
   the libc call: it blocks the thread, and a signal handler without
   SA_RESTART interrupts it with EINTR.  poll(NULL, 0, -1) and
   select(0, NULL, NULL, NULL, NULL) (a pause until a signal) stay
   libc's everywhere.  A socket or pipe the caller left blocking still
   behaves as blocking (never a surprise EAGAIN; SO_RCVTIMEO/SO_SNDTIMEO
   give EAGAIN as the kernel does); one the caller made non-blocking
   keeps its EAGAIN, and fcntl(F_GETFL) shows the caller's own
   O_NONBLOCK.  libgreen and libgreen-patch share one fd table, so
   green_close and close(2) are equivalent once patching is on.  Returns 0, or -1/ENOTSUP if
   libgreen and libgreen-patch come from different builds.  Idempotent. */
GREEN_EXPORT int green_patch_all(void);
/* 1 once green_patch_all() succeeded, else 0. */
GREEN_EXPORT int green_patch_active(void);

/******************************************************************************/
/*  Diagnostics                                                               */
/******************************************************************************/

/* List every live greenlet of this thread: id, name, state. */
GREEN_EXPORT void green_dump(FILE *out);
/* Report when the hub does not cycle for `seconds` (GREEN_MONITOR). */
GREEN_EXPORT int green_monitor_start(double seconds);
GREEN_EXPORT void green_monitor_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* GREEN_H_INCLUDED */
