/* libgreen-patch: the C analogue of gevent.monkey.

   This file is built as its own shared library, libgreen-patch.so, which
   defines read, write, connect, poll, sleep, ... itself.  Linked with
   -lgreen-patch (ahead of libc) or loaded with LD_PRELOAD, its
   definitions come first in the dynamic linker's lookup order, so every
   call an unmodified library (hiredis, libpq, libcurl) makes through the
   PLT lands here.  The real libc functions come from dlsym(RTLD_NEXT).

   When a call cooperates.  Until green_patch_all() every interposer goes
   straight to libc.  After it, a call cooperates when the caller is a
   greenlet of this thread's hub (the main greenlet included): ops->coop
   says no for a thread without a hub (none is ever created here), for the
   hub itself, libev callbacks and link callbacks.  libgreen's own I/O
   uses raw syscalls (sys.h) and libev calls read/write/epoll only from
   the hub context, so neither loops back into a cooperative path.

   Blocking semantics.  A descriptor is looked at once ("first sight",
   in a greenlet): sockets and FIFOs become "managed" (O_NONBLOCK is set
   underneath, the caller's own O_NONBLOCK is remembered in the table);
   regular files, ttys and other descriptors pass through, and so do
   pipes on fds 0-2, which are usually shared with other processes (a
   shell, make) that must not see O_NONBLOCK appear.  On a managed fd the
   caller left blocking, a call goes through libgreen's one retry loop
   (green__io_retry): it tries the non-blocking syscall and on EAGAIN
   waits and retries, so the caller never sees EAGAIN; writes loop until
   everything is written, as a blocking write does; SO_RCVTIMEO/
   SO_SNDTIMEO bound the call (EAGAIN after it, as the kernel does;
   EINPROGRESS for connect).  Outside a greenlet the same fd still
   behaves as blocking: the wait is a plain poll(2) that blocks the
   thread, and a signal handler without SA_RESTART ends it with EINTR,
   as it ends the blocking call.  On a fd the caller set O_NONBLOCK
   (through fcntl, ioctl(FIONBIO), SOCK_NONBLOCK or MSG_DONTWAIT) the
   call is the plain syscall: EAGAIN stays EAGAIN.  fcntl(F_GETFL) shows
   the caller's own flag, not ours.

   The per-fd table is libgreen's (lib/io/fd.h), reached through the
   private ops table (patchops.h): one table for both libraries, so
   green_close and close, green_read and read agree about every fd.
   After first sight a call costs no lock and no syscall besides the
   real one.  close (and fclose, pclose, dup2 onto the fd) forgets an
   entry; creating calls (socket, accept, pipe, ...) forget the number
   they return, in case the previous fd with that number was closed
   behind our back.

   Errors are the libc call's, plus the cooperative ones: a wait fails
   with ETIMEDOUT when an enclosing green_timeout expires, ECANCELED when
   the greenlet was killed and EBADF when another greenlet closed the fd,
   exactly as green_read would. */

/* This file defines read, poll, ...: fortified inline wrappers in the
   headers would collide with the definitions. */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "green.h"
#include "core/iov.h"
#include "io/fd.h"
#include "io/patchops.h"

#define PATCH_EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* glibc's fortified and internal entry points have no declaration unless
   _FORTIFY_SOURCE is on; these are their real signatures. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
                       int flags, struct sockaddr *addr, socklen_t *len);
int __poll(struct pollfd *fds, nfds_t n, int timeout);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                const sigset_t *ss, size_t fdslen);
ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off,
                      size_t buflen);

/* With _GNU_SOURCE and GCC, glibc declares the sockaddr arguments as
   transparent unions; the pointer is the __sockaddr__ member then. */
#if defined(__GNUC__) && defined(__USE_GNU) && !defined(__cplusplus)
#define SA(a) ((a).__sockaddr__)
#else
#define SA(a) (a)
#endif

/******************************************************************************/
/*  The real functions                                                        */
/******************************************************************************/

/* Every libc function we interpose, resolved once with
   dlsym(RTLD_NEXT) (the next definition after ours: libc's, or a
   sanitizer's interceptor). */
#define REAL_FUNCS(X)                                                      \
    X(read) X(write) X(readv) X(writev) X(recv) X(recvfrom) X(recvmsg)     \
    X(send) X(sendto) X(sendmsg) X(accept) X(accept4) X(connect) X(poll)   \
    X(ppoll) X(select) X(pselect) X(close) X(fcntl) X(fcntl64) X(ioctl)    \
    X(getaddrinfo) X(sleep) X(usleep) X(nanosleep)           \
    X(clock_nanosleep) X(socket) X(socketpair) X(pipe) X(pipe2) X(dup)     \
    X(dup2) X(dup3) X(fclose) X(sigaction) X(signal) X(__read_chk)         \
    X(__recv_chk)                                                          \
    X(__recvfrom_chk) X(__poll) X(__poll_chk) X(__ppoll_chk) X(fdopen)      \
    X(popen) X(pclose) X(sendfile) X(sendfile64) X(gethostbyname)         \
    X(gethostbyaddr) X(gethostbyname_r) X(gethostbyaddr_r) X(getnameinfo) \
    X(pread) X(pread64) X(pwrite) X(pwrite64) X(fsync) X(fdatasync)        \
    X(__pread_chk) X(__pread64_chk)

static struct {
#define X(name) __typeof__(name) *name;
    REAL_FUNCS(X)
#undef X
} real;

/* libgreen's private table (patch.h); NULL if it does not match. */
static const struct green__patch_ops *ops;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static atomic_int real_ready;

static void real_init(void)
{
#define X(name) real.name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name);
    REAL_FUNCS(X)
#undef X
    const struct green__patch_ops *o = green__patch_ops();
    if (o && o->version == GREEN__PATCH_OPS_VERSION &&
        o->size == sizeof(struct green__patch_ops))
        ops = o;
    atomic_store_explicit(&real_ready, 1, memory_order_release);
}

/* Thread-safe: the first caller resolves everything under pthread_once,
   later callers pay one acquire load. */
static inline void real_ensure(void)
{
    if (UNLIKELY(!atomic_load_explicit(&real_ready, memory_order_acquire)))
        pthread_once(&real_once, real_init);
}

#define REAL(name) (real_ensure(), real.name)

/******************************************************************************/
/*  Activation                                                                */
/******************************************************************************/

static atomic_int active;

static inline int is_active(void)
{
    /* Acquire: a thread that sees it also sees `real` and `ops`. */
    return atomic_load_explicit(&active, memory_order_acquire);
}

/******************************************************************************/
/*  Which handler interrupted a thread-blocking wait                          */
/******************************************************************************/

/* Outside greenlets a patched call on a managed fd blocks the thread in
   poll(2), which a signal interrupts whatever SA_RESTART says.  The
   blocking syscall it stands for would have been restarted if the
   handler that ran had SA_RESTART.  To know which handler ran, the
   handlers the program installs (sigaction, signal) are wrapped: the
   wrapper notes the signal in a thread-local and calls the program's
   handler.  sigaction() reports the program's own handler back. */
struct user_handler {
    struct sigaction sa; /* what the program installed */
    int wrapped;         /* our wrapper stands in for it */
};
static struct user_handler handlers[NSIG];
static pthread_mutex_t handlers_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int last_signal;

static void wrap_handler(int sig, siginfo_t *info, void *ctx)
{
    last_signal = sig;
    const struct sigaction *sa = &handlers[sig].sa;
    if (sa->sa_flags & SA_SIGINFO)
        sa->sa_sigaction(sig, info, ctx);
    else
        sa->sa_handler(sig);
}

/* green__io_signal_probe's probe (io.h). */
static int signal_probe(int reset)
{
    if (reset) {
        last_signal = 0;
        return 0;
    }
    int sig = last_signal;
    if (sig <= 0 || sig >= NSIG || !handlers[sig].wrapped)
        return -1;
    return (handlers[sig].sa.sa_flags & SA_RESTART) != 0;
}

static int is_handler(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) ||
           (sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN);
}

PATCH_EXPORT int sigaction(int sig, const struct sigaction *act,
                           struct sigaction *old)
{
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
        return REAL(sigaction)(sig, act, old);
    pthread_mutex_lock(&handlers_mu);
    struct user_handler prev = handlers[sig];
    struct sigaction wrapped;
    const struct sigaction *use = act;
    if (act && is_handler(act)) {
        wrapped = *act;
        wrapped.sa_sigaction = wrap_handler;
        wrapped.sa_flags |= SA_SIGINFO;
        use = &wrapped;
    }
    /* The program's handler is recorded before ours can run. */
    if (act) {
        handlers[sig].sa = *act;
        handlers[sig].wrapped = use != act;
    }
    int r = REAL(sigaction)(sig, use, old);
    if (r != 0 && act)
        handlers[sig] = prev;
    else if (r == 0 && old && prev.wrapped &&
             old->sa_sigaction == wrap_handler)
        *old = prev.sa; /* what the program installed, not our wrapper */
    pthread_mutex_unlock(&handlers_mu);
    return r;
}

PATCH_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART; /* glibc's signal() is BSD signal() */
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

int green_patch_all(void)
{
    real_ensure();
    if (!ops || !real.read || !real.close) {
        errno = ENOTSUP;
        return -1;
    }
    ops->set_signal_probe(signal_probe);
    atomic_store_explicit(&active, 1, memory_order_release);
    return 0;
}

int green_patch_active(void)
{
    return is_active();
}

/* A program started with LD_PRELOAD=libgreen-patch.so that does not know
   about the patch library can ask for it from the environment. */
__attribute__((constructor)) static void patch_ctor(void)
{
    real_ensure();
    const char *e = getenv("GREEN_PATCH_ALL");
    if (e && e[0] == '1' && e[1] == '\0')
        green_patch_all();
}

/* The caller is a greenlet that may park (see the header comment). */
static inline int coop(void)
{
    return ops->coop();
}

/******************************************************************************/
/*  The fd table (libgreen's, through ops)                                    */
/******************************************************************************/

static inline unsigned fd_state(const struct green__fdinfo *e)
{
    return atomic_load_explicit(&e->state, memory_order_acquire);
}

static inline int user_nb(const struct green__fdinfo *e)
{
    return atomic_load_explicit(&e->user_nb, memory_order_relaxed);
}

/* First sight from a greenlet, under the patch policy (fd.h): the entry
   if we manage fd, else NULL (passed through, or not an open fd: the
   real call then reports the error).  The caller's errno is kept. */
static struct green__fdinfo *first_sight(int fd)
{
    int saved = errno;
    struct green__fdinfo *e;
    if (ops->fd_see(fd, GREEN__FD_PATCHED, &e) != 0)
        e = NULL;
    errno = saved;
    return e;
}

/* fd's entry once seen (PASS or MANAGED), after first sight if needed;
   NULL: the plain libc call (not patching, not open, or never seen and
   the caller not a greenlet: first sight only happens in a greenlet).
   After it, no lock and no syscall. */
static inline struct green__fdinfo *seen_fd(int fd)
{
    if (LIKELY(!is_active()))
        return NULL;
    struct green__fdinfo *e = ops->fd_peek(fd);
    unsigned st = e ? fd_state(e) : GREEN__FD_UNKNOWN;
    if (LIKELY(st == GREEN__FD_MANAGED || st == GREEN__FD_PASS))
        return e;
    if (!coop())
        return NULL;
    (void)first_sight(fd);
    e = ops->fd_peek(fd);
    st = e ? fd_state(e) : GREEN__FD_UNKNOWN;
    return st == GREEN__FD_MANAGED || st == GREEN__FD_PASS ? e : NULL;
}

/* e (seen) if a call on its fd must behave as blocking on top of
   O_NONBLOCK (managed, caller left it blocking), else NULL. */
static inline struct green__fdinfo *blocking(struct green__fdinfo *e)
{
    return e && fd_state(e) == GREEN__FD_MANAGED && !user_nb(e) ? e : NULL;
}

/* The entry of fd if a call on it must behave as blocking on top of
   O_NONBLOCK, else NULL: the call is the plain libc one. */
static inline struct green__fdinfo *blocking_fd(int fd)
{
    return blocking(seen_fd(fd));
}

/* Regular files (and block devices) are always "ready": in a greenlet,
   their reads, writes and syncs go off the hub through libgreen's file
   hook (io.h), which returns the call's result. */
typedef ssize_t (*file_fn)(int fd, const struct iovec *iov, int cnt,
                           off_t off, int dir);

/* blocking_fd for the read/write family, with one lookup: *file is the
   file hook when fd is a regular file and the caller a greenlet (the
   result is NULL then), else NULL. */
static inline struct green__fdinfo *rw_fd(int fd, file_fn *file)
{
    struct green__fdinfo *e = seen_fd(fd);
    *file = NULL;
    if (UNLIKELY(e && atomic_load_explicit(&e->kind, memory_order_relaxed) ==
                          GREEN__FD_FILE)) {
        if (coop())
            *file = ops->file_hook();
        return NULL;
    }
    return blocking(e);
}

/* The file hook for fd, or NULL: the plain libc call (not patching, not
   a greenlet, not a regular file). */
static inline file_fn file_fd(int fd)
{
    file_fn f;
    (void)rw_fd(fd, &f);
    return f;
}

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Run one blocking-style call through libgreen's retry loop: in a
   greenlet the waits are cooperative, elsewhere (no hub, the hub, a
   callback) they block the thread in poll(2) as the real call would.
   all: a blocking write or MSG_WAITALL (loop until total bytes). */
static ssize_t run(int fd, int dir, ssize_t (*try)(int, void *, size_t),
                   void *arg, size_t total, int all)
{
    struct green__io_op op = {try, arg, total, dir,
                              GREEN__IO_THREAD | (all ? GREEN__IO_ALL : 0)};
    return ops->io_retry(fd, &op);
}

/* One transfer of a regular file through the hook (off -1: the file
   position). */
static ssize_t file_io(file_fn f, int fd, const void *buf, size_t n,
                       off_t off, int dir)
{
    struct iovec iov = {(void *)buf, n};
    return f(fd, &iov, 1, off, dir);
}

/******************************************************************************/
/*  Reads                                                                     */
/******************************************************************************/


static ssize_t try_read(int fd, void *arg, size_t done)
{
    (void)done;
    struct green__io_args *a = arg;
    return real.read(fd, a->buf, a->n);
}

static ssize_t p_read(int fd, void *buf, size_t n)
{
    file_fn f;
    struct green__fdinfo *e = rw_fd(fd, &f);
    if (f)
        return file_io(f, fd, buf, n, -1, GREEN__IO_READ);
    if (!e)
        return REAL(read)(fd, buf, n);
    struct green__io_args a = {.buf = buf, .n = n};
    return run(fd, GREEN__IO_READ, try_read, &a, 0, 0);
}

PATCH_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    return p_read(fd, buf, n);
}

PATCH_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        return REAL(__read_chk)(fd, buf, n, buflen); /* reports, aborts */
    return p_read(fd, buf, n);
}

static ssize_t try_readv(int fd, void *arg, size_t done)
{
    (void)done;
    struct green__io_args *a = arg;
    return real.readv(fd, a->iov, a->cnt);
}

PATCH_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    file_fn f;
    struct green__fdinfo *e = rw_fd(fd, &f);
    if (f)
        return f(fd, iov, cnt, -1, GREEN__IO_READ);
    if (!e)
        return REAL(readv)(fd, iov, cnt);
    struct green__io_args a = {.iov = iov, .cnt = cnt};
    return run(fd, GREEN__IO_READ, try_readv, &a, 0, 0);
}

/* With MSG_WAITALL, `done` bytes are already in. */
static ssize_t try_recvfrom(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    return real.recvfrom(fd, (char *)a->buf + done, a->n - done, a->flags,
                         a->addr, a->len);
}

/* recvfrom on a blocking-for-the-caller fd; MSG_WAITALL on a stream
   socket keeps receiving until n bytes, EOF or an error, as the kernel
   does for a blocking socket (with O_NONBLOCK it returns what it has). */
static ssize_t p_recvfrom(int fd, void *buf, size_t n, int flags,
                          struct sockaddr *addr, socklen_t *len)
{
    struct green__fdinfo *e = (flags & MSG_DONTWAIT) ? NULL : blocking_fd(fd);
    if (!e)
        return REAL(recvfrom)(fd, buf, n, flags, addr, len);
    struct green__io_args a = {.buf = buf, .n = n, .flags = flags, .addr = addr,
                     .len = len};
    int all = (flags & MSG_WAITALL) && atomic_load(&e->stream) && n > 0;
    return run(fd, GREEN__IO_READ, try_recvfrom, &a, n, all);
}

PATCH_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return p_recvfrom(fd, buf, n, flags, NULL, NULL);
}

PATCH_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen,
                                int flags)
{
    if (n > buflen)
        return REAL(__recv_chk)(fd, buf, n, buflen, flags);
    return p_recvfrom(fd, buf, n, flags, NULL, NULL);
}

PATCH_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                              __SOCKADDR_ARG addr, socklen_t *len)
{
    return p_recvfrom(fd, buf, n, flags, SA(addr), len);
}

PATCH_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n,
                                    size_t buflen, int flags,
                                    struct sockaddr *addr, socklen_t *len)
{
    if (n > buflen)
        return REAL(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, len);
    return p_recvfrom(fd, buf, n, flags, addr, len);
}

/* A msghdr call that may continue over several syscalls (MSG_WAITALL
   receives, blocking writev/sendmsg): the caller's msghdr, and a
   working copy whose iovec advances past what is done. */
struct vec {
    struct msghdr *user;        /* the caller's (receives update it) */
    struct msghdr m;            /* what the next syscall gets */
    struct green__iovcopy c;    /* the advancing iovec, once needed */
    int copied;                 /* c is valid (must be freed) */
    size_t skipped;             /* bytes c has been advanced past */
    int flags;
    int is_msg;                 /* sendmsg/recvmsg, else writev */
};

/* Advance v's iovec to `done` bytes; ancillary data went with the
   first syscall.  0, or -1/ENOMEM. */
static int vec_advance(struct vec *v, size_t done)
{
    if (done <= v->skipped)
        return 0;
    if (!v->copied) {
        if (green__iov_copy(&v->c, v->user->msg_iov,
                            (int)v->user->msg_iovlen))
            return -1;
        v->copied = 1;
    }
    green__iov_skip(&v->c, done - v->skipped);
    v->skipped = done;
    v->m.msg_iov = v->c.iov;
    v->m.msg_iovlen = (size_t)v->c.cnt;
    v->m.msg_control = NULL;
    v->m.msg_controllen = 0;
    return 0;
}

static void vec_init(struct vec *v, const struct msghdr *msg, int flags,
                     int is_msg)
{
    v->user = (struct msghdr *)msg;
    v->m = *msg;
    v->copied = 0;
    v->skipped = 0;
    v->flags = flags;
    v->is_msg = is_msg;
}

static ssize_t try_recvmsg_once(int fd, void *arg, size_t done)
{
    (void)done;
    struct green__io_args *a = arg;
    return real.recvmsg(fd, a->buf, a->flags);
}

/* MSG_WAITALL's attempt: the rest of the buffers. */
static ssize_t try_recvmsg(int fd, void *arg, size_t done)
{
    struct vec *v = arg;
    if (vec_advance(v, done) != 0)
        return -1;
    ssize_t r = real.recvmsg(fd, &v->m, v->flags);
    if (r > 0 && done == 0) {
        /* Ancillary data, address and flags come from the first
           successful receive; later ones get none. */
        v->user->msg_namelen = v->m.msg_namelen;
        v->user->msg_controllen = v->m.msg_controllen;
        v->user->msg_flags = v->m.msg_flags;
        v->m.msg_name = NULL;
        v->m.msg_namelen = 0;
        v->m.msg_control = NULL;
        v->m.msg_controllen = 0;
    }
    return r;
}

PATCH_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    struct green__fdinfo *e = (flags & MSG_DONTWAIT) ? NULL : blocking_fd(fd);
    if (!e || !msg)
        return REAL(recvmsg)(fd, msg, flags);
    size_t total = green__iov_total(msg->msg_iov, (int)msg->msg_iovlen);
    if (!(flags & MSG_WAITALL) || !atomic_load(&e->stream) || total == 0) {
        struct green__io_args a = {.buf = msg, .flags = flags};
        return run(fd, GREEN__IO_READ, try_recvmsg_once, &a, 0, 0);
    }
    struct vec v;
    vec_init(&v, msg, flags, 1);
    ssize_t r = run(fd, GREEN__IO_READ, try_recvmsg, &v, total, 1);
    if (v.copied)
        green__iov_free(&v.c);
    return r;
}

/******************************************************************************/
/*  Writes                                                                    */
/******************************************************************************/

/* A blocking write returns only when everything is written (or an error
   or the socket's timeout stops it: then the count so far, or -1 if
   nothing was written).  With O_NONBLOCK underneath, the retry loop
   goes over partial writes and waits for writability in between. */

static ssize_t try_write(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    return real.write(fd, (const char *)a->buf + done, a->n - done);
}

static ssize_t p_write(int fd, const void *buf, size_t n)
{
    file_fn f = NULL;
    struct green__fdinfo *e = n ? rw_fd(fd, &f) : NULL;
    if (f)
        return file_io(f, fd, buf, n, -1, GREEN__IO_WRITE);
    if (!e)
        return REAL(write)(fd, buf, n);
    struct green__io_args a = {.buf = (void *)buf, .n = n};
    return run(fd, GREEN__IO_WRITE, try_write, &a, n, 1);
}

PATCH_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    return p_write(fd, buf, n);
}

static ssize_t try_sendto(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    return real.sendto(fd, (const char *)a->buf + done, a->n - done,
                       a->flags, a->addr, a->len ? *a->len : 0);
}

static ssize_t p_sendto(int fd, const void *buf, size_t n, int flags,
                        const struct sockaddr *addr, socklen_t len)
{
    if (n == 0 || (flags & MSG_DONTWAIT) || !blocking_fd(fd))
        return REAL(sendto)(fd, buf, n, flags, addr, len);
    struct green__io_args a = {.buf = (void *)buf, .n = n, .flags = flags,
                     .addr = (struct sockaddr *)addr, .len = &len};
    return run(fd, GREEN__IO_WRITE, try_sendto, &a, n, 1);
}

PATCH_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return p_sendto(fd, buf, n, flags, NULL, 0);
}

PATCH_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                            __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    return p_sendto(fd, buf, n, flags, SA(addr), len);
}

static ssize_t try_vec_write(int fd, void *arg, size_t done)
{
    struct vec *v = arg;
    if (vec_advance(v, done) != 0)
        return -1;
    return v->is_msg ? real.sendmsg(fd, &v->m, v->flags)
                     : real.writev(fd, v->m.msg_iov, (int)v->m.msg_iovlen);
}

/* writev and sendmsg: the same loop over an advancing copy of the iovec
   array (the caller's is const). */
static ssize_t vec_write(int fd, const struct msghdr *msg, int flags,
                         int is_msg)
{
    size_t total = green__iov_total(msg->msg_iov, (int)msg->msg_iovlen);
    struct vec v;
    vec_init(&v, msg, flags, is_msg);
    ssize_t r = run(fd, GREEN__IO_WRITE, try_vec_write, &v, total,
                    total > 0);
    if (v.copied)
        green__iov_free(&v.c);
    return r;
}

PATCH_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    file_fn f = NULL;
    struct green__fdinfo *e = cnt > 0 ? rw_fd(fd, &f) : NULL;
    if (f)
        return f(fd, iov, cnt, -1, GREEN__IO_WRITE);
    if (!e)
        return REAL(writev)(fd, iov, cnt);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)cnt;
    return vec_write(fd, &m, 0, 0);
}

/* pread, pwrite, fsync, fdatasync: only regular files change (a
   negative offset keeps libc's EINVAL). */
static ssize_t p_pread(int fd, void *buf, size_t n, off64_t off)
{
    file_fn f = off >= 0 ? file_fd(fd) : NULL;
    if (f)
        return file_io(f, fd, buf, n, (off_t)off, GREEN__IO_READ);
    return REAL(pread64)(fd, buf, n, off);
}

static ssize_t p_pwrite(int fd, const void *buf, size_t n, off64_t off)
{
    file_fn f = off >= 0 ? file_fd(fd) : NULL;
    if (f)
        return file_io(f, fd, buf, n, (off_t)off, GREEN__IO_WRITE);
    return REAL(pwrite64)(fd, buf, n, off);
}

PATCH_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    return p_pread(fd, buf, n, off);
}

PATCH_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
    return p_pread(fd, buf, n, off);
}

PATCH_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off,
                                 size_t buflen)
{
    if (n > buflen)
        return REAL(__pread_chk)(fd, buf, n, off, buflen); /* aborts */
    return p_pread(fd, buf, n, off);
}

PATCH_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off,
                                   size_t buflen)
{
    if (n > buflen)
        return REAL(__pread64_chk)(fd, buf, n, off, buflen);
    return p_pread(fd, buf, n, off);
}

PATCH_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return p_pwrite(fd, buf, n, off);
}

PATCH_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    return p_pwrite(fd, buf, n, off);
}

PATCH_EXPORT int fsync(int fd)
{
    file_fn f = file_fd(fd);
    if (f)
        return (int)f(fd, NULL, 0, -1, GREEN__IO_FSYNC);
    return REAL(fsync)(fd);
}

PATCH_EXPORT int fdatasync(int fd)
{
    file_fn f = file_fd(fd);
    if (f)
        return (int)f(fd, NULL, 0, -1, GREEN__IO_FDATASYNC);
    return REAL(fdatasync)(fd);
}

PATCH_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (!msg || (flags & MSG_DONTWAIT) || !blocking_fd(fd))
        return REAL(sendmsg)(fd, msg, flags);
    return vec_write(fd, msg, flags, 1);
}

/* sendfile: a blocking out_fd gets everything, as the kernel gives it
   on a blocking socket (count bytes, in_fd's end, or an error after
   progress: the progress).  offset is advanced by the kernel. */
struct sendfile_args {
    int in_fd;
    off64_t *offset;
    size_t count;
};

static ssize_t try_sendfile(int fd, void *arg, size_t done)
{
    struct sendfile_args *a = arg;
    return real.sendfile64(fd, a->in_fd, a->offset, a->count - done);
}

static ssize_t p_sendfile(int out_fd, int in_fd, off64_t *offset,
                          size_t count)
{
    real_ensure();
    if (count == 0 || !real.sendfile64 || !blocking_fd(out_fd))
        return real.sendfile64 ? real.sendfile64(out_fd, in_fd, offset, count)
                               : REAL(sendfile)(out_fd, in_fd,
                                                (off_t *)offset, count);
    struct sendfile_args a = {in_fd, offset, count};
    return run(out_fd, GREEN__IO_WRITE, try_sendfile, &a, count, 1);
}

PATCH_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset,
                              size_t count)
{
    return p_sendfile(out_fd, in_fd, (off64_t *)offset, count);
}

PATCH_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset,
                                size_t count)
{
    return p_sendfile(out_fd, in_fd, offset, count);
}

/******************************************************************************/
/*  Accept, connect                                                           */
/******************************************************************************/

static ssize_t try_accept(int fd, void *arg, size_t done)
{
    (void)done;
    struct green__io_args *a = arg;
    return real.accept4(fd, a->addr, a->len, a->flags);
}

static int p_accept4(int fd, struct sockaddr *addr, socklen_t *len,
                     int flags)
{
    int c;
    if (!blocking_fd(fd)) {
        c = REAL(accept4)(fd, addr, len, flags);
    } else {
        struct green__io_args a = {.addr = addr, .len = len, .flags = flags};
        c = (int)run(fd, GREEN__IO_READ, try_accept, &a, 0, 0);
    }
    /* A fresh fd: whatever the table knew about its number is stale.
       (Accepted sockets never inherit O_NONBLOCK; first sight will see
       the caller's SOCK_NONBLOCK.) */
    if (c >= 0 && is_active())
        ops->fd_forget(c);
    return c;
}

PATCH_EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
    return p_accept4(fd, SA(addr), len, 0);
}

PATCH_EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len,
                         int flags)
{
    return p_accept4(fd, SA(addr), len, flags);
}

/* libc's connect with a plain sockaddr pointer (libgreen's retry takes
   that type; glibc declares a transparent union). */
static int libc_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return real.connect(fd, addr, len);
}

PATCH_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    if (!blocking_fd(fd))
        return REAL(connect)(fd, addr, len);
    return ops->io_connect(fd, SA(addr), len, libc_connect,
                           GREEN__IO_THREAD);
}

/******************************************************************************/
/*  poll, select                                                              */
/******************************************************************************/

/* poll(NULL, 0, -1), select(0, ..., NULL): a pause until a signal.
   Only the kernel can end that wait (a signal handler cannot wake a
   parked greenlet), so it stays libc's, blocking the thread. */
static inline int is_pause(nfds_t n, int infinite)
{
    return n == 0 && infinite;
}

static int p_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (is_active() && timeout != 0 && !is_pause(n, timeout < 0) && coop())
        return green_poll(fds, n, timeout);
    return REAL(poll)(fds, n, timeout);
}

PATCH_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    return p_poll(fds, n, timeout);
}

PATCH_EXPORT int __poll(struct pollfd *fds, nfds_t n, int timeout)
{
    return p_poll(fds, n, timeout);
}

PATCH_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                            size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        return REAL(__poll_chk)(fds, n, timeout, fdslen); /* aborts */
    return p_poll(fds, n, timeout);
}

/* ppoll with a signal mask cannot be cooperative (the mask is swapped
   atomically with the wait in the kernel): only the mask-less form is. */
static int p_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                   const sigset_t *ss)
{
    if (is_active() && !ss && !is_pause(n, !ts) && coop() &&
        (!ts || ts->tv_sec || ts->tv_nsec)) {
        if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 ||
                   ts->tv_nsec >= 1000000000L)) {
            errno = EINVAL;
            return -1;
        }
        int ms = -1;
        if (ts) {
            double t = ceil((double)ts->tv_sec * 1e3 +
                            (double)ts->tv_nsec * 1e-6);
            ms = t > INT_MAX ? INT_MAX : (int)t;
        }
        return green_poll(fds, n, ms);
    }
    return REAL(ppoll)(fds, n, ts, ss);
}

PATCH_EXPORT int ppoll(struct pollfd *fds, nfds_t n,
                       const struct timespec *ts, const sigset_t *ss)
{
    return p_ppoll(fds, n, ts, ss);
}

PATCH_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n,
                             const struct timespec *ts, const sigset_t *ss,
                             size_t fdslen)
{
    if (fdslen / sizeof *fds < n)
        return REAL(__ppoll_chk)(fds, n, ts, ss, fdslen);
    return p_ppoll(fds, n, ts, ss);
}

PATCH_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x,
                        struct timeval *tv)
{
    /* (Beyond FD_SETSIZE the caller uses larger sets than fd_set, which
       green_select handles as libc does.) */
    if (is_active() && (!tv || tv->tv_sec || tv->tv_usec) &&
        !is_pause(nfds > 0 ? (nfds_t)nfds : 0, !tv) && coop())
        return green_select(nfds, r, w, x, tv);
    return REAL(select)(nfds, r, w, x, tv);
}

PATCH_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x,
                         const struct timespec *ts, const sigset_t *ss)
{
    if (is_active() && !ss && (!ts || ts->tv_sec || ts->tv_nsec) &&
        !is_pause(nfds > 0 ? (nfds_t)nfds : 0, !ts) && coop()) {
        if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 ||
                   ts->tv_nsec >= 1000000000L)) {
            errno = EINVAL;
            return -1;
        }
        /* pselect leaves its timeout alone; select updates a copy. */
        struct timeval tv, *tvp = NULL;
        if (ts) {
            tv.tv_sec = ts->tv_sec;
            tv.tv_usec = (suseconds_t)((ts->tv_nsec + 999) / 1000);
            if (tv.tv_usec == 1000000) {
                tv.tv_sec++;
                tv.tv_usec = 0;
            }
            tvp = &tv;
        }
        return green_select(nfds, r, w, x, tvp);
    }
    return REAL(pselect)(nfds, r, w, x, ts, ss);
}

/******************************************************************************/
/*  Sleeping                                                                  */
/******************************************************************************/

/* Sleep cooperatively for t seconds; on failure (ECANCELED, ETIMEDOUT)
   *left gets the part not slept.  0 or -1/errno. */
static int coop_sleep(double t, double *left)
{
    double start = now();
    if (green_sleep(t) == 0)
        return 0;
    int err = errno;
    if (left) {
        *left = t - (now() - start);
        if (*left < 0)
            *left = 0;
    }
    errno = err;
    return -1;
}

static void to_timespec(double t, struct timespec *ts)
{
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
    if (ts->tv_nsec < 0)
        ts->tv_nsec = 0;
    if (ts->tv_nsec > 999999999L)
        ts->tv_nsec = 999999999L;
}

static int valid_timespec(const struct timespec *ts)
{
    return ts && ts->tv_sec >= 0 && ts->tv_nsec >= 0 &&
           ts->tv_nsec < 1000000000L;
}

PATCH_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    /* Invalid arguments: let the kernel say EINVAL/EFAULT. */
    if (!is_active() || !valid_timespec(req) || !coop())
        return REAL(nanosleep)(req, rem);
    double left;
    if (coop_sleep((double)req->tv_sec + (double)req->tv_nsec * 1e-9,
                   &left) == 0)
        return 0;
    if (rem)
        to_timespec(left, rem);
    return -1;
}

PATCH_EXPORT int clock_nanosleep(clockid_t clk, int flags,
                                 const struct timespec *req,
                                 struct timespec *rem)
{
    if (!is_active() || !valid_timespec(req) ||
        (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC &&
         clk != CLOCK_BOOTTIME) ||
        !coop())
        return REAL(clock_nanosleep)(clk, flags, req, rem);
    double t = (double)req->tv_sec + (double)req->tv_nsec * 1e-9;
    if (flags & TIMER_ABSTIME) {
        struct timespec cur;
        clock_gettime(clk, &cur);
        t -= (double)cur.tv_sec + (double)cur.tv_nsec * 1e-9;
        if (t < 0)
            t = 0;
    }
    /* clock_nanosleep returns the error instead of setting errno. */
    int saved = errno;
    double left;
    if (coop_sleep(t, &left) == 0)
        return 0;
    int err = errno;
    errno = saved;
    if (rem && !(flags & TIMER_ABSTIME))
        to_timespec(left, rem);
    return err;
}

PATCH_EXPORT int usleep(useconds_t us)
{
    if (!is_active() || !coop())
        return REAL(usleep)(us);
    return coop_sleep((double)us * 1e-6, NULL);
}

PATCH_EXPORT unsigned sleep(unsigned s)
{
    if (!is_active() || !coop())
        return REAL(sleep)(s);
    double left;
    if (coop_sleep((double)s, &left) == 0)
        return 0;
    /* Like glibc: the seconds not slept, rounded to the nearest. */
    return (unsigned)(left + 0.5);
}

/******************************************************************************/
/*  close, fcntl, ioctl, fd creation                                          */
/******************************************************************************/

/* What green_close does before closing (it shares the table, so it
   needs no wrapper): wake the fd's waiters in this thread's hub (if it
   has one; also from the hub or a callback) with EBADF and forget the
   fd, so that the number's next fd starts fresh.  Never creates a hub.
   The close itself stays libc's. */
PATCH_EXPORT int close(int fd)
{
    if (is_active())
        ops->fd_forget(fd);
    return REAL(close)(fd);
}

/* glibc's fclose closes the fd with its internal close: forget it here.
   (A cookie stream's fileno is -1; its close function comes back
   through close above.) */
PATCH_EXPORT int fclose(FILE *f)
{
    real_ensure();
    if (ops && f) {
        int fd = fileno(f);
        if (fd >= 0)
            ops->fd_forget(fd);
    }
    return REAL(fclose)(f);
}

/******************************************************************************/
/*  stdio on sockets and pipes                                                */
/******************************************************************************/

/* glibc's stdio reads and writes with its internal read/write, which
   nobody can interpose: on a fd with O_NONBLOCK underneath, fgets fails
   with EAGAIN and fwrite drops what did not fit.  So:
   - fdopen of a socket or pipe while patching is on returns an
     fopencookie stream whose I/O goes through the interposed calls
     (cooperative in a greenlet, blocking elsewhere; a write finishes
     everything).  Its fileno() is -1, as for any cookie stream.
   - a FILE we do not control (popen's, an fdopen before patching) keeps
     its fd blocking: the fd is passed through until it is closed. */

struct cookie {
    int fd;
};

static ssize_t cookie_read(void *c, char *buf, size_t n)
{
    return p_read(((struct cookie *)c)->fd, buf, n);
}

/* stdio wants everything written, or 0 for an error. */
static ssize_t cookie_write(void *c, const char *buf, size_t n)
{
    int fd = ((struct cookie *)c)->fd;
    size_t done = 0;
    while (done < n) {
        ssize_t r = p_write(fd, buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int cookie_seek(void *c, off64_t *pos, int whence)
{
    off64_t r = lseek64(((struct cookie *)c)->fd, *pos, whence);
    if (r < 0)
        return -1;
    *pos = r;
    return 0;
}

static int cookie_close(void *c)
{
    int fd = ((struct cookie *)c)->fd;
    free(c);
    return close(fd);
}

/* A socket, or a pipe/FIFO above fd 2: the fds the patch manages. */
static int stream_fd(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 &&
           (S_ISSOCK(sb.st_mode) || (S_ISFIFO(sb.st_mode) && fd > 2));
}

PATCH_EXPORT FILE *fdopen(int fd, const char *mode)
{
    real_ensure();
    if (!is_active() || !mode || !stream_fd(fd)) {
        FILE *f = REAL(fdopen)(fd, mode);
        if (f && ops && stream_fd(fd))
            ops->fd_pass(fd); /* before patching: keep it blocking */
        return f;
    }
    struct cookie *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    cookie_io_functions_t io = {cookie_read, cookie_write, cookie_seek,
                                cookie_close};
    FILE *f = fopencookie(c, mode, io);
    if (!f)
        free(c);
    return f;
}

PATCH_EXPORT FILE *popen(const char *cmd, const char *type)
{
    FILE *f = REAL(popen)(cmd, type);
    if (f && ops)
        ops->fd_pass(fileno(f)); /* pclose needs libc's own FILE */
    return f;
}

PATCH_EXPORT int pclose(FILE *f)
{
    real_ensure();
    if (ops && f && fileno(f) >= 0)
        ops->fd_forget(fileno(f));
    return REAL(pclose)(f);
}

/* The entry of fd if we manage it, for the calls that read or change
   O_NONBLOCK.  In a greenlet a fd we have not seen yet is looked at
   first, so that the caller's view is the same before and after its
   first read: a fd that libgreen itself created non-blocking
   (green_accept, green_tcp_connect) looks blocking to plain libc code
   that never asked for O_NONBLOCK. */
static struct green__fdinfo *managed_fd(int fd)
{
    struct green__fdinfo *e = ops->fd_peek(fd);
    unsigned st = e ? fd_state(e) : GREEN__FD_UNKNOWN;
    if (st == GREEN__FD_MANAGED)
        return e;
    if (st == GREEN__FD_UNKNOWN && coop())
        return first_sight(fd);
    return NULL;
}

/* fcntl's third argument is an int or a pointer depending on cmd; like
   glibc, read it as a pointer-sized value and pass it on. */
static int p_fcntl(int (*fn)(int, int, ...), int fd, int cmd, void *arg)
{
    if (!is_active())
        return fn(fd, cmd, arg);
    struct green__fdinfo *e = NULL;
    if (cmd == F_GETFL || cmd == F_SETFL)
        e = managed_fd(fd);
    switch (cmd) {
    case F_GETFL: {
        int fl = fn(fd, cmd);
        if (fl >= 0 && e) {
            /* Show the caller's O_NONBLOCK, not ours. */
            fl &= ~O_NONBLOCK;
            if (user_nb(e))
                fl |= O_NONBLOCK;
        }
        return fl;
    }
    case F_SETFL: {
        int fl = (int)(intptr_t)arg;
        if (!e)
            return fn(fd, cmd, fl);
        int r = fn(fd, cmd, fl | O_NONBLOCK);
        if (r == 0)
            atomic_store(&e->user_nb, (fl & O_NONBLOCK) ? 1 : 0);
        return r;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = fn(fd, cmd, arg);
        if (r >= 0)
            ops->fd_copy(fd, r);
        return r;
    }
    default:
        return fn(fd, cmd, arg);
    }
}

PATCH_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return p_fcntl(REAL(fcntl), fd, cmd, arg);
}

PATCH_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return p_fcntl(REAL(fcntl64) ? real.fcntl64 : real.fcntl, fd, cmd, arg);
}

PATCH_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (req == FIONBIO && is_active() && arg) {
        /* FIONBIO is O_NONBLOCK by another name: keep ours, record the
           caller's. */
        struct green__fdinfo *e = managed_fd(fd);
        if (e) {
            int on = *(const int *)arg != 0;
            int one = 1;
            int r = REAL(ioctl)(fd, req, &one);
            if (r == 0)
                atomic_store(&e->user_nb, (unsigned char)on);
            return r;
        }
    }
    return REAL(ioctl)(fd, req, arg);
}

/* New fds: the number may have belonged to a fd closed behind our back
   (fclose of a FILE's fd, close_range, a raw syscall). */
static void fresh(int fd)
{
    if (fd >= 0 && is_active())
        ops->fd_forget(fd);
}

PATCH_EXPORT int socket(int domain, int type, int protocol)
{
    int fd = REAL(socket)(domain, type, protocol);
    fresh(fd);
    return fd;
}

PATCH_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = REAL(socketpair)(domain, type, protocol, sv);
    if (r == 0) {
        fresh(sv[0]);
        fresh(sv[1]);
    }
    return r;
}

PATCH_EXPORT int pipe(int fds[2])
{
    int r = REAL(pipe)(fds);
    if (r == 0) {
        fresh(fds[0]);
        fresh(fds[1]);
    }
    return r;
}

PATCH_EXPORT int pipe2(int fds[2], int flags)
{
    int r = REAL(pipe2)(fds, flags);
    if (r == 0) {
        fresh(fds[0]);
        fresh(fds[1]);
    }
    return r;
}

PATCH_EXPORT int dup(int fd)
{
    int r = REAL(dup)(fd);
    if (r >= 0 && is_active())
        ops->fd_copy(fd, r);
    return r;
}

/* dup2/dup3 replace newfd: its waiters must not sleep on a number that
   now means another file. */
static void before_replace(int oldfd, int newfd)
{
    if (oldfd != newfd && is_active())
        ops->fd_forget(newfd);
}

PATCH_EXPORT int dup2(int oldfd, int newfd)
{
    before_replace(oldfd, newfd);
    int r = REAL(dup2)(oldfd, newfd);
    if (r >= 0 && oldfd != newfd && is_active())
        ops->fd_copy(oldfd, r);
    return r;
}

PATCH_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    before_replace(oldfd, newfd);
    int r = REAL(dup3)(oldfd, newfd, flags);
    if (r >= 0 && is_active())
        ops->fd_copy(oldfd, r);
    return r;
}

/******************************************************************************/
/*  getaddrinfo                                                               */
/******************************************************************************/

PATCH_EXPORT int getaddrinfo(const char *node, const char *service,
                             const struct addrinfo *hints,
                             struct addrinfo **res)
{
    /* green_getaddrinfo runs the real getaddrinfo in a worker thread,
       which has no hub, so that call comes back here and goes to libc.
       A numeric host (or none) never blocks: no worker needed. */
    if (is_active() && !(hints && (hints->ai_flags & AI_NUMERICHOST)) &&
        !ops->numeric_host(node) && coop())
        return green_getaddrinfo(node, service, hints, res);
    return REAL(getaddrinfo)(node, service, hints, res);
}

/******************************************************************************/
/*  gethostbyname, gethostbyaddr, getnameinfo                                 */
/******************************************************************************/

/* The older resolver calls, like getaddrinfo: in a greenlet they run in
   the hub's threadpool (green_threadpool_call) while the caller waits
   cooperatively; elsewhere, and for numeric input, they are libc's.
   The worker calls libc's reentrant variants into a request it shares
   with the caller.  A caller that got its answer frees the request; one
   cut off (killed, timed out) hands it over: the worker frees it when
   it ends, and a job that never runs (withdrawn) stays on the orphan
   list, reachable, rather than being freed under a worker that might
   still be about to start it. */

enum { RES_BYNAME, RES_BYADDR, RES_NAMEINFO };

struct resolve {
    struct resolve *next;       /* on the orphan list */
    struct resolve **prevp;
    int orphan;                 /* the caller left (under orphan_mu) */
    int done;                   /* the worker ended (under orphan_mu) */
    int kind;                   /* RES_* */
    int grow;                   /* buf is ours: grow it on ERANGE */
    int rc;                     /* the libc call's result */
    int herr;                   /* its h_errno */
    int err;                    /* its errno */
    struct hostent he;          /* gethostbyname_r's result, in buf */
    struct hostent *result;     /* &he or NULL */
    char *buf;                  /* hostent storage */
    size_t buflen;
    int type;                   /* address family (BYADDR) */
    socklen_t alen;             /* address length (BYADDR, NAMEINFO) */
    int flags;                  /* getnameinfo's */
    char *host, *serv;          /* getnameinfo's outputs, in buf */
    socklen_t hostlen, servlen;
    struct sockaddr_storage addr;
    char name[];                /* the host name (BYNAME) */
};

static pthread_mutex_t orphan_mu = PTHREAD_MUTEX_INITIALIZER;
static struct resolve *orphans;

static void resolve_free(struct resolve *r)
{
    free(r->buf);
    free(r);
}

/* The worker is done with r: free it if its caller left. */
static void resolve_done(struct resolve *r)
{
    pthread_mutex_lock(&orphan_mu);
    int orphan = r->orphan;
    r->done = 1;
    if (orphan) {
        *r->prevp = r->next;
        if (r->next)
            r->next->prevp = r->prevp;
    }
    pthread_mutex_unlock(&orphan_mu);
    if (orphan)
        resolve_free(r);
}

static void *resolve_run(void *arg)
{
    struct resolve *r = arg;
    for (;;) {
        if (r->kind == RES_BYNAME)
            r->rc = real.gethostbyname_r(r->name, &r->he, r->buf, r->buflen,
                                         &r->result, &r->herr);
        else if (r->kind == RES_BYADDR)
            r->rc = real.gethostbyaddr_r(&r->addr, r->alen, r->type, &r->he,
                                         r->buf, r->buflen, &r->result,
                                         &r->herr);
        else
            r->rc = real.getnameinfo((struct sockaddr *)&r->addr, r->alen,
                                     r->host, r->hostlen, r->serv,
                                     r->servlen, r->flags);
        r->err = errno;
        if (r->kind == RES_NAMEINFO || r->rc != ERANGE || !r->grow ||
            r->buflen >= (1 << 20))
            break;
        char *b = realloc(r->buf, r->buflen * 2);
        if (!b)
            break;
        r->buf = b;
        r->buflen *= 2;
    }
    resolve_done(r);
    return NULL;
}

/* A request for `kind`, with buflen bytes of storage and room for a
   name.  NULL/ENOMEM. */
static struct resolve *resolve_new(int kind, const char *name,
                                   size_t buflen, int grow)
{
    size_t nl = name ? strlen(name) + 1 : 0;
    struct resolve *r = calloc(1, sizeof *r + nl);
    if (!r)
        return NULL;
    r->buf = malloc(buflen ? buflen : 1);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    r->buflen = buflen;
    r->grow = grow;
    r->kind = kind;
    if (name)
        memcpy(r->name, name, nl);
    return r;
}

/* Run r in the threadpool.  0 (the caller owns r), or the cooperative
   error (r is handed over, see above). */
static int resolve_call(struct resolve *r)
{
    if (green_threadpool_call(resolve_run, r, NULL) == 0)
        return 0;
    int err = errno;
    pthread_mutex_lock(&orphan_mu);
    if (r->done) { /* the job ended after the caller was cut off */
        pthread_mutex_unlock(&orphan_mu);
        resolve_free(r);
        return err;
    }
    r->orphan = 1;
    r->next = orphans;
    r->prevp = &orphans;
    if (orphans)
        orphans->prevp = &r->next;
    orphans = r;
    pthread_mutex_unlock(&orphan_mu);
    return err;
}

/* Move a hostent whose pointers all point into `from` (len bytes) into
   `to`: copy the storage, then rebase every pointer. */
static void hostent_move(struct hostent *dst, const struct hostent *src,
                         const char *from, char *to, size_t len)
{
    memcpy(to, from, len);
#define REBASE(p) ((p) ? to + ((const char *)(p) - from) : NULL)
    *dst = *src;
    dst->h_name = REBASE(src->h_name);
    dst->h_aliases = (char **)REBASE(src->h_aliases);
    dst->h_addr_list = (char **)REBASE(src->h_addr_list);
    for (char **a = dst->h_aliases; a && *a; a++)
        *a = REBASE(*a);
    for (char **a = dst->h_addr_list; a && *a; a++)
        *a = REBASE(*a);
#undef REBASE
}

/* gethostbyname's storage: the thread's last request, valid until the
   thread's next call, as libc's static buffer is. */
static __thread struct resolve *last_hostent;

static struct hostent *hostent_result(struct resolve *r, int err)
{
    if (err) {
        h_errno = NETDB_INTERNAL;
        errno = err;
        return NULL;
    }
    if (last_hostent)
        resolve_free(last_hostent);
    last_hostent = r;
    if (!r->result) {
        h_errno = r->herr;
        return NULL;
    }
    return r->result;
}

PATCH_EXPORT struct hostent *gethostbyname(const char *name)
{
    if (!is_active() || !name || ops->numeric_host(name) || !coop())
        return REAL(gethostbyname)(name);
    struct resolve *r = resolve_new(RES_BYNAME, name, 1024, 1);
    if (!r) {
        h_errno = NETDB_INTERNAL;
        errno = ENOMEM;
        return NULL;
    }
    return hostent_result(r, resolve_call(r));
}

PATCH_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len,
                                           int type)
{
    if (!is_active() || !addr || len > sizeof(struct sockaddr_storage) ||
        !coop())
        return REAL(gethostbyaddr)(addr, len, type);
    struct resolve *r = resolve_new(RES_BYADDR, NULL, 1024, 1);
    if (!r) {
        h_errno = NETDB_INTERNAL;
        errno = ENOMEM;
        return NULL;
    }
    memcpy(&r->addr, addr, len);
    r->alen = len;
    r->type = type;
    return hostent_result(r, resolve_call(r));
}

PATCH_EXPORT int gethostbyname_r(const char *name, struct hostent *ret,
                                 char *buf, size_t buflen,
                                 struct hostent **result, int *h_errnop)
{
    if (!is_active() || !name || !ret || !buf || !result || !h_errnop ||
        ops->numeric_host(name) || !coop())
        return REAL(gethostbyname_r)(name, ret, buf, buflen, result,
                                     h_errnop);
    struct resolve *r = resolve_new(RES_BYNAME, name, buflen, 0);
    if (!r)
        return ENOMEM;
    int err = resolve_call(r);
    if (err) {
        *result = NULL;
        *h_errnop = NETDB_INTERNAL;
        return err;
    }
    int rc = r->rc;
    *h_errnop = r->herr;
    *result = NULL;
    if (r->result) {
        hostent_move(ret, r->result, r->buf, buf, buflen);
        *result = ret;
    }
    resolve_free(r);
    return rc;
}

PATCH_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen,
                             char *host, socklen_t hostlen, char *serv,
                             socklen_t servlen, int flags)
{
    /* Numeric output needs no lookup. */
    int numeric = (flags & NI_NUMERICHOST || !host || !hostlen) &&
                  (flags & NI_NUMERICSERV || !serv || !servlen);
    if (!is_active() || numeric || !sa ||
        salen > sizeof(struct sockaddr_storage) || !coop())
        return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen,
                                 flags);
    size_t hl = host ? hostlen : 0, sl = serv ? servlen : 0;
    struct resolve *r = resolve_new(RES_NAMEINFO, NULL, hl + sl, 0);
    if (!r)
        return EAI_MEMORY;
    memcpy(&r->addr, sa, salen);
    r->alen = salen;
    r->flags = flags;
    r->host = hl ? r->buf : NULL;
    r->hostlen = (socklen_t)hl;
    r->serv = sl ? r->buf + hl : NULL;
    r->servlen = (socklen_t)sl;
    int err = resolve_call(r);
    if (err) {
        errno = err;
        return EAI_SYSTEM;
    }
    int rc = r->rc;
    if (rc == 0) {
        if (hl)
            memcpy(host, r->host, hl);
        if (sl)
            memcpy(serv, r->serv, sl);
    } else if (rc == EAI_SYSTEM) {
        errno = r->err;
    }
    resolve_free(r);
    return rc;
}
