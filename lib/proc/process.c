/* green_waitpid (ev_child) and green_fork (ev_loop_fork + hub re-init).

   Children and libev: libev's default loop reaps *every* child of the
   process when SIGCHLD arrives (its internal SIGCHLD watcher calls
   waitpid(-1, WNOHANG | WUNTRACED | WCONTINUED)) and reports each status
   to the ev_child watchers of that pid; a status nobody watches for is
   gone, and a later plain waitpid() fails with ECHILD.  So, like gevent's
   os.waitpid, the hub on the default loop keeps one catch-all ev_child
   watcher (pid 0, trace on; it keeps the loop alive only while a
   green_waitpid is parked) from the hub's creation on: every status it sees
   goes to a parked green_waitpid that wants it, or else into a
   process-wide cache that later green_waitpid calls consult first
   (entries expire after 60 s, at most 1,024 are kept).  A plain
   waitpid() (or system(), which calls it) in the main thread races with
   libev and may fail with ECHILD once the hub exists: use green_waitpid.

   green_waitpid(pid, status, options):
   - pid > 0 or pid == -1; the process-group forms (0, < -1) are -1/EINVAL
     (libev reaps group members as plain pids, so they cannot be told
     apart afterwards);
   - options: WNOHANG, WUNTRACED, WCONTINUED (anything else EINVAL);
     WNOHANG returns 0 at once if no matching child changed state, and
     may be called from the hub or a plain libev callback;
   - results and errno otherwise as waitpid(2) (ECHILD when no such
     child), plus the blocking errors (ECANCELED, ETIMEDOUT, EDEADLK);
   - a hub on a loop other than libev's default (any thread but the main
     one, or an embedding application's own loop) cannot use ev_child: it
     polls waitpid(WNOHANG) and the cache, sleeping 1 ms doubling to 50 ms
     between polls (other greenlets run meanwhile).

   green_fork() (gevent's policy, DESIGN "Error model"): the child keeps
   every greenlet; the forking greenlet continues and the others run only
   when it yields to the hub.  In the child the loop gets ev_loop_fork
   (new epoll set and wakeup pipe, so no event is delivered through the
   parent's kernel objects) and each module's fork_child re-initialises
   its state (threadpool: the parent's workers are forgotten and new ones
   start on demand; green_waitpid waiters for the parent's children fail
   with ECHILD, and the cache of the parent's statuses is dropped).  Only
   the calling thread survives fork(2): hubs of other threads are gone in
   the child (their memory is not freed there). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/hub.h"
#include "proc.h"

#define CACHE_MAX 1024
#define CACHE_TTL 60.0
#define POLL_FIRST 0.001
#define POLL_MAX 0.05

/* A status libev reaped that no green_waitpid was waiting for. */
struct reaped {
    struct green__list node;    /* in `cache`, oldest first */
    pid_t pid;
    int status;
    double when;                /* green__now() when reaped */
};

static pthread_mutex_t child_mu = PTHREAD_MUTEX_INITIALIZER;
static struct green__list cache = {&cache, &cache}; /* under child_mu */
static size_t ncache;                               /* under child_mu */

/* A parked green_waitpid (on its greenlet's stack). */
struct pidwaiter {
    struct green__list node;    /* in procstate.waiters */
    pid_t pid;                  /* > 0 or -1 */
    int options;
    struct green *g;
    pid_t rpid;                 /* result, set by the waker */
    int rstatus;
};

/* Per-hub state, on the default loop's hub only. */
struct procstate {
    ev_child all;               /* catch-all: pid 0, trace on */
    struct green__list waiters; /* parked green_waitpid calls, FIFO */
    size_t nwaiters;            /* length of waiters */
    struct ev_loop *loop;
};

/* The catch-all watcher keeps the loop alive exactly while a
   green_waitpid is parked (so the hub polls for SIGCHLD instead of
   reporting EDEADLK), and never otherwise. */
static void waiter_add(struct procstate *st, struct pidwaiter *w)
{
    green__list_push(&st->waiters, &w->node);
    if (st->nwaiters++ == 0)
        ev_ref(st->loop);
}

static void waiter_del(struct procstate *st, struct pidwaiter *w)
{
    green__list_remove(&w->node);
    if (--st->nwaiters == 0)
        ev_unref(st->loop);
}

/* Does a status of rpid answer waitpid(pid, options)? */
static int wanted(pid_t pid, int options, pid_t rpid, int status)
{
    if (pid != -1 && pid != rpid)
        return 0;
    if (WIFSTOPPED(status))
        return (options & WUNTRACED) != 0;
    if (WIFCONTINUED(status))
        return (options & WCONTINUED) != 0;
    return 1;
}

/* Give a status to the oldest parked waiter that wants it (only waiters
   for exactly rpid if `specific`).  Returns 1 if one took it. */
static int hand_over(struct procstate *st, pid_t rpid, int status,
                     int specific)
{
    struct green__list *it;
    green__list_foreach(it, &st->waiters) {
        struct pidwaiter *w = green__container_of(it, struct pidwaiter, node);
        if ((specific && w->pid != rpid) ||
            !wanted(w->pid, w->options, rpid, status))
            continue;
        /* A waiter already woken by a kill has not run yet: skip it, it
           takes itself off the list. */
        if (!green__wake(w->g, 0))
            continue;
        w->rpid = rpid;
        w->rstatus = status;
        waiter_del(st, w);
        return 1;
    }
    return 0;
}

static void cache_free_all(void)
{
    struct green__list *n;
    while ((n = green__list_pop(&cache)) != NULL)
        free(green__container_of(n, struct reaped, node));
    ncache = 0;
}

static void cache_add(pid_t pid, int status)
{
    double now = green__now();
    pthread_mutex_lock(&child_mu);
    /* Drop what nobody collected in time, and keep the cache bounded. */
    while (!green__list_empty(&cache)) {
        struct reaped *old = green__container_of(cache.next, struct reaped,
                                                  node);
        if (ncache < CACHE_MAX && now - old->when < CACHE_TTL)
            break;
        green__list_remove(&old->node);
        ncache--;
        free(old);
    }
    struct reaped *r = malloc(sizeof *r);
    if (r) {
        r->pid = pid;
        r->status = status;
        r->when = now;
        green__list_push(&cache, &r->node);
        ncache++;
    }
    pthread_mutex_unlock(&child_mu);
}

/* Take the oldest cached status that answers waitpid(pid, options):
   its pid, or 0 if there is none. */
static pid_t cache_take(pid_t pid, int options, int *status)
{
    pid_t found = 0;
    pthread_mutex_lock(&child_mu);
    struct green__list *it;
    green__list_foreach(it, &cache) {
        struct reaped *r = green__container_of(it, struct reaped, node);
        if (wanted(pid, options, r->pid, r->status)) {
            found = r->pid;
            *status = r->status;
            green__list_remove(&r->node);
            ncache--;
            free(r);
            break;
        }
    }
    pthread_mutex_unlock(&child_mu);
    return found;
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    (void)loop;
    (void)revents;
    struct procstate *st = w->data;
    if (!hand_over(st, w->rpid, w->rstatus, 0))
        cache_add(w->rpid, w->rstatus);
}

static void proc_term(struct green__hub *hub)
{
    struct procstate *st = hub->mod[GREEN__MOD_PROCESS].state;
    if (st->nwaiters == 0)
        ev_ref(hub->loop);
    ev_child_stop(hub->loop, &st->all);
    /* Parked waiters belong to greenlets being discarded; statuses not
       yet collected are dropped (no loop reaps children any more). */
    pthread_mutex_lock(&child_mu);
    cache_free_all();
    pthread_mutex_unlock(&child_mu);
    free(st);
    hub->mod[GREEN__MOD_PROCESS].state = NULL;
}

/* green_fork's child: the parked waiters waited for the parent's
   children, which are not ours. */
static void proc_fork_child(struct green__hub *hub)
{
    struct procstate *st = hub->mod[GREEN__MOD_PROCESS].state;
    while (!green__list_empty(&st->waiters)) {
        struct pidwaiter *w = green__container_of(st->waiters.next,
                                                  struct pidwaiter, node);
        waiter_del(st, w);
        green__wake(w->g, ECHILD);
    }
}

/* The default-loop hub's state, created (and the catch-all watcher
   started) on first use; NULL/ENOMEM. */
static struct procstate *proc_state(struct green__hub *hub)
{
    struct procstate *st = hub->mod[GREEN__MOD_PROCESS].state;
    if (st)
        return st;
    st = malloc(sizeof *st);
    if (!st)
        return NULL;
    green__list_init(&st->waiters);
    st->nwaiters = 0;
    st->loop = hub->loop;
    ev_child_init(&st->all, child_cb, 0, 1);
    st->all.data = st;
    ev_child_start(hub->loop, &st->all);
    ev_unref(hub->loop);
    green__module_set(hub, GREEN__MOD_PROCESS, st, proc_term, proc_fork_child);
    return st;
}

void green__process_watch(struct green__hub *hub)
{
    proc_state(hub);
}

pid_t green_waitpid(pid_t pid, int *status, int options)
{
    if ((options & ~(WNOHANG | WUNTRACED | WCONTINUED)) || pid == 0 ||
        pid < -1)
        return green__fail(EINVAL);
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    if (!(options & WNOHANG)) {
        int err = green__can_block(-1);
        if (err)
            return green__fail(err);
    }
    struct procstate *st = NULL;
    if (ev_is_default_loop(hub->loop) && !(st = proc_state(hub)))
        return green__fail(ENOMEM);
    double nap = POLL_FIRST;
    for (;;) {
        int stv = 0;
        pid_t r = cache_take(pid, options, &stv);
        if (r == 0)
            r = waitpid(pid, &stv, options | WNOHANG);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1; /* ECHILD: no such child (any more) */
        if (r > 0) {
            /* We reaped it ourselves (waitpid(-1)): a greenlet parked
               for exactly that pid has the better claim. */
            if (st && pid == -1 && hand_over(st, r, stv, 1))
                continue;
            if (status)
                *status = stv;
            return r;
        }
        if (options & WNOHANG)
            return 0;
        if (st) {
            /* No libev callback runs between the waitpid above and the
               park, so the status cannot slip past this waiter. */
            struct pidwaiter w = {.pid = pid, .options = options,
                                  .g = hub->current};
            green__list_init(&w.node);
            waiter_add(st, &w);
            int err = green__park(-1, "waiting for a child");
            if (err) {
                if (green__list_linked(&w.node))
                    waiter_del(st, &w);
                return green__fail(err);
            }
            if (status)
                *status = w.rstatus;
            return w.rpid;
        }
        if (green_sleep(nap) != 0)
            return -1;
        nap = nap * 2 > POLL_MAX ? POLL_MAX : nap * 2;
    }
}

pid_t green_fork(void)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    /* Watch for children from now on, so the new child's status is kept
       for a later green_waitpid even if it exits before that call. */
    if (ev_is_default_loop(hub->loop) && !proc_state(hub))
        return green__fail(ENOMEM);
    green__thread_atfork(hub, GREEN__FORK_PREPARE);
    green__threadpool_atfork(hub, GREEN__FORK_PREPARE);
    green__signal_atfork(GREEN__FORK_PREPARE);
    pthread_mutex_lock(&child_mu);
    pid_t pid = fork();
    if (pid != 0) {
        int err = errno;
        pthread_mutex_unlock(&child_mu);
        green__signal_atfork(GREEN__FORK_PARENT);
        green__threadpool_atfork(hub, GREEN__FORK_PARENT);
        green__thread_atfork(hub, GREEN__FORK_PARENT);
        errno = err;
        return pid;
    }
    /* The child: one thread, this greenlet. */
    pthread_mutex_init(&child_mu, NULL);
    cache_free_all(); /* the parent's children are not ours */
    green__signal_atfork(GREEN__FORK_CHILD);
    green__threadpool_atfork(hub, GREEN__FORK_CHILD);
    green__thread_atfork(hub, GREEN__FORK_CHILD);
    ev_loop_fork(hub->loop);
    for (int i = 0; i < GREEN__MOD_MAX; i++)
        if (hub->mod[i].fork_child)
            hub->mod[i].fork_child(hub);
    return 0;
}
