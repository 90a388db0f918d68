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
static struct green__module sig_module = {.name = "signal",
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

/* Claim signum for loop and start s's watcher; 0 or EBUSY. */
static int watch_start(struct ev_loop *loop, struct sigwaiter *s, int signum)
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
    ev_signal_init(&s->w, sig_cb, signum);
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
