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
   caller left blocking, a call tries the non-blocking syscall and on
   EAGAIN waits with green_wait_read/write and retries, so the caller
   never sees EAGAIN; writes loop until everything is written, as a
   blocking write does; SO_RCVTIMEO/SO_SNDTIMEO become the wait's
   deadline (EAGAIN after it, as the kernel does; EINPROGRESS for
   connect).  Outside a greenlet the same fd still behaves as blocking:
   the wait is a plain poll(2) that blocks the thread, exactly what the
   caller would have got without the patch.  On a fd the caller set
   O_NONBLOCK (through fcntl, ioctl(FIONBIO), SOCK_NONBLOCK or
   MSG_DONTWAIT) the call is the plain syscall: EAGAIN stays EAGAIN.
   fcntl(F_GETFL) shows the caller's own flag, not ours.

   The per-fd table is process-wide (fds are), indexed by fd, in chunks
   allocated on first use; entries are small atomics, so after first
   sight a call costs no lock and no syscall besides the real one.  close
   (and green_close, fclose, dup2 onto the fd) clears an entry; creating
   calls (socket, accept, pipe, ...) reset the entry of the number they
   return, in case the previous fd with that number was closed behind our
   back.

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
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "green.h"
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
    X(setsockopt) X(getaddrinfo) X(sleep) X(usleep) X(nanosleep)           \
    X(clock_nanosleep) X(socket) X(socketpair) X(pipe) X(pipe2) X(dup)     \
    X(dup2) X(dup3) X(fclose) X(__read_chk) X(__recv_chk)                  \
    X(__recvfrom_chk) X(__poll) X(__poll_chk) X(__ppoll_chk)

static struct {
#define X(name) __typeof__(name) *name;
    REAL_FUNCS(X)
#undef X
    int (*green_close)(int fd);         /* libgreen's, see green_close */
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
    real.green_close = (int (*)(int))dlsym(RTLD_NEXT, "green_close");
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

int green_patch_all(void)
{
    real_ensure();
    if (!ops || !real.read || !real.close) {
        errno = ENOTSUP;
        return -1;
    }
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
/*  The per-fd table                                                          */
/******************************************************************************/

enum {
    PFD_UNKNOWN,    /* never looked at (or forgotten by close) */
    PFD_BUSY,       /* first sight in progress in some thread */
    PFD_PASS,       /* not ours: every call goes straight to libc */
    PFD_MANAGED     /* O_NONBLOCK underneath, caller's view in user_nb */
};

struct pfd {
    atomic_uchar state;         /* PFD_* */
    atomic_uchar user_nb;       /* the caller's O_NONBLOCK */
    atomic_uchar stream;        /* SOCK_STREAM socket: MSG_WAITALL loops */
    atomic_uchar is_sock;       /* a socket: has SO_RCVTIMEO/SO_SNDTIMEO */
    _Atomic int64_t rcvtimeo;   /* SO_RCVTIMEO in µs, 0 = none */
    _Atomic int64_t sndtimeo;   /* SO_SNDTIMEO in µs, 0 = none */
};

#define PFD_CHUNK_SHIFT 10
#define PFD_CHUNK (1 << PFD_CHUNK_SHIFT)
#define PFD_CHUNKS 16384        /* 16 M fds; higher fds pass through */

/* The first chunk (fds 0-1023, nearly every program's) is static: a
   first sight there never allocates, not even in a signal handler that
   writes to stderr. */
static struct pfd pfd_chunk0[PFD_CHUNK];
static _Atomic(struct pfd *) pfd_chunks[PFD_CHUNKS] = {pfd_chunk0};

/* fd's entry, or NULL if its chunk was never allocated. */
static inline struct pfd *pfd_peek(int fd)
{
    if (UNLIKELY(fd < 0 || (fd >> PFD_CHUNK_SHIFT) >= PFD_CHUNKS))
        return NULL;
    struct pfd *c = atomic_load_explicit(&pfd_chunks[fd >> PFD_CHUNK_SHIFT],
                                         memory_order_acquire);
    return c ? &c[fd & (PFD_CHUNK - 1)] : NULL;
}

/* fd's entry, allocating its chunk; NULL if fd is out of range or out of
   memory (the fd then passes through). */
static struct pfd *pfd_get(int fd)
{
    struct pfd *e = pfd_peek(fd);
    if (LIKELY(e != NULL) || fd < 0 || (fd >> PFD_CHUNK_SHIFT) >= PFD_CHUNKS)
        return e;
    struct pfd *c = calloc(PFD_CHUNK, sizeof *c);
    if (!c)
        return NULL;
    struct pfd *expected = NULL;
    /* Lock-free: the loser of a race frees its chunk and uses the
       winner's.  Chunks are never freed (the table lives as long as the
       process, like the fds it describes). */
    if (!atomic_compare_exchange_strong_explicit(
            &pfd_chunks[fd >> PFD_CHUNK_SHIFT], &expected, c,
            memory_order_acq_rel, memory_order_acquire)) {
        free(c);
        c = expected;
    }
    return &c[fd & (PFD_CHUNK - 1)];
}

static inline unsigned pfd_state(const struct pfd *e)
{
    return atomic_load_explicit(&e->state, memory_order_acquire);
}

/* Forget fd (closed, or a new fd got its number). */
static void pfd_forget(int fd)
{
    struct pfd *e = pfd_peek(fd);
    if (e && pfd_state(e) != PFD_UNKNOWN)
        atomic_store_explicit(&e->state, PFD_UNKNOWN, memory_order_release);
}

/* newfd now shares oldfd's open file description (dup, F_DUPFD): it has
   the same O_NONBLOCK underneath, so it inherits the caller's view. */
static void pfd_copy(int oldfd, int newfd)
{
    struct pfd *src = pfd_peek(oldfd);
    if (!src || pfd_state(src) != PFD_MANAGED) {
        pfd_forget(newfd);
        return;
    }
    struct pfd *dst = pfd_get(newfd);
    if (!dst)
        return;
    atomic_store_explicit(&dst->user_nb, atomic_load(&src->user_nb),
                          memory_order_relaxed);
    atomic_store_explicit(&dst->stream, atomic_load(&src->stream),
                          memory_order_relaxed);
    atomic_store_explicit(&dst->is_sock, atomic_load(&src->is_sock),
                          memory_order_relaxed);
    atomic_store_explicit(&dst->rcvtimeo, atomic_load(&src->rcvtimeo),
                          memory_order_relaxed);
    atomic_store_explicit(&dst->sndtimeo, atomic_load(&src->sndtimeo),
                          memory_order_relaxed);
    atomic_store_explicit(&dst->state, PFD_MANAGED, memory_order_release);
}

/* A socket timeout option in µs (0 = none); read once at first sight. */
static int64_t sock_timeo(int fd, int opt)
{
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) != 0)
        return 0;
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Look at fd for the first time, from a greenlet: decide whether we
   manage it and, if so, put it in O_NONBLOCK and remember the caller's
   own flag.  Returns the entry, or NULL when the fd passes through
   (including a bad fd: the real call then reports EBADF). */
static struct pfd *first_sight(int fd)
{
    struct pfd *e = pfd_get(fd);
    if (!e)
        return NULL;
    for (int spins = 0;; spins++) {
        unsigned char st = PFD_UNKNOWN;
        if (atomic_compare_exchange_strong(&e->state, &st, PFD_BUSY))
            break;
        if (st == PFD_PASS)
            return NULL;
        if (st == PFD_MANAGED)
            return e;
        /* Another thread is looking at the same fd right now: it is a
           few syscalls away from done.  (Or a signal handler interrupted
           this very thread's first sight: never wait for ourselves.) */
        if (spins == 100)
            return NULL;
        sched_yield();
    }
    unsigned char result = PFD_PASS;
    int saved_errno = errno; /* the caller's call has not failed yet */
    struct stat sb;
    int fl = REAL(fcntl)(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &sb) != 0)
        goto out_unknown; /* not an open fd: look again next time */
    int sock = S_ISSOCK(sb.st_mode);
    if (!sock && !(S_ISFIFO(sb.st_mode) && fd > STDERR_FILENO))
        goto out;
    int user_nb = 0;
    if (!(fl & O_NONBLOCK)) {
        if (REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) != 0)
            goto out;
    } else if (ops->io_nonblock(fd, &user_nb) != 0) {
        /* Already non-blocking: set by the caller, unless libgreen set
           it on a fd it created (green_accept, green_tcp_connect), which
           its io table knows. */
        user_nb = 1;
    }
    int stream = 0;
    int64_t rcv = 0, snd = 0;
    if (sock) {
        int type = 0;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
            stream = type == SOCK_STREAM;
        rcv = sock_timeo(fd, SO_RCVTIMEO);
        snd = sock_timeo(fd, SO_SNDTIMEO);
    }
    atomic_store_explicit(&e->user_nb, (unsigned char)user_nb,
                          memory_order_relaxed);
    atomic_store_explicit(&e->stream, (unsigned char)stream,
                          memory_order_relaxed);
    atomic_store_explicit(&e->is_sock, (unsigned char)sock,
                          memory_order_relaxed);
    atomic_store_explicit(&e->rcvtimeo, rcv, memory_order_relaxed);
    atomic_store_explicit(&e->sndtimeo, snd, memory_order_relaxed);
    result = PFD_MANAGED;
out:
    atomic_store_explicit(&e->state, result, memory_order_release);
    errno = saved_errno;
    return result == PFD_MANAGED ? e : NULL;
out_unknown:
    atomic_store_explicit(&e->state, PFD_UNKNOWN, memory_order_release);
    errno = saved_errno;
    return NULL;
}

/* The entry of fd if a call on it must behave as blocking on top of
   O_NONBLOCK (managed, caller left it blocking), else NULL: the call is
   the plain libc one.  First sight only happens in a greenlet. */
static inline struct pfd *blocking_fd(int fd)
{
    if (LIKELY(!is_active()))
        return NULL;
    struct pfd *e = pfd_peek(fd);
    unsigned st = e ? pfd_state(e) : PFD_UNKNOWN;
    if (LIKELY(st == PFD_MANAGED))
        return atomic_load_explicit(&e->user_nb, memory_order_relaxed) ? NULL
                                                                       : e;
    if (st == PFD_PASS)
        return NULL;
    if (!coop())
        return NULL;
    e = first_sight(fd);
    if (e && !atomic_load_explicit(&e->user_nb, memory_order_relaxed))
        return e;
    return NULL;
}

/******************************************************************************/
/*  Waiting                                                                   */
/******************************************************************************/

#define DIR_READ 0
#define DIR_WRITE 1

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int would_block(ssize_t r)
{
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* One call's SO_RCVTIMEO/SO_SNDTIMEO deadline, set at its first wait,
   and errno as the call found it: a call that succeeds after waiting
   leaves errno as a blocking call would have, not EAGAIN. */
struct deadline {
    double at;                  /* absolute; < 0 none; 0 not set yet */
    int saved_errno;            /* errno at the call's start */
};
#define DEADLINE_INIT {0, errno}

/* The operation on fd would block: wait until fd is ready for dir, then
   the caller retries.  Returns 0, or -1 with errno: EAGAIN when the
   socket's own timeout (timeo µs) passed, or the cooperative wait's
   error (ETIMEDOUT, ECANCELED, EBADF, ...). */
static int wait_ready(int fd, int dir, int64_t timeo, struct deadline *d)
{
    if (d->at == 0)
        d->at = timeo > 0 ? now() + (double)timeo * 1e-6 : -1;
    double timeout = -1;
    if (d->at > 0) {
        timeout = d->at - now();
        if (timeout <= 0) {
            errno = EAGAIN;
            return -1;
        }
    }
    if (coop()) {
        int r = dir == DIR_READ ? green_wait_read(fd, timeout)
                                : green_wait_write(fd, timeout);
        if (r == 0) {
            errno = d->saved_errno;
            return 0;
        }
        /* Our own deadline is the socket option's (EAGAIN, like the
           kernel), unless an enclosing green_timeout fired (ETIMEDOUT). */
        if (errno == ETIMEDOUT && d->at > 0 && !ops->timeout_expired())
            errno = EAGAIN;
        return -1;
    }
    /* Outside greenlets (no hub, the hub, a callback) the caller asked
       for a blocking call on a fd we made non-blocking: block the thread
       in poll(2), which is what the kernel would have done. */
    struct pollfd p = {fd, dir == DIR_READ ? POLLIN : POLLOUT, 0};
    int ms = timeout < 0             ? -1
             : timeout * 1000 > INT_MAX ? INT_MAX
                                        : (int)ceil(timeout * 1000);
    int n = REAL(poll)(&p, 1, ms);
    if (n == 0) {
        errno = EAGAIN;
        return -1;
    }
    if (n < 0 && errno != EINTR)
        return -1;
    errno = d->saved_errno;
    return 0; /* ready, or a signal: retry (which re-checks the time) */
}

static inline int64_t rcvtimeo(const struct pfd *e)
{
    return atomic_load_explicit(&e->rcvtimeo, memory_order_relaxed);
}

static inline int64_t sndtimeo(const struct pfd *e)
{
    return atomic_load_explicit(&e->sndtimeo, memory_order_relaxed);
}

/* The retry loop of every read-side call: run `call` until it does not
   report EAGAIN, waiting for readability in between. */
#define READ_LOOP(fd, e, call)                                             \
    do {                                                                   \
        struct deadline d_ = DEADLINE_INIT;                                \
        for (;;) {                                                         \
            ssize_t r_ = (call);                                           \
            if (!would_block(r_))                                          \
                return r_;                                                 \
            if (wait_ready((fd), DIR_READ, rcvtimeo(e), &d_) != 0)         \
                return -1;                                                 \
        }                                                                  \
    } while (0)

/******************************************************************************/
/*  iovec helpers (partial writes, MSG_WAITALL)                               */
/******************************************************************************/

#define IOV_SMALL 8

/* A private, advanceable copy of a caller's iovec array. */
struct iovcopy {
    struct iovec *iov;          /* first unfinished buffer */
    int cnt;                    /* buffers left from iov on */
    struct iovec *alloc;        /* malloc'd array, NULL if `small` */
    struct iovec small[IOV_SMALL];
};

static int iov_copy(struct iovcopy *c, const struct iovec *iov, int cnt)
{
    c->alloc = NULL;
    c->iov = c->small;
    if (cnt > IOV_SMALL) {
        c->iov = c->alloc = malloc((size_t)cnt * sizeof *iov);
        if (!c->iov)
            return -1;
    }
    memcpy(c->iov, iov, (size_t)cnt * sizeof *iov);
    c->cnt = cnt;
    return 0;
}

static void iov_free(struct iovcopy *c)
{
    free(c->alloc);
}

/* Drop the first k bytes. */
static void iov_skip(struct iovcopy *c, size_t k)
{
    while (c->cnt > 0 && k >= c->iov[0].iov_len) {
        k -= c->iov[0].iov_len;
        c->iov++;
        c->cnt--;
    }
    if (c->cnt > 0) {
        c->iov[0].iov_base = (char *)c->iov[0].iov_base + k;
        c->iov[0].iov_len -= k;
    }
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t t = 0;
    for (int i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

/******************************************************************************/
/*  Reads                                                                     */
/******************************************************************************/

static ssize_t p_read(int fd, void *buf, size_t n)
{
    struct pfd *e = blocking_fd(fd);
    if (!e)
        return REAL(read)(fd, buf, n);
    READ_LOOP(fd, e, real.read(fd, buf, n));
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

PATCH_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    struct pfd *e = blocking_fd(fd);
    if (!e)
        return REAL(readv)(fd, iov, cnt);
    READ_LOOP(fd, e, real.readv(fd, iov, cnt));
}

/* recvfrom on a blocking-for-the-caller fd; MSG_WAITALL on a stream
   socket keeps receiving until n bytes, EOF or an error, as the kernel
   does for a blocking socket (with O_NONBLOCK it returns what it has). */
static ssize_t p_recvfrom(int fd, void *buf, size_t n, int flags,
                          struct sockaddr *addr, socklen_t *len)
{
    struct pfd *e = (flags & MSG_DONTWAIT) ? NULL : blocking_fd(fd);
    if (!e)
        return REAL(recvfrom)(fd, buf, n, flags, addr, len);
    if (!(flags & MSG_WAITALL) || !atomic_load(&e->stream))
        READ_LOOP(fd, e, real.recvfrom(fd, buf, n, flags, addr, len));
    struct deadline d = DEADLINE_INIT;
    size_t done = 0;
    while (done < n) {
        ssize_t r = real.recvfrom(fd, (char *)buf + done, n - done, flags,
                                  addr, len);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r == 0)
            break; /* EOF: what we have */
        if (!would_block(r) ||
            wait_ready(fd, DIR_READ, rcvtimeo(e), &d) != 0)
            return done ? (ssize_t)done : -1;
    }
    return (ssize_t)done;
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

PATCH_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    struct pfd *e = (flags & MSG_DONTWAIT) ? NULL : blocking_fd(fd);
    if (!e)
        return REAL(recvmsg)(fd, msg, flags);
    size_t total = iov_total(msg->msg_iov, (int)msg->msg_iovlen);
    if (!(flags & MSG_WAITALL) || !atomic_load(&e->stream) || total == 0)
        READ_LOOP(fd, e, real.recvmsg(fd, msg, flags));
    /* MSG_WAITALL: keep filling the rest of the buffers.  Ancillary data
       and flags come from the first successful receive. */
    struct iovcopy c;
    if (iov_copy(&c, msg->msg_iov, (int)msg->msg_iovlen) != 0)
        return -1;
    struct msghdr m = *msg;
    struct deadline d = DEADLINE_INIT;
    size_t done = 0;
    ssize_t ret;
    for (;;) {
        m.msg_iov = c.iov;
        m.msg_iovlen = (size_t)c.cnt;
        ssize_t r = real.recvmsg(fd, &m, flags);
        if (r > 0) {
            if (done == 0) {
                msg->msg_namelen = m.msg_namelen;
                msg->msg_controllen = m.msg_controllen;
                msg->msg_flags = m.msg_flags;
                m.msg_name = NULL;
                m.msg_namelen = 0;
                m.msg_control = NULL;
                m.msg_controllen = 0;
            }
            done += (size_t)r;
            if (done == total)
                break;
            iov_skip(&c, (size_t)r);
            continue;
        }
        if (r == 0)
            break;
        if (!would_block(r) ||
            wait_ready(fd, DIR_READ, rcvtimeo(e), &d) != 0) {
            if (done)
                break;
            ret = -1;
            goto out;
        }
    }
    ret = (ssize_t)done;
out:
    iov_free(&c);
    return ret;
}

/******************************************************************************/
/*  Writes                                                                    */
/******************************************************************************/

/* A blocking write returns only when everything is written (or an error
   or the socket's timeout stops it: then the count so far, or -1 if
   nothing was written).  With O_NONBLOCK underneath we loop over partial
   writes and wait for writability in between. */
#define WRITE_LOOP(fd, e, n, call_at)                                      \
    do {                                                                   \
        struct deadline d_ = DEADLINE_INIT;                                \
        size_t done_ = 0;                                                  \
        for (;;) {                                                         \
            ssize_t r_ = call_at(done_);                                   \
            if (r_ >= 0) {                                                 \
                done_ += (size_t)r_;                                       \
                if (done_ >= (n))                                          \
                    return (ssize_t)done_;                                 \
                continue;                                                  \
            }                                                              \
            if (!would_block(r_) ||                                        \
                wait_ready((fd), DIR_WRITE, sndtimeo(e), &d_) != 0)        \
                return done_ ? (ssize_t)done_ : -1;                        \
        }                                                                  \
    } while (0)

static ssize_t p_write(int fd, const void *buf, size_t n)
{
    struct pfd *e = blocking_fd(fd);
    if (!e || n == 0)
        return REAL(write)(fd, buf, n);
#define WRITE_AT(k) real.write(fd, (const char *)buf + (k), n - (k))
    WRITE_LOOP(fd, e, n, WRITE_AT);
#undef WRITE_AT
}

PATCH_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    return p_write(fd, buf, n);
}

static ssize_t p_sendto(int fd, const void *buf, size_t n, int flags,
                        const struct sockaddr *addr, socklen_t len)
{
    struct pfd *e = (flags & MSG_DONTWAIT) ? NULL : blocking_fd(fd);
    if (!e || n == 0)
        return REAL(sendto)(fd, buf, n, flags, addr, len);
#define SENDTO_AT(k)                                                       \
    real.sendto(fd, (const char *)buf + (k), n - (k), flags, addr, len)
    WRITE_LOOP(fd, e, n, SENDTO_AT);
#undef SENDTO_AT
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

/* writev and sendmsg: the same loop over an advancing copy of the iovec
   array (the caller's is const).  Ancillary data goes with the first
   chunk only. */
static ssize_t vec_write(int fd, struct pfd *e, const struct msghdr *msg,
                         int flags, int is_msg)
{
    size_t total = iov_total(msg->msg_iov, (int)msg->msg_iovlen);
    struct msghdr m = *msg;
    struct deadline d = DEADLINE_INIT;
    struct iovcopy c;
    int copied = 0;
    size_t done = 0;
    ssize_t ret;
    for (;;) {
        ssize_t r = is_msg ? real.sendmsg(fd, &m, flags)
                           : real.writev(fd, m.msg_iov, (int)m.msg_iovlen);
        if (r >= 0) {
            done += (size_t)r;
            if (done >= total)
                break;
            if (!copied) {
                if (iov_copy(&c, msg->msg_iov, (int)msg->msg_iovlen) != 0) {
                    ret = (ssize_t)done; /* ENOMEM: report the progress */
                    goto out;
                }
                copied = 1;
            }
            iov_skip(&c, (size_t)r);
            m.msg_iov = c.iov;
            m.msg_iovlen = (size_t)c.cnt;
            m.msg_control = NULL;
            m.msg_controllen = 0;
            continue;
        }
        if (!would_block(r) ||
            wait_ready(fd, DIR_WRITE, sndtimeo(e), &d) != 0) {
            ret = done ? (ssize_t)done : -1;
            goto out;
        }
    }
    ret = (ssize_t)done;
out:
    if (copied)
        iov_free(&c);
    return ret;
}

PATCH_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    struct pfd *e = blocking_fd(fd);
    if (!e || cnt <= 0)
        return REAL(writev)(fd, iov, cnt);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)cnt;
    return vec_write(fd, e, &m, 0, 0);
}

PATCH_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct pfd *e = (flags & MSG_DONTWAIT) ? NULL : blocking_fd(fd);
    if (!e || !msg)
        return REAL(sendmsg)(fd, msg, flags);
    return vec_write(fd, e, msg, flags, 1);
}

/******************************************************************************/
/*  Accept, connect                                                           */
/******************************************************************************/

static int p_accept4(int fd, struct sockaddr *addr, socklen_t *len,
                     int flags)
{
    struct pfd *e = blocking_fd(fd);
    int c;
    if (!e) {
        c = REAL(accept4)(fd, addr, len, flags);
    } else {
        struct deadline d = DEADLINE_INIT;
        for (;;) {
            c = real.accept4(fd, addr, len, flags);
            if (!would_block(c))
                break;
            if (wait_ready(fd, DIR_READ, rcvtimeo(e), &d) != 0)
                return -1;
        }
    }
    /* A fresh fd: whatever the table knew about its number is stale.
       (Accepted sockets never inherit O_NONBLOCK; first sight will see
       the caller's SOCK_NONBLOCK.) */
    if (c >= 0 && is_active())
        pfd_forget(c);
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

PATCH_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    struct pfd *e = blocking_fd(fd);
    if (!e)
        return REAL(connect)(fd, addr, len);
    const struct sockaddr *sa = SA(addr);
    struct deadline d = DEADLINE_INIT;
    double backoff = 0.001;
    for (;;) {
        if (real.connect(fd, sa, len) == 0)
            return 0;
        if (errno == EINPROGRESS)
            break;
        if (errno != EAGAIN || !sa || sa->sa_family != AF_UNIX)
            return -1;
        /* A full AF_UNIX backlog: the socket polls writable at once, so
           back off and retry, as a blocking connect keeps waiting. */
        if (coop() ? green_sleep(backoff) != 0
                   : REAL(usleep)((useconds_t)(backoff * 1e6)) != 0)
            return -1;
        if (backoff < 0.05)
            backoff *= 2;
    }
    /* The handshake is under way: writable once it finished, well or
       badly.  SO_SNDTIMEO bounds a blocking connect (then EINPROGRESS,
       as the kernel reports it). */
    for (;;) {
        if (wait_ready(fd, DIR_WRITE, sndtimeo(e), &d) != 0) {
            if (errno == EAGAIN)
                errno = EINPROGRESS;
            return -1;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        if (REAL(poll)(&p, 1, 0) > 0)
            break; /* not a spurious wake-up */
    }
    int err = 0;
    socklen_t sl = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
        return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/******************************************************************************/
/*  poll, select                                                              */
/******************************************************************************/

static int p_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (is_active() && timeout != 0 && coop())
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
    if (is_active() && !ss && coop() && (!ts || ts->tv_sec || ts->tv_nsec)) {
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
    /* (Beyond FD_SETSIZE the caller uses larger sets than fd_set; only
       the kernel's select handles those.) */
    if (is_active() && (!tv || tv->tv_sec || tv->tv_usec) &&
        nfds <= FD_SETSIZE && coop())
        return green_select(nfds, r, w, x, tv);
    return REAL(select)(nfds, r, w, x, tv);
}

PATCH_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x,
                         const struct timespec *ts, const sigset_t *ss)
{
    if (is_active() && !ss && (!ts || ts->tv_sec || ts->tv_nsec) &&
        nfds <= FD_SETSIZE && coop()) {
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
/*  close, fcntl, ioctl, setsockopt, fd creation                              */
/******************************************************************************/

PATCH_EXPORT int close(int fd)
{
    if (is_active()) {
        pfd_forget(fd);
        /* What green_close does before closing: wake the fd's waiters in
           this thread's hub (if it has one; also from the hub or a
           callback) with EBADF and forget its watchers, so that the
           number's next fd starts fresh.  Never creates a hub.  The
           close itself stays libc's. */
        ops->io_forget(fd);
    }
    return REAL(close)(fd);
}

/* libgreen's green_close, wrapped: a fd closed through the API must
   leave the table too, or its number's next fd would inherit the old
   state.  libgreen's own calls to green_close (green_server) come
   through here as well (default-visibility symbols go through the PLT). */
PATCH_EXPORT int green_close(int fd)
{
    real_ensure();
    pfd_forget(fd);
    if (!real.green_close) {
        errno = ENOSYS;
        return -1;
    }
    return real.green_close(fd);
}

PATCH_EXPORT int fclose(FILE *f)
{
    if (is_active() && f) {
        int fd = fileno(f);
        if (fd >= 0) {
            pfd_forget(fd);
            ops->io_forget(fd);
        }
    }
    return REAL(fclose)(f);
}

/* fcntl's third argument is an int or a pointer depending on cmd; like
   glibc, read it as a pointer-sized value and pass it on. */
/* The entry of fd if we manage it, for the calls that read or change
   O_NONBLOCK.  In a greenlet a fd we have not seen yet is looked at
   first, so that the caller's view is the same before and after its
   first read: a fd that libgreen itself created non-blocking
   (green_accept, green_tcp_connect) looks blocking to plain libc code
   that never asked for O_NONBLOCK. */
static struct pfd *managed_fd(int fd)
{
    struct pfd *e = pfd_peek(fd);
    unsigned st = e ? pfd_state(e) : PFD_UNKNOWN;
    if (st == PFD_MANAGED)
        return e;
    if (st == PFD_UNKNOWN && coop())
        return first_sight(fd);
    return NULL;
}

static int p_fcntl(int (*fn)(int, int, ...), int fd, int cmd, void *arg)
{
    if (!is_active())
        return fn(fd, cmd, arg);
    struct pfd *e = NULL;
    if (cmd == F_GETFL || cmd == F_SETFL)
        e = managed_fd(fd);
    int managed = e != NULL;
    switch (cmd) {
    case F_GETFL: {
        int fl = fn(fd, cmd);
        if (fl >= 0 && managed) {
            /* Show the caller's O_NONBLOCK, not ours. */
            fl &= ~O_NONBLOCK;
            if (atomic_load(&e->user_nb))
                fl |= O_NONBLOCK;
        }
        return fl;
    }
    case F_SETFL: {
        int fl = (int)(intptr_t)arg;
        if (!managed)
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
            pfd_copy(fd, r);
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
        struct pfd *e = managed_fd(fd);
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

PATCH_EXPORT int setsockopt(int fd, int level, int opt, const void *val,
                            socklen_t len)
{
    int r = REAL(setsockopt)(fd, level, opt, val, len);
    if (r == 0 && is_active() && level == SOL_SOCKET &&
        (opt == SO_RCVTIMEO || opt == SO_SNDTIMEO) &&
        len >= sizeof(struct timeval)) {
        /* The kernel ignores these on a non-blocking fd, so we keep them
           to bound our waits. */
        struct pfd *e = pfd_peek(fd);
        if (e && pfd_state(e) == PFD_MANAGED) {
            const struct timeval *tv = val;
            int64_t us = (int64_t)tv->tv_sec * 1000000 + tv->tv_usec;
            atomic_store(opt == SO_RCVTIMEO ? &e->rcvtimeo : &e->sndtimeo,
                         us < 0 ? 0 : us);
        }
    }
    return r;
}

/* New fds: the number may have belonged to a fd closed behind our back
   (fclose of a FILE's fd, close_range, a raw syscall). */
PATCH_EXPORT int socket(int domain, int type, int protocol)
{
    int fd = REAL(socket)(domain, type, protocol);
    if (fd >= 0 && is_active())
        pfd_forget(fd);
    return fd;
}

PATCH_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = REAL(socketpair)(domain, type, protocol, sv);
    if (r == 0 && is_active()) {
        pfd_forget(sv[0]);
        pfd_forget(sv[1]);
    }
    return r;
}

PATCH_EXPORT int pipe(int fds[2])
{
    int r = REAL(pipe)(fds);
    if (r == 0 && is_active()) {
        pfd_forget(fds[0]);
        pfd_forget(fds[1]);
    }
    return r;
}

PATCH_EXPORT int pipe2(int fds[2], int flags)
{
    int r = REAL(pipe2)(fds, flags);
    if (r == 0 && is_active()) {
        pfd_forget(fds[0]);
        pfd_forget(fds[1]);
    }
    return r;
}

PATCH_EXPORT int dup(int fd)
{
    int r = REAL(dup)(fd);
    if (r >= 0 && is_active())
        pfd_copy(fd, r);
    return r;
}

/* dup2/dup3 replace newfd: its waiters must not sleep on a number that
   now means another file. */
static void before_replace(int oldfd, int newfd)
{
    if (oldfd != newfd && is_active()) {
        pfd_forget(newfd);
        ops->io_forget(newfd);
    }
}

PATCH_EXPORT int dup2(int oldfd, int newfd)
{
    before_replace(oldfd, newfd);
    int r = REAL(dup2)(oldfd, newfd);
    if (r >= 0 && oldfd != newfd && is_active())
        pfd_copy(oldfd, r);
    return r;
}

PATCH_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    before_replace(oldfd, newfd);
    int r = REAL(dup3)(oldfd, newfd, flags);
    if (r >= 0 && is_active())
        pfd_copy(oldfd, r);
    return r;
}

/******************************************************************************/
/*  getaddrinfo                                                               */
/******************************************************************************/

/* A numeric host (or none) never blocks: no need for a worker thread. */
static int numeric_host(const char *node, const struct addrinfo *hints)
{
    if (!node || (hints && (hints->ai_flags & AI_NUMERICHOST)))
        return 1;
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, node, buf) == 1 ||
           inet_pton(AF_INET6, node, buf) == 1;
}

PATCH_EXPORT int getaddrinfo(const char *node, const char *service,
                             const struct addrinfo *hints,
                             struct addrinfo **res)
{
    /* green_getaddrinfo runs the real getaddrinfo in a worker thread,
       which has no hub, so that call comes back here and goes to libc. */
    if (is_active() && !numeric_host(node, hints) && coop())
        return green_getaddrinfo(node, service, hints, res);
    return REAL(getaddrinfo)(node, service, hints, res);
}
