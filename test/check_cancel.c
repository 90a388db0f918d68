/* The cancellation state: a kill recorded while disabled, delivered at
   the next blocking call once enabled again; green_killed; what a killed
   greenlet reports; green_kill from a killed greenlet. */
#include <math.h>
#include <stdint.h>

#include "synctest.h"

struct shield {
    green_event_t *go;     /* set by the test once it killed us */
    int sleep_rc, killed_seen, join_rc, after_rc, after_err, old;
    int yield_rc;
};

static void *child(void *arg)
{
    (void)arg;
    green_sleep(0.01);
    return P(5);
}

static void *shielded(void *arg)
{
    struct shield *s = arg;
    ck_assert_int_eq(green_setcancelstate(GREEN_CANCEL_DISABLE, &s->old), 0);
    /* The kill arrives while this wait is parked: it goes on. */
    ck_assert_int_eq(green_event_wait(s->go, 5), 0);
    s->killed_seen = green_killed();
    s->yield_rc = green_yield();
    s->sleep_rc = green_sleep(0.01);
    green_t *c = green_spawn(child, NULL);
    s->join_rc = green_join(c, 5);
    green_release(c);
    ck_assert_int_eq(green_setcancelstate(GREEN_CANCEL_ENABLE, NULL), 0);
    errno = 0;
    s->after_rc = green_sleep(0.01);
    s->after_err = errno;
    return P(9);
}

START_TEST(disabled_cancellation_records_the_kill_until_enabled)
{
    struct shield s = {.go = green_event_new()};
    green_t *g = green_spawn(shielded, &s);
    green_yield();
    ck_assert_int_eq(green_kill(g, 0), 0);
    green_yield();
    ck_assert(!green_done(g)); /* the event wait was not interrupted */
    green_event_set(s.go);
    ck_assert_int_eq(green_kill(g, 5), 0); /* waits for its cleanup */
    ck_assert_int_eq(s.old, GREEN_CANCEL_ENABLE);
    ck_assert_int_eq(s.killed_seen, 1);
    ck_assert_int_eq(s.yield_rc, 0);
    ck_assert_int_eq(s.sleep_rc, 0);
    ck_assert_int_eq(s.join_rc, 0);
    ck_assert_int_eq(s.after_rc, -1);
    ck_assert_int_eq(s.after_err, ECANCELED);
    /* Killed and returned normally: ECANCELED, with its value. */
    ck_assert_int_eq(green_error(g), ECANCELED);
    ck_assert_int_eq(I(green_value(g)), 9);
    green_release(g);
    green_event_free(s.go);
}
END_TEST

static void *timed_shield(void *arg)
{
    int *rc = arg;
    green_setcancelstate(GREEN_CANCEL_DISABLE, NULL);
    green_timeout_t *t = green_timeout_start(0.02);
    errno = 0;
    rc[0] = green_sleep(5);
    rc[1] = errno;
    green_timeout_cancel(t);
    return NULL;
}

START_TEST(disabled_cancellation_keeps_green_timeouts)
{
    int rc[2];
    green_t *g = green_spawn(timed_shield, rc);
    green_yield();
    green_kill(g, 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(rc[0], -1);
    ck_assert_int_eq(rc[1], ETIMEDOUT);
    green_release(g);
}
END_TEST

static void *returns_after_kill(void *arg)
{
    (void)arg;
    green_sleep(5);
    return P(3);
}

/* Kills pair[1] after being killed itself (pair[2] non-NULL: with
   cancellation disabled); returns the errno of its green_kill, or 0. */
static void *killer_of(void *arg)
{
    green_t **pair = arg;
    if (pair[2])
        green_setcancelstate(GREEN_CANCEL_DISABLE, NULL);
    green_sleep(0.05); /* the test kills us here */
    errno = 0;
    int rc = green_kill(pair[1], 5);
    return P(rc == -1 ? errno : 0);
}

static void kill_from_killed(int disable)
{
    green_t *pair[3] = {NULL, NULL, disable ? P(1) : NULL};
    pair[1] = green_spawn(returns_after_kill, NULL);
    pair[0] = green_spawn(killer_of, pair);
    green_yield();
    ck_assert_int_eq(green_kill(pair[0], 0), 0);
    ck_assert_int_eq(green_join(pair[0], 5), 0);
    ck_assert_int_eq(green_error(pair[0]), ECANCELED);
    /* Enabled: ECANCELED instead of waiting; disabled: it waited. */
    ck_assert_int_eq(I(green_value(pair[0])), disable ? 0 : ECANCELED);
    if (disable)
        ck_assert(green_done(pair[1]));
    /* Either way the target was marked killed. */
    ck_assert_int_eq(green_join(pair[1], 5), 0);
    ck_assert_int_eq(green_error(pair[1]), ECANCELED);
    green_release(pair[0]);
    green_release(pair[1]);
}

START_TEST(kill_from_a_killed_greenlet_is_ecanceled)
{
    kill_from_killed(0);
}
END_TEST

START_TEST(kill_from_a_killed_shielded_greenlet_waits)
{
    kill_from_killed(1);
}
END_TEST

static void in_hub(void *arg)
{
    (void)arg;
    GREEN_ASSERT_ERRNO(green_setcancelstate(GREEN_CANCEL_DISABLE, NULL),
                       EPERM);
    ck_assert_int_eq(green_killed(), 0);
}

START_TEST(cancel_state_errors_and_main)
{
    int old = -1;
    GREEN_ASSERT_ERRNO(green_setcancelstate(2, &old), EINVAL);
    GREEN_ASSERT_ERRNO(green_setcancelstate(-1, NULL), EINVAL);
    ck_assert_int_eq(old, -1);
    ck_assert_int_eq(green_killed(), 0);
    ck_assert_int_eq(green_setcancelstate(GREEN_CANCEL_DISABLE, &old), 0);
    ck_assert_int_eq(old, GREEN_CANCEL_ENABLE);
    ck_assert_int_eq(green_setcancelstate(GREEN_CANCEL_ENABLE, &old), 0);
    ck_assert_int_eq(old, GREEN_CANCEL_DISABLE);
    run_in_hub(in_hub, NULL);
}
END_TEST

START_TEST(killed_greenlet_that_returns_reports_ecanceled)
{
    green_t *g = green_spawn(returns_after_kill, NULL);
    green_yield();
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(green_error(g), ECANCELED);
    ck_assert_int_eq(I(green_value(g)), 3);
    green_release(g);
}
END_TEST

/******************************************************************************/
/*  Scoped timeouts (caller storage)                                          */
/******************************************************************************/

START_TEST(scoped_timeout_interrupts_and_ends)
{
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.03), 0);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_sleep(5), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    ck_assert_int_eq(green_timeout_scope_expired(&s), 1);
    GREEN_ASSERT_ERRNO(green_sleep(0.001), ETIMEDOUT); /* until ended */
    ck_assert_int_eq(green_timeout_end(&s), 1);
    ck_assert_int_eq(green_timeout_scope_expired(&s), 1);
    ck_assert_int_eq(green_sleep(0.001), 0);
    GREEN_ASSERT_ERRNO(green_timeout_end(&s), EINVAL);

    /* Not expired: end says 0, and it never fires later. */
    ck_assert_int_eq(green_timeout_begin(&s, 0.02), 0);
    ck_assert_int_eq(green_sleep(0.001), 0);
    ck_assert_int_eq(green_timeout_end(&s), 0);
    ck_assert_int_eq(green_sleep(0.04), 0);
}
END_TEST

START_TEST(scoped_timeouts_nest_with_allocated_ones)
{
    green_timeout_scope_t outer, inner;
    ck_assert_int_eq(green_timeout_begin(&outer, 0.02), 0);
    green_timeout_t *t = green_timeout_start(5);
    ck_assert_int_eq(green_timeout_begin(&inner, 10), 0);
    GREEN_ASSERT_ERRNO(green_sleep(5), ETIMEDOUT);
    ck_assert_int_eq(green_timeout_end(&inner), 0);
    ck_assert_int_eq(green_timeout_expired(t), 0);
    green_timeout_cancel(t);
    ck_assert_int_eq(green_timeout_end(&outer), 1);
    /* The inner one first: the outer's deadline still applies. */
    ck_assert_int_eq(green_timeout_begin(&outer, 0.02), 0);
    ck_assert_int_eq(green_timeout_begin(&inner, 0.01), 0);
    GREEN_ASSERT_ERRNO(green_sleep(5), ETIMEDOUT);
    ck_assert_int_eq(green_timeout_end(&inner), 1);
    ck_assert_int_eq(green_timeout_scope_expired(&outer), 0);
    GREEN_ASSERT_ERRNO(green_sleep(5), ETIMEDOUT);
    ck_assert_int_eq(green_timeout_end(&outer), 1);
}
END_TEST

static void *ends_inside_scope(void *arg)
{
    (void)arg;
    green_timeout_scope_t s;
    green_timeout_begin(&s, 0.01);
    green_exit(NULL); /* never ended: forgotten with the greenlet */
}

static void scope_in_hub(void *arg)
{
    (void)arg;
    green_timeout_scope_t s;
    GREEN_ASSERT_ERRNO(green_timeout_begin(&s, 1), EDEADLK);
}

START_TEST(scoped_timeout_errors)
{
    green_timeout_scope_t s;
    GREEN_ASSERT_ERRNO(green_timeout_begin(NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_timeout_begin(&s, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_timeout_end(NULL), EINVAL);
    ck_assert_int_eq(green_timeout_scope_expired(NULL), 0);
    run_in_hub(scope_in_hub, NULL);
    green_t *g = green_spawn(ends_inside_scope, NULL);
    ck_assert_int_eq(green_join(g, 5), 0);
    green_release(g);
    ck_assert_int_eq(green_sleep(0.02), 0);
}
END_TEST

static Suite *cancel_suite(void)
{
    Suite *s = suite_create("cancel");
    TCase *tc = tcase_create("state");
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, disabled_cancellation_records_the_kill_until_enabled);
    tcase_add_test(tc, disabled_cancellation_keeps_green_timeouts);
    tcase_add_test(tc, kill_from_a_killed_shielded_greenlet_waits);
    tcase_add_test(tc, kill_from_a_killed_greenlet_is_ecanceled);
    tcase_add_test(tc, cancel_state_errors_and_main);
    tcase_add_test(tc, killed_greenlet_that_returns_reports_ecanceled);
    tc = tcase_create("scoped_timeout");
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, scoped_timeout_interrupts_and_ends);
    tcase_add_test(tc, scoped_timeouts_nest_with_allocated_ones);
    tcase_add_test(tc, scoped_timeout_errors);
    return s;
}

GREEN_TEST_MAIN(cancel_suite)
