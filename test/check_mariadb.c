/* Unmodified MariaDB Connector/C under libgreen-patch, against a
   mariadbd this program starts in a private directory (test/servers.h):
   queries of several greenlets overlap, a green_timeout or a green_kill
   ends a mysql_query early, and after one the handle must be closed and
   connected again (the README's "Works with" rule). */
#define GREEN_WITH_LIBMARIADB
#include "clients.h"
#include "clienttest.h"

#define N 8

static struct test_server db;

static MYSQL *db_connect(void)
{
    return test_mariadb_connect(&db);
}

START_TEST(test_eight_sleeps_overlap)
{
    ck_assert_int_eq(green_patch_all(), 0);
    double el =
        test_assert_overlap(test_mariadb_sleep_one_second, &db, N, 1, 50);
    printf("mariadb: %d x SLEEP(1) in %.3f s\n", N, el);
}
END_TEST

/* NULL if SLEEP(5) on arg (a MYSQL *) failed (it was interrupted). */
static void *query_sleep_5(void *arg)
{
    return mysql_query(arg, "SELECT SLEEP(5)") == 0
               ? "SLEEP(5) was not interrupted"
               : NULL;
}

/* mysql_query under a 0.3 s timeout fails at 0.3 s with "lost
   connection": Connector/C drops the connection itself, so the handle
   answers nothing more ("server has gone away") until it is closed and
   connected again; the new connection answers its own queries. */
START_TEST(test_timeout_ends_mysql_query_and_reconnect_recovers)
{
    ck_assert_int_eq(green_patch_all(), 0);
    MYSQL *m = db_connect();
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(test_call_timing_out(query_sleep_5, m, 0.3, NULL));
    ck_assert_uint_eq(mysql_errno(m), CR_SERVER_LOST);
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

/* green_kill of a greenlet blocked in mysql_query returns at once. */
START_TEST(test_kill_ends_mysql_query_promptly)
{
    ck_assert_int_eq(green_patch_all(), 0);
    MYSQL *m = db_connect();
    ck_assert_ptr_nonnull(m);
    test_kill_blocked(query_sleep_5, m, test_prompt());
    ck_assert_uint_eq(mysql_errno(m), CR_SERVER_LOST);
    mysql_close(m); /* the rule: a killed query's handle is closed */
}
END_TEST

static void library_end(void)
{
    mysql_library_end();
}

static Suite *mariadb_suite(void)
{
    test_start_or_skip("check_mariadb", "mariadbd/mysqld", &db,
                       test_mariadb_start);
    if (mysql_library_init(0, NULL, NULL) != 0 || atexit(library_end) != 0)
        exit(EXIT_FAILURE);
    return test_client_suite("mariadb", "connector-c", (const TTest *[]){
        test_eight_sleeps_overlap,
        test_timeout_ends_mysql_query_and_reconnect_recovers,
        test_kill_ends_mysql_query_promptly,
        NULL});
}

GREEN_TEST_MAIN(mariadb_suite)
