/* Lifecycle: spawn, start, join, kill, exit/fail, links, references. */
#include <fenv.h>
#include <math.h>
#include <stdint.h>

#include "testutil.h"

/* A log of small integers the greenlets append to, to check order. */
static int trace[4096];
static int ntrace;

static void trace_reset(void)
{
    ntrace = 0;
}

static void *record(void *arg)
{
    trace[ntrace++] = (int)(intptr_t)arg;
    return arg;
}

static void *sleeper(void *arg)
{
    double *s = arg;
    int rc = green_sleep(*s);
    return (void *)(intptr_t)(rc == 0 ? 0 : errno);
}

/******************************************************************************/

START_TEST(spawn_runs_fn_with_arg_and_keeps_value)
{
    void *big = (void *)(uintptr_t)0x7fff12345678ULL;
    green_t *g = green_spawn(record, big);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(green_done(g), 0);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq(green_done(g), 1);
    ck_assert_ptr_eq(green_value(g), big);
    ck_assert_int_eq(green_error(g), 0);
    green_release(g);
}
END_TEST

START_TEST(spawned_greenlets_run_in_fifo_order)
{
    trace_reset();
    green_t *g[5];
    for (int i = 0; i < 5; i++)
        g[i] = green_spawn(record, (void *)(intptr_t)i);
    ck_assert_int_eq(green_joinall(g, 5, -1), 0);
    ck_assert_int_eq(ntrace, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(trace[i], i);
        green_release(g[i]);
    }
}
END_TEST

static void *yielder(void *arg)
{
    for (int i = 0; i < 3; i++) {
        trace[ntrace++] = (int)(intptr_t)arg;
        ck_assert_int_eq(green_sleep(0), 0);
    }
    return NULL;
}

START_TEST(sleep0_interleaves_strictly_fifo)
{
    /* A B C A B C A B C, the same on every run. */
    for (int run = 0; run < 3; run++) {
        trace_reset();
        green_t *g[3];
        for (int i = 0; i < 3; i++)
            g[i] = green_spawn(yielder, (void *)(intptr_t)i);
        ck_assert_int_eq(green_joinall(g, 3, -1), 0);
        ck_assert_int_eq(ntrace, 9);
        for (int i = 0; i < 9; i++)
            ck_assert_int_eq(trace[i], i % 3);
        for (int i = 0; i < 3; i++)
            green_release(g[i]);
    }
}
END_TEST

START_TEST(new_does_not_start_until_start)
{
    trace_reset();
    green_attr_t attr = {.stack_size = 64 * 1024, .name = "worker"};
    green_t *g = green_new(record, (void *)7, &attr);
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(green_name(g), "worker");
    ck_assert_int_eq(green_sleep(0.01), 0);
    ck_assert_int_eq(ntrace, 0);
    ck_assert_int_eq(green_start(g), 0);
    GREEN_ASSERT_ERRNO(green_start(g), EINVAL);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq(ntrace, 1);
    GREEN_ASSERT_ERRNO(green_start(g), EINVAL);
    green_release(g);
}
END_TEST

START_TEST(start_later_and_spawn_later_wait_their_delay)
{
    trace_reset();
    double t0 = test_now();
    green_t *a = green_spawn_later(0.1, record, (void *)1);
    green_t *b = green_new(record, (void *)2, NULL);
    ck_assert_int_eq(green_start_later(b, 0.05), 0);
    ck_assert_int_eq(green_join(a, -1), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    ck_assert_int_eq(ntrace, 2);
    ck_assert_int_eq(trace[0], 2);
    ck_assert_int_eq(trace[1], 1);
    green_release(a);
    green_release(b);
}
END_TEST

START_TEST(release_before_done_keeps_it_running)
{
    trace_reset();
    double s = 0.02;
    green_t *g = green_spawn(sleeper, &s);
    green_release(g);
    green_t *h = green_spawn(record, (void *)3);
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq(ntrace, 1);
    green_release(h);
}
END_TEST

static void *empty(void *arg)
{
    return arg;
}

START_TEST(spawn_join_release_cycles_do_not_leak)
{
    /* 100,000 cycles, RSS back near its start. */
    for (int i = 0; i < 1000; i++) {
        green_t *g = green_spawn(empty, NULL);
        green_join(g, -1);
        green_release(g);
    }
    long before = test_rss_kib();
    int cycles = test_light() ? 5000 : 100000;
    for (int i = 0; i < cycles; i++) {
        green_t *g = green_spawn(empty, (void *)(intptr_t)i);
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(green_join(g, -1), 0);
        ck_assert_ptr_eq(green_value(g), (void *)(intptr_t)i);
        green_release(g);
    }
    long after = test_rss_kib();
    if (test_measures_rss())
        ck_assert_msg(after - before < 4096, "RSS grew by %ld KiB",
                      after - before);
}
END_TEST

/******************************************************************************/

START_TEST(join_timeout_then_join)
{
    double s = 0.2;
    green_t *g = green_spawn(sleeper, &s);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_join(g, 0.05), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    GREEN_ASSERT_ERRNO(green_join(g, 0), EAGAIN);
    ck_assert_int_eq(green_join(g, -1), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.2);
    ck_assert_int_eq(green_join(g, 0), 0);
    green_release(g);
}
END_TEST

START_TEST(joinall_waits_for_every_greenlet)
{
    double s[3] = {0.05, 0.1, 0.02};
    green_t *g[4];
    for (int i = 0; i < 3; i++)
        g[i] = green_spawn(sleeper, &s[i]);
    g[3] = NULL;
    double t0 = test_now();
    ck_assert_int_eq(green_joinall(g, 4, -1), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(green_done(g[i]), 1);
        green_release(g[i]);
    }
}
END_TEST

START_TEST(joinall_timeout_covers_the_whole_wait)
{
    double s[2] = {0.3, 0.3};
    green_t *g[2] = {green_spawn(sleeper, &s[0]), green_spawn(sleeper, &s[1])};
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_joinall(g, 2, 0.05), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert_int_eq(green_killall(g, 2, -1), 0);
    green_release(g[0]);
    green_release(g[1]);
}
END_TEST

static void *join_self(void *arg)
{
    (void)arg;
    int rc = green_join(green_current(), -1);
    return (void *)(intptr_t)(rc == -1 ? errno : 0);
}

START_TEST(join_self_is_edeadlk)
{
    GREEN_ASSERT_ERRNO(green_join(green_current(), -1), EDEADLK);
    green_t *g = green_spawn(join_self, NULL);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq((int)(intptr_t)green_value(g), EDEADLK);
    green_release(g);
}
END_TEST

static void *park_forever(void *arg)
{
    (void)arg;
    /* Join a greenlet that never finishes and has no watcher. */
    green_t *g = green_new(empty, NULL, NULL);
    int rc = green_join(g, -1);
    int e = errno;
    green_release(g);
    return (void *)(intptr_t)(rc == 0 ? 0 : e);
}

START_TEST(join_that_can_never_end_is_edeadlk)
{
    /* gevent's LoopExit. */
    alarm(10);
    green_t *g = green_spawn(park_forever, NULL);
    GREEN_ASSERT_ERRNO(green_join(g, -1), EDEADLK);
    ck_assert_int_eq(green_done(g), 0);
    GREEN_ASSERT_ERRNO(green_run(), EDEADLK);
    ck_assert_int_eq(green_kill(g, -1), 0);
    ck_assert_int_eq(green_error(g), ECANCELED);
    green_release(g);
    alarm(0);
}
END_TEST

/******************************************************************************/

START_TEST(kill_before_start_never_runs)
{
    trace_reset();
    green_t *g = green_spawn(record, (void *)1);
    ck_assert_int_eq(green_kill(g, -1), 0);
    ck_assert_int_eq(green_done(g), 1);
    ck_assert_int_eq(green_error(g), ECANCELED);
    green_t *n = green_new(record, (void *)2, NULL);
    ck_assert_int_eq(green_kill(n, 0), 0);
    ck_assert_int_eq(green_done(n), 1);
    GREEN_ASSERT_ERRNO(green_start(n), EINVAL);
    green_t *l = green_spawn_later(0.01, record, (void *)3);
    ck_assert_int_eq(green_kill(l, 0), 0);
    ck_assert_int_eq(green_sleep(0.05), 0);
    ck_assert_int_eq(ntrace, 0);
    green_release(g);
    green_release(n);
    green_release(l);
}
END_TEST

static void *sticky_cancel(void *arg)
{
    int *errs = arg;
    green_sleep(10);
    errs[0] = errno;
    errs[1] = green_sleep(0.01) == -1 ? errno : 0;
    errs[2] = green_yield() == -1 ? errno : 0;
    return NULL;
}

START_TEST(kill_while_sleeping_is_ecanceled_and_sticky)
{
    int errs[3] = {0, 0, 0};
    green_t *g = green_spawn(sticky_cancel, errs);
    ck_assert_int_eq(green_sleep(0.01), 0);
    double t0 = test_now();
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert(test_now() - t0 < test_slack());
    ck_assert_int_eq(errs[0], ECANCELED);
    ck_assert_int_eq(errs[1], ECANCELED);
    ck_assert_int_eq(errs[2], ECANCELED);
    ck_assert_int_eq(green_error(g), ECANCELED);
    /* Killing again, and a finished greenlet, is harmless. */
    ck_assert_int_eq(green_kill(g, 1), 0);
    green_t *both[2] = {g, g};
    ck_assert_int_eq(green_killall(both, 2, 1), 0);
    green_release(g);
}
END_TEST

static void *kill_self(void *arg)
{
    (void)arg;
    int rc = green_kill(green_current(), 0);
    return (void *)(intptr_t)(rc == -1 ? errno : 0);
}

START_TEST(kill_self_is_edeadlk)
{
    green_t *g = green_spawn(kill_self, NULL);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq((int)(intptr_t)green_value(g), EDEADLK);
    ck_assert_int_eq(green_error(g), 0);
    /* Main cannot be killed at all (issue 11 item 15). */
    GREEN_ASSERT_ERRNO(green_kill(green_current(), 0), EPERM);
    green_release(g);
}
END_TEST

START_TEST(kill_of_a_greenlet_that_keeps_blocking_finishes_it)
{
    /* Every blocking call fails at once, so the loop ends. */
    int errs[3];
    green_t *g = green_spawn(sticky_cancel, errs);
    ck_assert_int_eq(green_yield(), 0);
    ck_assert_int_eq(green_kill(g, 0.5), 0);
    ck_assert_int_eq(green_done(g), 1);
    green_release(g);
}
END_TEST

START_TEST(kill_of_a_runnable_greenlet_lands_on_its_wait)
{
    green_t *g = green_spawn(sleeper, &(double){5});
    ck_assert_int_eq(green_yield(), 0);
    ck_assert_int_eq(green_kill(g, 0), 0);
    ck_assert_int_eq(green_done(g), 0); /* not yet run after the wake */
    ck_assert_int_eq(green_join(g, 1), 0);
    ck_assert_int_eq((int)(intptr_t)green_value(g), ECANCELED);
    green_release(g);
}
END_TEST

/******************************************************************************/

static int depth_reached;

static void nested_exit(int depth);
static void (*volatile nested_next)(int) = nested_exit;

/* Calls itself through a pointer, then exits from the innermost frame. */
static void nested_exit(int depth)
{
    depth_reached = depth;
    if (depth == 0)
        green_exit((void *)42);
    nested_next(depth - 1);
}

static void *exiter(void *arg)
{
    (void)arg;
    nested_exit(5);
    return (void *)1; /* not reached */
}

static void *failer(void *arg)
{
    green_fail((int)(intptr_t)arg);
    return (void *)1; /* not reached */
}

START_TEST(exit_and_fail_set_value_and_error)
{
    green_t *e = green_spawn(exiter, NULL);
    green_t *f = green_spawn(failer, (void *)(intptr_t)ENOENT);
    ck_assert_int_eq(green_join(e, -1), 0);
    ck_assert_int_eq(green_join(f, -1), 0);
    ck_assert_ptr_eq(green_value(e), (void *)42);
    ck_assert_int_eq(green_error(e), 0);
    ck_assert_ptr_null(green_value(f));
    ck_assert_int_eq(green_error(f), ENOENT);
    green_release(e);
    green_release(f);
}
END_TEST

/******************************************************************************/

static int link_order[2000];
static int nlinks;
static int link_in_hub_blocks;

static void on_done(green_t *g, void *arg)
{
    ck_assert_int_eq(green_done(g), 1);
    link_order[nlinks++] = (int)(intptr_t)arg;
    /* Blocking inside a link callback is impossible. */
    if (green_sleep(0.001) == -1 && errno == EDEADLK)
        link_in_hub_blocks++;
}

START_TEST(links_run_in_order_once_in_the_hub)
{
    nlinks = 0;
    link_in_hub_blocks = 0;
    green_t *g = green_spawn(empty, NULL);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(green_link(g, on_done, (void *)(intptr_t)i), 0);
    ck_assert_int_eq(nlinks, 0);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq(green_sleep(0.01), 0);
    ck_assert_int_eq(nlinks, 1000);
    ck_assert_int_eq(link_in_hub_blocks, 1000);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(link_order[i], i);
    /* A link on a finished greenlet runs soon, from the hub. */
    ck_assert_int_eq(green_link(g, on_done, (void *)5000), 0);
    ck_assert_int_eq(green_sleep(0.01), 0);
    ck_assert_int_eq(nlinks, 1001);
    ck_assert_int_eq(link_order[1000], 5000);
    green_release(g);
}
END_TEST

START_TEST(links_of_a_killed_unstarted_greenlet_fire_once)
{
    nlinks = 0;
    green_t *g = green_spawn(empty, NULL);
    ck_assert_int_eq(green_link(g, on_done, (void *)1), 0);
    ck_assert_int_eq(green_kill(g, 0), 0);
    ck_assert_int_eq(green_kill(g, 0), 0);
    ck_assert_int_eq(green_sleep(0.01), 0);
    ck_assert_int_eq(nlinks, 1);
    green_release(g);
}
END_TEST

static void release_in_link(green_t *g, void *arg)
{
    (void)arg;
    green_release(g);
    nlinks++;
}

START_TEST(release_inside_a_link)
{
    nlinks = 0;
    green_t *g = green_spawn(empty, NULL);
    ck_assert_int_eq(green_link(g, release_in_link, NULL), 0);
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq(nlinks, 1);
}
END_TEST

/******************************************************************************/

START_TEST(bad_arguments_are_einval)
{
    GREEN_ASSERT_ERRNO(green_spawn(NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_new(NULL, NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_spawn_later(NAN, empty, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_start(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_join(NULL, -1), EINVAL);
    GREEN_ASSERT_ERRNO(green_kill(NULL, -1), EINVAL);
    GREEN_ASSERT_ERRNO(green_joinall(NULL, 1, -1), EINVAL);
    GREEN_ASSERT_ERRNO(green_killall(NULL, 1, -1), EINVAL);
    GREEN_ASSERT_ERRNO(green_link(NULL, on_done, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_sleep(NAN), EINVAL);
    green_t *g = green_new(empty, NULL, NULL);
    GREEN_ASSERT_ERRNO(green_join(g, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_kill(g, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_start_later(g, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_link(g, NULL, NULL), EINVAL);
    ck_assert_int_eq(green_done(NULL), 0);
    ck_assert_ptr_null(green_value(NULL));
    ck_assert_ptr_null(green_name(NULL));
    green_release(NULL);
    ck_assert_ptr_null(green_retain(NULL));
    ck_assert_ptr_eq(green_retain(g), g);
    green_release(g);
    green_release(g);
}
END_TEST

START_TEST(names_and_ids)
{
    green_t *a = green_new(empty, NULL, NULL);
    green_t *b = green_new(empty, NULL, NULL);
    ck_assert(green_id(a) > 0);
    ck_assert(green_id(b) > green_id(a));
    char want[64];
    snprintf(want, sizeof want, "greenlet-%llu",
             (unsigned long long)green_id(a));
    ck_assert_str_eq(green_name(a), want);
    ck_assert_str_eq(green_name(green_current()), "main");
    green_attr_t attr = {0, "a-name-longer-than-thirty-one-bytes-for-sure"};
    green_t *c = green_new(empty, NULL, &attr);
    ck_assert_int_eq(strlen(green_name(c)), 31);
    green_release(a);
    green_release(b);
    green_release(c);
}
END_TEST

static void *check_current(void *arg)
{
    return green_current() == *(green_t **)arg ? (void *)1 : NULL;
}

START_TEST(current_is_the_running_greenlet)
{
    green_t *slot = NULL;
    green_t *g = green_new(check_current, &slot, NULL);
    slot = g;
    green_start(g);
    green_join(g, -1);
    ck_assert_ptr_eq(green_value(g), (void *)1);
    green_release(g);
}
END_TEST

START_TEST(dump_lists_live_greenlets)
{
    double s = 5;
    green_attr_t attr = {0, "dumped"};
    green_t *g = green_new(sleeper, &s, &attr);
    green_start(g);
    green_yield();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    green_dump(f);
    fclose(f);
    ck_assert_msg(strstr(buf, "dumped") && strstr(buf, "sleeping"), "%s", buf);
    ck_assert_msg(strstr(buf, "main"), "%s", buf);
    free(buf);
    green_kill(g, -1);
    green_release(g);
}
END_TEST

/******************************************************************************/

static void *set_errno_then_yield(void *arg)
{
    int *out = arg;
    errno = 1234;
    green_yield();
    out[0] = errno;
    errno = 0;
    green_sleep(0.01);
    out[1] = errno;
    return NULL;
}

static void *clobber(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        green_yield();
    }
    return NULL;
}

START_TEST(each_greenlet_keeps_its_errno)
{
    int out[2] = {-1, -1};
    green_t *a = green_spawn(set_errno_then_yield, out);
    green_t *b = green_spawn(clobber, NULL);
    errno = 777;
    green_yield();
    ck_assert_int_eq(errno, 777);
    green_t *g[2] = {a, b};
    ck_assert_int_eq(green_joinall(g, 2, -1), 0);
    ck_assert_int_eq(out[0], 1234);
    ck_assert_int_eq(out[1], 0);
    green_release(a);
    green_release(b);
}
END_TEST

static void *round_up_and_yield(void *arg)
{
    int *out = arg;
    fesetround(FE_UPWARD);
    green_yield();
    out[0] = fegetround();
    fesetround(FE_TONEAREST);
    return NULL;
}

static void *read_rounding(void *arg)
{
    int *out = arg;
    out[1] = fegetround();
    return NULL;
}

START_TEST(each_greenlet_keeps_its_fp_rounding_mode)
{
    /* The switch saves MXCSR and the x87 control word. */
    int out[2] = {-1, -1};
    green_t *a = green_spawn(round_up_and_yield, out);
    green_t *b = green_spawn(read_rounding, out);
    green_t *g[2] = {a, b};
    ck_assert_int_eq(green_joinall(g, 2, -1), 0);
    ck_assert_int_eq(out[0], FE_UPWARD);
    ck_assert_int_eq(out[1], FE_TONEAREST);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    green_release(a);
    green_release(b);
}
END_TEST

/* Issue 11 item 14: a link added to a finished greenlet runs before the
   yielding greenlet resumes ("at once, from the hub"). */
static void count_link(green_t *g, void *arg)
{
    (void)g;
    (*(int *)arg)++;
}

START_TEST(link_on_a_finished_greenlet_runs_before_the_yielder_resumes)
{
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_join(g, 5), 0);
    int ran = 0;
    ck_assert_int_eq(green_link(g, count_link, &ran), 0);
    ck_assert_int_eq(ran, 0);
    ck_assert_int_eq(green_yield(), 0);
    ck_assert_int_eq(ran, 1);
    green_release(g);
}
END_TEST

/* Issue 11 item 16: green_exit/green_fail in a link callback (the hub)
   return EPERM and change nothing; they never end the process. */
static void exit_in_link(green_t *g, void *arg)
{
    int *errs = arg;
    errno = 0;
    green_exit((void *)7);
    errs[0] = errno;
    errno = 0;
    green_fail(EIO);
    errs[1] = errno;
    errs[2] = green_error(g);
}

START_TEST(exit_and_fail_in_a_link_callback_are_eperm)
{
    int errs[3] = {0, 0, -1};
    green_t *g = green_spawn(test_noop, (void *)3);
    ck_assert_int_eq(green_link(g, exit_in_link, errs), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    green_yield(); /* the link runs */
    ck_assert_int_eq(errs[0], EPERM);
    ck_assert_int_eq(errs[1], EPERM);
    ck_assert_int_eq(errs[2], 0);
    ck_assert_ptr_eq(green_value(g), (void *)3);
    green_release(g);
}
END_TEST

/* Issue 11 item 24: a killed greenlet's green_kill still cancels its
   target, and reports ECANCELED for the wait (documented). */
static void *kill_after_being_killed(void *arg)
{
    green_t *victim = arg;
    green_sleep(10); /* killed here */
    errno = 0;
    int rc = green_kill(victim, 1.0);
    return (void *)(intptr_t)(rc == 0 ? 0 : errno);
}

START_TEST(kill_by_a_killed_greenlet_cancels_but_is_ecanceled)
{
    green_t *victim = green_spawn(test_sleep_forever, NULL);
    green_t *k = green_spawn(kill_after_being_killed, victim);
    green_yield();
    ck_assert_int_eq(green_kill(k, 5), 0);
    ck_assert_int_eq((int)(intptr_t)green_value(k), ECANCELED);
    ck_assert_int_eq(green_join(victim, 5), 0);
    ck_assert_int_eq(green_error(victim), ECANCELED);
    green_release(k);
    green_release(victim);
}
END_TEST

static Suite *greenlet_suite(void)
{
    Suite *s = suite_create("greenlet");
    TCase *tc = tcase_create("spawn");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, spawn_runs_fn_with_arg_and_keeps_value);
    tcase_add_test(tc, spawned_greenlets_run_in_fifo_order);
    tcase_add_test(tc, sleep0_interleaves_strictly_fifo);
    tcase_add_test(tc, new_does_not_start_until_start);
    tcase_add_test(tc, start_later_and_spawn_later_wait_their_delay);
    tcase_add_test(tc, release_before_done_keeps_it_running);
    tcase_add_test(tc, spawn_join_release_cycles_do_not_leak);
    suite_add_tcase(s, tc);

    tc = tcase_create("join");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, join_timeout_then_join);
    tcase_add_test(tc, joinall_waits_for_every_greenlet);
    tcase_add_test(tc, joinall_timeout_covers_the_whole_wait);
    tcase_add_test(tc, join_self_is_edeadlk);
    tcase_add_test(tc, join_that_can_never_end_is_edeadlk);
    suite_add_tcase(s, tc);

    tc = tcase_create("kill");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, kill_before_start_never_runs);
    tcase_add_test(tc, kill_while_sleeping_is_ecanceled_and_sticky);
    tcase_add_test(tc, kill_self_is_edeadlk);
    tcase_add_test(tc, kill_of_a_greenlet_that_keeps_blocking_finishes_it);
    tcase_add_test(tc, kill_of_a_runnable_greenlet_lands_on_its_wait);
    suite_add_tcase(s, tc);

    tc = tcase_create("finish");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, exit_and_fail_set_value_and_error);
    tcase_add_test(tc, links_run_in_order_once_in_the_hub);
    tcase_add_test(tc, links_of_a_killed_unstarted_greenlet_fire_once);
    tcase_add_test(tc, release_inside_a_link);
    suite_add_tcase(s, tc);

    tc = tcase_create("misc");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, bad_arguments_are_einval);
    tcase_add_test(tc, names_and_ids);
    tcase_add_test(tc, current_is_the_running_greenlet);
    tcase_add_test(tc, dump_lists_live_greenlets);
    tcase_add_test(tc, each_greenlet_keeps_its_errno);
    tcase_add_test(tc, each_greenlet_keeps_its_fp_rounding_mode);
    tcase_add_test(tc, link_on_a_finished_greenlet_runs_before_the_yielder_resumes);
    tcase_add_test(tc, exit_and_fail_in_a_link_callback_are_eperm);
    tcase_add_test(tc, kill_by_a_killed_greenlet_cancels_but_is_ecanceled);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(greenlet_suite)
