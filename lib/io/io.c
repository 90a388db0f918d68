/* Cooperative I/O on any fd: green_wait_read/write, the read/write/
   send/recv family, accept, connect and close.

   How a wait works (see io.h for the per-fd table):
     1. the call tries the non-blocking syscall; on EAGAIN it arms a
        green__io_waiter on the fd's entry and parks;
     2. the entry's ev_io fires in the hub: io_ready moves every parked
        waiter to the `woken` list and makes its greenlet runnable;
     3. the greenlet resumes, disarms (leaves the woken list) and retries.
   The watcher is not stopped in step 2: the woken greenlet normally
   parks again on the same fd before the hub polls (a keep-alive server
   reads, answers, reads EAGAIN, waits), and an untouched active watcher
   costs libev nothing.  When the last waiter leaves, the direction is
   queued on the module's stop queue, and io_prepare (an ev_prepare,
   which libev runs before it applies fd changes and polls) stops the
   watcher only if still nobody waits.  A watcher is therefore never
   active across a poll without a waiter or a woken greenlet behind it
   (no busy loop on a level-triggered fd nobody reads), and a restart
   after a stop never calls ev_io_set, so libev's epoll backend does not
   re-register the fd.  Only a fresh entry (first use, or after
   green_close) gets ev_io_set.

   Close: green_close wakes every waiter with EBADF, also the ones woken
   but not resumed yet (their park result is overwritten), stops the
   watchers, bumps the entry's generation and clears its flags, then
   closes.  A waiter that resumes after that sees a different generation
   and never touches the entry again, which may by then describe a new
   fd with the same number. */
#include "io.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sys.h"

/* Entry flags. */
#define IO_NONBLOCK 0x01      /* O_NONBLOCK is set (by us or the user) */
#define IO_USER_NONBLOCK 0x02 /* it was set before libgreen saw the fd */
#define IO_KIND_KNOWN 0x04    /* kind below is valid */

/* What a write must do to avoid SIGPIPE. */
enum io_kind {
    IO_KIND_OTHER,  /* file, tty, ...: plain write, no SIGPIPE */
    IO_KIND_SOCKET, /* send(MSG_NOSIGNAL) */
    IO_KIND_FIFO    /* write with SIGPIPE blocked and consumed */
};

/* One direction of one fd. */
struct io_dir {
    ev_io io;                   /* started while someone waits; fd and
                                   events set only when the entry is fresh */
    struct green__list waiters; /* parked green__io_waiters, FIFO */
    struct green__list woken;   /* woken by readiness, not resumed yet */
    struct green__list stop;    /* in the stop queue while a stop is due */
    struct green__fd *e;        /* the entry this belongs to */
};

struct green__fd {
    struct io_dir dir[2];       /* GREEN__IO_READ, GREEN__IO_WRITE */
    unsigned gen;               /* bumped by every reset: stale waiters
                                   recognise a closed or recycled fd */
    int fd;                     /* the fd number (table index) */
    unsigned char flags;        /* IO_* flags */
    unsigned char kind;         /* enum io_kind, if IO_KIND_KNOWN */
    unsigned char fresh;        /* watchers need ev_io_set before start */
};

/* The module's state in each hub (green__module_state(hub, &io_module)). */
struct io_state {
    struct green__fd **fds;     /* entries by fd; never moved once made,
                                   because libev points at the watchers */
    size_t cap;                 /* length of fds */
    struct green__list stopq;   /* io_dirs whose watcher may be stopped */
    ev_prepare prepare;         /* runs the stop queue before each poll */
};

static void io_ready(struct ev_loop *loop, ev_io *w, int revents);
static void io_term(struct green__hub *hub, void *state);

static size_t io_watchers(struct green__hub *hub, void *state);
static struct green__module io_module = {
    .name = "io", .term = io_term, .watchers = io_watchers};

static inline struct io_state *io_peek(const struct green__hub *hub)
{
    return green__module_state(hub, &io_module);
}

/******************************************************************************/
/*  Module state and the fd table                                             */
/******************************************************************************/

/* Stop the watchers that nobody waits on any more.  Runs before libev
   applies fd changes and polls, so a greenlet that left and came back
   to the same fd in between costs nothing. */
static void io_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct io_state *st = w->data;
    struct green__list *n;
    while ((n = green__list_pop(&st->stopq)) != NULL) {
        struct io_dir *d = green__container_of(n, struct io_dir, stop);
        if (green__list_empty(&d->waiters) && green__list_empty(&d->woken))
            ev_io_stop(loop, &d->io);
    }
}

static void io_term(struct green__hub *hub, void *state)
{
    struct io_state *st = state;
    /* Parked greenlets are discarded by the hub after this; their
       waiters live on their stacks and are not touched here. */
    for (size_t i = 0; i < st->cap; i++) {
        struct green__fd *e = st->fds[i];
        if (!e)
            continue;
        for (int d = 0; d < 2; d++)
            ev_io_stop(hub->loop, &e->dir[d].io);
        free(e);
    }
    free(st->fds);
    ev_ref(hub->loop);
    ev_prepare_stop(hub->loop, &st->prepare);
    free(st);
}

/* Active fd watchers not already due to stop before the next poll. */
static size_t io_watchers(struct green__hub *hub, void *state)
{
    (void)hub;
    struct io_state *st = state;
    size_t n = 0;
    for (size_t i = 0; i < st->cap; i++)
        for (int d = 0; st->fds[i] && d < 2; d++)
            n += ev_is_active(&st->fds[i]->dir[d].io) &&
                 !green__list_linked(&st->fds[i]->dir[d].stop);
    return n;
}

static struct io_state *io_state(struct green__hub *hub)
{
    struct io_state *st = io_peek(hub);
    if (GREEN_LIKELY(st != NULL))
        return st;
    st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    if (green__module_attach(hub, &io_module, st) != 0) {
        free(st);
        return NULL;
    }
    green__list_init(&st->stopq);
    ev_prepare_init(&st->prepare, io_prepare);
    st->prepare.data = st;
    ev_prepare_start(hub->loop, &st->prepare);
    /* Always on, but it must not keep the loop alive by itself. */
    ev_unref(hub->loop);
    return st;
}

/* The entry of fd if one exists (no allocation). */
static struct green__fd *entry_peek(struct green__hub *hub, int fd)
{
    struct io_state *st = io_peek(hub);
    if (!st || fd < 0 || (size_t)fd >= st->cap)
        return NULL;
    return st->fds[fd];
}

/* The entry of fd, created on first use.  NULL with errno EBADF
   (fd < 0) or ENOMEM. */
static struct green__fd *entry_get(struct green__hub *hub, int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    struct io_state *st = io_state(hub);
    if (!st) {
        errno = ENOMEM;
        return NULL;
    }
    if (GREEN_LIKELY((size_t)fd < st->cap && st->fds[fd] != NULL))
        return st->fds[fd];
    if ((size_t)fd >= st->cap) {
        size_t cap = st->cap ? st->cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        /* Only the pointer array moves; the entries (and the watchers
           libev points at) stay where they are. */
        struct green__fd **fds = realloc(st->fds, cap * sizeof *fds);
        if (!fds) {
            errno = ENOMEM;
            return NULL;
        }
        memset(fds + st->cap, 0, (cap - st->cap) * sizeof *fds);
        st->fds = fds;
        st->cap = cap;
    }
    struct green__fd *e = calloc(1, sizeof *e);
    if (!e) {
        errno = ENOMEM;
        return NULL;
    }
    e->fd = fd;
    e->fresh = 1;
    for (int d = 0; d < 2; d++) {
        struct io_dir *dir = &e->dir[d];
        ev_init(&dir->io, io_ready);
        green__list_init(&dir->waiters);
        green__list_init(&dir->woken);
        green__list_init(&dir->stop);
        dir->e = e;
    }
    st->fds[fd] = e;
    return e;
}

/* Fire every clause of a list with err, taking it off the list. */
static void fire_list(struct green__list *l, int err)
{
    struct green__list *n;
    while ((n = green__list_pop(l)) != NULL)
        green__clause_fire(green__container_of(n, struct green__clause,
                                               node), err);
}

/* Forget everything about the fd behind e: fire its clauses with err,
   stop the watchers, start a new generation. */
static void entry_reset(struct green__hub *hub, struct green__fd *e, int err)
{
    for (int d = 0; d < 2; d++) {
        struct io_dir *dir = &e->dir[d];
        fire_list(&dir->waiters, err);
        /* Fired by readiness but not resumed: they would retry the
           syscall (or poll) on a closed, maybe already reused, fd.
           Firing again changes their result before they resume. */
        fire_list(&dir->woken, err);
        green__list_remove(&dir->stop);
        ev_io_stop(hub->loop, &dir->io);
    }
    e->gen++;
    e->flags = 0;
    e->fresh = 1;
}

/******************************************************************************/
/*  Waiting                                                                   */
/******************************************************************************/

/* The watcher fired: fire every clause.  All of them, not one:
   readiness is not a token (two readers of one socket both retry; the
   loser waits again).  Fired clauses stay on `woken` until their undo,
   so green_close can still change their result. */
static void io_ready(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct io_dir *d = green__container_of(w, struct io_dir, io);
    if (GREEN_UNLIKELY(revents & EV_ERROR)) {
        /* libev found the fd invalid (closed behind our back) and
           stopped every watcher on it. */
        struct green__hub *hub = green__hub_peek();
        entry_reset(hub, d->e, EBADF);
        return;
    }
    struct green__list *n;
    while ((n = green__list_pop(&d->waiters)) != NULL) {
        green__clause_fire(green__container_of(n, struct green__clause,
                                               node), 0);
        green__list_push(&d->woken, n);
    }
}

/* A direction nobody waits on any more: let io_prepare stop its watcher
   before the next poll. */
static void dir_maybe_stop(struct green__hub *hub, struct io_dir *d)
{
    if (green__list_empty(&d->waiters) && green__list_empty(&d->woken) &&
        ev_is_active(&d->io) && !green__list_linked(&d->stop))
        green__list_push(&io_peek(hub)->stopq, &d->stop);
}

/* The clause's undo: leave the entry, unless the fd was closed or
   recycled meanwhile (green_close already unlinked the clause, and the
   entry may describe another fd now). */
static void io_undo(struct green__clause *c)
{
    struct green__io_clause *ic =
        green__container_of(c, struct green__io_clause, c);
    struct green__fd *e = ic->e;
    ic->e = NULL;
    if (!e || e->gen != ic->gen)
        return;
    green__list_remove(&c->node);
    dir_maybe_stop(c->g->hub, &e->dir[ic->dir]);
}

int green__io_clause(struct green__wait *w, struct green__io_clause *ic,
                     int fd, int dir)
{
    struct green__hub *hub = w->g->hub;
    struct green__fd *e = entry_get(hub, fd);
    if (!e)
        return errno;
    struct io_dir *d = &e->dir[dir];
    /* libev aborts (an assert in its epoll backend) when epoll_ctl says
       EBADF, so never hand it an fd that is not open.  Only a start can
       lead to epoll_ctl; an active watcher is reused as it is. */
    if (!ev_is_active(&d->io) &&
        (green__sys_fcntl(fd, F_GETFD, 0) < 0 || fd == hub->backend_fd))
        return EBADF;
    if (GREEN_UNLIKELY(e->fresh)) {
        /* A new fd (or number reuse): the only place that calls
           ev_io_set, so libev re-registers the fd only then. */
        for (int i = 0; i < 2; i++) {
            green__assert(!ev_is_active(&e->dir[i].io));
            ev_io_set(&e->dir[i].io, fd, i == GREEN__IO_READ ? EV_READ
                                                              : EV_WRITE);
        }
        e->fresh = 0;
    }
    green__wait_add(w, &ic->c, io_undo, NULL);
    ic->e = e;
    ic->gen = e->gen;
    ic->dir = dir;
    ic->fd = fd;
    if (w->fd < 0)
        w->fd = fd;
    green__list_push(&d->waiters, &ic->c.node);
    if (!ev_is_active(&d->io))
        ev_io_start(hub->loop, &d->io);
    return 0;
}

static const char *const wait_what[2] = {"waiting to read",
                                         "waiting to write"};

/* Wait once for fd/dir; the hub is known to exist.  Returns 0 or an
   errno value. */
static int park_fd(int fd, int dir, double timeout)
{
    struct green__wait w;
    struct green__io_clause ic;
    int err = green__wait_begin(&w, timeout, wait_what[dir], 0);
    if (!err)
        err = green__io_clause(&w, &ic, fd, dir);
    if (!err)
        err = green__wait_park(&w);
    return err;
}

int green__io_wait(int fd, int dir, double timeout)
{
    if (fd < 0)
        return green__fail(EBADF);
    if (timeout != timeout)
        return green__fail(EINVAL);
    if (timeout == 0) {
        /* Not waiting at all (allowed anywhere, the hub included):
           report the readiness now. */
        struct pollfd p = {fd, dir == GREEN__IO_READ ? POLLIN : POLLOUT, 0};
        int n = green__sys_poll(&p, 1, 0);
        if (n < 0)
            return -1;
        if (n == 0)
            return green__fail(EAGAIN);
        if (p.revents & POLLNVAL)
            return green__fail(EBADF);
        return 0;
    }
    int err = park_fd(fd, dir, timeout);
    return err ? green__fail(err) : 0;
}

int green_wait_read(int fd, double timeout)
{
    return green__io_wait(fd, GREEN__IO_READ, timeout);
}

int green_wait_write(int fd, double timeout)
{
    return green__io_wait(fd, GREEN__IO_WRITE, timeout);
}

/******************************************************************************/
/*  O_NONBLOCK bookkeeping                                                    */
/******************************************************************************/

/* Look at a new fd once: put it in O_NONBLOCK and learn its kind.
   0 or -1/EBADF. */
static int entry_setup(struct green__hub *hub, struct green__fd *e, int fd)
{
    /* A stale number of the caller's that the hub's epoll fd took. */
    if (fd == hub->backend_fd)
        return green__fail(EBADF);
    int fl = green__sys_fcntl(fd, F_GETFL, 0);
    if (fl < 0)
        return -1;
    unsigned char flags = IO_NONBLOCK;
    if (fl & O_NONBLOCK)
        flags |= IO_USER_NONBLOCK;
    else if (green__sys_fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    struct stat sb;
    if (fstat(fd, &sb) == 0) {
        e->kind = S_ISSOCK(sb.st_mode)  ? IO_KIND_SOCKET
                  : S_ISFIFO(sb.st_mode) ? IO_KIND_FIFO
                                          : IO_KIND_OTHER;
        flags |= IO_KIND_KNOWN;
    }
    e->flags |= flags;
    return 0;
}

/* The hub and entry of an fd about to be used by a blocking-style call,
   in O_NONBLOCK.  NULL with errno set (EBADF, ENOMEM). */
static struct green__fd *io_begin(int fd, struct green__hub **hubp)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    struct green__fd *e = entry_get(hub, fd);
    if (!e)
        return NULL;
    if (GREEN_UNLIKELY(!(e->flags & IO_NONBLOCK)) &&
        entry_setup(hub, e, fd) != 0)
        return NULL;
    *hubp = hub;
    return e;
}

int green__io_nonblock(int fd, int *user_nonblock)
{
    struct green__hub *hub;
    struct green__fd *e = io_begin(fd, &hub);
    if (!e)
        return -1;
    if (user_nonblock)
        *user_nonblock = (e->flags & IO_USER_NONBLOCK) != 0;
    return 0;
}

void green__io_forget(int fd)
{
    struct green__hub *hub = green__hub_peek();
    if (!hub)
        return;
    struct green__fd *e = entry_peek(hub, fd);
    if (e)
        entry_reset(hub, e, EBADF);
}

void green__io_adopt(int fd, int is_socket, int user_nonblock)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return;
    struct green__fd *e = entry_get(hub, fd);
    if (!e)
        return; /* ENOMEM: the first call will fcntl instead */
    /* A previous fd with this number was closed behind our back. */
    if (e->flags || !e->fresh)
        entry_reset(hub, e, EBADF);
    e->flags = IO_NONBLOCK | IO_KIND_KNOWN |
               (user_nonblock ? IO_USER_NONBLOCK : 0);
    e->kind = is_socket ? IO_KIND_SOCKET : IO_KIND_OTHER;
}

/******************************************************************************/
/*  Read and write                                                            */
/******************************************************************************/

/* After a syscall on a non-blocking fd: 1 if it would have blocked and
   the caller should wait and retry. */
static inline int would_block(ssize_t r)
{
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The retry loop every blocking-style call shares: run `call` until it
   does not return EAGAIN, parking on `dir` in between. */
#define IO_RETRY(fd, dir, call)                                            \
    do {                                                                   \
        struct green__hub *hub_;                                           \
        if (!io_begin((fd), &hub_))                                        \
            return -1;                                                     \
        for (;;) {                                                         \
            ssize_t r_ = (call);                                           \
            if (!would_block(r_))                                          \
                return r_;                                                 \
            int err_ = park_fd((fd), (dir), -1);                           \
            if (err_)                                                      \
                return green__fail(err_);                                  \
        }                                                                  \
    } while (0)

ssize_t green_read(int fd, void *buf, size_t n)
{
    IO_RETRY(fd, GREEN__IO_READ, green__sys_read(fd, buf, n));
}

ssize_t green_readv(int fd, const struct iovec *iov, int iovcnt)
{
    IO_RETRY(fd, GREEN__IO_READ, green__sys_readv(fd, iov, iovcnt));
}

ssize_t green_recv(int fd, void *buf, size_t n, int flags)
{
    return green_recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t green_recvfrom(int fd, void *buf, size_t n, int flags,
                       struct sockaddr *addr, socklen_t *len)
{
    /* MSG_DONTWAIT asks for EAGAIN: that caller is not blocking-style. */
    if (flags & MSG_DONTWAIT)
        return green__sys_recvfrom(fd, buf, n, flags, addr, len);
    IO_RETRY(fd, GREEN__IO_READ,
             green__sys_recvfrom(fd, buf, n, flags, addr, len));
}

ssize_t green_recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (flags & MSG_DONTWAIT)
        return green__sys_recvmsg(fd, msg, flags);
    IO_RETRY(fd, GREEN__IO_READ, green__sys_recvmsg(fd, msg, flags));
}

ssize_t green_sendto(int fd, const void *buf, size_t n, int flags,
                     const struct sockaddr *addr, socklen_t len)
{
    flags |= MSG_NOSIGNAL;
    if (flags & MSG_DONTWAIT)
        return green__sys_sendto(fd, buf, n, flags, addr, len);
    IO_RETRY(fd, GREEN__IO_WRITE,
             green__sys_sendto(fd, buf, n, flags, addr, len));
}

ssize_t green_send(int fd, const void *buf, size_t n, int flags)
{
    return green_sendto(fd, buf, n, flags, NULL, 0);
}

ssize_t green_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    flags |= MSG_NOSIGNAL;
    if (flags & MSG_DONTWAIT)
        return green__sys_sendmsg(fd, msg, flags);
    IO_RETRY(fd, GREEN__IO_WRITE, green__sys_sendmsg(fd, msg, flags));
}

/* writev on a pipe or FIFO without dying of SIGPIPE and without touching
   the process's disposition: block SIGPIPE in this thread, write, and
   if the write raised one (EPIPE) consume it before unblocking.  A
   SIGPIPE that was already pending is left alone (ours merged into it).
   The same trick libcurl and OpenSSL use. */
static ssize_t fifo_writev(int fd, const struct iovec *iov, int cnt)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = green__sys_writev(fd, iov, cnt);
    int err = errno;
    if (r < 0 && err == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return r;
}

/* One non-blocking writev attempt, SIGPIPE-safe for the fd's kind. */
static ssize_t try_writev(struct green__fd *e, int fd,
                          const struct iovec *iov, int cnt)
{
    if (e->kind == IO_KIND_SOCKET) {
        if (cnt == 1)
            return green__sys_sendto(fd, iov[0].iov_base, iov[0].iov_len,
                                     MSG_NOSIGNAL, NULL, 0);
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = (struct iovec *)iov;
        msg.msg_iovlen = (size_t)cnt;
        return green__sys_sendmsg(fd, &msg, MSG_NOSIGNAL);
    }
    if (e->kind == IO_KIND_FIFO)
        return fifo_writev(fd, iov, cnt);
    return green__sys_writev(fd, iov, cnt);
}

ssize_t green_writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct green__hub *hub;
    struct green__fd *e = io_begin(fd, &hub);
    if (!e)
        return -1;
    for (;;) {
        ssize_t r = try_writev(e, fd, iov, iovcnt);
        if (!would_block(r))
            return r;
        int err = park_fd(fd, GREEN__IO_WRITE, -1);
        if (err)
            return green__fail(err);
    }
}

ssize_t green_write(int fd, const void *buf, size_t n)
{
    struct iovec iov = {(void *)buf, n};
    return green_writev(fd, &iov, 1);
}

ssize_t green_write_all(int fd, const void *buf, size_t n)
{
    struct green__hub *hub;
    struct green__fd *e = io_begin(fd, &hub);
    if (!e)
        return -1;
    size_t done = 0;
    do {
        struct iovec iov = {(char *)buf + done, n - done};
        ssize_t r = try_writev(e, fd, &iov, 1);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        if (!would_block(r))
            return -1;
        int err = park_fd(fd, GREEN__IO_WRITE, -1);
        if (err)
            return green__fail(err);
    } while (done < n);
    return (ssize_t)n;
}

/******************************************************************************/
/*  Accept, connect, close                                                    */
/******************************************************************************/

int green_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct green__hub *hub;
    if (!io_begin(fd, &hub))
        return -1;
    for (;;) {
        int c = green__sys_accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            green__io_adopt(c, 1, 0);
            return c;
        }
        if (!would_block(-1))
            return -1;
        int err = park_fd(fd, GREEN__IO_READ, -1);
        if (err)
            return green__fail(err);
    }
}

int green_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct green__hub *hub;
    if (!io_begin(fd, &hub))
        return -1;
    double backoff = 0.001;
    for (;;) {
        if (green__sys_connect(fd, addr, len) == 0)
            return 0;
        int err = errno;
        if (err == EAGAIN && addr && addr->sa_family == AF_UNIX) {
            /* A full AF_UNIX backlog.  The unconnected socket polls
               writable at once, so waiting for POLLOUT would spin: back
               off and retry, as a blocking connect would keep waiting. */
            if (green_sleep(backoff) != 0)
                return -1;
            if (backoff < 0.05)
                backoff *= 2;
            continue;
        }
        if (err != EINPROGRESS)
            return -1;
        break;
    }
    int err = park_fd(fd, GREEN__IO_WRITE, -1);
    if (err)
        return green__fail(err);
    /* Writable: the handshake finished, well or badly.  SO_ERROR has
       the real outcome (ECONNREFUSED, ETIMEDOUT, ENETUNREACH, ...). */
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        return -1;
    return soerr ? green__fail(soerr) : 0;
}

int green_close(int fd)
{
    if (fd < 0)
        return green__fail(EBADF);
    /* Waiters first, while the fd is still ours: they wake with EBADF
       and never retry on the number, which the next open may reuse. */
    green__io_forget(fd);
    return green__sys_close(fd);
}
