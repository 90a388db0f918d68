/* green_signal_wait: wait for a signal with ev_signal.

   Every waiting greenlet starts its own ev_signal watcher (on its stack)
   for the duration of the wait; libev calls every watcher of a signal,
   so all waiters wake.  A signal that arrives while nobody waits for it
   is not remembered: it gets the process's own disposition, which
   libgreen leaves untouched outside waits (see below).

   libev rules this file enforces (ev.pod, "ev_signal"):
   - a signal may be watched by one loop at a time.  libev asserts (or,
     built with NDEBUG, silently moves the signal to the newer loop); here
     a process-wide table records which loop holds each signal and a wait
     from another thread's hub fails with EBUSY instead.  Watchers the
     application starts itself on a different loop for the same signal
     are not visible to libgreen: do not mix the two;
   - SIGCHLD is tied to libev's default loop (it reaps children there),
     so only a hub running on the default loop may wait for it (EBUSY
     elsewhere).
   This works on any loop (libev 4 delivers signals to non-default loops
   through the loop's own wakeup pipe), so every thread's hub can wait
   for the signals no other loop holds.

   Dispositions: when the last watcher of a signal stops, libev resets the
   signal to SIG_DFL.  libgreen saves the disposition in force before the
   first wait and restores it after the last (with the signal blocked in
   the calling thread meanwhile, so a signal arriving in between is held,
   not killed by SIG_DFL), so the process's handlers, SIG_IGN settings and
   other signals' handlers are what they were. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "proc.h"

/* One wait's clause on a signal: lives on the waiting greenlet's stack.
   Its undo stops the watcher (also when green_shutdown discards the
   greenlet). */
struct sigwaiter {
    struct green__clause c;     /* first: the undo casts back */
    ev_signal w;                /* started while the greenlet waits */
};

/* Process-wide ownership of each signal number. */
struct sigslot {
    struct ev_loop *loop;       /* loop holding our watchers, if users */
    unsigned users;             /* our started watchers */
    int restore;                /* libev replaced `saved`: put it back */
    struct sigaction saved;     /* disposition before our first watcher */
};

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sigslot slots[_NSIG];

static void sig_fork(struct green__hub *hub, void *state, int phase);
static void sig_term(struct green__hub *hub, void *state);
static struct green__module sig_module = {.name = "signal",
                                          .term = sig_term,
                                          .fork = sig_fork};

static int signum_ok(int signum)
{
    if (signum <= 0 || signum >= _NSIG)
        return 0;
    switch (signum) {
    case SIGKILL: /* cannot be caught */
    case SIGSTOP:
    case SIGSEGV: /* synchronous faults: libgreen's overflow handler */
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
        return 0;
    default:
        return 1;
    }
}

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sigwaiter *s = green__container_of(w, struct sigwaiter, w);
    /* Stays started until the wait's undo: a second signal meanwhile
       only fires the clause again. */
    green__clause_fire(&s->c, 0);
}

/* Claim signum for loop and start s's watcher (calling cb); 0 or
   EBUSY. */
static int watch_start_cb(struct ev_loop *loop, struct sigwaiter *s,
                          int signum,
                          void (*cb)(struct ev_loop *, ev_signal *, int))
{
    pthread_mutex_lock(&sig_mu);
    struct sigslot *slot = &slots[signum];
    if ((slot->users && slot->loop != loop) ||
        (signum == SIGCHLD && ev_default_loop_uc_() &&
         loop != ev_default_loop_uc_())) {
        pthread_mutex_unlock(&sig_mu);
        return EBUSY;
    }
    int first = slot->users == 0;
    if (first)
        sigaction(signum, NULL, &slot->saved);
    ev_signal_init(&s->w, cb, signum);
    ev_signal_start(loop, &s->w);
    if (first) {
        /* Restore later only if libev replaced what was there (not if
           the application's own watchers on this loop had installed
           libev's handler already). */
        struct sigaction now;
        sigaction(signum, NULL, &now);
        slot->restore = now.sa_handler != slot->saved.sa_handler;
        slot->loop = loop;
    }
    slot->users++;
    pthread_mutex_unlock(&sig_mu);
    return 0;
}

static int watch_start(struct ev_loop *loop, struct sigwaiter *s, int signum)
{
    return watch_start_cb(loop, s, signum, sig_cb);
}

static void watch_stop(struct ev_loop *loop, struct sigwaiter *s)
{
    int signum = s->w.signum;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, signum);
    pthread_mutex_lock(&sig_mu);
    struct sigslot *slot = &slots[signum];
    /* Held, not lost, between libev's SIG_DFL and our restore. */
    pthread_sigmask(SIG_BLOCK, &block, &old);
    ev_signal_stop(loop, &s->w);
    if (--slot->users == 0) {
        struct sigaction now;
        sigaction(signum, NULL, &now);
        if (slot->restore && now.sa_handler == SIG_DFL)
            sigaction(signum, &slot->saved, NULL);
        slot->loop = NULL;
        slot->restore = 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_unlock(&sig_mu);
}

static void sig_undo(struct green__clause *c)
{
    watch_stop(c->g->hub->loop, (struct sigwaiter *)c);
}

static void sig_fork(struct green__hub *hub, void *state, int phase)
{
    (void)hub;
    (void)state;
    switch (phase) {
    case GREEN__FORK_PREPARE:
        pthread_mutex_lock(&sig_mu);
        break;
    case GREEN__FORK_PARENT:
        pthread_mutex_unlock(&sig_mu);
        break;
    default:
        /* Waiters are kept: libev's ev_loop_fork gives the child's loop
           a new wakeup pipe, and the inherited handlers feed it. */
        pthread_mutex_init(&sig_mu, NULL);
        break;
    }
}

int green_signal_wait(int signum, double timeout)
{
    if (!signum_ok(signum) || timeout != timeout)
        return green__fail(EINVAL);
    /* A signal is never "already there": timeout 0 is EAGAIN. */
    struct green__wait w;
    int err = green__wait_begin(&w, timeout, "waiting for a signal", 0);
    if (!err)
        err = green__module_register(&sig_module);
    if (err)
        return green__fail(err);
    struct sigwaiter s;
    err = watch_start(w.g->hub->loop, &s, signum);
    if (err)
        return green__fail(err);
    green__wait_add(&w, &s.c, sig_undo, NULL);
    err = green__wait_park(&w);
    return err ? green__fail(err) : 0;
}

/******************************************************************************/
/*  Signal sets (green_signal_watch) and handlers                             */
/******************************************************************************/

/* A watch: one started ev_signal per signal of its set for as long as it
   exists, so deliveries between two waits are counted, never lost and
   never given the default action. */
struct green_sigwatch {
    struct green__hub *hub;        /* owner; NULL once its hub is gone */
    struct green__list node;       /* in the hub's sig_state */
    struct sigwaiter *sigs;        /* one per watched signal (c unused) */
    int nsigs;
    unsigned counts[_NSIG];        /* deliveries not taken yet */
    uint64_t first[_NSIG];         /* arrival order of the oldest one */
    uint64_t seq;
    green_fn fn;                   /* handler form: spawned per delivery */
    void *arg;
    struct green__waitq waiters;   /* green_signal_next */
};

struct sig_state {
    struct green__list watches;
};

static void watch_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct green_sigwatch *sw = w->data;
    if (sw->fn) {
        /* gevent.signal_handler: a greenlet per delivery (spawning from
           a callback is allowed; ENOMEM drops this one). */
        green_release(green_spawn(sw->fn, sw->arg));
        return;
    }
    if (sw->counts[w->signum]++ == 0)
        sw->first[w->signum] = ++sw->seq;
    green__waitq_wake_one(&sw->waiters, 0);
}

static void watch_stop_all(struct green_sigwatch *sw)
{
    for (int i = 0; i < sw->nsigs; i++)
        watch_stop(sw->hub->loop, &sw->sigs[i]);
    sw->nsigs = 0;
}

static void sig_term(struct green__hub *hub, void *state)
{
    (void)hub;
    struct sig_state *st = state;
    struct green__list *n;
    while ((n = green__list_pop(&st->watches)) != NULL) {
        struct green_sigwatch *sw =
            green__container_of(n, struct green_sigwatch, node);
        watch_stop_all(sw);
        sw->hub = NULL; /* green_signal_unwatch only frees it now */
    }
    free(st);
}

static struct sig_state *sig_state_get(struct green__hub *hub)
{
    struct sig_state *st = green__module_state(hub, &sig_module);
    if (st)
        return st;
    st = malloc(sizeof *st);
    if (!st)
        return NULL;
    green__list_init(&st->watches);
    if (green__module_attach(hub, &sig_module, st) != 0) {
        free(st);
        return NULL;
    }
    return st;
}

/* Start a watch of set (or of signum alone with a handler). */
static green_sigwatch_t *watch_new(const sigset_t *set, green_fn fn,
                                   void *arg)
{
    int n = 0, bad = 0;
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sigismember(set, sig) == 1) {
            n++;
            bad |= !signum_ok(sig);
        }
    }
    if (!n || bad) {
        errno = EINVAL;
        return NULL;
    }
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    struct sig_state *st = sig_state_get(hub);
    struct green_sigwatch *sw = st ? calloc(1, sizeof *sw) : NULL;
    if (sw && !(sw->sigs = calloc((size_t)n, sizeof *sw->sigs))) {
        free(sw);
        sw = NULL;
    }
    if (!sw) {
        errno = ENOMEM;
        return NULL;
    }
    sw->hub = hub;
    sw->fn = fn;
    sw->arg = arg;
    green__waitq_init(&sw->waiters);
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sigismember(set, sig) != 1)
            continue;
        struct sigwaiter *s = &sw->sigs[sw->nsigs];
        int err = watch_start_cb(hub->loop, s, sig, watch_cb);
        if (err) {
            watch_stop_all(sw);
            free(sw->sigs);
            free(sw);
            errno = err;
            return NULL;
        }
        s->w.data = sw;
        sw->nsigs++;
    }
    green__list_push(&st->watches, &sw->node);
    return sw;
}

green_sigwatch_t *green_signal_watch(const sigset_t *set)
{
    if (!set) {
        errno = EINVAL;
        return NULL;
    }
    return watch_new(set, NULL, NULL);
}

green_sigwatch_t *green_signal_handler(int signum, green_fn fn, void *arg)
{
    if (!fn || !signum_ok(signum)) {
        errno = EINVAL;
        return NULL;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signum);
    return watch_new(&set, fn, arg);
}

/* Take the oldest pending signal: its number, or 0 if none. */
static int take_pending(struct green_sigwatch *sw)
{
    int best = 0;
    for (int sig = 1; sig < _NSIG; sig++)
        if (sw->counts[sig] && (!best || sw->first[sig] < sw->first[best]))
            best = sig;
    if (best && --sw->counts[best])
        sw->first[best] = ++sw->seq; /* the rest queue behind the others */
    return best;
}

int green_signal_next(green_sigwatch_t *sw, double timeout)
{
    int err = green__owner_check(sw, sw ? sw->hub : NULL);
    if (!err && (sw->fn || timeout != timeout))
        err = EINVAL;
    if (err)
        return green__fail(err);
    double deadline = timeout > 0 ? green__now() + timeout : timeout;
    for (;;) {
        int sig = take_pending(sw);
        if (sig)
            return sig;
        double left = timeout;
        if (timeout > 0 && (left = deadline - green__now()) <= 0)
            return green__fail(ETIMEDOUT);
        struct green__clause c = {.data = NULL};
        if (green__waitq_wait(&sw->waiters, &c, left,
                              "waiting for a signal") != 0)
            return -1; /* EBADF: unwatched meanwhile */
    }
}

unsigned green_signal_pending(const green_sigwatch_t *sw, int signum)
{
    if (!sw || signum <= 0 || signum >= _NSIG)
        return 0;
    return sw->counts[signum];
}

void green_signal_unwatch(green_sigwatch_t *sw)
{
    if (!sw)
        return;
    if (sw->hub && green__hub_peek() == sw->hub) {
        green__waitq_wake_all(&sw->waiters, EBADF);
        watch_stop_all(sw);
        green__list_remove(&sw->node);
    } else if (sw->hub) {
        return; /* another thread's: not ours to stop */
    }
    free(sw->sigs);
    free(sw);
}
