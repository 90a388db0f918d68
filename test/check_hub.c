/* The hub: sleep timing, ordering, fairness, green_run. */
#include <math.h>
#include <stdint.h>

#include "testutil.h"

static int order[64];
static int norder;

static void *sleep_then_record(void *arg)
{
    double s = ((double *)arg)[0];
    int id = (int)((double *)arg)[1];
    ck_assert_int_eq(green_sleep(s), 0);
    order[norder++] = id;
    return NULL;
}

START_TEST(sleep_is_never_early_and_not_much_late)
{
    for (int i = 0; i < 20; i++) {
        double t0 = test_now();
        ck_assert_int_eq(green_sleep(0.05), 0);
        GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    }
}
END_TEST

START_TEST(equal_deadlines_fire_in_start_order)
{
    /* A then B, then B then A. */
    double args[4][2] = {{0.05, 1}, {0.05, 2}, {0.05, 3}, {0.05, 4}};
    norder = 0;
    green_t *g[4];
    for (int i = 0; i < 4; i++)
        g[i] = green_spawn(sleep_then_record, args[i]);
    ck_assert_int_eq(green_joinall(g, 4, -1), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(order[i], i + 1);
        green_release(g[i]);
    }
    norder = 0;
    for (int i = 3; i >= 0; i--)
        g[i] = green_spawn(sleep_then_record, args[i]);
    ck_assert_int_eq(green_joinall(g, 4, -1), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(order[i], 4 - i);
        green_release(g[i]);
    }
}
END_TEST

START_TEST(shorter_sleeps_finish_first)
{
    double args[3][2] = {{0.15, 1}, {0.05, 2}, {0.1, 3}};
    norder = 0;
    green_t *g[3];
    for (int i = 0; i < 3; i++)
        g[i] = green_spawn(sleep_then_record, args[i]);
    double t0 = test_now();
    ck_assert_int_eq(green_run(), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.15);
    ck_assert_int_eq(order[0], 2);
    ck_assert_int_eq(order[1], 3);
    ck_assert_int_eq(order[2], 1);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
}
END_TEST

/* Sleeps 40 * (1 + i % 5) ms (steps far apart: the 300 parks, even
   under Valgrind, take less) and appends its index i to ring order. */
static int ring[300], nring;
static void *sleep_by_index(void *arg)
{
    int i = (int)(intptr_t)arg;
    if (green_sleep(0.04 * (1 + i % 5)) == 0)
        ring[nring++] = i;
    return NULL;
}

START_TEST(killed_sleepers_leave_the_others_in_deadline_order)
{
    /* Killing 200 of 300 parked sleepers clears their deadlines lazily
       and rebuilds the heap (over half cleared): the 100 left still
       wake, by deadline, equal ones in arming order. */
    enum { N = 300 };
    green_t *g[N];
    nring = 0;
    for (int i = 0; i < N; i++)
        g[i] = green_spawn(sleep_by_index, (void *)(intptr_t)i);
    green_yield();
    /* Kills that do not wait (timeout 0): waiting for each would let
       the hub poll between them, and under a slow run (Valgrind on a
       loaded machine) a first deadline could fire and wake a sleeper
       before its kill, so its sleep succeeds. */
    for (int i = 0; i < N; i++)
        if (i % 3 != 0)
            ck_assert_int_eq(green_kill(g[i], 0), 0);
    ck_assert_int_eq(green_joinall(g, N, -1), 0);
    ck_assert_int_eq(nring, N / 3);
    for (int k = 1; k < nring; k++) {
        int a = ring[k - 1], b = ring[k];
        ck_assert(a % 5 < b % 5 || (a % 5 == b % 5 && a < b));
    }
    for (int i = 0; i < N; i++)
        green_release(g[i]);
}
END_TEST

/* Rounds of sleeps (checked never early) and of joins with a timeout
   that end early when the joined greenlet finishes first (so cleared
   deadlines pile up amid re-armed ones). */
enum { REARM_N = 300 };
static green_t *rearm_g[REARM_N];
static void *sleep_or_join_in_rounds(void *arg)
{
    unsigned seed = (unsigned)(intptr_t)arg;
    for (int k = 0; k < 15; k++) {
        double d = (rand_r(&seed) % 40) * 0.0005;
        green_t *other = rearm_g[rand_r(&seed) % REARM_N];
        if (rand_r(&seed) % 3 == 0) {
            green_join(other, d);
            continue;
        }
        double t0 = test_now();
        if (green_sleep(d) != 0)
            return NULL; /* killed */
        double el = test_now() - t0;
        ck_assert_msg(el >= d - 0.001, "slept %.4f s of %.4f s", el, d);
    }
    return NULL;
}

START_TEST(deadlines_rearmed_amid_cleared_ones_hold)
{
    /* Parks re-arm while earlier deadlines are cleared lazily (ended
       joins, kills of a third and then a fifth): every sleep still
       ends at its deadline, not before, and every greenlet finishes
       (a lost deadline would hang the joinall). */
    for (int i = 0; i < REARM_N; i++)
        rearm_g[i] = green_new(sleep_or_join_in_rounds,
                               (void *)(intptr_t)(i + 1), NULL);
    for (int i = 0; i < REARM_N; i++)
        ck_assert_int_eq(green_start(rearm_g[i]), 0);
    ck_assert_int_eq(green_sleep(0.003), 0);
    for (int i = 0; i < REARM_N; i += 3)
        ck_assert_int_eq(green_kill(rearm_g[i], 0), 0);
    ck_assert_int_eq(green_sleep(0.002), 0);
    for (int i = 1; i < REARM_N; i += 5)
        ck_assert_int_eq(green_kill(rearm_g[i], 0), 0);
    ck_assert_int_eq(green_joinall(rearm_g, REARM_N, -1), 0);
    for (int i = 0; i < REARM_N; i++)
        green_release(rearm_g[i]);
}
END_TEST

static void *sleep_01(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)green_sleep(0.1);
}

START_TEST(ten_thousand_sleepers_finish_in_about_one_sleep)
{
    enum { MAX = 10000 };
    static green_t *g[MAX];
    /* ASan gives every new fiber its own fake stack, which makes
       creating 10,000 of them take tens of seconds: 1,000 there. */
    const int N = GREEN_TEST_SANITIZED ? 1000 : MAX;
    double t0 = test_now();
    for (int i = 0; i < N; i++) {
        g[i] = green_spawn(sleep_01, NULL);
        ck_assert_ptr_nonnull(g[i]);
    }
    ck_assert_int_eq(green_joinall(g, N, -1), 0);
    double el = test_now() - t0;
    ck_assert_msg(el >= 0.099 && el < 0.1 + 5 * test_slack(), "%.3f s", el);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_null(green_value(g[i]));
        green_release(g[i]);
    }
}
END_TEST

static volatile int stop_storm;
static long storm_yields;

static void *yield_storm(void *arg)
{
    (void)arg;
    while (!stop_storm && green_sleep(0) == 0)
        storm_yields++;
    return NULL;
}

static void *timed_waiter(void *arg)
{
    (void)arg;
    green_timeout_t *t = green_timeout_start(0.01);
    int rc = green_sleep(10);
    int e = errno;
    int expired = green_timeout_expired(t);
    green_timeout_cancel(t);
    stop_storm = 1;
    return (void *)(intptr_t)(rc == -1 && e == ETIMEDOUT && expired);
}

START_TEST(yield_storm_does_not_starve_timers)
{
    /* Two greenlets yield forever while a timeout is armed. */
    alarm(20);
    stop_storm = 0;
    storm_yields = 0;
    green_t *a = green_spawn(yield_storm, NULL);
    green_t *b = green_spawn(yield_storm, NULL);
    green_t *w = green_spawn(timed_waiter, NULL);
    double t0 = test_now();
    green_t *all[3] = {a, b, w};
    ck_assert_int_eq(green_joinall(all, 3, -1), 0);
    ck_assert(test_now() - t0 < 0.01 + test_slack());
    ck_assert_ptr_eq(green_value(w), (void *)1);
    ck_assert(storm_yields > 0);
    for (int i = 0; i < 3; i++)
        green_release(all[i]);
    alarm(0);
}
END_TEST

START_TEST(run_with_nothing_to_do_returns_at_once)
{
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq(green_run(), 0);
}
END_TEST

static void *run_from_greenlet(void *arg)
{
    (void)arg;
    int rc = green_run();
    return (void *)(intptr_t)(rc == -1 ? errno : 0);
}

START_TEST(run_from_a_greenlet_is_edeadlk)
{
    green_t *g = green_spawn(run_from_greenlet, NULL);
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq((int)(intptr_t)green_value(g), EDEADLK);
    green_release(g);
}
END_TEST

START_TEST(timeout_edges)
{
    green_t *g = green_spawn(sleep_01, NULL);
    GREEN_ASSERT_ERRNO(green_join(g, 0), EAGAIN);
    GREEN_ASSERT_ERRNO(green_join(g, NAN), EINVAL);
    double t0 = test_now();
    ck_assert_int_eq(green_join(g, 1e12), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    ck_assert_int_eq(green_sleep(-1), 0); /* negative: a yield */
    ck_assert_int_eq(green_sleep(-0.0), 0);
    green_release(g);
}
END_TEST

static void sleep_in_callback(green_t *g, void *arg)
{
    (void)g;
    int *out = arg;
    out[0] = green_sleep(0.01) == -1 ? errno : 0;
    out[1] = green_yield() == -1 ? errno : 0;
    out[2] = green_run() == -1 ? errno : 0;
}

START_TEST(blocking_in_the_hub_is_edeadlk)
{
    int out[3] = {0, 0, 0};
    green_t *g = green_spawn(test_noop, NULL);
    green_link(g, sleep_in_callback, out);
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq(out[0], EDEADLK);
    ck_assert_int_eq(out[1], EDEADLK);
    ck_assert_int_eq(out[2], EDEADLK);
    green_release(g);
}
END_TEST

static Suite *hub_suite(void)
{
    Suite *s = suite_create("hub");
    TCase *tc = tcase_create("time");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sleep_is_never_early_and_not_much_late);
    tcase_add_test(tc, equal_deadlines_fire_in_start_order);
    tcase_add_test(tc, shorter_sleeps_finish_first);
    tcase_add_test(tc, killed_sleepers_leave_the_others_in_deadline_order);
    tcase_add_test(tc, deadlines_rearmed_amid_cleared_ones_hold);
    tcase_add_test(tc, ten_thousand_sleepers_finish_in_about_one_sleep);
    tcase_add_test(tc, yield_storm_does_not_starve_timers);
    tcase_add_test(tc, timeout_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("run");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, run_with_nothing_to_do_returns_at_once);
    tcase_add_test(tc, run_from_a_greenlet_is_edeadlk);
    tcase_add_test(tc, blocking_in_the_hub_is_edeadlk);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(hub_suite)
