/* The blocked-loop monitor (gevent's max_blocking_time).  A thread
   samples two words the hub maintains anyway, the switch counter and
   whether the loop is polling, every threshold/20.  When neither moved
   for longer than the threshold, a greenlet is running without ever
   yielding: that is one blocking episode.  The monitor then asks the hub
   thread for a backtrace of the code that blocks (a signal whose handler
   runs backtrace() on the thread's alternate stack), reports the episode
   as ongoing, samples every millisecond until the hub moves again, and
   reports the episode's real duration once it ends.  The hub side costs
   two plain stores per loop iteration (ev_prepare/ev_check) and nothing
   per switch beyond the counter it always keeps. */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "core/sys.h"

/* Thresholds above this (about 11.5 days) are EINVAL: nothing that long
   is a blocked loop, and it keeps every deadline far from overflow. */
#define MONITOR_MAX_THRESHOLD 1e6
/* How long the monitor waits for the hub thread's backtrace. */
#define CAPTURE_WAIT 0.05
#define CAPTURE_FRAMES 64
/* The signal that asks the hub thread for its backtrace.  Its default
   action is to ignore it and programs rarely use it (Go's runtime uses
   it the same way). */
#define CAPTURE_SIGNAL SIGURG

/* A backtrace request, filled by the signal handler on the hub thread. */
struct capture {
    void *frames[CAPTURE_FRAMES];
    int nframes;
    int requested; /* set by the monitor, cleared by the handler */
    int done;      /* set by the handler once frames are written */
};

/* One blocking episode, as the monitor thread sees it. */
struct episode {
    double start;         /* last time the hub was seen moving */
    uint64_t id;          /* the greenlet that blocks */
    char name[32];
    int nframes;          /* its backtrace, 0 if none */
    void *frames[CAPTURE_FRAMES];
};

struct monitor {
    struct green__hub *hub;  /* the watched hub (read-only from thread) */
    double threshold;        /* seconds without a switch or a poll */
    pthread_t thread;
    pthread_mutex_t mu;      /* guards stop, with cv */
    pthread_cond_t cv;
    int stop;                /* set by green_monitor_stop */
    int polling;             /* 1 while the loop sits in its poll */
    int can_capture;         /* our handler owns CAPTURE_SIGNAL */
    ev_prepare prepare;      /* loop about to poll */
    ev_check check;          /* loop done polling */
    struct capture cap;
};

/* The hub thread's pending request, read by the signal handler. */
static __thread struct capture *tls_capture;

/* The report callback (green_monitor_set_callback), process-wide. */
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
static green_monitor_fn report_fn;
static void *report_arg;

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

/******************************************************************************/
/*  Backtrace of the blocking code                                            */
/******************************************************************************/

/* Runs on the hub thread, on its alternate signal stack (segv.c installs
   one per hub thread), so a greenlet close to its guard page does not
   overflow.  backtrace() was called once at start so it does not load
   libgcc here; it does not allocate afterwards. */
static void on_capture_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    int saved = errno;
    struct capture *c = tls_capture;
    if (c && __atomic_exchange_n(&c->requested, 0, __ATOMIC_ACQUIRE)) {
        c->nframes = backtrace(c->frames, CAPTURE_FRAMES);
        __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    }
    errno = saved;
}

/* Install the capture handler unless the application handles the signal
   itself (then episodes are reported without a backtrace).  Returns 1
   when ours is installed. */
static int capture_install(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    struct sigaction old;
    int ok = sigaction(CAPTURE_SIGNAL, NULL, &old) == 0;
    int ours = ok && (old.sa_flags & SA_SIGINFO) &&
               old.sa_sigaction == on_capture_signal;
    int free_ = ok && !(old.sa_flags & SA_SIGINFO) &&
                (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN);
    if (free_) {
        void *warm[1];
        backtrace(warm, 1); /* loads libgcc_s now, not in the handler */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_capture_signal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        ours = sigaction(CAPTURE_SIGNAL, &sa, NULL) == 0;
    }
    pthread_mutex_unlock(&mu);
    return ours;
}

/******************************************************************************/
/*  The monitor thread                                                        */
/******************************************************************************/

/* Sleep up to `seconds` (at most MONITOR_MAX_THRESHOLD, so the deadline
   cannot overflow); returns 1 when asked to stop. */
static int nap(struct monitor *m, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_nsec * 1e-9 + seconds;
    ts.tv_sec += (time_t)t;
    ts.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->mu);
    while (!m->stop &&
           pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT)
        ;
    int stop = m->stop;
    pthread_mutex_unlock(&m->mu);
    return stop;
}

static uint64_t switches(const struct monitor *m)
{
    return __atomic_load_n(&m->hub->switches, __ATOMIC_RELAXED);
}

static int polling(const struct monitor *m)
{
    return __atomic_load_n(&m->polling, __ATOMIC_RELAXED);
}

/* Ask the hub thread for its backtrace and wait a little for it.  The
   frames are kept only if the hub did not move meanwhile (else they
   would show whatever runs now). */
static void capture(struct monitor *m, struct episode *ep, uint64_t seen)
{
    ep->nframes = 0;
    if (!m->can_capture)
        return;
    __atomic_store_n(&m->cap.done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&m->cap.requested, 1, __ATOMIC_RELEASE);
    if (pthread_kill(m->hub->thread, CAPTURE_SIGNAL) != 0)
        return;
    for (double waited = 0; waited < CAPTURE_WAIT; waited += 0.001) {
        if (__atomic_load_n(&m->cap.done, __ATOMIC_ACQUIRE))
            break;
        if (nap(m, 0.001))
            break;
    }
    /* A handler that never ran must not write frames later. */
    __atomic_store_n(&m->cap.requested, 0, __ATOMIC_RELAXED);
    if (!__atomic_load_n(&m->cap.done, __ATOMIC_ACQUIRE) ||
        switches(m) != seen || polling(m))
        return;
    /* The handler's own frame and the kernel's signal trampoline first. */
    int skip = m->cap.nframes > 2 ? 2 : 0;
    ep->nframes = m->cap.nframes - skip;
    memcpy(ep->frames, m->cap.frames + skip,
           (size_t)ep->nframes * sizeof ep->frames[0]);
}

static void print_report(const green_monitor_report_t *r)
{
    if (r->ongoing) {
        fprintf(stderr,
                "libgreen: monitor: greenlet '%s' (id %" PRIu64 ") has "
                "blocked the hub for %.3f s so far (threshold %.3f s)%s\n",
                r->name, r->id, r->seconds, r->threshold,
                r->nframes ? ", in:" : "; no backtrace");
        char **sym = r->nframes ? backtrace_symbols(r->frames, r->nframes)
                                : NULL;
        for (int i = 0; sym && i < r->nframes; i++)
            fprintf(stderr, "libgreen: monitor:   #%d %s\n", i, sym[i]);
        free(sym);
    } else {
        fprintf(stderr,
                "libgreen: monitor: hub blocked for %.3f s (threshold "
                "%.3f s) by greenlet '%s' (id %" PRIu64 ")\n",
                r->seconds, r->threshold, r->name, r->id);
    }
    fflush(stderr);
}

static void report(struct monitor *m, const struct episode *ep,
                   int ongoing, double now)
{
    green_monitor_report_t r = {
        .ongoing = ongoing,
        .seconds = now - ep->start,
        .threshold = m->threshold,
        .id = ep->id,
        .name = ep->name,
        .frames = ep->nframes ? ep->frames : NULL,
        .nframes = ep->nframes,
    };
    pthread_mutex_lock(&report_mu);
    green_monitor_fn fn = report_fn;
    void *arg = report_arg;
    pthread_mutex_unlock(&report_mu);
    if (fn)
        fn(&r, arg);
    else
        print_report(&r);
}

/* The hub has not moved since `start`, longer than the threshold. */
static void episode_begin(struct monitor *m, struct episode *ep,
                          double start, uint64_t seen)
{
    struct green *g = __atomic_load_n(&m->hub->current, __ATOMIC_ACQUIRE);
    /* g cannot finish while it blocks the hub, so reading it is safe. */
    ep->start = start;
    ep->id = g->id;
    memcpy(ep->name, g->name, sizeof ep->name);
    ep->name[sizeof ep->name - 1] = 0;
    if (!ep->name[0])
        snprintf(ep->name, sizeof ep->name, "greenlet-%" PRIu64, g->id);
    capture(m, ep, seen);
    report(m, ep, 1, green__now());
}

static void *monitor_main(void *arg)
{
    struct monitor *m = arg;
    struct episode ep;
    int blocked = 0;
    uint64_t seen = switches(m);
    double since = green__now();
    double step = m->threshold / 20 > 0.001 ? m->threshold / 20 : 0.001;
    while (!nap(m, blocked ? 0.001 : step)) {
        uint64_t now_sw = switches(m);
        double now = green__now();
        if (now_sw != seen || polling(m)) {
            /* The hub cycled, or it is waiting for events: not blocked. */
            if (blocked)
                report(m, &ep, 0, now);
            blocked = 0;
            seen = now_sw;
            since = now;
        } else if (!blocked && now - since > m->threshold) {
            episode_begin(m, &ep, since, seen);
            blocked = 1;
        }
    }
    if (blocked) /* stopped by the greenlet that blocks: it ends here */
        report(m, &ep, 0, green__now());
    return NULL;
}

/******************************************************************************/
/*  The hub's diagnostics module: the monitor and the dump signal             */
/******************************************************************************/

struct diag {
    struct monitor *mon;     /* NULL when stopped */
    int dumping;             /* dump_io is started (dump_hub is ours) */
    ev_io dump_io;           /* the dump pipe's read end */
};

static void diag_term(struct green__hub *hub, void *state);
static void diag_fork(struct green__hub *hub, void *state, int phase);
static struct green__module diag_module = {
    .name = "diag", .term = diag_term, .fork = diag_fork};

static struct diag *diag_peek(struct green__hub *hub)
{
    return green__module_state(hub, &diag_module);
}

static struct diag *diag_get(struct green__hub *hub)
{
    struct diag *d = diag_peek(hub);
    return d ? d : green__module_new(hub, &diag_module, sizeof *d);
}

/* This thread's hub and its diagnostics state (created if needed); NULL
   with errno ENOMEM. */
static struct diag *diag_current(struct green__hub **hubp)
{
    struct green__hub *hub = green__hub_get();
    struct diag *d = hub ? diag_get(hub) : NULL;
    if (hub && !d)
        errno = ENOMEM;
    *hubp = hub;
    return d;
}

/******************************************************************************/
/*  Start and stop                                                            */
/******************************************************************************/

static void watchers_stop(struct monitor *m)
{
    ev_ref(m->hub->loop);
    ev_prepare_stop(m->hub->loop, &m->prepare);
    ev_ref(m->hub->loop);
    ev_check_stop(m->hub->loop, &m->check);
}

static void monitor_term(struct diag *d)
{
    struct monitor *m = d->mon;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    watchers_stop(m);
    if (tls_capture == &m->cap)
        tls_capture = NULL;
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
    d->mon = NULL;
}

/* The monitor's waits use the monotonic clock: a wall-clock step must
   neither stall it nor make it spin. */
static void sync_init(struct monitor *m)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* The monitor thread did not survive the fork: start a new one. */
static void monitor_fork_child(struct monitor *m)
{
    sync_init(m);
    m->stop = 0;
    if (pthread_create(&m->thread, NULL, monitor_main, m) != 0)
        m->stop = 1;
}

int green_monitor_start(double seconds)
{
    if (!(seconds > 0 && seconds <= MONITOR_MAX_THRESHOLD))
        return green__fail(EINVAL); /* also NaN and INFINITY */
    struct green__hub *hub;
    struct diag *d = diag_current(&hub);
    if (!d)
        return -1;
    monitor_term(d); /* restart with the new threshold */
    struct monitor *m = calloc(1, sizeof *m);
    if (!m)
        return green__fail(ENOMEM);
    m->hub = hub;
    m->threshold = seconds;
    m->can_capture = capture_install();
    sync_init(m);
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
    tls_capture = &m->cap;
    int err = pthread_create(&m->thread, NULL, monitor_main, m);
    if (err) {
        tls_capture = NULL;
        watchers_stop(m);
        pthread_cond_destroy(&m->cv);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return green__fail(err);
    }
    d->mon = m;
    return 0;
}

void green_monitor_stop(void)
{
    struct green__hub *hub = green__hub_peek();
    struct diag *d = hub ? diag_peek(hub) : NULL;
    if (d)
        monitor_term(d);
}

void green_monitor_set_callback(green_monitor_fn fn, void *arg)
{
    pthread_mutex_lock(&report_mu);
    report_fn = fn;
    report_arg = arg;
    pthread_mutex_unlock(&report_mu);
}

/******************************************************************************/
/*  green_dump on a signal                                                    */
/******************************************************************************/

/* The handler only writes a byte to a pipe that is created once and
   never closed (so a late signal can never write into a reused fd); the
   registered hub watches the read end and dumps from its loop, between
   greenlets, where green_dump is safe.  One hub per process. */
static pthread_mutex_t dump_mu = PTHREAD_MUTEX_INITIALIZER;
static int dump_pipe[2] = {-1, -1};
static int dump_signum;                /* 0: none */
static struct green__hub *dump_hub;    /* the hub that dumps */
static struct sigaction dump_saved;    /* the disposition before ours */

static void on_dump_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char c = 0;
    /* Raw: a patched write() must not try to park in a handler.  A
       full pipe fails, harmlessly: a dump is pending anyway. */
    ssize_t n = green__sys_write(dump_pipe[1], &c, 1);
    (void)n;
    errno = saved;
}

static void on_dump_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    char buf[64];
    while (green__sys_read(w->fd, buf, sizeof buf) > 0)
        ;
    green_dump(stderr);
    fflush(stderr);
}

static int dump_signum_ok(int signum)
{
    switch (signum) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE:
    case SIGILL: case CAPTURE_SIGNAL:
        return 0;
    default:
        return signum > 0 && signum < NSIG;
    }
}

static int dump_pipe_open(void)
{
    if (dump_pipe[0] >= 0)
        return 0;
    return pipe2(dump_pipe, O_CLOEXEC | O_NONBLOCK);
}

/* Stop dumping from hub d (dump_mu held). */
static void dump_stop(struct green__hub *hub, struct diag *d)
{
    if (!d->dumping)
        return;
    sigaction(dump_signum, &dump_saved, NULL);
    ev_ref(hub->loop);
    ev_io_stop(hub->loop, &d->dump_io);
    d->dumping = 0;
    dump_signum = 0;
    dump_hub = NULL;
}

static int dump_start(struct green__hub *hub, struct diag *d, int signum)
{
    if (dump_hub && dump_hub != hub)
        return EBUSY;
    if (dump_pipe_open() != 0)
        return errno;
    dump_stop(hub, d);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_dump_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signum, &sa, &dump_saved) != 0)
        return errno;
    ev_io_init(&d->dump_io, on_dump_readable, dump_pipe[0], EV_READ);
    ev_io_start(hub->loop, &d->dump_io);
    ev_unref(hub->loop); /* must not keep the loop alive */
    d->dumping = 1;
    dump_signum = signum;
    dump_hub = hub;
    return 0;
}

int green_dump_on_signal(int signum)
{
    if (signum != 0 && !dump_signum_ok(signum))
        return green__fail(EINVAL);
    struct green__hub *hub;
    struct diag *d = diag_current(&hub);
    if (!d)
        return -1;
    pthread_mutex_lock(&dump_mu);
    int err = 0;
    if (signum)
        err = dump_start(hub, d, signum);
    else
        dump_stop(hub, d);
    pthread_mutex_unlock(&dump_mu);
    return err ? green__fail(err) : 0;
}

static void diag_term(struct green__hub *hub, void *state)
{
    struct diag *d = state;
    monitor_term(d);
    pthread_mutex_lock(&dump_mu);
    dump_stop(hub, d);
    pthread_mutex_unlock(&dump_mu);
    free(d);
}

/* The monitor thread did not survive the fork: start a new one. */
static void diag_fork(struct green__hub *hub, void *state, int phase)
{
    (void)hub;
    struct diag *d = state;
    if (d && d->mon && phase == GREEN__FORK_CHILD)
        monitor_fork_child(d->mon);
}

/* "SIGUSR2", "USR2" or "12"; 0 if none of those. */
static int parse_signal(const char *s)
{
    static const struct { const char *name; int num; } names[] = {
        {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT},
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},
        {"WINCH", SIGWINCH}, {"PWR", SIGPWR}, {"TTIN", SIGTTIN},
    };
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end)
        return n > 0 && n < NSIG ? (int)n : 0;
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].num;
    return 0;
}

/* GREEN_MONITOR and GREEN_DUMP_SIGNAL, looked at by every new hub
   (a getenv each, nothing else unless they are set). */
static void diag_from_env(struct green__hub *hub)
{
    (void)hub;
    const char *s = getenv("GREEN_MONITOR");
    if (s && *s) {
        char *end;
        double v = strtod(s, &end);
        if (*end == 0)
            green_monitor_start(v); /* an invalid value is ignored */
    }
    s = getenv("GREEN_DUMP_SIGNAL");
    int signum = s ? parse_signal(s) : 0;
    if (signum)
        green_dump_on_signal(signum); /* EBUSY: another hub has it */
}

__attribute__((constructor)) static void diag_env_hook(void)
{
    green__hub_on_create(diag_from_env);
}
