/* The blocked-loop monitor (gevent's max_blocking_time).  A thread wakes
   four times per threshold and looks at two words the hub maintains
   anyway: the switch counter and whether the loop is polling.  If
   neither moved for longer than the threshold, a greenlet is running
   without ever yielding: report it once per blocking episode.  The hub
   side costs two plain stores per loop iteration (ev_prepare/ev_check)
   and nothing per switch beyond the counter it always keeps. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"

struct monitor {
    struct green__hub *hub;  /* the watched hub (read-only from thread) */
    double threshold;        /* seconds without a switch or a poll */
    pthread_t thread;
    pthread_mutex_t mu;      /* guards stop, with cv */
    pthread_cond_t cv;
    int stop;                /* set by green_monitor_stop */
    int polling;             /* 1 while the loop sits in its poll */
    ev_prepare prepare;      /* loop about to poll */
    ev_check check;          /* loop done polling */
};

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    struct monitor *m = w->data;
    __atomic_store_n(&m->polling, 1, __ATOMIC_RELAXED);
}

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop;
    (void)revents;
    struct monitor *m = w->data;
    __atomic_store_n(&m->polling, 0, __ATOMIC_RELAXED);
}

static void report(struct monitor *m, double blocked)
{
    struct green *g = __atomic_load_n(&m->hub->current, __ATOMIC_ACQUIRE);
    /* g cannot finish while it blocks the hub, so reading it is safe. */
    char name[sizeof g->name];
    memcpy(name, g->name, sizeof name);
    name[sizeof name - 1] = 0;
    if (!name[0])
        snprintf(name, sizeof name, "greenlet-%" PRIu64, g->id);
    fprintf(stderr,
            "libgreen: monitor: hub blocked for %.3f s (threshold %.3f s) "
            "by greenlet '%s' (id %" PRIu64 ")\n",
            blocked, m->threshold, name, g->id);
    fflush(stderr);
}

/* Sleep up to `seconds`; returns 1 when asked to stop. */
static int nap(struct monitor *m, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_nsec * 1e-9 + seconds;
    ts.tv_sec += (time_t)t;
    ts.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    pthread_mutex_lock(&m->mu);
    while (!m->stop &&
           pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT)
        ;
    int stop = m->stop;
    pthread_mutex_unlock(&m->mu);
    return stop;
}

static void *monitor_main(void *arg)
{
    struct monitor *m = arg;
    uint64_t seen = __atomic_load_n(&m->hub->switches, __ATOMIC_RELAXED);
    double since = green__now();
    int reported = 0;
    while (!nap(m, m->threshold / 4)) {
        uint64_t now_sw = __atomic_load_n(&m->hub->switches, __ATOMIC_RELAXED);
        int polling = __atomic_load_n(&m->polling, __ATOMIC_RELAXED);
        double now = green__now();
        if (now_sw != seen || polling) {
            /* The hub cycled, or it is waiting for events: not blocked. */
            seen = now_sw;
            since = now;
            reported = 0;
        } else if (!reported && now - since > m->threshold) {
            report(m, now - since);
            reported = 1;
        }
    }
    return NULL;
}

static void monitor_term(struct green__hub *hub, void *state);
static void monitor_fork(struct green__hub *hub, void *state, int phase);
static struct green__module monitor_module = {
    .name = "monitor", .term = monitor_term, .fork = monitor_fork};

static void monitor_term(struct green__hub *hub, void *state)
{
    struct monitor *m = state;
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    ev_ref(hub->loop);
    ev_prepare_stop(hub->loop, &m->prepare);
    ev_ref(hub->loop);
    ev_check_stop(hub->loop, &m->check);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Stop the hub's monitor, if it has one. */
static void monitor_stop(struct green__hub *hub)
{
    struct monitor *m = green__module_state(hub, &monitor_module);
    if (!m)
        return;
    green__module_detach(hub, &monitor_module);
    monitor_term(hub, m);
}

/* The monitor thread did not survive the fork: start a new one. */
static void monitor_fork(struct green__hub *hub, void *state, int phase)
{
    (void)hub;
    struct monitor *m = state;
    if (!m || phase != GREEN__FORK_CHILD)
        return;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->stop = 0;
    if (pthread_create(&m->thread, NULL, monitor_main, m) != 0)
        m->stop = 1;
}

int green_monitor_start(double seconds)
{
    if (!(seconds > 0))
        return green__fail(EINVAL);
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    monitor_stop(hub); /* restart with the new threshold */
    struct monitor *m = calloc(1, sizeof *m);
    if (!m)
        return green__fail(ENOMEM);
    m->hub = hub;
    m->threshold = seconds;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    ev_prepare_init(&m->prepare, on_prepare);
    m->prepare.data = m;
    ev_check_init(&m->check, on_check);
    m->check.data = m;
    ev_set_priority(&m->check, EV_MAXPRI);
    /* Internal watchers must not keep the loop alive. */
    ev_prepare_start(hub->loop, &m->prepare);
    ev_unref(hub->loop);
    ev_check_start(hub->loop, &m->check);
    ev_unref(hub->loop);
    int err = green__module_attach(hub, &monitor_module, m);
    if (!err)
        err = pthread_create(&m->thread, NULL, monitor_main, m);
    if (err) {
        green__module_detach(hub, &monitor_module);
        ev_ref(hub->loop);
        ev_prepare_stop(hub->loop, &m->prepare);
        ev_ref(hub->loop);
        ev_check_stop(hub->loop, &m->check);
        free(m);
        return green__fail(err);
    }
    return 0;
}

void green_monitor_stop(void)
{
    struct green__hub *hub = green__hub_peek();
    if (hub)
        monitor_stop(hub);
}

/* GREEN_MONITOR=SECONDS: monitor every hub from its creation. */
static void monitor_from_env(struct green__hub *hub)
{
    (void)hub;
    const char *s = getenv("GREEN_MONITOR");
    if (!s || !*s)
        return;
    char *end;
    double v = strtod(s, &end);
    if (*end == 0 && v > 0 && v < 1e6)
        green_monitor_start(v);
}

/* Each new hub looks at GREEN_MONITOR (a getenv, nothing else, unless
   it is set). */
__attribute__((constructor)) static void monitor_env_hook(void)
{
    green__hub_on_create(monitor_from_env);
}
