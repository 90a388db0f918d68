/* Diagnostics: the blocked-loop monitor and green_dump. */
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
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

/* Exported (the suite links with -export-dynamic) so that dladdr names
   it in the monitor's backtrace. */
void *diag_busy_loop(void *arg);
void *diag_busy_loop(void *arg)
{
    double until = test_now() + *(double *)arg;
    while (test_now() < until)
        ; /* never yields */
    return NULL;
}
#define busy diag_busy_loop

/* TSan delays signal delivery to points a busy loop may never reach. */
#if defined(__SANITIZE_THREAD__)
#define TEST_BACKTRACES 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_BACKTRACES 0
#endif
#endif
#ifndef TEST_BACKTRACES
#define TEST_BACKTRACES 1
#endif

START_TEST(busy_loop_is_reported_once_with_id_and_name)
{
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
    /* The real duration, not the threshold (issue 11 item 26). */
    double blocked = 0;
    const char *line = strstr(out, "hub blocked for ");
    ck_assert_msg(line && sscanf(line, "hub blocked for %lf", &blocked) == 1,
                  "stderr: %s", out);
    ck_assert_msg(blocked >= 0.45 && blocked <= 0.5 + test_slack(),
                  "reported %.3f s for a 0.5 s busy loop: %s", blocked, out);
    /* One ongoing line, with the blocking function in its backtrace. */
    ck_assert_msg(test_count_substr(out, "blocked the hub for") == 1, "%s",
                  out);
    if (TEST_BACKTRACES)
        ck_assert_msg(strstr(out, "diag_busy_loop"), "stderr: %s", out);
    green_release(g);
}
END_TEST

/* What the callback saw; it runs on the monitor thread. */
struct seen {
    pthread_mutex_t mu;
    int ongoing, ended;
    double ongoing_s, ended_s, threshold;
    uint64_t id;
    char name[32];
    int frames_named_busy;
};

static void on_report(const green_monitor_report_t *r, void *arg)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->mu);
    if (r->ongoing) {
        s->ongoing++;
        s->ongoing_s = r->seconds;
        for (int i = 0; i < r->nframes; i++) {
            Dl_info info;
            if (dladdr(r->frames[i], &info) && info.dli_sname &&
                strcmp(info.dli_sname, "diag_busy_loop") == 0)
                s->frames_named_busy = 1;
        }
    } else {
        s->ended++;
        s->ended_s = r->seconds;
    }
    s->threshold = r->threshold;
    s->id = r->id;
    snprintf(s->name, sizeof s->name, "%s", r->name);
    pthread_mutex_unlock(&s->mu);
}

START_TEST(callback_gets_the_episode_instead_of_stderr)
{
    struct seen seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
    FILE *tmp;
    int saved = capture_stderr(&tmp);
    green_monitor_set_callback(on_report, &seen);
    ck_assert_int_eq(green_monitor_start(0.1), 0);
    double s = 0.5;
    green_attr_t attr = {0, "cb-spinner"};
    green_t *g = green_new(busy, &s, &attr);
    green_start(g);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq(green_sleep(0.05), 0);
    green_monitor_stop();
    green_monitor_set_callback(NULL, NULL);
    char *out = restore_stderr(tmp, saved);
    ck_assert_msg(!strstr(out, "libgreen: monitor"), "stderr: %s", out);
    ck_assert_int_eq(seen.ongoing, 1);
    ck_assert_int_eq(seen.ended, 1);
    ck_assert_msg(seen.ongoing_s > 0.1 && seen.ongoing_s < 0.45,
                  "ongoing at %.3f s", seen.ongoing_s);
    ck_assert_msg(seen.ended_s >= 0.45 && seen.ended_s <= 0.5 + test_slack(),
                  "ended at %.3f s", seen.ended_s);
    ck_assert(seen.threshold == 0.1);
    ck_assert(seen.id == green_id(g));
    ck_assert_str_eq(seen.name, "cb-spinner");
    if (TEST_BACKTRACES)
        ck_assert_msg(seen.frames_named_busy,
                      "no frame of the backtrace is diag_busy_loop");
    green_release(g);
}
END_TEST

/* Issue 11 item 8: the abstime overflowed, the thread spun and stop hung. */
START_TEST(absurd_thresholds_fail_at_once)
{
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_monitor_start(INFINITY), EINVAL);
    GREEN_ASSERT_ERRNO(green_monitor_start(1e300), EINVAL);
    GREEN_ASSERT_ERRNO(green_monitor_start(1e6 * 1.5), EINVAL);
    green_monitor_stop();
    ck_assert_msg(test_now() - t0 < test_prompt(), "%.3f s",
                  test_now() - t0);
}
END_TEST

START_TEST(stop_does_not_hang)
{
    double t0 = test_now();
    ck_assert_int_eq(green_monitor_start(1e6), 0); /* the largest */
    ck_assert_int_eq(green_sleep(0.01), 0);
    green_monitor_stop();
    ck_assert_int_eq(green_monitor_start(0.05), 0);
    ck_assert_int_eq(green_sleep(0.01), 0);
    green_monitor_stop();
    ck_assert_msg(test_now() - t0 < 0.02 + test_prompt(), "%.3f s",
                  test_now() - t0);
}
END_TEST

/* The greenlet that blocks stops the monitor itself: the episode ends
   there, and is reported.  It spins at least 0.2 s and until the
   monitor reported the episode as ongoing (at most 5 s: on a loaded
   machine the monitor thread may get the CPU late). */
static void *spin_then_stop(void *arg)
{
    struct seen *seen = arg;
    double t0 = test_now();
    for (;;) {
        pthread_mutex_lock(&seen->mu);
        int reported = seen->ongoing;
        pthread_mutex_unlock(&seen->mu);
        double t = test_now() - t0;
        if ((reported && t >= 0.2) || t >= 5)
            break;
    }
    green_monitor_stop();
    return NULL;
}

START_TEST(stop_inside_an_episode_reports_its_end)
{
    struct seen seen = {.mu = PTHREAD_MUTEX_INITIALIZER};
    green_monitor_set_callback(on_report, &seen);
    ck_assert_int_eq(green_monitor_start(0.05), 0);
    green_t *g = green_spawn(spin_then_stop, &seen);
    ck_assert_int_eq(green_join(g, -1), 0);
    green_monitor_set_callback(NULL, NULL);
    ck_assert_int_eq(seen.ongoing, 1);
    ck_assert_int_eq(seen.ended, 1);
    ck_assert_msg(seen.ended_s >= 0.15, "%.3f s", seen.ended_s);
    green_release(g);
}
END_TEST

static void *waiter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        green_sleep(0.05);
    return NULL;
}

START_TEST(a_program_that_only_waits_is_never_reported)
{
    FILE *tmp;
    int saved = capture_stderr(&tmp);
    ck_assert_int_eq(green_monitor_start(0.1), 0);
    green_t *g = green_spawn(waiter, NULL);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq(green_sleep(0.5), 0);
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

static void *sleep_long(void *arg)
{
    (void)arg;
    green_sleep(30);
    return NULL;
}

START_TEST(dump_has_the_columns_of_info_greenlets)
{
    green_attr_t attr = {0, "dumped-sleeper"};
    green_t *g = green_new(sleep_long, NULL, &attr);
    green_start(g);
    ck_assert_int_eq(green_sleep(0.1), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    green_dump(f);
    fclose(f);
    ck_assert_msg(strstr(buf, "id name") && strstr(buf, "waiting on") &&
                      strstr(buf, "waited") && strstr(buf, "stack") &&
                      strstr(buf, "used"),
                  "header: %s", buf);
    char want[64];
    snprintf(want, sizeof want, "%" PRIu64 " dumped-sleeper", green_id(g));
    const char *line = strstr(buf, want);
    ck_assert_msg(line, "%s", buf);
    char state[32], what[32], waited[32], size[32], used[32];
    ck_assert_int_eq(sscanf(line + strlen(want), "%31s %31s %31s %31s %31s",
                            state, what, waited, size, used), 5);
    ck_assert_str_eq(state, "waiting");
    ck_assert_str_eq(what, "sleeping");
    double w = atof(waited);
    ck_assert_msg(w >= 0.099 && w < 0.1 + test_slack(), "waited %s", waited);
    ck_assert_str_eq(size, "256K");
    double u = atof(used);
    ck_assert_msg(u > 0 && u < 256, "used %s", used);
    free(buf);
    green_kill(g, -1);
    green_release(g);
}
END_TEST

/* The dump that a signal asks for, written to stderr by the hub. */
static char *dump_after_signal(int signum)
{
    FILE *tmp;
    int saved = capture_stderr(&tmp);
    raise(signum);
    ck_assert_int_eq(green_sleep(0.05), 0); /* the hub polls: it dumps */
    return restore_stderr(tmp, saved);
}

START_TEST(dump_on_signal)
{
    /* The dump pipe is created once and kept for the process's life (a
       late signal must never write into a reused fd): 2 fds. */
    test_fd_baseline += 2;
    green_attr_t attr = {0, "dump-me"};
    green_t *g = green_new(sleep_long, NULL, &attr);
    green_start(g);
    ck_assert_int_eq(green_dump_on_signal(SIGUSR2), 0);
    char *out = dump_after_signal(SIGUSR2);
    ck_assert_msg(strstr(out, "dump-me") && strstr(out, "sleeping") &&
                      strstr(out, "waiting on"),
                  "stderr: %s", out);
    /* Off again: the default disposition is back. */
    ck_assert_int_eq(green_dump_on_signal(0), 0);
    struct sigaction sa;
    sigaction(SIGUSR2, NULL, &sa);
    ck_assert(sa.sa_handler == SIG_DFL);
    green_kill(g, -1);
    green_release(g);
}
END_TEST

START_TEST(dump_signal_from_environment)
{
    /* The dump pipe is created once and kept for the process's life (a
       late signal must never write into a reused fd): 2 fds. */
    test_fd_baseline += 2;
    setenv("GREEN_DUMP_SIGNAL", "SIGUSR1", 1);
    green_attr_t attr = {0, "env-dumped"};
    green_t *g = green_new(sleep_long, NULL, &attr); /* creates the hub */
    unsetenv("GREEN_DUMP_SIGNAL");
    green_start(g);
    char *out = dump_after_signal(SIGUSR1);
    ck_assert_msg(strstr(out, "env-dumped"), "stderr: %s", out);
    green_kill(g, -1);
    green_release(g);
    green_shutdown(); /* restores the disposition */
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    ck_assert(sa.sa_handler == SIG_DFL);
}
END_TEST

static void *dump_from_other_thread(void *arg)
{
    *(int *)arg = green_dump_on_signal(SIGUSR1) == -1 ? errno : 0;
    green_shutdown();
    return NULL;
}

START_TEST(dump_on_signal_errors)
{
    /* The dump pipe is created once and kept for the process's life (a
       late signal must never write into a reused fd): 2 fds. */
    test_fd_baseline += 2;
    GREEN_ASSERT_ERRNO(green_dump_on_signal(-1), EINVAL);
    GREEN_ASSERT_ERRNO(green_dump_on_signal(SIGKILL), EINVAL);
    GREEN_ASSERT_ERRNO(green_dump_on_signal(SIGSEGV), EINVAL);
    GREEN_ASSERT_ERRNO(green_dump_on_signal(SIGURG), EINVAL);
    GREEN_ASSERT_ERRNO(green_dump_on_signal(100000), EINVAL);
    ck_assert_int_eq(green_dump_on_signal(0), 0); /* off: no-op */
    /* One hub per process. */
    ck_assert_int_eq(green_dump_on_signal(SIGUSR2), 0);
    pthread_t t;
    int err = -1;
    pthread_create(&t, NULL, dump_from_other_thread, &err);
    pthread_join(t, NULL);
    ck_assert_int_eq(err, EBUSY);
    ck_assert_int_eq(green_dump_on_signal(0), 0);
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
        tcase_add_test(tc, callback_gets_the_episode_instead_of_stderr);
        tcase_add_test(tc, stop_inside_an_episode_reports_its_end);
    }
    tcase_add_test(tc, absurd_thresholds_fail_at_once);
    tcase_add_test(tc, stop_does_not_hang);
    tcase_add_test(tc, dump_has_the_columns_of_info_greenlets);
    tcase_add_test(tc, dump_on_signal);
    tcase_add_test(tc, dump_signal_from_environment);
    tcase_add_test(tc, dump_on_signal_errors);
    tcase_add_test(tc, monitor_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(diag_suite)
