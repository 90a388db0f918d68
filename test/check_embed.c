/* Embedding: green_hub_attach on the application's loop, which the test
   runs with its own ev_run and its own watchers; green_shutdown leaves the
   loop with no libgreen watcher. */
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "testutil.h"

/* The application's side. */
struct app {
    struct ev_loop *loop;
    ev_timer tick;       /* repeating: the app's own work */
    ev_timer kick;       /* one-shot: spawns greenlets from a callback */
    int ticks;
    int stop_when_done;  /* tick stops itself once the greenlets are done */
    green_t *g[2];
    int started_in_cb;   /* a greenlet ran inside the spawning callback */
    int cb_sleep_rc, cb_sleep_err, cb_join_err, cb_yield_err;
    int steps[2];        /* progress of each greenlet */
    int ticks_at[2][4];  /* app ticks seen at each step */
};

static void *stepper(void *a)
{
    struct app *app = ((void **)a)[0];
    int who = (int)(intptr_t)((void **)a)[1];
    for (int i = 0; i < 4; i++) {
        if (green_sleep(0.03) != 0)
            return (void *)(intptr_t)errno;
        app->ticks_at[who][i] = app->ticks;
        app->steps[who]++;
    }
    return NULL;
}

static void *args[2][2];

static void kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct app *app = w->data;
    for (int i = 0; i < 2; i++) {
        args[i][0] = app;
        args[i][1] = (void *)(intptr_t)i;
        app->g[i] = green_spawn(stepper, args[i]);
    }
    /* Spawned, not run: they start on the next loop iteration. */
    app->started_in_cb = app->steps[0] + app->steps[1];
    /* Blocking in a plain libev callback is impossible. */
    errno = 0;
    app->cb_sleep_rc = green_sleep(0.01);
    app->cb_sleep_err = errno;
    errno = 0;
    green_join(app->g[0], 1);
    app->cb_join_err = errno;
    errno = 0;
    green_yield();
    app->cb_yield_err = errno;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct app *app = w->data;
    app->ticks++;
    if (app->stop_when_done && app->g[0] && green_done(app->g[0]) &&
        green_done(app->g[1]))
        ev_timer_stop(loop, w);
}

/* Pending events seen by the loop's invoke callback (probe: an
   active check/idle/prepare watcher would be pending every iteration). */
static unsigned probe_pending;
static void probe_invoke(struct ev_loop *loop)
{
    probe_pending += ev_pending_count(loop);
    ev_invoke_pending(loop);
}

/* Nothing of libgreen's is left in loop. */
static void assert_loop_clean(struct ev_loop *loop)
{
    ck_assert_int_eq(ev_pending_count(loop), 0);
    double t0 = test_now();
    ev_run(loop, 0); /* returns at once: no active, referenced watcher */
    ck_assert_msg(test_now() - t0 < test_prompt(), "ev_run blocked %.3f s",
                  test_now() - t0);
    probe_pending = 0;
    ev_set_invoke_pending_cb(loop, probe_invoke);
    for (int i = 0; i < 3; i++)
        ev_run(loop, EVRUN_NOWAIT);
    ev_set_invoke_pending_cb(loop, ev_invoke_pending);
    ck_assert_msg(probe_pending == 0, "%u events pending after shutdown",
                  probe_pending);
}

/* A new libev loop with a hub attached to it; alarm-guarded until
   shutdown_and_destroy. */
static struct ev_loop *new_attached_loop(void)
{
    alarm(20);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_ptr_nonnull(loop);
    ck_assert_int_eq(green_hub_attach(loop), 0);
    return loop;
}

/* Free the hub: the loop is left clean (nothing pending or active of
   libgreen's); then destroy the loop. */
static void shutdown_and_destroy(struct ev_loop *loop)
{
    green_shutdown();
    assert_loop_clean(loop);
    ev_loop_destroy(loop);
    alarm(0);
}

START_TEST(app_loop_timers_and_greenlets_interleave)
{
    alarm(20);
    struct app app;
    memset(&app, 0, sizeof app);
    app.loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_int_eq(green_hub_attach(app.loop), 0);
    ck_assert_ptr_eq(green_hub_loop(), app.loop);
    ev_timer_init(&app.tick, tick_cb, 0.005, 0.005);
    app.tick.data = &app;
    app.stop_when_done = 1;
    ev_timer_start(app.loop, &app.tick);
    ev_timer_init(&app.kick, kick_cb, 0.01, 0);
    app.kick.data = &app;
    ev_timer_start(app.loop, &app.kick);

    double t0 = test_now();
    ev_run(app.loop, 0); /* the test's own loop, as a daemon's main */
    double el = test_now() - t0;

    ck_assert_int_eq(app.started_in_cb, 0);
    ck_assert_int_eq(app.cb_sleep_rc, -1);
    ck_assert_int_eq(app.cb_sleep_err, EDEADLK);
    ck_assert_int_eq(app.cb_join_err, EDEADLK);
    ck_assert_int_eq(app.cb_yield_err, EDEADLK);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(app.steps[i], 4);
        ck_assert(green_done(app.g[i]));
        ck_assert_ptr_null(green_value(app.g[i]));
        /* The app's timer kept firing while the greenlets slept. */
        for (int s = 1; s < 4; s++)
            ck_assert_msg(app.ticks_at[i][s] > app.ticks_at[i][s - 1],
                          "no app tick between steps %d and %d", s - 1, s);
        green_release(app.g[i]);
    }
    /* Four 0.03 s sleeps in a row (the kick timer is libev-timed). */
    ck_assert_msg(el >= 0.12 - 0.001 && el < 0.13 + test_slack(), "ran %.3f s",
                  el);
    green_shutdown();
    assert_loop_clean(app.loop);
    ev_loop_destroy(app.loop);
    alarm(0);
}
END_TEST

static void *job_sleep(void *a)
{
    usleep((useconds_t)(intptr_t)a);
    return (void *)7;
}

static void *pool_user(void *a)
{
    (void)a;
    void *r = NULL;
    if (green_threadpool_call(job_sleep, (void *)50000, &r) != 0)
        return (void *)-1;
    return r;
}

START_TEST(app_ev_run_stays_alive_for_threadpool_job)
{
    /* No app watcher at all: ev_run still waits for the job. */
    struct ev_loop *loop = new_attached_loop();
    /* Outside any callback we are the hub: spawning works. */
    green_t *g = green_spawn(pool_user, NULL);
    ck_assert_ptr_nonnull(g);
    ev_run(loop, 0);
    ck_assert(green_done(g));
    ck_assert_ptr_eq(green_value(g), (void *)7);
    green_release(g);
    shutdown_and_destroy(loop);
}
END_TEST

static int sig_waiting;
static void *sig_waiter(void *a)
{
    (void)a;
    sig_waiting = 1; /* the wait below starts before any other callback */
    return (void *)(intptr_t)green_signal_wait(SIGUSR1, 5);
}

static void raise_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    if (!sig_waiting) {
        /* A slow start (Valgrind): the greenlet has not run yet. */
        ev_timer_set(w, 0.01, 0);
        ev_timer_start(loop, w);
        return;
    }
    kill(getpid(), SIGUSR1);
}

START_TEST(signal_wait_in_embedded_hub)
{
    struct ev_loop *loop = new_attached_loop();
    green_t *g = green_spawn(sig_waiter, NULL);
    ev_timer t;
    ev_timer_init(&t, raise_cb, 0.02, 0);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ck_assert(green_done(g));
    ck_assert_ptr_null(green_value(g));
    green_release(g);
    shutdown_and_destroy(loop);
}
END_TEST

static void *forever(void *a)
{
    (void)a;
    green_sleep(3600);
    return NULL;
}

static void *waits_for_signal(void *a)
{
    (void)a;
    green_signal_wait(SIGUSR2, -1);
    return NULL;
}

static void *waits_in_pool(void *a)
{
    (void)a;
    green_threadpool_call(job_sleep, (void *)200000, NULL);
    return NULL;
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void shutdown_with_everything_parked(struct ev_loop *loop)
{
    ck_assert_int_eq(green_hub_attach(loop), 0);
    ck_assert_ptr_nonnull(green_hub_current()); /* cross-thread async */
    green_t *g[4];
    g[0] = green_spawn(forever, NULL);
    g[1] = green_spawn(waits_for_signal, NULL);
    g[2] = green_spawn(waits_in_pool, NULL);
    g[3] = green_spawn(forever, NULL);
    green_kill(g[3], 0); /* killed before it ran */
    ev_timer t;
    ev_timer_init(&t, stop_cb, 0.05, 0);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ck_assert(!green_done(g[0]) && !green_done(g[1]));
    for (int i = 0; i < 4; i++)
        green_release(g[i]);
    green_shutdown();
    assert_loop_clean(loop);
    ck_assert_ptr_eq(signal(SIGUSR2, SIG_DFL), SIG_DFL);
}

START_TEST(shutdown_leaves_app_loop_clean)
{
    /* Own loop. */
    alarm(20);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    shutdown_with_everything_parked(loop);
    /* The loop is the application's: still usable, and attachable again. */
    ev_timer t;
    ev_timer_init(&t, stop_cb, 0.01, 0);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ck_assert(!ev_is_active(&t));
    shutdown_with_everything_parked(loop);
    ev_loop_destroy(loop);
    alarm(0);
}
END_TEST

START_TEST(shutdown_leaves_default_loop_clean)
{
    /* On libev's default loop: the child watcher goes too. */
    alarm(20);
    struct ev_loop *loop = ev_default_loop(0);
    shutdown_with_everything_parked(loop);
    /* Children are still the application's business afterwards. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(3);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 3);
    ev_loop_destroy(loop); /* the application's: gone with the test */
    alarm(0);
}
END_TEST

static void *child_waiter(void *a)
{
    int status = 0;
    pid_t pid = (pid_t)(intptr_t)a;
    if (green_waitpid(pid, &status, 0) != pid)
        return (void *)-1;
    return (void *)(intptr_t)WEXITSTATUS(status);
}

/* An embedding application's own loop (not libev's default loop, whose
   SIGCHLD watcher reaps every child before anyone else can: there,
   green_waitpid may see ECHILD, as green.h says). */
START_TEST(waitpid_in_embedded_loop)
{
    alarm(20);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_int_eq(green_hub_attach(loop), 0);
    pid_t pid = green_fork();
    if (pid == 0) {
        usleep(20000);
        _exit(6);
    }
    green_t *g = green_spawn(child_waiter, (void *)(intptr_t)pid);
    ev_run(loop, 0); /* kept alive by the parked green_waitpid */
    ck_assert(green_done(g));
    ck_assert_ptr_eq(green_value(g), (void *)6);
    green_release(g);
    green_shutdown();
    assert_loop_clean(loop);
    ev_loop_destroy(loop);
    alarm(0);
}
END_TEST

/* Another thread spawns into the embedded hub: each request runs once,
   in the application's thread, from inside its ev_run. */
static int remote_ran, remote_wrong_thread;
static pthread_t app_thread;

static void *remote_fn(void *a)
{
    (void)a;
    remote_ran++;
    remote_wrong_thread += !pthread_equal(pthread_self(), app_thread);
    return NULL;
}

static void *remote_spawner(void *hub)
{
    for (int i = 0; i < 100; i++)
        if (green_hub_spawn(hub, remote_fn, NULL) != 0)
            return (void *)1;
    return NULL;
}

static void until_100_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    if (remote_ran >= 100)
        ev_timer_stop(loop, w);
}

START_TEST(cross_thread_spawn_into_embedded_hub)
{
    alarm(20);
    app_thread = pthread_self();
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_int_eq(green_hub_attach(loop), 0);
    green_hub_t *hub = green_hub_current();
    ck_assert_ptr_nonnull(hub);
    ev_timer t; /* the app keeps its loop alive until all arrived */
    ev_timer_init(&t, until_100_cb, 0.005, 0.005);
    ev_timer_start(loop, &t);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, remote_spawner, hub), 0);
    ev_run(loop, 0);
    void *rc = NULL;
    ck_assert_int_eq(pthread_join(th, &rc), 0);
    ck_assert_ptr_null(rc);
    ck_assert_int_eq(remote_ran, 100);
    ck_assert_int_eq(remote_wrong_thread, 0);
    shutdown_and_destroy(loop);
}
END_TEST

START_TEST(attach_errors)
{
    GREEN_ASSERT_ERRNO(green_hub_attach(NULL), EINVAL);
    /* A standalone hub with a live greenlet cannot be replaced. */
    green_t *g = green_spawn(forever, NULL);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    GREEN_ASSERT_ERRNO(green_hub_attach(loop), EBUSY);
    ck_assert_int_eq(green_kill(g, 1), 0);
    green_release(g);
    /* Idle now: it may be replaced; attaching twice is a no-op. */
    ck_assert_int_eq(green_hub_attach(loop), 0);
    ck_assert_int_eq(green_hub_attach(loop), 0);
    /* An embedded hub has no green_run: the application runs the loop. */
    GREEN_ASSERT_ERRNO(green_run(), EDEADLK);
    green_shutdown();
    ev_loop_destroy(loop);
}
END_TEST

static void teardown(void)
{
    green_test_teardown();
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
}

/* Issue 11 item 3: green_shutdown from a link callback of an embedded
   hub detaches once the callbacks return (no use after free). */
static void shutdown_in_link(green_t *g, void *arg)
{
    (void)g;
    (*(int *)arg)++;
    green_shutdown();
}

static void *short_sleeper(void *arg)
{
    green_sleep(0.01);
    return arg;
}

START_TEST(shutdown_from_an_embedded_link_callback_detaches)
{
    alarm(20);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_int_eq(green_hub_attach(loop), 0);
    int ran = 0;
    green_t *g = green_spawn(short_sleeper, NULL);
    ck_assert_int_eq(green_link(g, shutdown_in_link, &ran), 0);
    /* A second link after the shutting-down one still runs. */
    ck_assert_int_eq(green_link(g, shutdown_in_link, &ran), 0);
    green_release(g);
    ev_run(loop, 0);
    ck_assert_int_eq(ran, 2);
    green_hub_stats_t st;
    GREEN_ASSERT_ERRNO(green_hub_stats(&st), ESRCH); /* detached */
    assert_loop_clean(loop);
    ev_loop_destroy(loop);
    alarm(0);
}
END_TEST

/* Issue 11 item 5: an idle standalone hub never used libev's default
   loop, so attaching to it afterwards leaves it intact. */
static void count_and_break(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    (*(int *)w->data)++;
    ev_break(loop, EVBREAK_ALL);
}

START_TEST(attach_default_loop_after_an_idle_standalone_hub)
{
    alarm(20);
    ck_assert_int_eq(green_sleep(0.001), 0); /* a standalone hub, used */
    ck_assert_ptr_ne(green_hub_loop(), ev_default_loop_uc_());
    struct ev_loop *loop = ev_default_loop(0);
    ck_assert_int_eq(green_hub_attach(loop), 0);
    ck_assert_ptr_eq(green_hub_loop(), loop);
    int fired = 0;
    ev_timer t;
    ev_timer_init(&t, count_and_break, 0.01, 0);
    t.data = &fired;
    ev_timer_start(loop, &t);
    green_t *g = green_spawn(short_sleeper, (void *)5);
    ev_run(loop, 0); /* must not fail with "Bad file descriptor" */
    ck_assert_int_eq(fired, 1);
    ev_run(loop, 0); /* the greenlet's sleep keeps it alive */
    ck_assert(green_done(g));
    green_release(g);
    green_shutdown();
    assert_loop_clean(loop);
    ev_loop_destroy(loop);
    alarm(0);
}
END_TEST

static Suite *embed_suite(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("external_loop");
    tcase_add_checked_fixture(tc, green_test_setup, teardown);
    tcase_add_test(tc, app_loop_timers_and_greenlets_interleave);
    tcase_add_test(tc, app_ev_run_stays_alive_for_threadpool_job);
    tcase_add_test(tc, signal_wait_in_embedded_hub);
    tcase_add_test(tc, waitpid_in_embedded_loop);
    tcase_add_test(tc, cross_thread_spawn_into_embedded_hub);
    suite_add_tcase(s, tc);

    tc = tcase_create("detach");
    tcase_add_checked_fixture(tc, green_test_setup, teardown);
    tcase_add_test(tc, shutdown_leaves_app_loop_clean);
    tcase_add_test(tc, shutdown_leaves_default_loop_clean);
    tcase_add_test(tc, shutdown_from_an_embedded_link_callback_detaches);
    tcase_add_test(tc, attach_default_loop_after_an_idle_standalone_hub);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, green_test_setup, teardown);
    tcase_add_test(tc, attach_errors);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(embed_suite)
