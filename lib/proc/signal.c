/* green_signal_wait: wait for a signal without ever changing what the
   signal does outside waits.

   While at least one greenlet waits for signum, libgreen's own handler is
   installed for it; when the last wait ends, the disposition that was in
   force before (SIG_DFL, SIG_IGN or the application's handler) goes back.
   Both are one sigaction(2) swap each, so there is never a moment where
   the signal has a disposition nobody chose (libev's ev_signal_stop sets
   SIG_DFL before anyone could restore the old one, and a signal landing
   in another thread then could kill a process that ignores it).

   The handler is async-signal-safe: it counts the signal in the slot and
   wakes the owning hub with ev_async_send (documented signal-safe).  The
   hub's async callback fires the clause of every greenlet waiting for a
   signal that arrived, so all waiters wake.  A signal that arrives while
   nobody waits is not remembered: the process's own disposition applies.

   Watches (green_signal_watch, green_signal_handler) keep the handler
   installed for as long as they exist, so deliveries between two waits
   are counted (exactly: the handler counts each one), never lost and
   never given the default action; the hub's async callback adds them to
   the watch, wakes its green_signal_next callers or spawns a handler
   greenlet per delivery.

   One hub at a time may wait for a given signal (a process-wide table
   records which); a wait from another thread's hub is EBUSY.  SIGCHLD is
   EBUSY while an application created libev's default loop (which owns
   it) and the hub runs another loop. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "proc.h"

/* Process-wide ownership of each signal number. */
struct sigslot {
    struct sigstate *owner;     /* hub state waiting for it, while users */
    unsigned users;             /* waits in progress */
    atomic_uint arrived;        /* counted by the handler */
    struct sigaction saved;     /* disposition before the first wait */
};

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sigslot slots[_NSIG];

/* Per hub: the wake-up from the handler, the waiting clauses and the
   watches. */
struct sigstate {
    ev_async async;
    struct ev_loop *loop;
    struct green__list waiters; /* struct sigwaiter, any signal */
    struct green__list watches; /* struct green_sigwatch */
    size_t users;               /* waits + watches: async referenced */
};

/* A watch of a signal set (or a handler for one signal). */
struct green_sigwatch {
    struct green__hub *hub;        /* owner; NULL once its hub is gone */
    struct green__list node;       /* in the hub's sigstate.watches */
    unsigned char watched[_NSIG];
    unsigned counts[_NSIG];        /* deliveries not taken yet */
    uint64_t first[_NSIG];         /* arrival order of the oldest one */
    uint64_t seq;
    green_fn fn;                   /* handler form: spawned per delivery */
    void *arg;
    struct green__waitq waiters;   /* green_signal_next */
};

/* One wait's clause on a signal: lives on the waiting greenlet's stack. */
struct sigwaiter {
    struct green__clause c;
    int signum;
};

static void sig_term(struct green__hub *hub, void *state);
static void sig_fork(struct green__hub *hub, void *state, int phase);
static size_t sig_watchers(struct green__hub *hub, void *state)
{
    (void)hub;
    return ((struct sigstate *)state)->users > 0;
}
static struct green__module sig_module = {.name = "signal",
                                          .term = sig_term,
                                          .fork = sig_fork,
                                          .watchers = sig_watchers};

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

/* Any thread, async-signal context: count it, wake the owning hub.  The
   slot's owner is set before the handler is installed and cleared after
   it is removed, so it is valid here. */
static void on_signal(int signum)
{
    int saved_errno = errno;
    struct sigslot *slot = &slots[signum];
    atomic_fetch_add_explicit(&slot->arrived, 1, memory_order_relaxed);
    struct sigstate *st = __atomic_load_n(&slot->owner, __ATOMIC_ACQUIRE);
    if (st)
        ev_async_send(st->loop, &st->async);
    errno = saved_errno;
}

/* n deliveries of sig for a watch. */
static void watch_deliver(struct green_sigwatch *sw, int sig, unsigned n)
{
    if (sw->fn) {
        /* gevent.signal_handler: a greenlet per delivery (spawning from
           a callback is allowed; ENOMEM drops one). */
        while (n--)
            green_release(green_spawn(sw->fn, sw->arg));
        return;
    }
    if (sw->counts[sig] == 0)
        sw->first[sig] = ++sw->seq;
    sw->counts[sig] += n;
    green__waitq_wake_one(&sw->waiters, 0);
}

/* The hub's side: fire every waiter whose signal arrived, and give the
   watches their deliveries. */
static void sig_async(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sigstate *st = w->data;
    /* Take the counts first: a signal arriving after this sends the
       async again, so it is never lost. */
    unsigned got[_NSIG] = {0};
    for (int n = 1; n < _NSIG; n++)
        if (__atomic_load_n(&slots[n].owner, __ATOMIC_ACQUIRE) == st)
            got[n] = atomic_exchange(&slots[n].arrived, 0);
    struct green__list *it;
    green__list_foreach(it, &st->waiters) {
        struct sigwaiter *s = green__container_of(it, struct sigwaiter,
                                                  c.node);
        if (got[s->signum])
            green__clause_fire(&s->c, 0);
    }
    green__list_foreach(it, &st->watches) {
        struct green_sigwatch *sw =
            green__container_of(it, struct green_sigwatch, node);
        for (int n = 1; n < _NSIG; n++)
            if (got[n] && sw->watched[n])
                watch_deliver(sw, n, got[n]);
    }
}

/* A wait or a watch starts or ends: the async keeps the loop alive while
   there is any. */
static void users_add(struct sigstate *st)
{
    if (st->users++ == 0)
        ev_ref(st->loop);
}

static void users_del(struct sigstate *st)
{
    if (--st->users == 0)
        ev_unref(st->loop);
}

/* This hub's state, created on first use; NULL/ENOMEM. */
static struct sigstate *sig_state(struct green__hub *hub)
{
    struct sigstate *st = green__module_state(hub, &sig_module);
    if (st || !(st = green__module_new(hub, &sig_module, sizeof *st)))
        return st;
    st->loop = hub->loop;
    green__list_init(&st->waiters);
    green__list_init(&st->watches);
    ev_async_init(&st->async, sig_async);
    st->async.data = st;
    ev_async_start(hub->loop, &st->async);
    ev_unref(hub->loop); /* referenced only while someone waits */
    return st;
}

static void watch_stop_all(struct green_sigwatch *sw);

static void sig_term(struct green__hub *hub, void *state)
{
    struct sigstate *st = state;
    /* The discarded greenlets' undos already ended every wait; watches
       are detached (green_signal_unwatch only frees them now). */
    struct green__list *n;
    while ((n = green__list_pop(&st->watches)) != NULL) {
        struct green_sigwatch *sw =
            green__container_of(n, struct green_sigwatch, node);
        watch_stop_all(sw);
        sw->hub = NULL;
    }
    if (st->users == 0)
        ev_ref(hub->loop);
    ev_async_stop(hub->loop, &st->async);
    free(st);
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
        /* Waiters are kept: ev_loop_fork gives the child's loop a new
           wakeup for the async watcher, and the handler feeds it. */
        pthread_mutex_init(&sig_mu, NULL);
        break;
    }
}

/* Claim signum for st and install our handler on the first wait; 0 or
   EBUSY. */
static int watch_start(struct sigstate *st, int signum)
{
    struct ev_loop *dflt = ev_default_loop_uc_();
    pthread_mutex_lock(&sig_mu);
    struct sigslot *slot = &slots[signum];
    if ((slot->users && slot->owner != st) ||
        (signum == SIGCHLD && dflt && dflt != st->loop)) {
        pthread_mutex_unlock(&sig_mu);
        return EBUSY;
    }
    if (slot->users++ == 0) {
        atomic_store(&slot->arrived, 0);
        __atomic_store_n(&slot->owner, st, __ATOMIC_RELEASE);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask);
        sigaction(signum, &sa, &slot->saved);
    }
    pthread_mutex_unlock(&sig_mu);
    return 0;
}

/* The last wait for signum ended: put the saved disposition back in one
   swap, then forget the owner. */
static void watch_stop(int signum)
{
    pthread_mutex_lock(&sig_mu);
    struct sigslot *slot = &slots[signum];
    if (--slot->users == 0) {
        sigaction(signum, &slot->saved, NULL);
        __atomic_store_n(&slot->owner, NULL, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&sig_mu);
}

/* The clause's undo: leave the hub's list and release the signal. */
static void sig_undo(struct green__clause *c)
{
    struct sigwaiter *s = (struct sigwaiter *)c;
    struct sigstate *st = green__module_state(c->g->hub, &sig_module);
    green__list_remove(&c->node);
    users_del(st);
    watch_stop(s->signum);
}

int green_signal_wait(int signum, double timeout)
{
    if (!signum_ok(signum) || timeout != timeout)
        return green__fail(EINVAL);
    /* A signal is never "already there": timeout 0 is EAGAIN. */
    struct green__wait w;
    int err = green__wait_begin(&w, timeout, "waiting for a signal", 0);
    if (err)
        return green__fail(err);
    struct sigstate *st = sig_state(w.g->hub);
    if (!st)
        return green__fail(ENOMEM);
    err = watch_start(st, signum);
    if (err)
        return green__fail(err);
    struct sigwaiter s = {.signum = signum};
    green__wait_add(&w, &s.c, sig_undo, NULL);
    green__list_push(&st->waiters, &s.c.node);
    users_add(st); /* a parked wait keeps the hub polling */
    err = green__wait_park(&w);
    return err ? green__fail(err) : 0;
}

/******************************************************************************/
/*  Signal sets (green_signal_watch) and handlers                             */
/******************************************************************************/

static void watch_stop_all(struct green_sigwatch *sw)
{
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sw->watched[sig]) {
            watch_stop(sig);
            sw->watched[sig] = 0;
        }
    }
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
    struct sigstate *st = sig_state(hub);
    struct green_sigwatch *sw = st ? calloc(1, sizeof *sw) : NULL;
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
        int err = watch_start(st, sig);
        if (err) {
            watch_stop_all(sw);
            free(sw);
            errno = err;
            return NULL;
        }
        sw->watched[sig] = 1;
    }
    green__list_push(&st->watches, &sw->node);
    users_add(st);
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
        users_del(green__module_state(sw->hub, &sig_module));
    } else if (sw->hub) {
        return; /* another thread's: not ours to stop */
    }
    free(sw);
}
