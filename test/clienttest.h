/* The Check side shared by the client-library tests (test/check_pq.c,
   check_mariadb.c, check_hiredis.c, check_curl.c, check_tls_clients.c):
   each client call under test is a green_fn (a "unit"), and these
   helpers assert the same things of every library: N units overlap, a
   green_timeout ends one early, a green_kill ends one at once. */
#ifndef GREEN_CLIENTTEST_H_INCLUDED
#define GREEN_CLIENTTEST_H_INCLUDED

#include "servers.h"
#include "testutil.h"

/* Start the suite's server s with start_fn, before Check forks a test;
   exit 77 (SKIP) saying "prog: no what" when its binaries are missing,
   exit 1 when it fails to start. */
static inline void test_start_or_skip(const char *prog, const char *what,
                                      struct test_server *s,
                                      int (*start_fn)(struct test_server *))
{
    int rc = start_fn(s);
    if (rc == TEST_SKIP) {
        fprintf(stderr, "%s: no %s: SKIP\n", prog, what);
        exit(TEST_SKIP);
    }
    if (rc != 0)
        exit(EXIT_FAILURE);
}

/* A new TCase in s with the given fixture and per-test timeout. */
static inline TCase *test_add_tcase(Suite *s, const char *name,
                                    SFun setup, SFun teardown, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

/* The suite of a client test: one TCase with the alarm fixture (a hang
   fails the test) and 60 s per test, running tests (NULL-terminated). */
static inline Suite *test_client_suite(const char *name, const char *tcase,
                                       const TTest *const tests[])
{
    Suite *s = suite_create(name);
    TCase *tc = test_add_tcase(s, tcase, test_alarm_setup,
                               test_alarm_teardown, 60);
    for (size_t i = 0; tests[i]; i++)
        tcase_add_test(tc, tests[i]);
    return s;
}

/* n greenlets running fn(arg) at once (test_run_n) all succeed in about
   `each` seconds, one unit's time and not n of them, and meanwhile the
   hub keeps running: a ticker counts more than min_ticks.  The time. */
static inline double test_assert_overlap(green_fn fn, void *arg, size_t n,
                                         double each, int min_ticks)
{
    int ticks = 0;
    green_t *t = green_spawn(test_ticker, &ticks);
    double el = test_run_n(fn, arg, n, 30);
    ck_assert_msg(el >= 0, "a greenlet failed or took over 30 s");
    GREEN_ASSERT_TIME(el, each);
    ck_assert_int_gt(ticks, min_ticks);
    ck_assert_int_eq(green_kill(t, 1), 0);
    green_release(t);
    return el;
}

/* fn(arg) under a green_timeout of `secs`: the timeout fires and ends the
   call at `secs`.  fn's value; the time in *elapsed unless NULL. */
static inline void *test_call_timing_out(green_fn fn, void *arg, double secs,
                                         double *elapsed)
{
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, secs), 0);
    double t0 = test_now();
    void *value = fn(arg);
    double el = test_now() - t0;
    ck_assert_int_eq(green_timeout_end(&s), 1);
    GREEN_ASSERT_TIME(el, secs);
    if (elapsed)
        *elapsed = el;
    return value;
}

/* A greenlet running fn(arg) is still blocked in it after 0.2 s; then
   green_kill returns within `bound` seconds and fn returns NULL (its
   "interrupted" answer). */
static inline void test_kill_blocked(green_fn fn, void *arg, double bound)
{
    green_t *g = green_spawn(fn, arg);
    ck_assert_int_eq(green_sleep(0.2), 0);
    ck_assert_int_eq(green_done(g), 0);
    double t0 = test_now();
    ck_assert_int_eq(green_kill(g, 5), 0);
    double el = test_now() - t0;
    ck_assert_msg(el < bound, "green_kill took %.3f s", el);
    ck_assert_ptr_null(green_value(g));
    green_release(g);
}

#endif
