/* Unmodified MariaDB Connector/C under libgreen-patch, against a
   mariadbd this program starts in a private directory (test/servers.h):
   queries of several greenlets overlap, a green_timeout or a green_kill
   ends a mysql_query early, and after one the handle must be closed and
   connected again (the README's "Works with" rule). */
#define GREEN_WITH_LIBMARIADB
#include "clients.h"
#include "testutil.h"

#define N 8

static struct test_server db;

static MYSQL *db_connect(void)
{
    return test_mariadb_connect(&db);
}

START_TEST(test_eight_sleeps_overlap)
{
    ck_assert_int_eq(green_patch_all(), 0);
    int ticks = 0;
    green_t *t = green_spawn(test_ticker, &ticks);
    void *args[N] = {&db, &db, &db, &db, &db, &db, &db, &db};
    double el = test_run_concurrently(test_mariadb_sleep_one_second, args, N, 30);
    printf("mariadb: %d x SLEEP(1) in %.3f s\n", N, el);
    ck_assert_msg(el > 0.99 && el < 1 + test_slack(),
                  "%d x SLEEP(1) took %.3f s", N, el);
    ck_assert_int_gt(ticks, 50); /* the hub ran meanwhile */
    ck_assert_int_eq(green_kill(t, 1), 0);
    green_release(t);
}
END_TEST

/* mysql_query under a 0.3 s timeout fails at 0.3 s with "lost
   connection": Connector/C drops the connection itself, so the handle
   answers nothing more ("server has gone away") until it is closed and
   connected again; the new connection answers its own queries. */
START_TEST(test_timeout_ends_mysql_query_and_reconnect_recovers)
{
    ck_assert_int_eq(green_patch_all(), 0);
    MYSQL *m = db_connect();
    ck_assert_ptr_nonnull(m);
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.3), 0);
    double t0 = test_now();
    int rc = mysql_query(m, "SELECT SLEEP(5)");
    double el = test_now() - t0;
    ck_assert_int_eq(green_timeout_end(&s), 1);
    ck_assert_int_ne(rc, 0);
    ck_assert_uint_eq(mysql_errno(m), CR_SERVER_LOST);
    GREEN_ASSERT_TIME(el, 0.3);
    char buf[64];
    ck_assert_str_eq(test_mariadb_value(m, "SELECT 'next'", buf, sizeof buf), "");
    ck_assert_uint_eq(mysql_errno(m), CR_SERVER_GONE_ERROR);
    mysql_close(m);
    m = db_connect();
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(test_mariadb_value(m, "SELECT 'own result'", buf, sizeof buf),
                     "own result");
    mysql_close(m);
}
END_TEST

static void *query_sleep_5(void *arg)
{
    return mysql_query(arg, "SELECT SLEEP(5)") == 0
               ? "SLEEP(5) was not interrupted"
               : NULL;
}

/* green_kill of a greenlet blocked in mysql_query returns at once. */
START_TEST(test_kill_ends_mysql_query_promptly)
{
    ck_assert_int_eq(green_patch_all(), 0);
    MYSQL *m = db_connect();
    ck_assert_ptr_nonnull(m);
    green_t *g = green_spawn(query_sleep_5, m);
    ck_assert_int_eq(green_sleep(0.2), 0);
    ck_assert_int_eq(green_done(g), 0);
    double t0 = test_now();
    ck_assert_int_eq(green_kill(g, 5), 0);
    double el = test_now() - t0;
    ck_assert_msg(el < test_prompt(), "green_kill took %.3f s", el);
    ck_assert_ptr_null(green_value(g));
    ck_assert_uint_eq(mysql_errno(m), CR_SERVER_LOST);
    green_release(g);
    mysql_close(m); /* the rule: a killed query's handle is closed */
}
END_TEST

static void library_end(void)
{
    mysql_library_end();
}

static Suite *mariadb_suite(void)
{
    int rc = test_mariadb_start(&db);
    if (rc == TEST_SKIP) {
        fprintf(stderr, "check_mariadb: no mariadbd/mysqld: SKIP\n");
        exit(TEST_SKIP);
    }
    if (rc != 0 || mysql_library_init(0, NULL, NULL) != 0 ||
        atexit(library_end) != 0)
        exit(EXIT_FAILURE);
    Suite *s = suite_create("mariadb");
    TCase *tc = tcase_create("connector-c");
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_eight_sleeps_overlap);
    tcase_add_test(tc, test_timeout_ends_mysql_query_and_reconnect_recovers);
    tcase_add_test(tc, test_kill_ends_mysql_query_promptly);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(mariadb_suite)
