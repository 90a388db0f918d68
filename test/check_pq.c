/* Unmodified libpq under libgreen-patch, against a postgres this
   program starts in a private directory (test/servers.h): queries of
   several greenlets overlap, a green_timeout or a green_kill ends a
   PQexec early, and after one the connection must be reset (the
   README's "Works with" rule; the last test shows why). */
#define GREEN_WITH_LIBPQ
#include "clients.h"
#include "testutil.h"

#define N 8

static struct test_server pg;

static PGconn *pg_connect(void)
{
    return test_pq_connect(&pg);
}

/* A connection that works, or a failed test. */
static PGconn *pg_connect_ok(void)
{
    PGconn *c = pg_connect();
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s",
                  PQerrorMessage(c));
    return c;
}

START_TEST(test_eight_pg_sleeps_overlap)
{
    ck_assert_int_eq(green_patch_all(), 0);
    int ticks = 0;
    green_t *t = green_spawn(test_ticker, &ticks);
    void *args[N] = {&pg, &pg, &pg, &pg, &pg, &pg, &pg, &pg};
    double el = test_run_concurrently(test_pq_sleep_one_second, args, N, 30);
    printf("libpq: %d x pg_sleep(1) in %.3f s\n", N, el);
    ck_assert_msg(el > 0.99 && el < 1 + test_slack(),
                  "%d x pg_sleep(1) took %.3f s", N, el);
    ck_assert_int_gt(ticks, 50); /* the hub ran meanwhile */
    ck_assert_int_eq(green_kill(t, 1), 0);
    green_release(t);
}
END_TEST

/* PQexec under a 0.3 s timeout returns at 0.3 s with an error; after
   PQreset the connection answers its own queries. */
START_TEST(test_timeout_ends_pqexec_and_pqreset_recovers)
{
    ck_assert_int_eq(green_patch_all(), 0);
    PGconn *c = pg_connect_ok();
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.3), 0);
    double t0 = test_now();
    PGresult *r = PQexec(c, "SELECT pg_sleep(5)");
    double el = test_now() - t0;
    ck_assert_int_eq(green_timeout_end(&s), 1);
    ck_assert_int_ne(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    GREEN_ASSERT_TIME(el, 0.3);
    PQreset(c);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    char buf[64];
    ck_assert_str_eq(test_pq_value(c, "SELECT 'own result'", buf, sizeof buf),
                     "own result");
    PQfinish(c);
}
END_TEST

static void *pqexec_pg_sleep_5(void *arg)
{
    PGconn *c = arg;
    PGresult *r = PQexec(c, "SELECT pg_sleep(5)");
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    return st == PGRES_TUPLES_OK ? "pg_sleep(5) was not interrupted" : NULL;
}

/* green_kill of a greenlet blocked in PQexec returns at once. */
START_TEST(test_kill_ends_pqexec_promptly)
{
    ck_assert_int_eq(green_patch_all(), 0);
    PGconn *c = pg_connect_ok();
    green_t *g = green_spawn(pqexec_pg_sleep_5, c);
    ck_assert_int_eq(green_sleep(0.2), 0);
    ck_assert_int_eq(green_done(g), 0);
    double t0 = test_now();
    ck_assert_int_eq(green_kill(g, 5), 0);
    double el = test_now() - t0;
    ck_assert_msg(el < test_prompt(), "green_kill took %.3f s", el);
    ck_assert_ptr_null(green_value(g));
    green_release(g);
    PQfinish(c); /* the rule: a killed query's connection is dropped */
}
END_TEST

/* What the rule prevents: libpq takes the failed wait for the end of
   the query, so the next PQexec on the same connection returns the
   abandoned query's rows instead of its own. */
START_TEST(test_without_pqreset_the_next_query_gets_stale_rows)
{
    ck_assert_int_eq(green_patch_all(), 0);
    PGconn *c = pg_connect_ok();
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.1), 0);
    PGresult *r = PQexec(c, "SELECT 'abandoned' FROM pg_sleep(0.4)");
    ck_assert_int_eq(green_timeout_end(&s), 1);
    ck_assert_int_ne(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    char buf[64];
    ck_assert_str_eq(test_pq_value(c, "SELECT 'next'", buf, sizeof buf),
                     "abandoned");
    PQfinish(c);
}
END_TEST

static Suite *pq_suite(void)
{
    int rc = test_pg_start(&pg);
    if (rc == TEST_SKIP) {
        fprintf(stderr, "check_pq: no PostgreSQL server binaries: SKIP\n");
        exit(TEST_SKIP);
    }
    if (rc != 0)
        exit(EXIT_FAILURE);
    Suite *s = suite_create("pq");
    TCase *tc = tcase_create("libpq");
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_eight_pg_sleeps_overlap);
    tcase_add_test(tc, test_timeout_ends_pqexec_and_pqreset_recovers);
    tcase_add_test(tc, test_kill_ends_pqexec_promptly);
    tcase_add_test(tc, test_without_pqreset_the_next_query_gets_stale_rows);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(pq_suite)
