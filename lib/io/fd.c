/* The process-wide fd table (see fd.h). */
#include "fd.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/sys.h"
#include "core/util.h"
#include "io.h"

#define CHUNK_SHIFT 10
#define CHUNK (1 << CHUNK_SHIFT)
#define CHUNKS 16384 /* 16 M fds: far above any kernel's default nr_open */

/* The first chunk (fds 0-1023, nearly every program's) is static: a
   first sight there never allocates. */
static struct green__fdinfo chunk0[CHUNK];
static _Atomic(struct green__fdinfo *) chunks[CHUNKS] = {chunk0};

/* The soft RLIMIT_NOFILE as last read (0: not yet).  Raising the limit
   is seen on the next fd above the cached value. */
static atomic_long fd_limit;

/* 1 if the process can have fd.  Below the cached limit: no syscall.
   Above it, the limit is read again (it may have been raised), and an
   fd that is open anyway (the limit was lowered after it was opened) is
   still valid. */
int green__fd_possible(int fd)
{
    if (fd < 0)
        return 0;
    if (GREEN_LIKELY(fd < atomic_load_explicit(&fd_limit,
                                               memory_order_relaxed)))
        return 1;
    struct rlimit rl;
    long lim = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        lim = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LONG_MAX
                  ? LONG_MAX
                  : (long)rl.rlim_cur;
    atomic_store_explicit(&fd_limit, lim, memory_order_relaxed);
    if (fd < lim)
        return (fd >> CHUNK_SHIFT) < CHUNKS;
    return (fd >> CHUNK_SHIFT) < CHUNKS &&
           green__sys_fcntl(fd, F_GETFD, 0) >= 0;
}

struct green__fdinfo *green__fd_peek(int fd)
{
    if (GREEN_UNLIKELY(fd < 0 || (fd >> CHUNK_SHIFT) >= CHUNKS))
        return NULL;
    struct green__fdinfo *c = atomic_load_explicit(
        &chunks[fd >> CHUNK_SHIFT], memory_order_acquire);
    return c ? &c[fd & (CHUNK - 1)] : NULL;
}

/* fd's entry, allocating its chunk.  NULL with errno EBADF or ENOMEM. */
static struct green__fdinfo *fd_get(int fd)
{
    struct green__fdinfo *e = green__fd_peek(fd);
    if (GREEN_LIKELY(e != NULL))
        return e;
    if (!green__fd_possible(fd)) {
        errno = EBADF;
        return NULL;
    }
    struct green__fdinfo *c = calloc(CHUNK, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    struct green__fdinfo *expected = NULL;
    /* Lock-free: the loser of a race frees its chunk and uses the
       winner's.  Chunks live as long as the process (like its fds). */
    if (!atomic_compare_exchange_strong_explicit(
            &chunks[fd >> CHUNK_SHIFT], &expected, c, memory_order_acq_rel,
            memory_order_acquire)) {
        free(c);
        c = expected;
    }
    return &c[fd & (CHUNK - 1)];
}

static inline unsigned fd_state(const struct green__fdinfo *e)
{
    return atomic_load_explicit(&e->state, memory_order_acquire);
}

int green__fd_is_epoll(int fd, mode_t mode)
{
    /* Anonymous inodes (epoll, eventfd, timerfd, ...) have no file type
       in st_mode; only those cost a readlink. */
    if ((mode & S_IFMT) != 0)
        return 0;
    char path[40], target[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventpoll]") == 0;
}

static unsigned char kind_of(mode_t m)
{
    if (S_ISSOCK(m))
        return GREEN__FD_SOCKET;
    if (S_ISFIFO(m))
        return GREEN__FD_FIFO;
    if (S_ISREG(m) || S_ISBLK(m))
        return GREEN__FD_FILE;
    return GREEN__FD_OTHER; /* refined to TTY by the caller */
}

/* The look itself, with e held BUSY by this thread.  Returns the state
   to publish (MANAGED, PASS, or UNKNOWN with *err set). */
static unsigned char look(struct green__fdinfo *e, int fd, int policy,
                          int *err)
{
    struct stat sb;
    int fl = green__sys_fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fstat(fd, &sb) != 0) {
        *err = EBADF;
        return GREEN__FD_UNKNOWN; /* not open: look again next time */
    }
    if (policy == GREEN__FD_ANY && green__fd_is_epoll(fd, sb.st_mode)) {
        /* Maybe the hub's own (a stale number of the caller's that
           libev's epoll fd took): never touch its flags or watch it. */
        *err = EBADF;
        return GREEN__FD_UNKNOWN;
    }
    unsigned char kind = kind_of(sb.st_mode);
    if (kind == GREEN__FD_OTHER && S_ISCHR(sb.st_mode) && isatty(fd))
        kind = GREEN__FD_TTY;
    atomic_store_explicit(&e->kind, kind, memory_order_relaxed);
    if (policy == GREEN__FD_PATCHED &&
        !(kind == GREEN__FD_SOCKET ||
          (kind == GREEN__FD_FIFO && fd > STDERR_FILENO)))
        return GREEN__FD_PASS;
    if (!(fl & O_NONBLOCK) &&
        green__sys_fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        *err = errno;
        return GREEN__FD_UNKNOWN;
    }
    int stream = 0;
    if (kind == GREEN__FD_SOCKET) {
        int type = 0;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
            stream = type == SOCK_STREAM;
    }
    atomic_store_explicit(&e->user_nb, (fl & O_NONBLOCK) != 0,
                          memory_order_relaxed);
    atomic_store_explicit(&e->stream, (unsigned char)stream,
                          memory_order_relaxed);
    return GREEN__FD_MANAGED;
}

int green__fd_see(int fd, int policy, struct green__fdinfo **ep)
{
    struct green__fdinfo *e = fd_get(fd);
    if (!e)
        return -1;
    for (int spins = 0;; spins++) {
        unsigned char st = fd_state(e);
        if (GREEN_LIKELY(st == GREEN__FD_MANAGED)) {
            *ep = e;
            return 0;
        }
        if (st == GREEN__FD_PASS && policy == GREEN__FD_PATCHED) {
            *ep = NULL;
            return 0;
        }
        /* UNKNOWN, or PASS that libgreen's own call now takes over. */
        if (st != GREEN__FD_BUSY &&
            atomic_compare_exchange_strong(&e->state, &st, GREEN__FD_BUSY))
            break;
        /* Another thread is looking at the same fd right now: it is a
           few syscalls away from done.  (Or a signal handler interrupted
           this very thread's first sight: never wait for ourselves.) */
        if (spins == 100) {
            errno = EAGAIN;
            return -1;
        }
        if (st == GREEN__FD_BUSY)
            sched_yield();
    }
    int saved = errno, err = 0;
    unsigned char st = look(e, fd, policy, &err);
    atomic_store_explicit(&e->state, st, memory_order_release);
    if (st == GREEN__FD_UNKNOWN) {
        errno = err;
        return -1;
    }
    errno = saved;
    *ep = st == GREEN__FD_MANAGED ? e : NULL;
    return 0;
}

void green__fd_adopt(int fd, int kind)
{
    struct green__fdinfo *e = fd_get(fd);
    if (!e)
        return; /* ENOMEM: the first call will look instead */
    /* The previous fd with this number was closed behind our back. */
    green__io_forget(fd);
    atomic_store_explicit(&e->user_nb, 0, memory_order_relaxed);
    atomic_store_explicit(&e->kind, (unsigned char)kind,
                          memory_order_relaxed);
    atomic_store_explicit(&e->stream, kind == GREEN__FD_SOCKET,
                          memory_order_relaxed);
    atomic_store_explicit(&e->state, GREEN__FD_MANAGED,
                          memory_order_release);
}

void green__fd_forget(int fd)
{
    struct green__fdinfo *e = green__fd_peek(fd);
    if (e && fd_state(e) != GREEN__FD_UNKNOWN)
        atomic_store_explicit(&e->state, GREEN__FD_UNKNOWN,
                              memory_order_release);
    green__io_forget(fd);
}

void green__fd_copy(int oldfd, int newfd)
{
    if (oldfd == newfd)
        return;
    struct green__fdinfo *src = green__fd_peek(oldfd);
    if (!src || fd_state(src) != GREEN__FD_MANAGED) {
        green__fd_forget(newfd);
        return;
    }
    green__io_forget(newfd);
    struct green__fdinfo *dst = fd_get(newfd);
    if (!dst)
        return;
    atomic_store_explicit(&dst->user_nb, atomic_load(&src->user_nb),
                          memory_order_relaxed);
    atomic_store_explicit(&dst->kind, atomic_load(&src->kind),
                          memory_order_relaxed);
    atomic_store_explicit(&dst->stream, atomic_load(&src->stream),
                          memory_order_relaxed);
    atomic_store_explicit(&dst->state, GREEN__FD_MANAGED,
                          memory_order_release);
}

void green__fd_pass(int fd)
{
    struct green__fdinfo *e = fd_get(fd);
    if (!e)
        return;
    unsigned char st = fd_state(e);
    if (st == GREEN__FD_MANAGED && !atomic_load(&e->user_nb)) {
        /* We set O_NONBLOCK: give the FILE back the blocking fd it was
           opened on. */
        int fl = green__sys_fcntl(fd, F_GETFL, 0);
        if (fl >= 0)
            green__sys_fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    green__io_forget(fd);
    atomic_store_explicit(&e->state, GREEN__FD_PASS, memory_order_release);
}
