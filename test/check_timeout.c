/* green_timeout_*: nested deadlines for every blocking call. */
#include <math.h>
#include <stdint.h>

#include "testutil.h"

START_TEST(timeout_interrupts_a_sleep_with_etimedout)
{
    double t0 = test_now(); /* "never early" counts from the start */
    green_timeout_t *t = green_timeout_start(0.05);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(green_timeout_expired(t), 0);
    GREEN_ASSERT_ERRNO(green_sleep(5), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert_int_eq(green_timeout_expired(t), 1);
    /* Sticky until cancelled. */
    GREEN_ASSERT_ERRNO(green_sleep(0.01), ETIMEDOUT);
    GREEN_ASSERT_ERRNO(green_yield(), ETIMEDOUT);
    green_timeout_cancel(t);
    ck_assert_int_eq(green_sleep(0.01), 0);
}
END_TEST

START_TEST(a_shorter_sleep_finishes_before_the_timeout)
{
    green_timeout_t *t = green_timeout_start(0.2);
    ck_assert_int_eq(green_sleep(0.02), 0);
    ck_assert_int_eq(green_timeout_expired(t), 0);
    green_timeout_cancel(t);
}
END_TEST

static void nested(double outer_s, double inner_s, int inner_wins)
{
    double t0 = test_now();
    green_timeout_t *outer = green_timeout_start(outer_s);
    green_timeout_t *inner = green_timeout_start(inner_s);
    GREEN_ASSERT_ERRNO(green_sleep(5), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, inner_wins ? inner_s : outer_s);
    ck_assert_int_eq(green_timeout_expired(inner), inner_wins);
    ck_assert_int_eq(green_timeout_expired(outer), !inner_wins);
    green_timeout_cancel(inner);
    if (inner_wins) {
        /* The outer one is still armed and fires later. */
        GREEN_ASSERT_ERRNO(green_sleep(5), ETIMEDOUT);
        GREEN_ASSERT_TIME(test_now() - t0, outer_s);
        ck_assert_int_eq(green_timeout_expired(outer), 1);
    }
    green_timeout_cancel(outer);
}

START_TEST(nested_timeouts_the_earliest_wins)
{
    nested(0.2, 0.05, 1);
    nested(0.05, 0.2, 0);
}
END_TEST

static void *guarded_sleep(void *arg)
{
    green_timeout_t **out = arg;
    *out = green_timeout_start(0.05);
    green_timeout_cancel(*out);
    *out = green_timeout_start(0.03);
    int rc = green_sleep(0.01);
    /* Returns without cancelling: the timeout must not fire later. */
    return (void *)(intptr_t)rc;
}

START_TEST(cancelled_or_orphaned_timeouts_never_fire_later)
{
    green_timeout_t *t = NULL;
    green_t *g = green_spawn(guarded_sleep, &t);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_ptr_eq(green_value(g), NULL);
    /* The greenlet finished; its leftover timeout is inert. */
    ck_assert_int_eq(green_sleep(0.1), 0);
    ck_assert_int_eq(green_timeout_expired(t), 0);
    green_timeout_cancel(t);
    green_release(g);
}
END_TEST

START_TEST(timeout_edges)
{
    GREEN_ASSERT_ERRNO(green_timeout_start(NAN), EINVAL);
    green_timeout_cancel(NULL);
    ck_assert_int_eq(green_timeout_expired(NULL), 0);
    /* Zero: already due, the first blocking call fails. */
    green_timeout_t *z = green_timeout_start(0);
    GREEN_ASSERT_ERRNO(green_sleep(1), ETIMEDOUT);
    ck_assert_int_eq(green_timeout_expired(z), 1);
    green_timeout_cancel(z);
    /* Negative: never expires. */
    green_timeout_t *n = green_timeout_start(-1);
    ck_assert_int_eq(green_sleep(0.01), 0);
    ck_assert_int_eq(green_timeout_expired(n), 0);
    green_timeout_cancel(n);
    /* Huge: no overflow, no immediate expiry. */
    green_timeout_t *h = green_timeout_start(1e300);
    ck_assert_int_eq(green_sleep(0.01), 0);
    green_timeout_cancel(h);
}
END_TEST

static void *sleeper(void *arg)
{
    return (void *)(intptr_t)green_sleep(*(double *)arg);
}

START_TEST(timeout_applies_to_join)
{
    double s = 1;
    green_t *g = green_spawn(sleeper, &s);
    double t0 = test_now();
    green_timeout_t *t = green_timeout_start(0.05);
    GREEN_ASSERT_ERRNO(green_join(g, -1), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    green_timeout_cancel(t);
    ck_assert_int_eq(green_kill(g, -1), 0);
    green_release(g);
}
END_TEST

static void timeout_in_link(green_t *g, void *arg)
{
    (void)g;
    errno = 0;
    green_timeout_t *t = green_timeout_start(1);
    *(int *)arg = t == NULL ? errno : 0;
    green_timeout_cancel(t);
}

START_TEST(timeout_in_the_hub_is_edeadlk)
{
    int err = 0;
    green_t *g = green_spawn(sleeper, &(double){0});
    green_link(g, timeout_in_link, &err);
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq(err, EDEADLK);
    green_release(g);
}
END_TEST

/* Issue 11 item 12: another greenlet cancels t while its owner is
   parked; the owner must not fail at t's old deadline. */
struct parked_owner {
    green_timeout_t *t;
    int rc, err;
};

static void *sleep_under_timeout(void *arg)
{
    struct parked_owner *p = arg;
    p->t = green_timeout_start(0.05);
    errno = 0;
    p->rc = green_sleep(0.3);
    p->err = errno;
    return NULL;
}

START_TEST(cancel_by_another_greenlet_disarms_the_parked_deadline)
{
    struct parked_owner p = {NULL, -2, 0};
    green_t *g = green_spawn(sleep_under_timeout, &p);
    green_yield(); /* g parked with t's deadline armed */
    ck_assert_ptr_nonnull(p.t);
    double t0 = test_now();
    green_timeout_cancel(p.t);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_msg(p.rc == 0, "sleep failed with %s", strerror(p.err));
    GREEN_ASSERT_TIME(test_now() - t0, 0.3 - 0.01);
    green_release(g);
}
END_TEST

/* Issue 11 item 13: a yield loop under an expired timeout ends. */
START_TEST(yield_loop_ends_when_an_enclosing_timeout_expires)
{
    green_timeout_t *t = green_timeout_start(0.01);
    long n = 0;
    int rc;
    while ((rc = green_yield()) == 0 && n < 100000000L)
        n++;
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(green_timeout_expired(t), 1);
    /* The same with green_sleep(0). */
    green_timeout_cancel(t);
    t = green_timeout_start(0.01);
    n = 0;
    while ((rc = green_sleep(0)) == 0 && n < 100000000L)
        n++;
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    green_timeout_cancel(t);
}
END_TEST

/* Issue 11 items 4 and 25: a timeout left armed when its greenlet ends
   is freed with the greenlet (LeakSanitizer and Valgrind check there is
   no leak); cancelling it while the greenlet is still referenced, even
   after green_shutdown discarded it, is safe (ASan checks that). */
static green_timeout_t *left_armed;

static void *start_and_park(void *arg)
{
    left_armed = green_timeout_start(10);
    if (arg)
        green_sleep(100); /* discarded by green_shutdown */
    return NULL;
}

START_TEST(timeout_armed_at_greenlet_end_is_released_with_it)
{
    green_t *g = green_spawn(start_and_park, NULL);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_ptr_nonnull(left_armed);
    green_release(g); /* frees the timeout: no leak */
}
END_TEST

START_TEST(timeout_cancel_after_shutdown_discarded_its_greenlet)
{
    green_t *g = green_spawn(start_and_park, (void *)1);
    green_yield();
    ck_assert_ptr_nonnull(left_armed);
    green_shutdown();
    green_timeout_cancel(left_armed); /* detached: only freed */
    green_release(g);
    /* A main-greenlet timeout outlives the hub until cancelled. */
    green_timeout_t *t = green_timeout_start(1);
    ck_assert_ptr_nonnull(t);
    green_shutdown();
    green_timeout_cancel(t);
}
END_TEST

static Suite *timeout_suite(void)
{
    Suite *s = suite_create("timeout");
    TCase *tc = tcase_create("timeout");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, timeout_interrupts_a_sleep_with_etimedout);
    tcase_add_test(tc, a_shorter_sleep_finishes_before_the_timeout);
    tcase_add_test(tc, nested_timeouts_the_earliest_wins);
    tcase_add_test(tc, cancelled_or_orphaned_timeouts_never_fire_later);
    tcase_add_test(tc, timeout_edges);
    tcase_add_test(tc, timeout_applies_to_join);
    tcase_add_test(tc, timeout_in_the_hub_is_edeadlk);
    tcase_add_test(tc, cancel_by_another_greenlet_disarms_the_parked_deadline);
    tcase_add_test(tc, yield_loop_ends_when_an_enclosing_timeout_expires);
    tcase_add_test(tc, timeout_armed_at_greenlet_end_is_released_with_it);
    tcase_add_test(tc, timeout_cancel_after_shutdown_discarded_its_greenlet);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(timeout_suite)
