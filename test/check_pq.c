/* Unmodified libpq under libgreen-patch, against a postgres this
   program starts in a private directory (test/servers.h): queries of
   several greenlets overlap, a green_timeout or a green_kill ends a
   PQexec early, and after one the connection must be reset (the
   README's "Works with" rule; the last test shows why). */
#define GREEN_WITH_LIBPQ
#include "clients.h"
#include "clienttest.h"

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
    double el = test_assert_overlap(test_pq_sleep_one_second, &pg, N, 1, 50);
    printf("libpq: %d x pg_sleep(1) in %.3f s\n", N, el);
}
END_TEST

/* A query on a connection, for the units below. */
struct query {
    PGconn *c;
    const char *sql;
};

/* NULL if PQexec of the query failed (it was interrupted). */
static void *pqexec_fails(void *arg)
{
    struct query *q = arg;
    PGresult *r = PQexec(q->c, q->sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    return st == PGRES_TUPLES_OK ? "the query was not interrupted" : NULL;
}

/* PQexec under a 0.3 s timeout returns at 0.3 s with an error; after
   PQreset the connection answers its own queries. */
START_TEST(test_timeout_ends_pqexec_and_pqreset_recovers)
{
    ck_assert_int_eq(green_patch_all(), 0);
    struct query q = {pg_connect_ok(), "SELECT pg_sleep(5)"};
    ck_assert_ptr_null(test_call_timing_out(pqexec_fails, &q, 0.3, NULL));
    PQreset(q.c);
    ck_assert_int_eq(PQstatus(q.c), CONNECTION_OK);
    char buf[64];
    ck_assert_str_eq(test_pq_value(q.c, "SELECT 'own result'", buf, sizeof buf),
                     "own result");
    PQfinish(q.c);
}
END_TEST

/* green_kill of a greenlet blocked in PQexec returns at once. */
START_TEST(test_kill_ends_pqexec_promptly)
{
    ck_assert_int_eq(green_patch_all(), 0);
    struct query q = {pg_connect_ok(), "SELECT pg_sleep(5)"};
    test_kill_blocked(pqexec_fails, &q, test_prompt());
    PQfinish(q.c); /* the rule: a killed query's connection is dropped */
}
END_TEST

/* What the rule prevents: libpq takes the failed wait for the end of
   the query, so the next PQexec on the same connection returns the
   abandoned query's rows instead of its own. */
START_TEST(test_without_pqreset_the_next_query_gets_stale_rows)
{
    ck_assert_int_eq(green_patch_all(), 0);
    struct query q = {pg_connect_ok(),
                      "SELECT 'abandoned' FROM pg_sleep(0.4)"};
    ck_assert_ptr_null(test_call_timing_out(pqexec_fails, &q, 0.1, NULL));
    char buf[64];
    ck_assert_str_eq(test_pq_value(q.c, "SELECT 'next'", buf, sizeof buf),
                     "abandoned");
    PQfinish(q.c);
}
END_TEST

static Suite *pq_suite(void)
{
    test_start_or_skip("check_pq", "PostgreSQL server binaries", &pg,
                       test_pg_start);
    return test_client_suite("pq", "libpq", (const TTest *[]){
        test_eight_pg_sleeps_overlap,
        test_timeout_ends_pqexec_and_pqreset_recovers,
        test_kill_ends_pqexec_promptly,
        test_without_pqreset_the_next_query_gets_stale_rows,
        NULL});
}

GREEN_TEST_MAIN(pq_suite)
