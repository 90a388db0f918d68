/* Cooperative I/O on any fd: green_wait_read/write, the one retry loop
   (green__io_retry) behind the read/write/send/recv family, accept,
   connect and sendfile of libgreen and libgreen-patch, and close.

   How a wait works (fd.h has the process-wide table, io.h the per-hub
   half kept here):
     1. the call tries the non-blocking syscall; on EAGAIN the retry
        loop adds a green__io_clause on the fd's per-hub entry and parks
        (green__wait_park);
     2. the entry's ev_io fires in the hub: io_ready fires every parked
        clause and moves it to the `woken` list;
     3. the greenlet resumes, the clause's undo leaves the woken list,
        and the loop tries again.
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
   green_close) gets ev_io_set.  A start is checked twice: when the
   clause is added (an fd that is not open, or an epoll fd, is EBADF)
   and again in io_prepare, just before libev's epoll_ctl, in case a
   plain close(2) came in between.

   Close: green_close wakes every waiter with EBADF, also the ones woken
   but not resumed yet (their park result is overwritten), stops the
   watchers, bumps the entry's generation, forgets the fd's table entry,
   then closes.  A waiter that resumes after that sees a different
   generation and never touches the entry again, which may by then
   describe a new fd with the same number. */
#include "io.h"

#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sys.h"
#include "fd.h"
#include "patchops.h"

/* One direction of one fd. */
struct io_dir {
    ev_io io;                   /* started while someone waits; fd and
                                   events set only when the entry is fresh */
    struct green__list waiters; /* parked clauses, FIFO */
    struct green__list woken;   /* fired by readiness, not resumed yet */
    struct green__list stop;    /* in the stop queue while a stop is due */
    struct green__list start;   /* in the start queue: started since the
                                   last poll, fd not yet checked */
    struct green__fd *e;        /* the entry this belongs to */
};

/* The hub's half of one fd (the process-wide half is in fd.h). */
struct green__fd {
    struct io_dir dir[2];       /* GREEN__IO_READ, GREEN__IO_WRITE */
    unsigned gen;               /* bumped by every reset: stale waiters
                                   recognise a closed or recycled fd */
    int fd;                     /* the fd number (table index) */
    unsigned char fresh;        /* watchers need ev_io_set before start */
};

/* The module's state in each hub (green__module_state(hub, &io_module)). */
struct io_state {
    struct green__fd **fds;     /* entries by fd; never moved once made,
                                   because libev points at the watchers */
    size_t cap;                 /* length of fds */
    struct green__list stopq;   /* io_dirs whose watcher may be stopped */
    struct green__list startq;  /* io_dirs started since the last poll */
    ev_prepare prepare;         /* runs both queues before each poll */
    ev_idle nudge;              /* keeps that poll from blocking when the
                                   prepare woke a greenlet */
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

static void entry_reset(struct green__hub *hub, struct green__fd *e,
                        int err);
static int fd_watchable(struct ev_loop *loop, int fd);

/* Runs before libev applies fd changes (fd_reify) and polls.
   First the start queue: a watcher started since the last poll makes
   libev call epoll_ctl(ADD) now, and libev aborts if that says EBADF or
   EINVAL.  This is the one check that the fd is open and no epoll fd
   (the clause does not look): a wait on a closed fd, or on one that a
   plain close(2) by another greenlet closed since, gets EBADF here
   (issue 11, items 6 and 7).  Then the stop queue: stop the
   watchers nobody waits on any more; a greenlet that left and came
   back to the same fd in between costs nothing. */
static void io_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct io_state *st = w->data;
    struct green__list *n;
    while ((n = green__list_pop(&st->startq)) != NULL) {
        struct io_dir *d = green__container_of(n, struct io_dir, start);
        /* One look per fd: its other direction, if queued too, is
           covered by this one (both are reset on EBADF). */
        struct io_dir *other = &d->e->dir[d == &d->e->dir[0]];
        int both = green__list_linked(&other->start);
        green__list_remove(&other->start);
        int started = ev_is_active(&d->io) ||
                      (both && ev_is_active(&other->io));
        if (started && !fd_watchable(loop, d->e->fd)) {
            entry_reset(green__hub_peek(), d->e, EBADF);
            /* The hub already decided to poll; an active idle watcher
               makes that poll return at once. */
            ev_idle_start(loop, &st->nudge);
        }
    }
    while ((n = green__list_pop(&st->stopq)) != NULL) {
        struct io_dir *d = green__container_of(n, struct io_dir, stop);
        if (green__list_empty(&d->waiters) && green__list_empty(&d->woken))
            ev_io_stop(loop, &d->io);
    }
}

static void io_nudged(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
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
    ev_idle_stop(hub->loop, &st->nudge);
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
    st = green__module_new(hub, &io_module, sizeof *st);
    if (!st)
        return NULL;
    green__list_init(&st->stopq);
    green__list_init(&st->startq);
    ev_prepare_init(&st->prepare, io_prepare);
    st->prepare.data = st;
    ev_idle_init(&st->nudge, io_nudged);
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
        green__list_init(&dir->start);
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
        green__list_remove(&dir->start);
        ev_io_stop(hub->loop, &dir->io);
    }
    e->gen++;
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

/* 1 if fd may be handed to libev: open, and not an epoll fd while
   libev's backend is epoll-based.  libev aborts when epoll_ctl fails
   with EBADF, or with EINVAL/ELOOP (its own epoll fd, or an epoll fd
   that contains it).  Which epoll fd is libev's own cannot be asked
   (4.33 has no ev_backend_fd) and a recorded number goes stale in a
   green_fork child, so every epoll fd is refused. */
static int fd_watchable(struct ev_loop *loop, int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return 0;
    unsigned be = ev_backend(loop);
    return be == EVBACKEND_SELECT || be == EVBACKEND_POLL ||
           !green__fd_is_epoll(fd, sb.st_mode);
}

int green__io_clause(struct green__wait *w, struct green__io_clause *ic,
                     int fd, int dir)
{
    struct green__hub *hub = w->g->hub;
    if (fd < 0)
        return EBADF;
    struct green__fd *e = entry_peek(hub, fd);
    /* Whether fd is open, and not an epoll fd, is checked once, where
       it matters: in io_prepare, just before libev's epoll_ctl (a wait
       on a closed fd gets EBADF from there, in the same loop
       iteration).  Here, a number the process cannot have is refused
       before it grows the table. */
    if (!e) {
        if (!green__fd_possible(fd))
            return EBADF;
        if (!(e = entry_get(hub, fd)))
            return errno;
    }
    struct io_dir *d = &e->dir[dir];
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
    if (!ev_is_active(&d->io)) {
        ev_io_start(hub->loop, &d->io);
        /* Checked again just before libev's epoll_ctl (io_prepare). */
        green__list_remove(&d->start);
        green__list_push(&io_peek(hub)->startq, &d->start);
    }
    return 0;
}

static const char *const wait_what[2] = {"waiting to read",
                                         "waiting to write"};

/* Wait once for fd/dir.  Returns 0 or an errno value. */
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
    (void)user_nonblock;
    green__fd_adopt(fd, is_socket ? GREEN__FD_SOCKET : GREEN__FD_OTHER);
}

int green__io_coop(void)
{
    struct green__hub *hub = green__hub_peek();
    /* Link callbacks run in the hub context too, so this one test
       covers the hub, libev callbacks and link callbacks. */
    return hub != NULL && !green__in_hub(hub);
}

/******************************************************************************/
/*  The retry loop                                                            */
/******************************************************************************/

/* After a syscall on a non-blocking fd: 1 if it would have blocked. */
static inline int would_block(ssize_t r)
{
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* One call's state across its waits. */
struct retry {
    double at;       /* the socket timeout's deadline; < 0 none; 0 not
                        read yet */
    int saved_errno; /* errno at the call's start */
};

/* The deadline SO_RCVTIMEO/SO_SNDTIMEO gives a call starting now, or -1.
   The kernel keeps the option even on a non-blocking socket (it just
   ignores it), so it is the one place that knows the caller's value,
   however it was set. */
static double sock_deadline(int fd, int dir)
{
    struct green__fdinfo *fi = green__fd_peek(fd);
    if (!fi || atomic_load_explicit(&fi->kind, memory_order_relaxed) !=
                   GREEN__FD_SOCKET)
        return -1;
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    int opt = dir == GREEN__IO_READ ? SO_RCVTIMEO : SO_SNDTIMEO;
    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) != 0 ||
        (tv.tv_sec <= 0 && tv.tv_usec <= 0))
        return -1;
    return green__now() + (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* Signals only a fault of the thread itself raises: their handlers
   never interrupt a wait (sanitizers install them, too). */
static int is_fault_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
           sig == SIGILL || sig == SIGTRAP || sig == SIGSYS;
}

/* poll(2) interrupted a thread-blocking wait: would the blocking call
   have been restarted?  Only if the handler that ran had SA_RESTART and
   the socket has no timeout (socket calls with SO_RCVTIMEO/SO_SNDTIMEO
   are never restarted, see signal(7)).  Which signal came is unknown,
   so any handler without SA_RESTART for a signal that could have
   interrupted this thread (not blocked here, not a fault) means EINTR,
   unless libgreen-patch, which wraps the program's handlers, knows
   which one ran.  Runs only after an EINTR. */
static int (*_Atomic signal_probe)(int reset);

void green__io_signal_probe(int (*probe)(int reset))
{
    atomic_store(&signal_probe, probe);
}

static int restart_after_signal(const struct retry *r)
{
    if (r->at > 0)
        return 0;
    /* The patch library knows which handler ran, if it wrapped it. */
    int (*probe)(int) = atomic_load(&signal_probe);
    int known = probe ? probe(0) : -1;
    if (known >= 0)
        return known;
    sigset_t blocked;
    sigemptyset(&blocked);
    pthread_sigmask(SIG_BLOCK, NULL, &blocked);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || is_fault_signal(sig) ||
            sigismember(&blocked, sig) == 1 || sigaction(sig, NULL, &sa))
            continue;
        if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN &&
            !(sa.sa_flags & SA_RESTART))
            return 0;
    }
    return 1;
}

/* Block the thread until fd is ready (the patch library outside
   greenlets), as the blocking call would.  0 or an errno value. */
static int block_thread(int fd, int dir, double timeout,
                        const struct retry *r)
{
    struct pollfd p = {fd, dir == GREEN__IO_READ ? POLLIN : POLLOUT, 0};
    int (*probe)(int) = atomic_load(&signal_probe);
    if (probe)
        probe(1);
    int ms = timeout < 0              ? -1
             : timeout * 1000 > INT_MAX ? INT_MAX
                                        : (int)ceil(timeout * 1000);
    int n = green__sys_poll(&p, 1, ms);
    if (n == 0)
        return EAGAIN;
    if (n < 0 && errno == EINTR)
        return restart_after_signal(r) ? 0 : EINTR;
    return n < 0 ? errno : 0; /* ready: retry (POLLNVAL: the retry says
                                 EBADF) */
}

/* The attempt would block: wait, then the caller retries.  0 or an
   errno value (EAGAIN: the socket's own timeout passed). */
static int retry_wait(int fd, const struct green__io_op *op, struct retry *r)
{
    if (r->at == 0)
        r->at = sock_deadline(fd, op->dir);
    double timeout = -1;
    if (r->at > 0) {
        timeout = r->at - green__now();
        if (timeout <= 0)
            return EAGAIN;
    }
    if ((op->flags & GREEN__IO_THREAD) && !green__io_coop())
        return block_thread(fd, op->dir, timeout, r);
    int err = park_fd(fd, op->dir, timeout);
    /* Our own deadline is the socket option's (EAGAIN, like the kernel),
       unless an enclosing green_timeout fired (ETIMEDOUT). */
    if (err == ETIMEDOUT && r->at > 0 &&
        green__hub_peek()->current->timeouts_expired == 0)
        err = EAGAIN;
    return err;
}

ssize_t green__io_retry(int fd, const struct green__io_op *op)
{
    struct retry r = {0, errno};
    size_t done = 0;
    for (;;) {
        ssize_t n = op->try(fd, op->arg, done);
        if (n > 0 && (op->flags & GREEN__IO_ALL)) {
            done += (size_t)n;
            if (done < op->total)
                continue;
            return (ssize_t)done;
        }
        if (n >= 0)
            return (op->flags & GREEN__IO_ALL) ? (ssize_t)done : n;
        int err = would_block(n) ? retry_wait(fd, op, &r) : errno;
        if (err) {
            /* An error after progress reports the progress (as a
               blocking write interrupted midway does). */
            errno = err;
            return done ? (ssize_t)done : -1;
        }
        errno = r.saved_errno;
    }
}

/******************************************************************************/
/*  Read and write                                                            */
/******************************************************************************/

/* The fd of a libgreen call, in O_NONBLOCK; the thread gets its hub.
   0, or -1 with errno (EBADF, ENOMEM). */
static int io_begin(int fd)
{
    struct green__fdinfo *fi;
    if (!green__hub_get())
        return -1;
    return green__fd_see(fd, GREEN__FD_ANY, &fi);
}


static ssize_t try_read(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    (void)done;
    return green__sys_read(fd, a->buf, a->n);
}

static ssize_t try_readv(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    (void)done;
    return green__sys_readv(fd, a->iov, a->cnt);
}

static ssize_t try_recvfrom(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    (void)done;
    return green__sys_recvfrom(fd, a->buf, a->n, a->flags, a->addr, a->len);
}

static ssize_t try_recvmsg(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    (void)done;
    return green__sys_recvmsg(fd, a->msg, a->flags);
}

static ssize_t try_sendto(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    (void)done;
    return green__sys_sendto(fd, a->buf, a->n, a->flags, a->addr,
                             a->len ? *a->len : 0);
}

static ssize_t try_sendmsg(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    (void)done;
    return green__sys_sendmsg(fd, a->msg, a->flags);
}

/* Run one libgreen call through the retry loop. */
static ssize_t io_call(int fd, int dir, ssize_t (*try)(int, void *, size_t),
                       struct green__io_args *a)
{
    if (io_begin(fd) != 0)
        return -1;
    struct green__io_op op = {try, a, 0, dir, 0};
    return green__io_retry(fd, &op);
}

static ssize_t try_writev(int fd, void *arg, size_t done);

/* The file module's hook (io.h): set once by its constructor. */
static _Atomic(green__file_rw_fn) file_rw;

void green__io_set_file_rw(green__file_rw_fn fn)
{
    atomic_store(&file_rw, fn);
}

green__file_rw_fn green__io_file_hook(void)
{
    return atomic_load_explicit(&file_rw, memory_order_relaxed);
}

/* The hook if fi (seen) is a regular file's entry, else NULL. */
static inline green__file_rw_fn file_hook(const struct green__fdinfo *fi)
{
    if (GREEN_LIKELY(atomic_load_explicit(&fi->kind, memory_order_relaxed) !=
                     GREEN__FD_FILE))
        return NULL;
    return green__io_file_hook();
}

/* io_begin for the read/write family, from the entry it saw (no second
   lookup): *rw is the file hook for a regular file, else NULL. */
static int io_begin_rw(int fd, green__file_rw_fn *rw)
{
    struct green__fdinfo *fi;
    if (!green__hub_get() || green__fd_see(fd, GREEN__FD_ANY, &fi) != 0)
        return -1;
    *rw = file_hook(fi);
    return 0;
}

/* A read or write of libgreen's own: a regular file goes through the
   file hook at its file position, anything else through the retry
   loop. */
static ssize_t io_rw(int fd, int dir, const struct iovec *iov, int cnt)
{
    green__file_rw_fn rw;
    if (io_begin_rw(fd, &rw) != 0)
        return -1;
    if (rw)
        return rw(fd, iov, cnt, -1, dir);
    struct green__io_args a = {.iov = iov, .cnt = cnt};
    struct green__io_op op = {dir == GREEN__IO_READ ? try_readv : try_writev,
                              &a, 0, dir, 0};
    return green__io_retry(fd, &op);
}

ssize_t green_read(int fd, void *buf, size_t n)
{
    green__file_rw_fn rw;
    if (io_begin_rw(fd, &rw) != 0)
        return -1;
    if (rw) {
        struct iovec iov = {buf, n};
        return rw(fd, &iov, 1, -1, GREEN__IO_READ);
    }
    struct green__io_args a = {.buf = buf, .n = n};
    struct green__io_op op = {try_read, &a, 0, GREEN__IO_READ, 0};
    return green__io_retry(fd, &op);
}

ssize_t green_readv(int fd, const struct iovec *iov, int iovcnt)
{
    return io_rw(fd, GREEN__IO_READ, iov, iovcnt);
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
    struct green__io_args a = {.buf = buf, .n = n, .flags = flags, .addr = addr,
                        .len = len};
    return io_call(fd, GREEN__IO_READ, try_recvfrom, &a);
}

ssize_t green_recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (flags & MSG_DONTWAIT)
        return green__sys_recvmsg(fd, msg, flags);
    struct green__io_args a = {.msg = msg, .flags = flags};
    return io_call(fd, GREEN__IO_READ, try_recvmsg, &a);
}

ssize_t green_sendto(int fd, const void *buf, size_t n, int flags,
                     const struct sockaddr *addr, socklen_t len)
{
    flags |= MSG_NOSIGNAL;
    if (flags & MSG_DONTWAIT)
        return green__sys_sendto(fd, buf, n, flags, addr, len);
    struct green__io_args a = {.buf = (void *)buf, .n = n, .flags = flags,
                        .addr = (struct sockaddr *)addr, .len = &len};
    return io_call(fd, GREEN__IO_WRITE, try_sendto, &a);
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
    struct green__io_args a = {.msg = (struct msghdr *)msg, .flags = flags};
    return io_call(fd, GREEN__IO_WRITE, try_sendmsg, &a);
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

/* sendfile(2) without libc's symbol, which libgreen-patch interposes
   (like every raw call of sys.h). */
static ssize_t sys_sendfile(int out, int in, off_t *offset, size_t n)
{
    return syscall(SYS_sendfile, out, in, offset, n);
}

/* One sendfile(2) attempt, `done` bytes in.  sendfile has no
   MSG_NOSIGNAL: block and consume SIGPIPE as fifo_writev does. */
static ssize_t try_sendfile(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = sys_sendfile(fd, a->cnt, (off_t *)a->buf, a->n - done);
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

ssize_t green_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    if (io_begin(out_fd) != 0)
        return -1;
    if (count == 0)
        return sys_sendfile(out_fd, in_fd, offset, 0);
    struct green__io_args a = {.buf = offset, .n = count, .cnt = in_fd};
    struct green__io_op op = {try_sendfile, &a, count, GREEN__IO_WRITE,
                              GREEN__IO_ALL};
    return green__io_retry(out_fd, &op);
}

/* One non-blocking writev attempt, SIGPIPE-safe for the fd's kind. */
static ssize_t writev_once(int fd, const struct iovec *iov, int cnt)
{
    struct green__fdinfo *fi = green__fd_peek(fd);
    unsigned kind = fi ? atomic_load_explicit(&fi->kind,
                                              memory_order_relaxed)
                       : GREEN__FD_OTHER;
    if (kind == GREEN__FD_SOCKET) {
        if (cnt == 1)
            return green__sys_sendto(fd, iov[0].iov_base, iov[0].iov_len,
                                     MSG_NOSIGNAL, NULL, 0);
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = (struct iovec *)iov;
        msg.msg_iovlen = (size_t)cnt;
        return green__sys_sendmsg(fd, &msg, MSG_NOSIGNAL);
    }
    if (kind == GREEN__FD_FIFO)
        return fifo_writev(fd, iov, cnt);
    return green__sys_writev(fd, iov, cnt);
}

static ssize_t try_writev(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    (void)done;
    return writev_once(fd, a->iov, a->cnt);
}

/* green_write_all's attempt: the rest of one buffer. */
static ssize_t try_write_rest(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    struct iovec iov = {(char *)a->buf + done, a->n - done};
    return writev_once(fd, &iov, 1);
}

ssize_t green_writev(int fd, const struct iovec *iov, int iovcnt)
{
    return io_rw(fd, GREEN__IO_WRITE, iov, iovcnt);
}

ssize_t green_write(int fd, const void *buf, size_t n)
{
    struct iovec iov = {(void *)buf, n};
    return green_writev(fd, &iov, 1);
}

ssize_t green_write_all(int fd, const void *buf, size_t n)
{
    green__file_rw_fn rw;
    if (io_begin_rw(fd, &rw) != 0)
        return -1;
    if (n == 0)
        return 0;
    if (rw) {
        /* A regular file: its writes are not partial but at the end of
           the device, which the next one reports. */
        size_t done = 0;
        while (done < n) {
            struct iovec iov = {(char *)buf + done, n - done};
            ssize_t k = rw(fd, &iov, 1, -1, GREEN__IO_WRITE);
            if (k <= 0)
                return k < 0 ? -1 : green__fail(EIO);
            done += (size_t)k;
        }
        return (ssize_t)n;
    }
    struct green__io_args a = {.buf = (void *)buf, .n = n};
    struct green__io_op op = {try_write_rest, &a, n, GREEN__IO_WRITE,
                              GREEN__IO_ALL};
    ssize_t r = green__io_retry(fd, &op);
    /* All or nothing: a failure after progress is still a failure. */
    return r >= 0 && (size_t)r < n ? -1 : r;
}

/******************************************************************************/
/*  Accept, connect, close                                                    */
/******************************************************************************/

static ssize_t try_accept(int fd, void *arg, size_t done)
{
    struct green__io_args *a = arg;
    (void)done;
    return green__sys_accept4(fd, a->addr, a->len,
                              SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int green_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct green__io_args a = {.addr = addr, .len = len};
    int c = (int)io_call(fd, GREEN__IO_READ, try_accept, &a);
    if (c >= 0)
        green__fd_adopt(c, GREEN__FD_SOCKET);
    return c;
}

/* After EINPROGRESS: the socket is writable once the handshake ended,
   well or badly; SO_ERROR has the outcome (ECONNREFUSED, ...). */
static ssize_t try_connected(int fd, void *arg, size_t done)
{
    (void)arg;
    (void)done;
    struct pollfd p = {fd, POLLOUT, 0};
    if (green__sys_poll(&p, 1, 0) == 0)
        return green__fail(EAGAIN); /* a spurious wake-up */
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        return -1;
    return soerr ? green__fail(soerr) : 0;
}

/* The AF_UNIX back-off's sleep: cooperative where possible. */
static int backoff_sleep(double t, int flags)
{
    if (!(flags & GREEN__IO_THREAD) || green__io_coop())
        return green_sleep(t);
    struct timespec ts = {0, (long)(t * 1e9)};
    return nanosleep(&ts, NULL);
}

int green__io_connect(int fd, const struct sockaddr *addr, socklen_t len,
                      int (*connect_fn)(int, const struct sockaddr *,
                                        socklen_t),
                      int flags)
{
    double backoff = 0.001;
    for (;;) {
        if (connect_fn(fd, addr, len) == 0)
            return 0;
        if (errno == EINPROGRESS)
            break;
        if (errno != EAGAIN || !addr || addr->sa_family != AF_UNIX)
            return -1;
        /* A full AF_UNIX backlog: the unconnected socket polls writable
           at once, so back off and retry, as a blocking connect keeps
           waiting. */
        if (backoff_sleep(backoff, flags) != 0)
            return -1;
        if (backoff < 0.05)
            backoff *= 2;
    }
    struct green__io_op op = {try_connected, NULL, 0, GREEN__IO_WRITE,
                              flags};
    if (green__io_retry(fd, &op) == 0)
        return 0;
    if (errno == EAGAIN)
        errno = EINPROGRESS; /* SO_SNDTIMEO passed: the kernel's word */
    return -1;
}

static int sys_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return green__sys_connect(fd, addr, len);
}

int green_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (io_begin(fd) != 0)
        return -1;
    return green__io_connect(fd, addr, len, sys_connect, 0);
}

int green_close(int fd)
{
    if (fd < 0)
        return green__fail(EBADF);
    /* Waiters first, while the fd is still ours: they wake with EBADF
       and never retry on the number, which the next open may reuse. */
    green__fd_forget(fd);
    return green__sys_close(fd);
}
