/* Regular files without blocking the hub (gevent's FileObjectThread and
   os.tp_read; libuv's io_uring file operations): green_pread,
   green_pwrite, green_fsync, green_fdatasync, green_open, and, through
   the io layer's file hook (io.h), green_read/readv/write/writev/
   write_all and libgreen-patch's read/write on a regular file.

   Why: a regular file is always "ready" (poll says so, read never says
   EAGAIN), so the readiness path reads in the hub's thread and a cold
   disk stalls every greenlet.

   One call:
     1. A read first tries preadv2(RWF_NOWAIT): data in the page cache
        comes back at once, with one syscall, in any context (even after
        a kill).  A short cached read that did not reach the end of the
        file goes on with the rest in step 3.
     2. In the hub, a libev or link callback (where nothing may park) the
        call is the plain blocking syscall, as gevent's threadpool runs a
        function at once from the hub.
     3. Else a backend does it while the greenlet parks on one clause:
        - io_uring (liburing): one ring per hub, created on first use;
          completions are signalled through an eventfd registered with
          io_uring_register_eventfd (the _async form leaves completions
          posted from task work unsignalled) that an ev_io of the hub
          watches.  Requests go straight to the kernel's io-wq workers
          (IOSQE_ASYNC, see uring_do) and transfer to and from the
          caller's buffer directly, so a call never returns while its
          request may still touch that memory: a kill or timeout
          submits IORING_OP_ASYNC_CANCEL and then waits without
          interruption (GREEN__WAIT_NOCANCEL) for the request's own
          completion, which comes soon for a regular file; a greenlet
          that green_shutdown discards waits for it in its clause's
          undo, blocking the thread.
        - the threadpool: one job per chunk of at most FILE_CHUNK bytes,
          on a dup of the fd (a green_close and reuse of the number
          meanwhile cannot redirect it), through a bounce buffer the job
          owns: a killed caller returns at once and its job runs on,
          orphaned, into memory that is freed when it ends.
   A kill or timeout in step 3 gives ECANCELED/ETIMEDOUT (or the bytes
   already transferred by earlier steps or chunks); whether the request
   itself happened is unknown.

   The backend is chosen when a hub first does file I/O: the environment
   variable GREEN_FILE_BACKEND=io_uring|threadpool forces one; by default
   io_uring, unless it cannot be had (built without liburing,
   io_uring_queue_init fails with ENOSYS, EPERM under seccomp, ENOMEM)
   or the program runs under Valgrind (memcheck does not see what the
   kernel writes through io_uring): then the threadpool, silently.

   green_fork: the child drops the parent's ring without touching the
   kernel object both share (only its own fds and mappings go); calls
   that waited on it fail with ECANCELED there (the request goes on in
   the parent), and the next call makes a new ring. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "core/hub.h"
#include "core/iov.h"
#include "core/sys.h"
#include "io/fd.h"
#include "io/io.h"
#include "proc.h"

#ifdef GREEN_HAVE_LIBURING
#include <liburing.h>
#include <sys/eventfd.h>
#endif
#ifdef GREEN_VALGRIND
#include <valgrind/valgrind.h>
#endif

#define FILE_CHUNK (1u << 20)   /* bytes per threadpool job */
#define URING_ENTRIES 256       /* SQ; the CQ has twice as many */
#define URING_MAX_INFLIGHT 256  /* SQEs (requests and cancels) whose
                                   completion has not been seen: the CQ
                                   can never overflow */

enum file_op { FILE_READ, FILE_WRITE, FILE_FSYNC, FILE_FDATASYNC, FILE_OPEN };
enum file_backend { BACKEND_THREADPOOL, BACKEND_URING };

/* One call's request. */
struct file_req {
    int op;                     /* enum file_op */
    int fd;                     /* FILE_OPEN: unused */
    const struct iovec *iov;    /* READ/WRITE */
    int cnt;
    off_t off;                  /* -1: the file position */
    const char *path;           /* FILE_OPEN */
    int flags;
    mode_t mode;
};

/* The module's state in each hub. */
struct file_state {
    int backend;                /* enum file_backend */
#ifdef GREEN_HAVE_LIBURING
    int ring_ready;             /* ring, efd and io exist */
    int broken;                 /* a submit failed for good: no more */
    struct io_uring ring;
    int efd;                    /* completions -> the hub */
    ev_io io;
    struct green__list ops;     /* requests whose completion is due */
    size_t inflight;            /* SQEs whose completion was not seen */
    int referenced;             /* io counts toward the loop's refs */
#endif
};

/******************************************************************************/
/*  Syscalls and iovecs                                                       */
/******************************************************************************/

/* preadv2/pwritev2 through syscall(2), which libgreen-patch does not
   interpose (core/sys.h).  off -1 is the file position. */
static ssize_t sys_rw2(long nr, int fd, const struct iovec *iov, int cnt,
                       off_t off, int flags)
{
    unsigned long lo = (unsigned long)(uint64_t)off;
    unsigned long hi = sizeof(long) >= 8 ? 0
                                         : (unsigned long)((uint64_t)off >> 32);
    return syscall(nr, fd, iov, cnt, lo, hi, flags);
}

/* The plain blocking call of r (the hub context, the threadpool's jobs). */
static ssize_t req_sys(const struct file_req *r, int fd,
                       const struct iovec *iov, int cnt)
{
    switch (r->op) {
    case FILE_READ:
        return sys_rw2(SYS_preadv2, fd, iov, cnt, r->off, 0);
    case FILE_WRITE:
        return sys_rw2(SYS_pwritev2, fd, iov, cnt, r->off, 0);
    case FILE_FSYNC:
        return syscall(SYS_fsync, fd);
    case FILE_FDATASYNC:
        return syscall(SYS_fdatasync, fd);
    default:
        return syscall(SYS_openat, AT_FDCWD, r->path, r->flags, r->mode);
    }
}

/* Copy between the caller's iovecs, `skip` bytes in, and a flat buffer:
   to_iov 1 scatters buf into them, 0 gathers them into buf. */
static void iov_copy(const struct iovec *iov, int cnt, size_t skip,
                     char *buf, size_t n, int to_iov)
{
    for (int i = 0; i < cnt && n > 0; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        size_t k = len - skip < n ? len - skip : n;
        char *p = (char *)iov[i].iov_base + skip;
        if (to_iov)
            memcpy(p, buf, k);
        else
            memcpy(buf, p, k);
        buf += k;
        n -= k;
        skip = 0;
    }
}

/* After a short read from the page cache that ended at off_after (-1:
   the file position): 1 if that is the end of a regular file, so there
   is nothing to wait for. */
static int at_eof(int fd, off_t off_after)
{
    struct stat sb;
    if (off_after < 0)
        off_after = lseek(fd, 0, SEEK_CUR);
    return off_after >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
           off_after >= sb.st_size;
}

/******************************************************************************/
/*  The threadpool backend                                                    */
/******************************************************************************/

/* One job: the request for at most FILE_CHUNK bytes, and the memory the
   worker touches, all owned by the job. */
struct tp_job {
    struct file_req req;
    int fd;                     /* the worker's fd (a dup, or req.fd) */
    int own_fd;                 /* fd is our dup: close it */
    size_t n;                   /* bytes of buf (READ/WRITE) */
    ssize_t res;                /* the syscall's result and errno */
    int err;
    char buf[];                 /* the bounce buffer, or the path */
};

static void *tp_run(void *arg)
{
    struct tp_job *j = arg;
    struct iovec iov = {j->buf, j->n};
    j->res = req_sys(&j->req, j->fd, &iov, 1);
    j->err = errno;
    return NULL;
}

static void tp_free(struct tp_job *j)
{
    if (j->own_fd)
        green__sys_close(j->fd);
    free(j);
}

/* The caller is gone (killed, timed out): free the job when it ends, and
   what it produced (an opened fd). */
static void tp_orphan(void *arg, int finished)
{
    struct tp_job *j = arg;
    if (finished && j->req.op == FILE_OPEN && j->res >= 0)
        green__sys_close((int)j->res);
    tp_free(j);
}

/* One job: r's transfer of len bytes, `done` bytes into it (READ,
   WRITE), or r's whole call.  The result, or -1 with errno. */
static ssize_t tp_job_run(const struct file_req *r, size_t done, size_t len)
{
    size_t extra = r->op == FILE_OPEN ? strlen(r->path) + 1 : len;
    struct tp_job *j = malloc(sizeof *j + extra);
    if (!j)
        return green__fail(ENOMEM);
    j->req = *r;
    j->req.off = r->off < 0 ? -1 : r->off + (off_t)done;
    j->n = len;
    j->fd = -1;
    j->own_fd = 0;
    if (r->op == FILE_OPEN) {
        memcpy(j->buf, r->path, extra);
        j->req.path = j->buf;
    } else {
        /* A dup shares the open file description (position, O_APPEND);
           out of fds, the number itself will do. */
        j->fd = (int)syscall(SYS_fcntl, r->fd, F_DUPFD_CLOEXEC, 0);
        j->own_fd = j->fd >= 0;
        if (j->fd < 0 && errno != EMFILE) {
            free(j);
            return -1;
        }
        if (j->fd < 0)
            j->fd = r->fd;
    }
    if (r->op == FILE_WRITE)
        iov_copy(r->iov, r->cnt, done, j->buf, len, 0);
    int err = green__threadpool_run(tp_run, j, NULL, tp_orphan);
    if (err)
        return green__fail(err); /* j belongs to the pool now */
    ssize_t res = j->res;
    err = j->err;
    if (res > 0 && r->op == FILE_READ)
        iov_copy(r->iov, r->cnt, done, j->buf, (size_t)res, 1);
    tp_free(j);
    if (res < 0)
        errno = err;
    return res;
}

/* r by the threadpool: total bytes in chunks (stopping at a short one),
   or the one call. */
static ssize_t tp_do(const struct file_req *r, size_t total)
{
    if (r->op != FILE_READ && r->op != FILE_WRITE)
        return tp_job_run(r, 0, 0);
    size_t done = 0;
    do {
        size_t len = total - done < FILE_CHUNK ? total - done : FILE_CHUNK;
        ssize_t k = tp_job_run(r, done, len);
        if (k < 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)k;
        if ((size_t)k < len)
            break;
    } while (done < total);
    return (ssize_t)done;
}

/******************************************************************************/
/*  The io_uring backend                                                      */
/******************************************************************************/

#ifdef GREEN_HAVE_LIBURING

/* What a parked caller does, for green_dump (by enum file_op). */
static const char *const op_what[] = {"reading a file", "writing a file",
                                      "syncing a file", "syncing a file",
                                      "opening a file"};

/* One request, on its caller's stack: the caller does not return before
   its completion was seen (or, in a green_fork child, dropped). */
struct uop {
    struct green__list node;    /* in st->ops until its completion */
    struct file_state *st;
    struct green__clause *c;    /* the caller's clause while parked */
    int res;                    /* the completion's result */
    int done;
};

/* Reference the eventfd watcher exactly while requests are due, so the
   hub polls for them instead of reporting EDEADLK. */
static void uring_update_ref(struct green__hub *hub, struct file_state *st)
{
    int due = !green__list_empty(&st->ops);
    if (due && !st->referenced)
        ev_ref(hub->loop);
    else if (!due && st->referenced)
        ev_unref(hub->loop);
    st->referenced = due;
}

/* Take every completion from the CQ. */
static void uring_reap(struct file_state *st)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&st->ring, &cqe) == 0) {
        struct uop *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&st->ring, cqe);
        st->inflight--;
        if (!op)
            continue; /* a cancel's own completion */
        op->res = res;
        op->done = 1;
        green__list_remove(&op->node);
        if (op->c)
            green__clause_fire(op->c, 0);
    }
}

static void uring_ready(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct file_state *st = w->data;
    uint64_t v;
    (void)green__sys_read(st->efd, &v, sizeof v);
    uring_reap(st);
    uring_update_ref(green__hub_peek(), st);
}

/* Submit the queued SQE.  0, or an errno value after which the ring
   takes no more requests (what stays queued never reaches the kernel:
   nothing submits again). */
static int uring_submit(struct file_state *st)
{
    for (int tries = 0;; tries++) {
        int r = io_uring_submit(&st->ring);
        if (r > 0)
            return 0;
        if ((r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) ||
            tries == 100) {
            st->broken = 1;
            return r < 0 ? -r : EAGAIN;
        }
        uring_reap(st); /* a full CQ (EBUSY) drains */
        sched_yield();
    }
}

/* Ask the kernel to hurry op's request along (it completes with
   -ECANCELED if it had not started; a started read usually finishes). */
static void uring_cancel(struct file_state *st, struct uop *op)
{
    if (st->broken)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (!sqe)
        return;
    io_uring_prep_cancel(sqe, op, 0);
    io_uring_sqe_set_data(sqe, NULL);
    if (uring_submit(st) == 0)
        st->inflight++;
}

/* The caller's clause leaves the request.  If its greenlet is not the
   one running, green_shutdown is discarding it and its stack goes next:
   wait for the completion here, blocking the thread. */
static void uop_undo(struct green__clause *c)
{
    struct uop *op = c->data;
    op->c = NULL;
    if (op->done || c->g->hub->current == c->g)
        return;
    struct file_state *st = op->st;
    uring_cancel(st, op);
    while (!op->done) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&st->ring, &cqe) == 0)
            uring_reap(st);
    }
}

/* Park until op completes (or a kill/timeout, unless flags has
   GREEN__WAIT_NOCANCEL).  0 or an errno value. */
static int uop_park(struct uop *op, const char *what, int flags)
{
    struct green__wait w;
    struct green__clause c;
    int err = green__wait_begin(&w, -1, what, flags);
    if (err)
        return err;
    green__wait_add(&w, &c, uop_undo, op);
    op->c = &c;
    return green__wait_park(&w);
}

static void uring_prep(struct io_uring_sqe *sqe, const struct file_req *r)
{
    switch (r->op) {
    case FILE_READ:
        io_uring_prep_readv(sqe, r->fd, r->iov, (unsigned)r->cnt,
                            (uint64_t)r->off);
        break;
    case FILE_WRITE:
        io_uring_prep_writev(sqe, r->fd, r->iov, (unsigned)r->cnt,
                             (uint64_t)r->off);
        break;
    case FILE_FSYNC:
        io_uring_prep_fsync(sqe, r->fd, 0);
        break;
    case FILE_FDATASYNC:
        io_uring_prep_fsync(sqe, r->fd, IORING_FSYNC_DATASYNC);
        break;
    default:
        io_uring_prep_openat(sqe, AT_FDCWD, r->path, r->flags, r->mode);
        break;
    }
}

/* r through the ring.  The result, -1 with errno, or -2: the ring cannot
   take it (full, broken), use the threadpool. */
static ssize_t uring_do(struct green__hub *hub, struct file_state *st,
                        const struct file_req *r)
{
    if (st->broken || st->inflight + 2 > URING_MAX_INFLIGHT)
        return -2;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (!sqe)
        return -2;
    struct uop op = {.st = st};
    green__list_init(&op.node);
    uring_prep(sqe, r);
    /* Straight to the kernel's workers: issued inline, a buffered read
       that missed the cache submits its bios from this thread and can
       sleep there (a full device queue), stalling the hub for as long.
       Cached data never gets here (RWF_NOWAIT came first). */
    io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
    io_uring_sqe_set_data(sqe, &op);
    if (uring_submit(st) != 0)
        return -2;
    st->inflight++;
    green__list_push(&st->ops, &op.node);
    uring_reap(st); /* done during the submit (cached, or an error) */
    int err = 0;
    if (!op.done) {
        uring_update_ref(hub, st);
        err = uop_park(&op, op_what[r->op], 0);
        if (!op.done) {
            /* Killed or timed out: the kernel may still use the caller's
               memory until the completion comes. */
            uring_cancel(st, &op);
            while (!op.done)
                (void)uop_park(&op, "cancelling file I/O",
                               GREEN__WAIT_NOCANCEL);
        }
        uring_update_ref(hub, st);
    }
    if (err) {
        if (r->op == FILE_OPEN && op.res >= 0)
            green__sys_close(op.res);
        return green__fail(err);
    }
    /* A file system without non-blocking support under an O_NONBLOCK
       fd makes io_uring give up with EAGAIN: a worker blocks instead. */
    if (op.res == -EAGAIN && (r->op == FILE_READ || r->op == FILE_WRITE))
        return -2;
    return op.res < 0 ? green__fail(-op.res) : op.res;
}

/* Make the ring.  0, or -1 when io_uring cannot be had here. */
static int uring_init(struct green__hub *hub, struct file_state *st)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    if (io_uring_queue_init_params(URING_ENTRIES, &st->ring, &p) < 0)
        return -1;
    /* The file position (offset -1) and no dropped completions. */
    if (!(p.features & IORING_FEAT_RW_CUR_POS) ||
        !(p.features & IORING_FEAT_NODROP))
        goto fail_ring;
    st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (st->efd < 0)
        goto fail_ring;
    if (io_uring_register_eventfd(&st->ring, st->efd) < 0)
        goto fail_efd;
    green__list_init(&st->ops);
    ev_io_init(&st->io, uring_ready, st->efd, EV_READ);
    st->io.data = st;
    ev_io_start(hub->loop, &st->io);
    ev_unref(hub->loop); /* no request due: does not keep the loop */
    st->referenced = 0;
    st->inflight = 0;
    st->broken = 0;
    st->ring_ready = 1;
    return 0;
fail_efd:
    green__sys_close(st->efd);
fail_ring:
    io_uring_queue_exit(&st->ring);
    return -1;
}

/* Drop the ring: its fds and mappings (in a green_fork child, only the
   child's copies: the kernel object lives on in the parent). */
static void uring_drop(struct green__hub *hub, struct file_state *st)
{
    if (!st->ring_ready)
        return;
    if (!st->referenced)
        ev_ref(hub->loop);
    ev_io_stop(hub->loop, &st->io);
    green__sys_close(st->efd);
    io_uring_queue_exit(&st->ring);
    st->ring_ready = 0;
    st->referenced = 0;
}

#endif /* GREEN_HAVE_LIBURING */

/******************************************************************************/
/*  The module                                                                */
/******************************************************************************/

static void file_term(struct green__hub *hub, void *state)
{
    struct file_state *st = state;
#ifdef GREEN_HAVE_LIBURING
    /* Discarded greenlets waited for their requests in their undo. */
    uring_drop(hub, st);
#else
    (void)hub;
#endif
    free(st);
}

static void file_fork(struct green__hub *hub, void *state, int phase)
{
    struct file_state *st = state;
    if (!st || phase != GREEN__FORK_CHILD)
        return;
#ifdef GREEN_HAVE_LIBURING
    if (!st->ring_ready)
        return;
    /* The requests are the parent's: the child's memory is its own copy,
       which the kernel does not write, so the callers may go. */
    struct green__list *n;
    while ((n = green__list_pop(&st->ops)) != NULL) {
        struct uop *op = green__container_of(n, struct uop, node);
        op->res = -ECANCELED;
        op->done = 1;
        if (op->c)
            green__clause_fire(op->c, ECANCELED);
    }
    uring_drop(hub, st);
#else
    (void)hub;
#endif
}

static size_t file_watchers(struct green__hub *hub, void *state)
{
    (void)hub;
#ifdef GREEN_HAVE_LIBURING
    struct file_state *st = state;
    return st->ring_ready && !green__list_empty(&st->ops);
#else
    (void)state;
    return 0;
#endif
}

static struct green__module file_module = {
    .name = "file", .term = file_term, .fork = file_fork,
    .watchers = file_watchers};

static int pick_backend(void)
{
    const char *e = getenv("GREEN_FILE_BACKEND");
    if (e && strcmp(e, "threadpool") == 0)
        return BACKEND_THREADPOOL;
    if (e && strcmp(e, "io_uring") == 0)
        return BACKEND_URING;
#ifdef GREEN_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return BACKEND_THREADPOOL;
#endif
    return BACKEND_URING;
}

/* This hub's state, created on first use with its backend (the ring
   too); NULL/ENOMEM. */
static struct file_state *file_state(struct green__hub *hub)
{
    struct file_state *st = green__module_state(hub, &file_module);
    if (GREEN_LIKELY(st != NULL))
        return st;
    st = green__module_new(hub, &file_module, sizeof *st);
    if (!st)
        return NULL;
    st->backend = pick_backend();
    return st;
}

/* The backend, making the ring on first use (falling back silently). */
static int backend_of(struct green__hub *hub, struct file_state *st)
{
#ifdef GREEN_HAVE_LIBURING
    if (st->backend == BACKEND_URING && !st->ring_ready &&
        uring_init(hub, st) != 0)
        st->backend = BACKEND_THREADPOOL;
#else
    (void)hub;
    st->backend = BACKEND_THREADPOOL;
#endif
    return st->backend;
}

/* r (total bytes for READ/WRITE) by this hub's backend, parking. */
static ssize_t backend_do(struct green__hub *hub, const struct file_req *r,
                          size_t total)
{
    struct file_state *st = file_state(hub);
    if (!st)
        return -1;
    if (backend_of(hub, st) == BACKEND_URING) {
#ifdef GREEN_HAVE_LIBURING
        ssize_t res = uring_do(hub, st, r);
        if (res != -2)
            return res;
#endif
    }
    return tp_do(r, total);
}

/* r (total bytes for READ/WRITE): block 1 (the hub or a callback,
   where nothing may park) the plain blocking call, else by this hub's
   backend, parking. */
static ssize_t file_run(struct green__hub *hub, const struct file_req *r,
                        size_t total, int block)
{
    if (block)
        return req_sys(r, r->fd, r->iov, r->cnt);
    return backend_do(hub, r, total);
}

/* The rest of a read after `done` bytes came from the page cache. */
static ssize_t read_rest(struct green__hub *hub, const struct file_req *r,
                         size_t done, size_t total, int block)
{
    struct green__iovcopy c;
    if (green__iov_copy(&c, r->iov, r->cnt) != 0)
        return (ssize_t)done;
    green__iov_skip(&c, done);
    struct file_req rest = *r;
    rest.iov = c.iov;
    rest.cnt = c.cnt;
    if (r->off >= 0)
        rest.off = r->off + (off_t)done;
    ssize_t k = file_run(hub, &rest, total - done, block);
    green__iov_free(&c);
    return k < 0 ? (ssize_t)done : (ssize_t)done + k;
}

/* One call: at once when it can, else by a backend while parking (see
   the top of the file).  total: the bytes of a READ/WRITE. */
static ssize_t file_do(const struct file_req *r, size_t total)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    size_t done = 0;
    if (r->op == FILE_READ && total > 0) {
        ssize_t k = sys_rw2(SYS_preadv2, r->fd, r->iov, r->cnt, r->off,
                            RWF_NOWAIT);
        if (k < 0 && errno != EAGAIN && errno != EOPNOTSUPP)
            return -1; /* EBADF, EISDIR, EINVAL, ESPIPE, ... */
        if (k == 0 || (size_t)k == total)
            return k;
        if (k > 0) {
            done = (size_t)k;
            if (at_eof(r->fd, r->off < 0 ? -1 : r->off + k))
                return k;
        }
    }
    int err = green__can_block(-1);
    if (err && err != EDEADLK)
        return done ? (ssize_t)done : green__fail(err);
    /* EDEADLK: the hub or a callback, where nothing may park: block. */
    int block = err == EDEADLK;
    if (done)
        return read_rest(hub, r, done, total, block);
    return file_run(hub, r, total, block);
}

/* The io layer's file hook (io.h). */
static int file_sync(int fd, int op);

static ssize_t file_rw(int fd, const struct iovec *iov, int cnt, off_t off,
                       int dir)
{
    if (dir == GREEN__IO_FSYNC || dir == GREEN__IO_FDATASYNC)
        return file_sync(fd, dir == GREEN__IO_FSYNC ? FILE_FSYNC
                                                    : FILE_FDATASYNC);
    if (cnt < 0 || cnt > IOV_MAX || (cnt > 0 && !iov))
        return green__fail(cnt < 0 || cnt > IOV_MAX ? EINVAL : EFAULT);
    size_t total = green__iov_total(iov, cnt);
    if (total > SSIZE_MAX)
        return green__fail(EINVAL);
    struct file_req r = {.op = dir == GREEN__IO_READ ? FILE_READ : FILE_WRITE,
                         .fd = fd, .iov = iov, .cnt = cnt, .off = off};
    if (total == 0) /* nothing to wait for: the syscall's checks */
        return req_sys(&r, fd, iov, cnt);
    return file_do(&r, total);
}

__attribute__((constructor)) static void file_register(void)
{
    green__io_set_file_rw(file_rw);
}

/******************************************************************************/
/*  Public                                                                    */
/******************************************************************************/

/* green_pread/green_pwrite: the checks the offset form adds. */
static ssize_t file_prw(int fd, const void *buf, size_t n, off_t off,
                        int dir)
{
    if (fd < 0)
        return green__fail(EBADF);
    if (off < 0 || n > SSIZE_MAX)
        return green__fail(EINVAL);
    if (!buf && n > 0)
        return green__fail(EFAULT);
    struct iovec iov = {(void *)buf, n};
    return file_rw(fd, &iov, 1, off, dir);
}

ssize_t green_pread(int fd, void *buf, size_t n, off_t off)
{
    return file_prw(fd, buf, n, off, GREEN__IO_READ);
}

ssize_t green_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return file_prw(fd, buf, n, off, GREEN__IO_WRITE);
}

static int file_sync(int fd, int op)
{
    if (fd < 0)
        return green__fail(EBADF);
    struct file_req r = {.op = op, .fd = fd};
    return (int)file_do(&r, 0);
}

int green_fsync(int fd)
{
    return file_sync(fd, FILE_FSYNC);
}

int green_fdatasync(int fd)
{
    return file_sync(fd, FILE_FDATASYNC);
}

int green_open(const char *path, int flags, mode_t mode)
{
    if (!path)
        return green__fail(EFAULT);
    struct file_req r = {.op = FILE_OPEN, .fd = -1, .path = path,
                         .flags = flags, .mode = mode};
    int fd = (int)file_do(&r, 0);
    /* A fresh number: whatever the table knew about an fd closed behind
       our back with this number is stale. */
    if (fd >= 0)
        green__fd_forget(fd);
    return fd;
}

const char *green_file_backend(void)
{
    struct green__hub *hub = green__hub_get();
    struct file_state *st = hub ? file_state(hub) : NULL;
    if (!st)
        return NULL;
    return backend_of(hub, st) == BACKEND_URING ? "io_uring" : "threadpool";
}
