/* Diagnostics: the blocked-loop monitor. */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>

#include "testutil.h"

/* Redirect stderr to a temporary file; returns the saved fd. */
static int capture_stderr(FILE **tmp)
{
    fflush(stderr);
    *tmp = tmpfile();
    int saved = dup(2);
    dup2(fileno(*tmp), 2);
    return saved;
}

static char *restore_stderr(FILE *tmp, int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char buf[8192];
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = 0;
    fclose(tmp);
    return buf;
}

static void *busy(void *arg)
{
    double until = test_now() + *(double *)arg;
    while (test_now() < until)
        ; /* never yields */
    return NULL;
}

START_TEST(busy_loop_is_reported_once_with_id_and_name)
{
    /* MON-1 */
    FILE *tmp;
    int saved = capture_stderr(&tmp);
    ck_assert_int_eq(green_monitor_start(0.1), 0);
    double s = 0.5;
    green_attr_t attr = {0, "spinner"};
    green_t *g = green_new(busy, &s, &attr);
    green_start(g);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq(green_sleep(0.3), 0);
    green_monitor_stop();
    char *out = restore_stderr(tmp, saved);
    char want[128];
    snprintf(want, sizeof want, "by greenlet 'spinner' (id %llu)",
             (unsigned long long)green_id(g));
    ck_assert_msg(test_count_substr(out, "libgreen: monitor: hub blocked") == 1 &&
                      strstr(out, want),
                  "stderr: %s", out);
    green_release(g);
}
END_TEST

static void *waiter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        green_sleep(0.1);
    return NULL;
}

START_TEST(a_program_that_only_waits_is_never_reported)
{
    /* MON-2 */
    FILE *tmp;
    int saved = capture_stderr(&tmp);
    ck_assert_int_eq(green_monitor_start(0.1), 0);
    green_t *g = green_spawn(waiter, NULL);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq(green_sleep(1), 0);
    green_monitor_stop();
    char *out = restore_stderr(tmp, saved);
    ck_assert_msg(!strstr(out, "libgreen: monitor"), "stderr: %s", out);
    green_release(g);
}
END_TEST

START_TEST(monitor_from_environment)
{
    FILE *tmp;
    int saved = capture_stderr(&tmp);
    setenv("GREEN_MONITOR", "0.1", 1);
    double s = 0.4;
    green_t *g = green_spawn(busy, &s); /* creates the hub: env read */
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq(green_sleep(0.2), 0);
    green_shutdown(); /* stops the monitor */
    unsetenv("GREEN_MONITOR");
    char *out = restore_stderr(tmp, saved);
    ck_assert_msg(test_count_substr(out, "libgreen: monitor: hub blocked") == 1,
                  "stderr: %s", out);
    green_release(g);
}
END_TEST

START_TEST(monitor_bad_arguments)
{
    GREEN_ASSERT_ERRNO(green_monitor_start(0), EINVAL);
    GREEN_ASSERT_ERRNO(green_monitor_start(-1), EINVAL);
    GREEN_ASSERT_ERRNO(green_monitor_start(NAN), EINVAL);
    green_monitor_stop(); /* not started: no-op */
}
END_TEST

static Suite *diag_suite(void)
{
    Suite *s = suite_create("diag");
    TCase *tc = tcase_create("monitor");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    /* Valgrind serialises threads, so a spinning greenlet starves the
       monitor thread there: these run in the normal and ASan builds. */
    if (!test_light()) {
        tcase_add_test(tc, busy_loop_is_reported_once_with_id_and_name);
        tcase_add_test(tc, a_program_that_only_waits_is_never_reported);
        tcase_add_test(tc, monitor_from_environment);
    }
    tcase_add_test(tc, monitor_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(diag_suite)
