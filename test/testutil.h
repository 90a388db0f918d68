/* Helpers shared by the Check suites. */
#ifndef GREEN_TESTUTIL_H_INCLUDED
#define GREEN_TESTUTIL_H_INCLUDED

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <green.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "procstat.h"

/* Slack for "not late" time bounds; GREEN_TEST_SLACK overrides it (the
   machines are shared and noisy).  "Not early" is asserted strictly. */
static inline double test_slack(void)
{
    const char *s = getenv("GREEN_TEST_SLACK");
    if (s)
        return atof(s);
    return GREEN_TEST_SANITIZED || getenv("GREEN_TEST_SLOW") ? 5.0 : 0.5;
}

/* A wait status meaning death by SIGSEGV; under ASan its own report
   follows ours and the process exits with status 1 instead. */
static inline int test_died_of_segv(int status)
{
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV)
        return 1;
    return GREEN_TEST_SANITIZED && WIFEXITED(status) &&
           WEXITSTATUS(status) != 0;
}

/* GREEN_TEST_LIGHT (set by make check-valgrind): skip the tests that
   only prove limits at scale (100,000 stacks, the map limit). */
static inline int test_light(void)
{
    return getenv("GREEN_TEST_LIGHT") != NULL;
}

/* GREEN_TEST_QEMU (set by test/cross_aarch64.sh): running under
   qemu-user, which emulates the syscalls itself.  Only the tests that
   need something qemu-user lacks are skipped, each saying what. */
static inline int test_qemu(void)
{
    return getenv("GREEN_TEST_QEMU") != NULL;
}

/* RSS bounds mean nothing under ASan (quarantine) or Valgrind. */
static inline int test_measures_rss(void)
{
    return !GREEN_TEST_SANITIZED && !getenv("GREEN_TEST_SLOW");
}

/* "At once": generous on a loaded machine, stretched under Valgrind and
   the sanitizers (test_slack). */
static inline double test_prompt(void)
{
    return 0.05 + test_slack() / 5;
}

/* Number of (possibly overlapping) occurrences of needle in hay. */
static inline int test_count_substr(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* For greenlets that only need to exist: returns its argument. */
static inline void *test_noop(void *arg)
{
    return arg;
}

/* Sleeps until killed. */
static inline void *test_sleep_forever(void *arg)
{
    green_sleep(1e9);
    return arg;
}

/* expr must fail with -1 (or NULL) and errno err. */
#define GREEN_ASSERT_ERRNO(expr, err)                                       \
    do {                                                                    \
        errno = 0;                                                          \
        long long rc_ = (long long)(intptr_t)(expr);                        \
        int e_ = errno;                                                     \
        ck_assert_msg((rc_ == -1 || rc_ == 0) && e_ == (err),               \
                      "%s: rc=%lld errno=%s (%d), expected %s", #expr, rc_, \
                      strerror(e_), e_, strerror(err));                     \
    } while (0)

/* elapsed must be >= expected - 1 ms and <= expected + slack. */
#define GREEN_ASSERT_TIME(elapsed, expected)                                \
    do {                                                                    \
        double el_ = (elapsed), ex_ = (expected);                           \
        ck_assert_msg(el_ >= ex_ - 0.001 && el_ <= ex_ + test_slack(),      \
                      "elapsed %.4f s, expected %.4f s", el_, ex_);         \
    } while (0)

/* Open fds of this process (each entry of /proc/self/fd but the
   directory's own). */
static inline int test_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static int test_fd_baseline = -1;

/* Checked setup: remember the open fds, for the teardown. */
static inline void green_test_setup(void)
{
    test_fd_baseline = test_open_fds();
}

/* A checked teardown (libuv's MAKE_VALGRIND_HAPPY): the test left no
   live greenlet, no active libgreen watcher and no open fd behind; then
   the hub is freed, so CK_FORK=no runs (Valgrind) do not contaminate
   each other. */
static inline void green_test_teardown(void)
{
    green_hub_stats_t st;
    if (green_hub_stats(&st) == 0) {
        ck_assert_msg(st.alive == 0, "the test left %zu greenlet(s) alive",
                      st.alive);
        ck_assert_msg(st.watchers == 0,
                      "the test left %zu libgreen watcher(s) active",
                      st.watchers);
    }
    green_shutdown();
    if (test_fd_baseline >= 0) {
        int now = test_open_fds();
        ck_assert_msg(now <= test_fd_baseline,
                      "the test left %d fd(s) open", now - test_fd_baseline);
    }
}

/* Counts *(int *)counter up every 5 ms until its sleep fails (killed):
   proof that other greenlets keep running. */
static inline void *test_ticker(void *counter)
{
    int *n = counter;
    while (green_sleep(0.005) == 0)
        (*n)++;
    return NULL;
}

/* Fixture for suites whose tests could hang: a hang fails the test even
   with CK_FORK=no; the teardown also frees the hub. */
static inline void test_alarm_setup(void)
{
    alarm(60);
    green_test_setup();
}

static inline void test_alarm_teardown(void)
{
    alarm(0);
    green_test_teardown();
}

/* Run every suite of one file; exit status for Automake. */
#define GREEN_TEST_MAIN(suite_fn)                                           \
    int main(void)                                                          \
    {                                                                       \
        SRunner *sr = srunner_create(suite_fn());                           \
        srunner_run_all(sr, CK_ENV);                                        \
        int failed = srunner_ntests_failed(sr);                             \
        srunner_free(sr);                                                   \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                        \
    }

#endif
