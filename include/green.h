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
#include <signal.h>
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
   GREEN_STACK_SIZE from the environment); the greenlet's control block
   (about 400 bytes, 1.3 KiB with ucontext) takes the top of it.  A name
   is copied (at most 31 bytes kept). */
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
   memory, stack included (its control block lives there), is freed once
   it is done and every reference is released. */
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
   Killing a finished greenlet is a no-op.  The wait is a blocking call:
   a caller that was killed itself (or whose green_timeout expired) still
   cancels g but gets ECANCELED (ETIMEDOUT) for the wait, unless timeout
   is 0.  Errors: EINVAL, EPERM (g is the main greenlet, or the hub:
   they cannot be killed; end main's work by returning or with a
   green_timeout), EDEADLK (g is the caller, or waiting from the hub),
   EXDEV, ETIMEDOUT (still running after timeout), ECANCELED. */
GREEN_EXPORT int green_kill(green_t *g, double timeout);

/* Kill every greenlet in gs (NULL entries skipped), then wait for all of
   them up to timeout.  Errors as green_kill. */
GREEN_EXPORT int green_killall(green_t *const *gs, size_t n, double timeout);

/* Finish the current greenlet with value (as if fn returned it); does
   not return.  Called on the main greenlet (or in a thread without a
   hub) it ends the calling thread (pthread_exit).  In the hub, a libev
   callback or a link callback there is no greenlet to finish: it returns
   at once with errno EPERM and changes nothing. */
GREEN_EXPORT void green_exit(void *value);

/* Finish the current greenlet with error err (gevent's exception):
   green_error returns err and green_value NULL.  Where green_exit would
   return (EPERM), so does green_fail. */
GREEN_EXPORT void green_fail(int err);

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

/* A process-wide unique id, starting at 1.  Ids grow in the order a
   thread creates its greenlets; they are not consecutive across threads
   (each thread takes them in blocks). */
GREEN_EXPORT uint64_t green_id(const green_t *g);

/* Call cb(g, arg) in the hub once g is done (at once, from the hub, if it
   already is).  Callbacks run in link order and must not block (EDEADLK).
   Errors: EINVAL, ENOMEM, EXDEV. */
GREEN_EXPORT int green_link(green_t *g, void (*cb)(green_t *g, void *arg),
                            void *arg);

/* Remove the oldest link of g with this cb and arg that has not run yet
   (gevent's unlink).  Errors: EINVAL (NULL), EXDEV, ENOENT (no such
   link pending: never added, or already run or running). */
GREEN_EXPORT int green_unlink(green_t *g, void (*cb)(green_t *g, void *arg),
                              void *arg);

/* Cancellation state (pthread_setcancelstate, Trio's shield).  The rule:
   a kill always marks its target killed (green_killed() is 1 from then
   on, for good).  While the target's state is GREEN_CANCEL_ENABLE (the
   default), the kill also fails the blocking call it is parked in, and
   every later one, with ECANCELED.  While it is GREEN_CANCEL_DISABLE,
   the kill is only recorded: blocking calls, green_sleep, green_join
   and green_kill of others included, work normally (green_timeouts
   still expire), so cleanup can join children or flush a socket.
   Setting GREEN_CANCEL_ENABLE again delivers a recorded kill at the next
   blocking call (ECANCELED, as above); nothing is interrupted by the
   call itself.  Waits that ignore kills (a condition's lock re-acquire)
   are unchanged.  A greenlet killed before it ever ran never runs.
   What a killed greenlet reports: green_error is ECANCELED unless it
   ended through green_fail (then that code), even if it returned
   normally after the kill (unlike gevent, where a greenlet that catches
   GreenletExit counts as successful: here "killed" stays visible to
   joiners); green_value is what it returned or passed to green_exit.
   green_kill(h) called by a killed greenlet marks h killed and fails
   with ECANCELED instead of waiting for h, unless its timeout is 0 or
   its cancellation is disabled (then it waits like any blocking call).
   setcancelstate applies to the calling greenlet (main included) and
   stores the previous state in *oldstate (may be NULL).  Errors: EINVAL
   (state not one of the two), EPERM (from the hub or a callback: no
   greenlet to apply it to), ENOMEM. */
#define GREEN_CANCEL_ENABLE 0
#define GREEN_CANCEL_DISABLE 1
GREEN_EXPORT int green_setcancelstate(int state, int *oldstate);
/* 1 if the calling greenlet has been killed (whatever its cancellation
   state), else 0 (also in the hub, a callback, or without a hub). */
GREEN_EXPORT int green_killed(void);

/* Greenlet-local storage (gevent.local, pthread_key_*).  Keys are
   process-wide (at most GREEN_KEYS_MAX at once); each greenlet, each
   thread's main greenlet and each hub (for callbacks) has its own value
   for every key, NULL until set.  When a greenlet ends (returns,
   green_exit, green_fail, killed) the destructor of each non-NULL value
   runs, in that greenlet, before joiners wake; values a destructor sets
   again get up to 4 rounds, like pthread.  A greenlet discarded by
   green_shutdown, and the main greenlet and hub at green_shutdown or
   thread exit, run theirs during the shutdown, where blocking fails
   with EDEADLK.  A deleted key's destructor never runs and its values
   are never returned again (a key created later reads NULL).  get costs
   an index and a compare; a greenlet that never sets a value allocates
   nothing.  Errors: EINVAL (key NULL, or not a live key), EAGAIN
   (GREEN_KEYS_MAX keys exist), ENOMEM (set: the value table could not
   grow). */
#define GREEN_KEYS_MAX 1024
typedef unsigned green_key_t;
GREEN_EXPORT int green_key_create(green_key_t *key,
                                  void (*destructor)(void *value));
GREEN_EXPORT int green_key_delete(green_key_t key);
/* The calling greenlet's value for key, NULL if unset or not a key. */
GREEN_EXPORT void *green_getspecific(green_key_t key);
GREEN_EXPORT int green_setspecific(green_key_t key, const void *value);

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

/* The same deadline in caller storage, with no allocation (gevent's
   `with Timeout(seconds)`): green_timeout_begin(&s, 0.5) ... then
   green_timeout_end(&s) on every path out of the scope, by the greenlet
   that began it.  s must stay valid until then: end it before
   returning from the function whose local it is (like
   pthread_cleanup_pop); a greenlet that ends inside the scope through
   green_exit or green_fail, or is discarded by green_shutdown, forgets
   it.  Scopes nest with each other and with
   green_timeout_start.  begin errors: EINVAL (s NULL, NaN), ENOMEM,
   EDEADLK (in the hub).  end returns 1 if the timeout expired, 0 if
   not, -1/EINVAL if s is NULL or not begun (ended already).
   scope_expired is 1 once it expired (also after end). */
typedef struct green_timeout_scope {
    void *opaque_[6];
} green_timeout_scope_t;
GREEN_EXPORT int green_timeout_begin(green_timeout_scope_t *s,
                                     double seconds);
GREEN_EXPORT int green_timeout_end(green_timeout_scope_t *s);
GREEN_EXPORT int green_timeout_scope_expired(const green_timeout_scope_t *s);

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
   at or above RLIMIT_NOFILE that is not open, is EBADF at once.  On a
   regular file or block device the read and write calls go off the hub
   (see "Regular files"). */
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
   close-on-exec.  host is a numeric address or a name; a name is
   resolved in the threadpool (green_getaddrinfo) when the caller can
   wait, else (in the hub or a callback) with a plain getaddrinfo that
   blocks the thread.  Returns the fd or -1: EINVAL (port outside 0..65535),
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
/*  Buffered I/O                                                              */
/******************************************************************************/

/* gevent's FileObject / socket.makefile: a read buffer and a write
   buffer over a green fd (green_read/green_write) or over a caller's
   read/write pair (a TLS connection, ...).  The callbacks have read(2)'s
   shape: bytes moved, 0 at end of input (read), or -1 with errno; a
   blocking one should wait cooperatively.  Their errors reach the
   caller unchanged (ECANCELED, ETIMEDOUT, EBADF, EDEADLK, ...).  An
   instance is used by one greenlet at a time (it has no lock); reads
   and writes use separate buffers, so one greenlet may read while
   another writes.

   Nothing is lost or duplicated when a call fails: a read that fails
   (a kill, a timeout) leaves every byte it had taken in the buffer for
   the next read, and a write reports exactly how much of the caller's
   data it accepted.  Errors of every function: EINVAL (a NULL buffer or
   instance where one is needed), EBADF (a read on an instance without a
   read function, a write without a write function), ENOMEM, and the
   callbacks' errors. */
typedef struct green_bufio green_bufio_t;
typedef ssize_t (*green_bufio_read_fn)(void *ctx, void *buf, size_t n);
typedef ssize_t (*green_bufio_write_fn)(void *ctx, const void *buf,
                                        size_t n);

/* Buffered I/O on fd (not owned: green_bufio_free does not close it);
   bufsize is the size of each buffer, 0 for the default (8 KiB).
   Errors: EBADF (fd < 0), ENOMEM. */
GREEN_EXPORT green_bufio_t *green_bufio_new(int fd, size_t bufsize);
/* Buffered I/O through rd(ctx, ...) and wr(ctx, ...); one of them may
   be NULL (a read-only or write-only instance).  Errors: EINVAL (both
   NULL), ENOMEM. */
GREEN_EXPORT green_bufio_t *green_bufio_new_ops(void *ctx,
                                                green_bufio_read_fn rd,
                                                green_bufio_write_fn wr,
                                                size_t bufsize);

/* Read one line: bytes up to and including the first delim (0..255),
   at most max - 1 of them, into buf, NUL-terminated.  Returns the number
   of bytes stored (without the NUL): a whole line ending in delim; or
   max - 1 bytes without delim when the line is longer (the rest stays
   buffered for the next call); or, at end of input, the last bytes
   without delim (Python's readline); 0 at end of input with nothing
   left.  The read buffer grows to hold up to max - 1 bytes of one
   line.  Errors: EINVAL (buf NULL, max < 2, delim outside 0..255), and
   the read's errors; on error nothing was consumed. */
GREEN_EXPORT ssize_t green_bufio_readline(green_bufio_t *b, char *buf,
                                          size_t max, int delim);
/* Read up to n bytes: the buffered ones if any, else one read of the
   underlying stream (straight into buf when n is at least the buffer
   size).  Returns the count, 0 at end of input (or for n 0).  Errors:
   EINVAL, EBADF, the read's errors. */
GREEN_EXPORT ssize_t green_bufio_read(green_bufio_t *b, void *buf,
                                      size_t n);
/* Read n bytes, as many reads as it takes (Python's read(n) on a
   buffered file): returns n, or fewer at end of input (0 if it came
   first).  On error it returns -1 and the bytes it had already read go
   back into the buffer, so retrying loses nothing (if memory for that
   runs out it returns the short count instead, errno ENOMEM).  Errors:
   as green_bufio_read. */
GREEN_EXPORT ssize_t green_bufio_read_exactly(green_bufio_t *b, void *buf,
                                              size_t n);
/* Accept n bytes: copy them into the write buffer, writing it out each
   time it fills (data of at least the buffer size is written straight
   from buf).  Returns n; when an error stops it, the number of bytes of
   buf accepted (buffered or written) if some were, else -1; errno is
   set either way.  Bytes still buffered after an error stay buffered
   (green_bufio_flush retries them).  Errors: EINVAL, EBADF, the write's
   errors (EPIPE, ECANCELED, ...). */
GREEN_EXPORT ssize_t green_bufio_write(green_bufio_t *b, const void *buf,
                                       size_t n);
/* Write out everything buffered.  Returns 0, or -1 with errno; then the
   bytes not written stay buffered.  Errors: EINVAL, EBADF, the write's
   errors. */
GREEN_EXPORT int green_bufio_flush(green_bufio_t *b);
/* Free b (NULL is a no-op).  It does not flush (call green_bufio_flush
   first: free never blocks) and does not close the fd; buffered unread
   input and unflushed output are dropped. */
GREEN_EXPORT void green_bufio_free(green_bufio_t *b);

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
   valid until fn returns.  green_shutdown waits for running jobs; exit()
   (returning from main) does not: a job still running then is abandoned
   and the process exits at once.  In a
   green_fork child a call whose job was running fails with ECANCELED.
   Errors: EINVAL (fn NULL), ECANCELED, ETIMEDOUT, EDEADLK (in the hub),
   ENOMEM, EAGAIN (no thread could be created). */
GREEN_EXPORT int green_threadpool_call(green_fn fn, void *arg, void **result);

/* The async form: queue fn(arg) and return at once with a result
   (green_result_t, see Synchronisation) that is set to fn's return value
   once fn returned, or fails with ECANCELED if the job was lost in a
   green_fork child; wait for it with green_result_get or green_wait_any.
   The caller owns the result and frees it with green_result_free, also
   before it completes: the job is abandoned then (it still runs; its
   value goes only to done).  done (may be NULL) runs exactly once, in
   this hub's thread (a callback: it must not block), when the pool no
   longer uses arg: done(arg, value, 1) after fn returned value, or
   done(arg, NULL, 0) if fn never ran (green_shutdown dropped it while
   queued, or it was lost in green_fork); free arg there.  At
   green_shutdown a job still running is waited for and its done runs,
   but its result is not set.  Callable from the hub and callbacks (it
   never waits).  Errors: EINVAL (fn NULL), ENOMEM, EAGAIN (no thread
   could be created; done is not called). */
typedef struct green_result green_result_t;
GREEN_EXPORT green_result_t *green_threadpool_async(
    green_fn fn, void *arg, void (*done)(void *arg, void *value, int ran));

/* Set the maximum number of worker threads of this thread's pool
   (default 10, like gevent's; 1 to 1024, else EINVAL).  Extra idle
   workers exit when it shrinks. */
GREEN_EXPORT int green_threadpool_set_size(size_t n);

/******************************************************************************/
/*  Regular files                                                             */
/******************************************************************************/

/* Regular files and block devices are always "ready" (poll says so, read
   never says EAGAIN), so their I/O would block the whole hub on a cold
   disk.  The calls below, and green_read, green_readv, green_write,
   green_writev and green_write_all on such an fd (at its file position,
   honouring O_APPEND), move the transfer off the hub while the caller
   waits cooperatively (gevent's FileObjectThread):
   - data already in the page cache is read at once (preadv2 with
     RWF_NOWAIT), in any context;
   - in the hub, a libev callback or a link callback the call is the
     plain blocking syscall (nothing may wait there: like gevent's
     threadpool called from the hub);
   - otherwise io_uring (one ring per hub, made on first use) or, where
     io_uring cannot be had (built without liburing, a kernel or seccomp
     policy that refuses it, under Valgrind), the threadpool.  The
     environment variable GREEN_FILE_BACKEND=io_uring|threadpool, read
     when a hub first does file I/O, forces one (io_uring still falls
     back to the threadpool if it cannot be set up).
   A killed caller gets ECANCELED, one whose green_timeout expired
   ETIMEDOUT (or the count already transferred, see below); the transfer
   may then have happened, wholly or in part, and the file position of
   a green_read/green_write is unspecified.  The caller's buffer is never
   written or read after the call returned: io_uring requests are
   cancelled and waited for (briefly, without interruption), the
   threadpool transfers through a private buffer (in chunks of 1 MiB,
   each a separate read or write).  Reads are full (short only at the
   end of the file).  Concurrent reads at the file position from several
   greenlets may overlap.  green_close of the fd during a call does not
   end it.  Errors: the syscall's (EBADF for an invalid or closed fd,
   EISDIR for a directory, EINVAL, ESPIPE, EFAULT for a NULL buffer,
   EIO, ENOSPC, ...), ECANCELED, ETIMEDOUT, ENOMEM, EAGAIN (no worker
   thread could be created).  pread/pwrite: a negative offset or n above
   SSIZE_MAX is EINVAL. */
GREEN_EXPORT ssize_t green_pread(int fd, void *buf, size_t n, off_t off);
GREEN_EXPORT ssize_t green_pwrite(int fd, const void *buf, size_t n,
                                  off_t off);
/* fsync(2) and fdatasync(2) off the hub, as above: 0 or -1 with errno. */
GREEN_EXPORT int green_fsync(int fd);
GREEN_EXPORT int green_fdatasync(int fd);
/* open(2) off the hub (a cold directory, a FIFO waiting for its other
   end), as above: the fd or -1 with open's errno (EFAULT: NULL path),
   ECANCELED or ETIMEDOUT (an fd opened meanwhile is closed).  mode is
   used with O_CREAT or O_TMPFILE. */
GREEN_EXPORT int green_open(const char *path, int flags, mode_t mode);
/* "io_uring" or "threadpool": the backend this thread's hub uses for
   the calls above (making its ring if needed), or NULL/ENOMEM. */
GREEN_EXPORT const char *green_file_backend(void);

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
   succeeds only if a getter is already waiting).  Unlike gevent, a put
   to a getter already waiting returns at once without yielding: the
   getter runs at its turn, after the putter's next blocking call or
   yield (gevent switches to the getter first). */
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
/* LIFO (gevent.queue.LifoQueue) and priority (PriorityQueue) queues:
   the contract above, except for which queued item a get takes: the
   newest, or the smallest by cmp (cmp(a, b) < 0: a first; equal items
   come out in put order).  cmp gets the item pointers and must not
   call libgreen.  An item handed straight to a waiting getter never
   enters the order (the queue was empty).  Errors: EINVAL (cmp NULL),
   ENOMEM. */
GREEN_EXPORT green_queue_t *green_queue_new_lifo(size_t capacity);
GREEN_EXPORT green_queue_t *green_queue_new_priority(
    size_t capacity, int (*cmp)(const void *a, const void *b));
/* The item the next get would take, without taking it, waiting for one
   as get does (a channel: the oldest waiting putter's item).  A peeker
   never takes an item from a getter.  Errors: as green_queue_get
   (EPIPE: closed and empty). */
GREEN_EXPORT int green_queue_peek(green_queue_t *q, void **item,
                                  double timeout);
/* 1 if nothing is queued (also NULL) / if a put would wait for room (a
   channel always; 0 for NULL); the count of unfinished tasks (items
   accepted and not yet green_queue_task_done; 0 for NULL). */
GREEN_EXPORT int green_queue_empty(const green_queue_t *q);
GREEN_EXPORT int green_queue_full(const green_queue_t *q);
GREEN_EXPORT size_t green_queue_unfinished(const green_queue_t *q);

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
/* Slots free now: size - running - slots promised to waiting spawners
   (SIZE_MAX for a group, 0 for NULL). */
GREEN_EXPORT size_t green_pool_free_count(const green_pool_t *p);
/* Wait until green_pool_free_count is > 0, without taking the slot (a
   parked green_pool_spawn still gets a freed slot first).  Errors:
   EINVAL, EXDEV, ETIMEDOUT, ECANCELED, EAGAIN (timeout 0 and full),
   EDEADLK, EBADF (freed meanwhile; or already, from an iterator's
   feeder). */
GREEN_EXPORT int green_pool_wait_available(green_pool_t *p, double timeout);
/* Add an existing greenlet (started or not, even done) to the pool or
   group, waiting for a slot like green_pool_spawn (a member already:
   no-op).  The pool keeps its own reference until g is done; g counts
   in running and join/kill apply to it.  Errors: EINVAL, EXDEV, ENOMEM,
   and while waiting ECANCELED, ETIMEDOUT (a green_timeout), EDEADLK,
   EBADF. */
GREEN_EXPORT int green_pool_add(green_pool_t *p, green_t *g);
/* Run fn(arg) in the pool and wait for it (gevent's Pool.apply): 0 and
   *result (result may be NULL), or -1 with errno = the worker's error
   (green_fail, or ECANCELED if killed).  Called from a member of p, fn
   runs inline in the caller (no slot is needed: it cannot deadlock).
   If the caller's own wait fails (ECANCELED, ETIMEDOUT from a
   green_timeout, EDEADLK) the worker keeps running; green_killed()
   tells a killed caller from a killed worker.  Errors also: EINVAL,
   EXDEV, ENOMEM, EBADF. */
GREEN_EXPORT int green_pool_apply(green_pool_t *p, green_fn fn, void *arg,
                                  void **result);
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
/* The lazy form: the feeder calls source(ctx, &arg) for each next
   argument, only when a worker can start (so the input may be endless):
   it returns > 0 with *arg set, or <= 0 when the input is exhausted.
   source runs in the feeder greenlet and may block (it is killed by
   green_imap_stop and green_imap_free).  maxsize > 0 is backpressure:
   the feeder takes an argument only while fewer than size + maxsize
   results are fed and not consumed (size: the pool's; 0 for a group),
   so at most maxsize finished results wait for the reader; 0 is
   unbounded (an endless source then needs a pool with a size, and
   still runs ahead of a slow reader).  flags: 0 (input order) or
   GREEN_IMAP_UNORDERED (completion order).  Memory stays bounded by the
   pool size plus maxsize.  Errors: EINVAL (NULL p, fn or source, unknown
   flags), EXDEV, EBADF (pool freed), ENOMEM. */
#define GREEN_IMAP_UNORDERED 0x1
GREEN_EXPORT green_imap_t *green_pool_imap_source(
    green_pool_t *p, green_fn fn, int (*source)(void *ctx, void **arg),
    void *ctx, size_t maxsize, int flags);
/* Next result, telling a failed worker from the caller's own failure:
   0 with *result (NULL if the worker failed), *index (its input index)
   and *worker_err (0, the worker's green_fail code, ECANCELED if it was
   killed, or a spawn error such as ENOMEM; any pointer may be NULL).
   -1 only for the call itself: ENOENT (exhausted), EINVAL, EXDEV,
   ECANCELED, ETIMEDOUT, EDEADLK (the caller's wait; nothing consumed),
   EBADF (freed meanwhile). */
GREEN_EXPORT int green_imap_next_ex(green_imap_t *it, void **result,
                                    size_t *index, int *worker_err);
/* Stop feeding: no further argument is taken (the source is not called
   again; a feeder waiting for a slot or room gives up) and no worker
   starts, but running workers finish and their results are still
   returned; then next gives ENOENT.  Idempotent.  Errors: EINVAL,
   EXDEV. */
GREEN_EXPORT int green_imap_stop(green_imap_t *it);
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
/*  Waiting on several things (gevent.wait, gevent.iwait)                     */
/******************************************************************************/

/* What an entry of green_wait_any waits for.  "Ready" means the call
   named would complete without waiting; waiting never takes anything:
   an item or a unit stays for the call that takes it. */
enum green_wait_kind {
    GREEN_WAIT_NONE = 0,   /* skipped (a hole in the array) */
    GREEN_WAIT_GREENLET,   /* obj: green_t *, done */
    GREEN_WAIT_EVENT,      /* obj: green_event_t *, set */
    GREEN_WAIT_RESULT,     /* obj: green_result_t *, completed */
    GREEN_WAIT_QUEUE_GET,  /* obj: green_queue_t *, green_queue_get ready
                              (an item, a channel putter, or closed) */
    GREEN_WAIT_QUEUE_PUT,  /* obj: green_queue_t *, green_queue_put ready
                              (room, a waiting getter, or closed) */
    GREEN_WAIT_SEM,        /* obj: green_sem_t *, a unit available */
    GREEN_WAIT_READ,       /* fd: readable (or hung up, error, not open) */
    GREEN_WAIT_WRITE       /* fd: writable (or error, not open) */
};

typedef struct green_waitable {
    int kind;              /* enum green_wait_kind */
    void *obj;             /* the object, for the object kinds */
    int fd;                /* the fd, for GREEN_WAIT_READ / _WRITE */
} green_waitable_t;

/* Wait until `count` of the n entries are ready (count 0, or more than
   the entries that are not GREEN_WAIT_NONE: all of them), or the timeout
   passes.  Writes the indexes of the ready entries to ready[] (room for
   n) in the order they became ready (entries found ready by one check
   are listed in array order) and returns how many: fewer than count
   means the timeout passed (0 included; timeout 0 only checks, even in
   the hub).  Greenlets, events and results count once they were seen
   ready (an event cleared meanwhile still counts, as green_event_wait
   would return 0); a queue, semaphore or fd is checked again before it
   is reported, so it is not reported if another greenlet took the item,
   unit or data first.  Errors: EINVAL (NULL arrays with n > 0, unknown
   kind, NULL obj, fd < 0, NaN), EXDEV (an object of another thread),
   ENOMEM, EBADF (an object was freed, or an fd green_close()d, while
   waited on: nothing else is reported), ETIMEDOUT (an enclosing
   green_timeout), ECANCELED, EDEADLK. */
GREEN_EXPORT int green_wait_any(const green_waitable_t *objs, size_t n,
                                size_t count, double timeout,
                                size_t *ready);

/* The iterator form (gevent.iwait): the array is copied; each
   green_iwait_next returns 0 and the index of the next entry to become
   ready, each entry once.  The timeout covers the whole iteration.
   Objects must outlive the iterator.  Errors: as green_wait_any, and for
   next ENOENT (every entry was returned), ETIMEDOUT (the timeout passed;
   EAGAIN for timeout 0), EINVAL (NULL index). */
typedef struct green_iwait green_iwait_t;
GREEN_EXPORT green_iwait_t *green_iwait_new(const green_waitable_t *objs,
                                            size_t n, double timeout);
GREEN_EXPORT int green_iwait_next(green_iwait_t *it, size_t *index);
GREEN_EXPORT void green_iwait_free(green_iwait_t *it);

/* green_joinall's "first k done" form: wait until at least count of the
   n greenlets are done (NULL entries are skipped and do not count;
   count 0 or more than the non-NULL ones: all).  Returns how many are
   done (>= count).  Errors as green_join (ETIMEDOUT: fewer than count
   done in time), plus EINVAL (NULL gs with n > 0). */
GREEN_EXPORT int green_joinall_count(green_t *const *gs, size_t n,
                                     size_t count, double timeout);

/* green_run with a timeout: 0 once no greenlet is alive and no watcher
   is active, -1/ETIMEDOUT if the timeout passed first (greenlets keep
   their state: call again to go on).  Timeout 0: 0 if nothing is
   alive, else EAGAIN.  Errors as green_run, plus EINVAL (NaN),
   ETIMEDOUT, ECANCELED. */
GREEN_EXPORT int green_run_timeout(double timeout);

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

/* Wait until signum arrives; every greenlet waiting for it wakes.  A
   signal arriving while nobody waits is not remembered: outside waits the
   process's own disposition applies (libgreen's handler is swapped in
   for the first waiter and the previous disposition, SIG_IGN and user
   handlers included, swapped back after the last one, each in one
   sigaction call, so no other disposition ever shows in between, in any
   thread).  One hub at a time may wait for a given signal: a signal held
   by another thread's hub is EBUSY (and SIGCHLD is EBUSY while an
   application created libev's default loop, which owns it, and the hub
   runs another loop).  Errors: EINVAL (signum invalid, SIGKILL, SIGSTOP,
   SIGSEGV, SIGBUS, SIGFPE, SIGILL; NaN), EBUSY, EAGAIN (timeout 0),
   ETIMEDOUT, ECANCELED, EDEADLK. */
GREEN_EXPORT int green_signal_wait(int signum, double timeout);
/* Signals you don't lose: watch a set (gevent's signal handling without
   a lost signal).  From green_signal_watch until green_signal_unwatch,
   every delivery of a signal of set is counted per signal in the watch
   (none takes the process's disposition, the default action included),
   so a signal arriving between two waits is kept.  Deliveries before
   the hub polls again may merge into one, as the kernel merges standard
   signals.  green_signal_next takes one and returns its number, oldest
   first (waiting, timeout 0: EAGAIN); green_signal_pending counts the
   untaken ones of signum.  The ownership rules of green_signal_wait
   apply (one loop per signal: EBUSY).  unwatch (from the owner thread)
   wakes waiting greenlets with EBADF, stops counting and restores the
   dispositions; after green_shutdown it only frees.  Errors: EINVAL
   (set NULL or empty, a signal green_signal_wait refuses; next on a
   handler or NaN), EXDEV, EBUSY, ENOMEM, and for next ETIMEDOUT,
   ECANCELED, EAGAIN, EDEADLK, EBADF. */
typedef struct green_sigwatch green_sigwatch_t;
GREEN_EXPORT green_sigwatch_t *green_signal_watch(const sigset_t *set);
GREEN_EXPORT int green_signal_next(green_sigwatch_t *w, double timeout);
GREEN_EXPORT unsigned green_signal_pending(const green_sigwatch_t *w,
                                           int signum);
GREEN_EXPORT void green_signal_unwatch(green_sigwatch_t *w);
/* The persistent handler form (gevent.signal_handler): every delivery of
   signum spawns a greenlet running fn(arg) in this hub, until
   green_signal_unwatch.  Errors: EINVAL (fn NULL, signum refused), EBUSY,
   ENOMEM. */
GREEN_EXPORT green_sigwatch_t *green_signal_handler(int signum, green_fn fn,
                                                    void *arg);
/* waitpid(2), waiting cooperatively: pid > 0 or -1 (process groups: 0 and
   < -1 are EINVAL); options WNOHANG, WUNTRACED, WCONTINUED (WNOHANG never
   waits, so it also works in the hub).  libgreen reaps only the children
   it is asked for, on any hub: a plain waitpid(), system() or pclose()
   elsewhere keeps working.  A child that a green_waitpid(pid > 0) is
   waiting for goes to that call: a pid -1 call (any thread) leaves it
   alone, even if it polls first, and meanwhile may report 0 (WNOHANG)
   or go on waiting although that child (or one after it) has exited,
   until its waiter reaps it.  For pid > 0 without WUNTRACED/WCONTINUED the
   wait is on the child's pidfd (Linux 5.3); otherwise, or without
   pidfds, waitpid(WNOHANG) is polled 1 ms to 50 ms apart.  A hub
   attached to libev's default loop (green_hub_attach) is the exception:
   that loop's own SIGCHLD watcher reaps every child, so green_waitpid
   may fail there with ECHILD.
   Errors: as waitpid (ECHILD), EINVAL, ECANCELED, ETIMEDOUT, EDEADLK,
   ENOMEM (pid > 0 without WNOHANG: no memory to claim the child). */
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
/* What this thread's hub holds (libuv's "clean loop" check: a program or
   test can assert that nothing was left behind). */
typedef struct green_hub_stats {
    size_t alive;     /* greenlets started and not done (main excluded) */
    size_t waiting;   /* of those, parked in a blocking call */
    size_t watchers;  /* libgreen's libev watchers active for a caller:
                         fd watchers, the deadline timer, threadpool jobs
                         in flight (idle internals are not counted) */
    uint64_t switches;/* context switches so far */
} green_hub_stats_t;
/* Fill *st for the calling thread's hub; never creates one.  Errors:
   EINVAL (st NULL), ESRCH (this thread has no hub). */
GREEN_EXPORT int green_hub_stats(green_hub_stats_t *st);
/* Free this thread's hub (and every greenlet it still holds), from
   outside every greenlet (the thread's own stack; embedded: a callback of
   the application's loop).  From a greenlet, or a link callback of a
   standalone hub, it does nothing.  From a link callback of an embedded
   hub it takes effect once the callbacks of that loop iteration return. */
GREEN_EXPORT void green_shutdown(void);

/******************************************************************************/
/*  Subprocesses                                                              */
/******************************************************************************/

/* gevent.subprocess: a child process started with posix_spawnp(3) whose
   stdin, stdout and stderr may be pipes that greenlets read and write
   cooperatively.  Its exit is watched like green_waitpid's (a pidfd,
   else polling), on any thread's hub, and only this child is ever
   reaped: a plain waitpid() of the program's other children keeps
   working.  Do not reap it yourself (waitpid(-1), or green_waitpid(-1)
   while no green_proc_wait or green_proc_communicate is waiting for it):
   green_proc_wait then fails with ECHILD.  A green_proc_t is not tied
   to a hub; use it from one greenlet at a time (communicate: EBUSY
   otherwise). */
typedef struct green_proc green_proc_t;

/* What the child's stdin, stdout and stderr are. */
#define GREEN_PROC_INHERIT 0 /* the parent's (the default) */
#define GREEN_PROC_PIPE 1    /* a pipe to the parent */
#define GREEN_PROC_DEVNULL 2 /* /dev/null */
#define GREEN_PROC_STDOUT 3  /* stderr only: the same as stdout */

/* Spawn attributes (all zero: inherit everything).  cwd NULL: the
   parent's; envp NULL: the parent's environ. */
typedef struct green_proc_attr {
    int stdin_mode, stdout_mode, stderr_mode; /* GREEN_PROC_* */
    const char *cwd;
    char *const *envp;
} green_proc_attr_t;

/* Start file with argv (argv[0] by convention the name, NULL-terminated)
   through posix_spawnp: a file without '/' is looked up in PATH.  attr
   may be NULL.  The parent's pipe ends are non-blocking and
   close-on-exec (green_proc_stdin_fd ...); the child gets only its
   stdin, stdout and stderr and the fds the program left inheritable,
   never libgreen's own (every fd libgreen makes is close-on-exec).  The
   child starts with an empty signal mask and SIGPIPE at its default
   action (a parent's SIG_IGN is not inherited).  The caller owns the
   result: free it with green_proc_free.  Never blocks.  Errors: EINVAL
   (file or argv NULL, a mode out of range, GREEN_PROC_STDOUT for stdin
   or stdout), the spawn's own errno (ENOENT or EACCES for a program
   that cannot be run, E2BIG, ENOEXEC, ENOENT/ENOTDIR for a bad cwd, ...:
   reported here, not by the child's exit status), ENOMEM, EMFILE,
   ENFILE, EAGAIN (no process could be created). */
GREEN_EXPORT green_proc_t *green_proc_spawn(const char *file,
                                            char *const argv[],
                                            const green_proc_attr_t *attr);

/* The child's pid (still valid after it is reaped), or -1/EINVAL. */
GREEN_EXPORT pid_t green_proc_pid(const green_proc_t *p);

/* The parent's end of the child's stdin (write), stdout or stderr
   (read) pipe, for green_write/green_read/green_bufio_new; -1 when that
   stream is not a pipe (or p is NULL), or once green_proc_communicate
   closed it.  The fd belongs to p: do not close it yourself (use
   green_proc_close_stdin). */
GREEN_EXPORT int green_proc_stdin_fd(const green_proc_t *p);
GREEN_EXPORT int green_proc_stdout_fd(const green_proc_t *p);
GREEN_EXPORT int green_proc_stderr_fd(const green_proc_t *p);

/* Close the parent's end of the stdin pipe (Python's p.stdin.close()):
   the child reads end of input once it has read what was written.
   Greenlets waiting on the fd wake with EBADF.  Errors: EINVAL (p NULL),
   EBADF (stdin is not a pipe, or is closed already). */
GREEN_EXPORT int green_proc_close_stdin(green_proc_t *p);

/* Python's Popen.communicate: write inlen bytes of input to stdin and
   close it, read stdout and stderr until both end, concurrently (a
   child that fills one pipe while we still write the other cannot
   deadlock), then wait for the child to exit.  On success *out / *err
   get what the child wrote, malloc'd and NUL-terminated (free them),
   with the lengths in *outlen / *errlen (NULL lengths are allowed).  A
   stream that is not a pipe gives NULL and 0; out or err NULL discards
   that stream (it is still read).  timeout covers the whole call.
   When it fails with ETIMEDOUT, ECANCELED (a kill), EAGAIN (timeout 0
   and not done) or ENOMEM, the child keeps running and nothing is lost:
   it stores NULL in *out and *err, the output read so far stays in p and
   the input written so far is counted, so a later call (pass the same
   input) continues where this one stopped and returns all the output
   since the start; green_proc_kill and green_proc_wait work meanwhile.
   A child that closes its stdin early is not an error (the rest of the
   input is dropped).  After a successful call the pipes are closed (a
   second call returns empty output at once).  Errors: EINVAL (p NULL,
   input NULL with inlen > 0, inlen > 0 while stdin is not a pipe, NaN),
   EBUSY (another greenlet is in communicate on p), ETIMEDOUT,
   ECANCELED, EAGAIN, EDEADLK (in the hub or a callback), ENOMEM, ECHILD
   (the program reaped the child itself), and the I/O errors of
   green_read/green_write (EBADF: a pipe was closed behind p). */
GREEN_EXPORT int green_proc_communicate(green_proc_t *p, const void *input,
                                        size_t inlen, char **out,
                                        size_t *outlen, char **err,
                                        size_t *errlen, double timeout);

/* Wait up to timeout for the child to exit and reap it (through
   green_waitpid); *status (may be NULL) gets its waitpid(2) status:
   WIFEXITED/WEXITSTATUS, WIFSIGNALED/WTERMSIG.  Once reaped it returns
   0 and the same status at once, every time, from any context.  A
   timeout or a kill leaves the child running.  Errors: EINVAL (p NULL,
   NaN), ETIMEDOUT, ECANCELED, EAGAIN (timeout 0, still running),
   EDEADLK, ECHILD (the program reaped the child itself). */
GREEN_EXPORT int green_proc_wait(green_proc_t *p, int *status,
                                 double timeout);

/* Send sig to the child (0: only check that it exists).  Through its
   pidfd when the kernel has them, so a pid recycled after the child
   was reaped is never signalled.  Never blocks; reap it afterwards with
   green_proc_wait.  Errors: EINVAL (p NULL, an invalid signal), ESRCH
   (the child was reaped already), EPERM. */
GREEN_EXPORT int green_proc_kill(green_proc_t *p, int sig);

/* The child's waitpid(2) status once green_proc_wait or
   green_proc_communicate reaped it (Python's returncode); -1 with
   errno EAGAIN before that (nothing is waited for), EINVAL for NULL. */
GREEN_EXPORT int green_proc_status(const green_proc_t *p);

/* Close p's pipe ends and free it (NULL is a no-op).  A child not yet
   reaped is not killed: it keeps running with closed pipes (reads see
   EOF, writes EPIPE/SIGPIPE), and the calling thread's hub reaps it in
   the background when it exits, so no zombie is left behind, unless
   that hub shuts down first (the child is then left to the process).
   Never blocks. */
GREEN_EXPORT void green_proc_free(green_proc_t *p);

/******************************************************************************/
/*  TLS (libgreen-tls)                                                        */
/******************************************************************************/

/* These live in libgreen-tls, not libgreen: link with -lgreen-tls
   (pkg-config libgreen-tls); it is built when configure finds OpenSSL.
   TLS client and server connections over a connected stream socket,
   without patching: the fd is read and written with green_recv and
   green_send with MSG_DONTWAIT (its O_NONBLOCK flag is left as it is),
   and whenever OpenSSL must wait for it the call waits as green_read
   does, with the blocking errors above (ECANCELED when killed,
   ETIMEDOUT from an enclosing green_timeout, EDEADLK in the hub or a
   callback, EBADF when the fd is closed).  Failures also leave a
   message for green_tls_error.  A TLS failure is EPROTO (a certificate
   that does not verify, a host name that does not match it, no common
   ALPN protocol or TLS version, a peer's alert, garbage on the wire);
   the peer closing the connection without a TLS close_notify is
   ECONNRESET (a truncation, unlike a clean close, which a read reports
   as 0).  After such a failure every later call on the connection fails
   with the same errno.  green.h exposes no OpenSSL type: contexts and
   connections are opaque. */
typedef struct green_tls_ctx green_tls_ctx_t;
typedef struct green_tls green_tls_t;

/* A client context: TLS 1.2 or later, server certificates verified
   against the system's trusted CAs (OpenSSL's default paths) and
   checked against the host name given to green_tls_connect.  A context
   may be shared by any number of connections and threads.  Errors:
   ENOMEM. */
GREEN_EXPORT green_tls_ctx_t *green_tls_client_ctx(void);
/* A server context presenting the certificate chain in cert_file (PEM,
   the server's certificate first) with the private key in key_file
   (PEM).  Client certificates are not asked for (green_tls_ctx_set_verify
   turns that on).  Errors: EINVAL (NULL, not PEM, or the key does not
   match the certificate; green_tls_error(NULL) says which), ENOENT,
   EACCES (a file cannot be read), ENOMEM. */
GREEN_EXPORT green_tls_ctx_t *green_tls_server_ctx(const char *cert_file,
                                                   const char *key_file);
/* Present the certificate chain in cert_file (PEM, the own certificate
   first) with the private key in key_file (PEM): a server's (replacing
   the one given to green_tls_server_ctx), or a client's, for servers
   that ask for one (green_tls_ctx_set_verify on a server context).
   Applies to later handshakes.  Errors: as green_tls_server_ctx. */
GREEN_EXPORT int green_tls_ctx_use_cert(green_tls_ctx_t *ctx,
                                        const char *cert_file,
                                        const char *key_file);
/* Trust the CA certificates in ca_file (PEM) too: for a client, to
   verify servers; for a server, to verify client certificates.
   Errors: EINVAL (NULL, no certificate in the file), ENOENT, EACCES. */
GREEN_EXPORT int green_tls_ctx_load_ca(green_tls_ctx_t *ctx,
                                       const char *ca_file);
/* Turn peer verification on (on != 0) or off.  Client: on by default;
   off accepts any server certificate (and green_tls_connect's hostname
   may then be NULL).  Server: off by default; on requires a client
   certificate (green_tls_ctx_use_cert) signed by a CA of
   green_tls_ctx_load_ca.  Applies to
   later handshakes.  Errors: EINVAL (NULL). */
GREEN_EXPORT int green_tls_ctx_set_verify(green_tls_ctx_t *ctx, int on);
/* ALPN: the n protocol names in protos ("h2", "http/1.1"; each 1 to 255
   bytes), in order of preference.  Client: the list offered.  Server:
   the list it selects from, its own order first; a client that offers
   protocols but none of these fails the handshake (EPROTO, the
   no_application_protocol alert).  n 0 clears the list.  Applies to
   later handshakes.  Errors: EINVAL (NULL ctx, NULL protos with n > 0,
   an empty or too long name), ENOMEM. */
GREEN_EXPORT int green_tls_ctx_set_alpn(green_tls_ctx_t *ctx,
                                        const char *const *protos, size_t n);
/* Drop the caller's reference to ctx: it is freed once no connection
   made with it remains.  A server made by green_tls_server_new with ctx
   must be freed before ctx.  NULL is a no-op. */
GREEN_EXPORT void green_tls_ctx_free(green_tls_ctx_t *ctx);

/* Handshake as the client on fd (a connected stream socket).  hostname
   is sent as SNI (unless it is an IP address) and, when verification is
   on, must match the server's certificate (DNS name or IP address);
   it may be NULL only if verification is off.  The timeout covers the
   whole handshake (< 0: none; 0: fails with EAGAIN as soon as it would
   wait).  Returns the connection, or NULL with errno: EINVAL (NULL ctx,
   a server ctx, NULL hostname with verification on, NaN), EBADF,
   ENOTSOCK, EPROTO (verification failed: green_tls_error names why),
   ECONNRESET (the server closed the connection), the socket's errors,
   ETIMEDOUT, EAGAIN, ECANCELED, EDEADLK, ENOMEM. */
GREEN_EXPORT green_tls_t *green_tls_connect(green_tls_ctx_t *ctx, int fd,
                                            const char *hostname,
                                            double timeout);
/* Handshake as the server on fd (an accepted stream socket), with ctx
   from green_tls_server_ctx.  Timeout and errors as green_tls_connect
   (EINVAL: NULL or a client ctx). */
GREEN_EXPORT green_tls_t *green_tls_accept(green_tls_ctx_t *ctx, int fd,
                                           double timeout);
/* Read up to n bytes of application data (waits until at least one
   arrives).  Returns the count, 0 for n 0 or once the peer sent
   close_notify (a clean end), or -1 with errno: ECONNRESET (the
   connection ended without close_notify: a possible truncation),
   EPROTO, EINVAL (NULL t, NULL buf with n > 0), the socket's errors and
   the blocking errors (ETIMEDOUT, ECANCELED, EDEADLK, EBADF). */
GREEN_EXPORT ssize_t green_tls_read(green_tls_t *t, void *buf, size_t n);
/* Write up to n bytes: returns once some are sent (at most one TLS
   record's worth, 16 KiB, may remain a short write) or -1 with errno:
   EPIPE, ECONNRESET (the peer is gone), EPROTO, EINVAL, and the blocking
   errors.  After ETIMEDOUT or ECANCELED the same bytes must be written
   again before anything else (or the connection dropped). */
GREEN_EXPORT ssize_t green_tls_write(green_tls_t *t, const void *buf,
                                     size_t n);
/* Write all n bytes (loops over short writes); returns n or -1 with
   errno as green_tls_write (some bytes may have been sent). */
GREEN_EXPORT ssize_t green_tls_write_all(green_tls_t *t, const void *buf,
                                         size_t n);
/* Close the TLS session: send close_notify, then read (and discard
   application data) until the peer's close_notify arrives, within
   timeout (< 0: none).  Timeout 0 sends close_notify and returns
   without waiting: 0 if the peer's had already arrived, else -1/EAGAIN.
   The fd stays open, but the connection reads ahead: bytes the peer
   sent after its close_notify may have been taken from it already.
   Returns 0 or -1 with errno: ECONNRESET (the peer closed the
   connection without close_notify), EPIPE, EPROTO, EINVAL (NULL, NaN),
   ETIMEDOUT, ECANCELED, EDEADLK. */
GREEN_EXPORT int green_tls_shutdown(green_tls_t *t, double timeout);
/* The ALPN protocol the handshake agreed on, or NULL (none, NULL t).
   Valid until green_tls_free. */
GREEN_EXPORT const char *green_tls_alpn(const green_tls_t *t);
/* Server side: the host name the client asked for (SNI), or NULL.
   Client side: the name sent.  Valid until green_tls_free. */
GREEN_EXPORT const char *green_tls_sni(const green_tls_t *t);
/* The connection's fd, or -1/EINVAL for NULL. */
GREEN_EXPORT int green_tls_fd(const green_tls_t *t);
/* Why the last call on t failed ("certificate verify failed: hostname
   mismatch", an OpenSSL error string, strerror's text); with t NULL,
   the last failure of any green_tls call in this greenlet (a connect or
   accept that returned NULL, a context function).  Never NULL ("" if
   nothing failed); valid until the next failing call. */
GREEN_EXPORT const char *green_tls_error(const green_tls_t *t);
/* Free t without sending anything: the fd is NOT closed (call
   green_tls_shutdown first for a clean close, and close the fd after).
   NULL is a no-op. */
GREEN_EXPORT void green_tls_free(green_tls_t *t);

/* green_server_new serving TLS (gevent's StreamServer with an SSL
   context): each connection's greenlet handshakes with ctx (a server
   context; at most 10 s), runs handler(t, arg), then sends close_notify
   without waiting for the peer's, frees t, and the server closes the
   fd.  A failed handshake ends the connection without calling handler.
   The result is an ordinary green_server_t: start, serve, stop and free
   it with the green_server_* functions.  ctx must outlive the server
   (the small record tying them together, one per handler and arg, is
   freed with ctx).  Errors: as green_server_new, and EINVAL for a NULL
   or client ctx. */
GREEN_EXPORT green_server_t *green_tls_server_new(
    const char *address, green_tls_ctx_t *ctx,
    void (*handler)(green_tls_t *t, void *arg), void *arg);

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

/* Write one line per greenlet of the calling thread's hub to out (NULL:
   stderr): main (unless the hub is embedded), then every greenlet not
   yet done, under a header line.  Columns: id, name, state (new, later,
   runnable, running, waiting, done), what it waits on ("sleeping",
   "joining", "waiting for an event", "waiting to read on fd 5", ...; "-"
   when not waiting), how long it has waited ("0.250s"), its stack size
   and the bytes in use at its last switch ("-" for main and the hub, which
   run on the thread's stack).  gdb's `info greenlets` (see libgreen(7))
   shows the same columns for every thread.  Without a hub in this
   thread it writes one line saying so.  Never switches; safe from a
   libev or link callback. */
GREEN_EXPORT void green_dump(FILE *out);

/* Write green_dump(stderr) of the calling thread's hub each time signum
   arrives, for a running server (kill -USR2 PID); signum 0 stops it.
   The environment variable GREEN_DUMP_SIGNAL=SIGUSR2 (or USR2, or a
   number) does the same when a hub is created.  The signal handler only
   writes a byte to a pipe; the dump runs in the hub between greenlets,
   so a greenlet that blocks the hub delays it.  One hub per process at
   a time, with one signal: calling it again from the same hub switches
   signals.  While it is on, the signal's previous disposition is saved,
   and restored by signum 0 or green_shutdown; do not green_signal_wait
   the same signal meanwhile.  Returns 0 or -1 with errno: EINVAL (an
   invalid signal, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, or
   SIGURG, which the monitor uses), EBUSY (another thread's hub dumps on
   a signal), ENOMEM, EMFILE/ENFILE (the pipe, made once). */
GREEN_EXPORT int green_dump_on_signal(int signum);

/* Start the blocked-loop monitor of the calling thread's hub (the
   environment variable GREEN_MONITOR=seconds does the same when the hub
   is created).  A monitor thread samples the hub every seconds/20; when
   the hub neither switched nor polled for longer than `seconds`, one
   greenlet is running without yielding: a blocking episode.  Each
   episode is reported twice: once when it crosses the threshold
   ("ongoing", with the backtrace of the blocking code and the time so
   far) and once when it ends, with its real duration (to within
   seconds/20).  The report names the greenlet (id and name).  By default
   both go to stderr; green_monitor_set_callback replaces that.

   The backtrace is taken on the hub thread itself: the monitor sends it
   SIGURG, whose handler runs backtrace(3) on the thread's alternate
   signal stack.  Caveats: the handler is installed only if SIGURG has
   the default or ignore disposition (else no backtrace); once installed
   it stays; a blocking syscall in the hub thread (nanosleep, poll, ...)
   may return early with EINTR, as with any signal; green_signal_wait
   (SIGURG) while a monitor runs sees its requests; function names need
   symbols in the dynamic table (link with -rdynamic) or an external
   symbolizer (addr2line, gdb) on the addresses.

   Calling it again restarts the monitor with the new threshold.  Returns
   0, or -1 with errno: EINVAL (seconds NaN, <= 0, infinite or above 1e6
   s: such a threshold is never a blocked loop), ENOMEM, EAGAIN (no
   thread could be created).  green_shutdown stops it. */
GREEN_EXPORT int green_monitor_start(double seconds);

/* Stop the calling thread's monitor and wait for its thread (an ongoing
   episode is reported as ended now).  No monitor: no-op. */
GREEN_EXPORT void green_monitor_stop(void);

/* One report of the monitor.  Pointers are valid during the callback
   only. */
typedef struct green_monitor_report {
    int ongoing;          /* 1: crossed the threshold, still blocked;
                             0: the episode ended */
    double seconds;       /* blocked so far (ongoing) or in all (ended) */
    double threshold;     /* the monitor's threshold */
    uint64_t id;          /* the greenlet that blocked the hub */
    const char *name;     /* its name (green_name) */
    void *const *frames;  /* backtrace(3) return addresses of the blocking
                             code, innermost first; NULL if none */
    int nframes;          /* entries in frames (0 if none) */
} green_monitor_report_t;
typedef void (*green_monitor_fn)(const green_monitor_report_t *report,
                                 void *arg);

/* Deliver every monitor report of every thread's hub to fn(report, arg)
   instead of writing it to stderr; fn NULL restores stderr.  fn runs on
   a monitor thread, never on the hub thread, at most twice per episode
   (ongoing, then ended); it must not call libgreen and should return
   quickly (the monitor does not sample meanwhile).  Process-wide; takes
   effect for the next report. */
GREEN_EXPORT void green_monitor_set_callback(green_monitor_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* GREEN_H_INCLUDED */
