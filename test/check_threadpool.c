/* The threadpool (green_threadpool_call, green_threadpool_set_size) and
   green_getaddrinfo. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"

static void *job_double(void *a)
{
    return (void *)((intptr_t)a * 2);
}

/* Counts itself in `started`, sleeps a microseconds, then counts itself
   in `finished`. */
static atomic_int started, finished;
static void *job_sleep(void *a)
{
    atomic_fetch_add(&started, 1);
    usleep((useconds_t)(intptr_t)a);
    atomic_fetch_add(&finished, 1);
    return a;
}

/* Runs until `gate` opens (bounded), like job_sleep otherwise. */
static atomic_int gate;
static void *job_gate(void *a)
{
    atomic_fetch_add(&started, 1);
    for (int i = 0; i < 10000 && !atomic_load(&gate); i++)
        usleep(1000);
    atomic_fetch_add(&finished, 1);
    return a;
}

/* Let the hub run until n jobs have started in workers (a loaded machine
   may take a while to schedule a new worker thread). */
static void wait_started(int n)
{
    double deadline = test_now() + 10;
    while (atomic_load(&started) < n && test_now() < deadline)
        ck_assert_int_eq(green_sleep(0.001), 0);
    ck_assert_int_ge(atomic_load(&started), n);
}

/******************************************************************************/
/*  Results                                                                   */
/******************************************************************************/

START_TEST(call_returns_fn_result)
{
    void *r = NULL;
    ck_assert_int_eq(green_threadpool_call(job_double, (void *)21, &r), 0);
    ck_assert_ptr_eq(r, (void *)42);
    /* result may be NULL: the value is dropped. */
    ck_assert_int_eq(green_threadpool_call(job_double, (void *)1, NULL), 0);
}
END_TEST

static void *job_thread_info(void *a)
{
    int *out = a;
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    out[0] = sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGINT);
    out[1] = !sigismember(&cur, SIGSEGV);
    return (void *)pthread_self();
}

START_TEST(call_runs_in_a_worker_with_signals_blocked)
{
    int info[2] = {0, 0};
    void *tid = NULL;
    ck_assert_int_eq(green_threadpool_call(job_thread_info, info, &tid), 0);
    ck_assert_msg((pthread_t)tid != pthread_self(), "ran in the hub thread");
    ck_assert_msg(info[0], "async signals not blocked in the worker");
    ck_assert_msg(info[1], "SIGSEGV blocked in the worker");
}
END_TEST

START_TEST(many_sequential_calls)
{
    for (intptr_t i = 0; i < 2000; i++) {
        void *r = NULL;
        ck_assert_int_eq(green_threadpool_call(job_double, (void *)i, &r), 0);
        ck_assert_ptr_eq(r, (void *)(i * 2));
    }
}
END_TEST

static void *many_caller(void *a)
{
    intptr_t base = (intptr_t)a;
    for (intptr_t i = 0; i < 10; i++) {
        void *r = NULL;
        if (green_threadpool_call(job_double, (void *)(base + i), &r) != 0 ||
            r != (void *)((base + i) * 2))
            return (void *)1;
    }
    return NULL;
}

START_TEST(many_concurrent_callers)
{
    green_t *g[200];
    for (intptr_t i = 0; i < 200; i++)
        ck_assert_ptr_nonnull(g[i] = green_spawn(many_caller,
                                                 (void *)(i * 1000)));
    ck_assert_int_eq(green_joinall(g, 200, 30), 0);
    for (int i = 0; i < 200; i++) {
        ck_assert_ptr_null(green_value(g[i]));
        green_release(g[i]);
    }
}
END_TEST

/******************************************************************************/
/*  Concurrency                                                               */
/******************************************************************************/

static void *sleeper_caller(void *a)
{
    return (void *)(intptr_t)green_threadpool_call(job_sleep, a, NULL);
}

START_TEST(ten_jobs_run_in_parallel)
{
    /* Default size 10, like gevent: 10 x 0.2 s take about 0.2 s. */
    green_t *g[10];
    double t0 = test_now();
    for (int i = 0; i < 10; i++)
        g[i] = green_spawn(sleeper_caller, (void *)(intptr_t)200000);
    ck_assert_int_eq(green_joinall(g, 10, 10), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.2);
    for (int i = 0; i < 10; i++) {
        ck_assert_ptr_null(green_value(g[i]));
        green_release(g[i]);
    }
    ck_assert_int_eq(atomic_load(&finished), 10);
}
END_TEST

START_TEST(hundred_jobs_share_ten_workers)
{
    /* 100 x 0.05 s over 10 workers: about 0.5 s, not 5 s. */
    green_t *g[100];
    double t0 = test_now();
    for (int i = 0; i < 100; i++)
        g[i] = green_spawn(sleeper_caller, (void *)(intptr_t)50000);
    ck_assert_int_eq(green_joinall(g, 100, 30), 0);
    double el = test_now() - t0;
    ck_assert_msg(el >= 0.5 - 0.001 && el < 0.5 + 4 * test_slack(),
                  "elapsed %.3f", el);
    for (int i = 0; i < 100; i++)
        green_release(g[i]);
}
END_TEST

static int ticks;
static void *ticker(void *a)
{
    (void)a;
    for (;;) {
        if (green_sleep(0.01) != 0)
            return NULL;
        ticks++;
    }
}

START_TEST(other_greenlets_run_while_waiting)
{
    green_t *t = green_spawn(ticker, NULL);
    ck_assert_int_eq(green_threadpool_call(job_sleep, (void *)200000, NULL),
                     0);
    ck_assert_msg(ticks >= 5, "only %d ticks during a 0.2 s call", ticks);
    ck_assert_int_eq(green_kill(t, 1), 0);
    green_release(t);
}
END_TEST

START_TEST(set_size_limits_parallelism)
{
    ck_assert_int_eq(green_threadpool_set_size(2), 0);
    green_t *g[4];
    double t0 = test_now();
    for (int i = 0; i < 4; i++)
        g[i] = green_spawn(sleeper_caller, (void *)(intptr_t)100000);
    ck_assert_int_eq(green_joinall(g, 4, 10), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.2);
    for (int i = 0; i < 4; i++)
        green_release(g[i]);
    /* Grow, then shrink back to one worker: jobs run one at a time. */
    ck_assert_int_eq(green_threadpool_set_size(10), 0);
    ck_assert_int_eq(green_threadpool_call(job_double, NULL, NULL), 0);
    ck_assert_int_eq(green_threadpool_set_size(1), 0);
    t0 = test_now();
    for (int i = 0; i < 3; i++)
        g[i] = green_spawn(sleeper_caller, (void *)(intptr_t)50000);
    ck_assert_int_eq(green_joinall(g, 3, 10), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.15);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
}
END_TEST

/******************************************************************************/
/*  Kill, timeout, shutdown                                                   */
/******************************************************************************/

struct kill_rec {
    int rc, err, rc2, err2;
    double returned_at;
};

static void *killed_caller(void *a)
{
    struct kill_rec *k = a;
    errno = 0;
    k->rc = green_threadpool_call(job_sleep, (void *)(intptr_t)300000, NULL);
    k->err = errno;
    k->returned_at = test_now();
    /* Sticky cancel: the next call fails at once. */
    k->rc2 = green_threadpool_call(job_double, NULL, NULL);
    k->err2 = errno;
    return NULL;
}

START_TEST(kill_while_waiting_returns_ecanceled_job_finishes)
{
    struct kill_rec k = {0};
    green_t *g = green_spawn(killed_caller, &k);
    wait_started(1); /* running in a worker, not just queued */
    double t0 = test_now();
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(k.rc, -1);
    ck_assert_int_eq(k.err, ECANCELED);
    ck_assert_int_eq(k.rc2, -1);
    ck_assert_int_eq(k.err2, ECANCELED);
    ck_assert_msg(k.returned_at - t0 < test_prompt(), "kill took %.3f s",
                  k.returned_at - t0);
    ck_assert_int_eq(atomic_load(&finished), 0); /* still running */
    /* green_run waits for the orphaned job (its watcher keeps the loop
       alive) and frees it; it does not return early. */
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq(atomic_load(&finished), 1);
    green_release(g);
}
END_TEST

static void *queued_caller(void *a)
{
    (void)a;
    return (void *)(intptr_t)green_threadpool_call(job_sleep,
                                                   (void *)(intptr_t)1000,
                                                   NULL);
}

static void *gate_caller(void *a)
{
    return (void *)(intptr_t)green_threadpool_call(job_gate, a, NULL);
}

START_TEST(kill_before_a_worker_took_it_never_runs_it)
{
    /* One worker, held by a gated job: the second job stays queued. */
    ck_assert_int_eq(green_threadpool_set_size(1), 0);
    green_t *busy = green_spawn(gate_caller, NULL);
    green_t *queued = green_spawn(queued_caller, NULL);
    wait_started(1);
    ck_assert_int_eq(green_kill(queued, 1), 0);
    ck_assert_int_eq(green_error(queued), ECANCELED);
    ck_assert_ptr_eq(green_value(queued), (void *)(intptr_t)-1);
    atomic_store(&gate, 1);
    ck_assert_int_eq(green_join(busy, 15), 0);
    ck_assert_int_eq(green_run(), 0);
    ck_assert_int_eq(atomic_load(&started), 1); /* only the gated job */
    ck_assert_int_eq(atomic_load(&finished), 1);
    green_release(busy);
    green_release(queued);
}
END_TEST

START_TEST(green_timeout_expires_during_call)
{
    green_timeout_t *t = green_timeout_start(0.05);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_threadpool_call(job_sleep, (void *)200000, NULL),
                       ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert(green_timeout_expired(t));
    green_timeout_cancel(t);
    /* Either a worker had taken the job (it runs on, orphaned, and
       finishes before green_run returns) or it was still queued (then it
       was withdrawn and never runs): never half of each. */
    ck_assert_int_eq(green_run(), 0);
    int s = atomic_load(&started), f = atomic_load(&finished);
    ck_assert_msg((s == 1 && f == 1) || (s == 0 && f == 0),
                  "started %d finished %d", s, f);
}
END_TEST

START_TEST(green_run_returns_promptly_after_calls)
{
    ck_assert_int_eq(green_threadpool_call(job_double, NULL, NULL), 0);
    /* The idle pool's watcher does not keep the loop alive. */
    double t0 = test_now();
    ck_assert_int_eq(green_run(), 0);
    ck_assert_msg(test_now() - t0 < test_prompt(), "green_run hung");
}
END_TEST

START_TEST(shutdown_joins_workers_and_frees_orphans)
{
    int before = test_thread_count();
    struct kill_rec k = {0};
    green_t *g = green_spawn(killed_caller, &k);
    green_t *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = green_spawn(sleeper_caller, (void *)(intptr_t)1000);
    wait_started(4);
    if (!GREEN_TEST_SANITIZED) /* TSan adds a thread of its own */
        ck_assert_int_eq(test_thread_count(), before + 4);
    ck_assert_int_eq(green_kill(g, 1), 0);
    green_release(g);
    for (int i = 0; i < 3; i++)
        green_release(s[i]);
    /* The orphaned 0.3 s job is still running: shutdown waits for it. */
    green_shutdown();
    ck_assert_int_eq(atomic_load(&finished), 4);
    if (!GREEN_TEST_SANITIZED) /* TSan adds a thread of its own */
        ck_assert_int_eq(test_thread_count(), before);
}
END_TEST

START_TEST(worker_fds_are_close_on_exec)
{
    /* Whatever fds the pool and its wakeup add are close-on-exec. */
    int open_before[256] = {0};
    for (int fd = 0; fd < 256; fd++)
        open_before[fd] = fcntl(fd, F_GETFD) != -1;
    ck_assert_int_eq(green_threadpool_call(job_double, NULL, NULL), 0);
    for (int fd = 3; fd < 256; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl != -1 && !open_before[fd])
            ck_assert_msg(fl & FD_CLOEXEC, "fd %d lacks FD_CLOEXEC", fd);
    }
}
END_TEST

/******************************************************************************/
/*  Errors                                                                    */
/******************************************************************************/

static int link_rc, link_err;
static void call_in_link(green_t *g, void *arg)
{
    (void)g;
    (void)arg;
    errno = 0;
    link_rc = green_threadpool_call(job_double, NULL, NULL);
    link_err = errno;
}

START_TEST(bad_args_and_hub_context)
{
    GREEN_ASSERT_ERRNO(green_threadpool_call(NULL, NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_threadpool_set_size(0), EINVAL);
    GREEN_ASSERT_ERRNO(green_threadpool_set_size((size_t)1 << 40), EINVAL);
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, call_in_link, NULL), 0);
    ck_assert_int_eq(green_join(g, 1), 0);
    ck_assert_int_eq(green_sleep(0.01), 0);
    ck_assert_int_eq(link_rc, -1);
    ck_assert_int_eq(link_err, EDEADLK);
    green_release(g);
}
END_TEST

/******************************************************************************/
/*  green_getaddrinfo                                                         */
/******************************************************************************/

START_TEST(getaddrinfo_numeric)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    ck_assert_int_eq(green_getaddrinfo("127.0.0.1", "80", &hints, &res), 0);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(res->ai_family, AF_INET);
    struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
    ck_assert_int_eq(ntohs(sin->sin_port), 80);
    ck_assert_int_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    freeaddrinfo(res);
    /* IPv6 literal, no hints. */
    res = NULL;
    ck_assert_int_eq(green_getaddrinfo("::1", NULL, NULL, &res), 0);
    ck_assert_int_eq(res->ai_family, AF_INET6);
    freeaddrinfo(res);
}
END_TEST

START_TEST(getaddrinfo_localhost)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    ck_assert_int_eq(green_getaddrinfo("localhost", "http", &hints, &res), 0);
    int loopback = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)a->ai_addr;
            loopback |= ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK &&
                        ntohs(sin->sin_port) == 80;
        } else if (a->ai_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a->ai_addr;
            loopback |= IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
        }
    }
    ck_assert_msg(loopback, "localhost did not resolve to loopback");
    freeaddrinfo(res);
}
END_TEST

START_TEST(getaddrinfo_errors_unchanged)
{
    struct addrinfo hints = {0}, *res = NULL;
    /* Decided without DNS: a name where a number is required. */
    hints.ai_flags = AI_NUMERICHOST;
    ck_assert_int_eq(green_getaddrinfo("localhost", NULL, &hints, &res),
                     EAI_NONAME);
    ck_assert_int_eq(green_getaddrinfo(NULL, NULL, NULL, &res), EAI_NONAME);
    /* RFC 2606 .invalid never resolves (EAI_AGAIN only where the resolver
       is unreachable, which this machine's is not expected to be). */
    int rc = green_getaddrinfo("no-such-host.invalid", NULL, NULL, &res);
    ck_assert_msg(rc == EAI_NONAME || rc == EAI_AGAIN, "rc=%d (%s)", rc,
                  gai_strerror(rc));
    errno = 0;
    ck_assert_int_eq(green_getaddrinfo("localhost", NULL, NULL, NULL),
                     EAI_SYSTEM);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static int gai_rc, gai_errno;
static void *gai_caller(void *a)
{
    struct addrinfo *res = NULL;
    (void)a;
    errno = 0;
    gai_rc = green_getaddrinfo("localhost", NULL, NULL, &res);
    gai_errno = errno;
    if (gai_rc == 0)
        freeaddrinfo(res);
    return NULL;
}

START_TEST(getaddrinfo_killed_is_eai_system_ecanceled)
{
    /* One worker, kept busy: the lookup waits in the queue. */
    ck_assert_int_eq(green_threadpool_set_size(1), 0);
    green_t *busy = green_spawn(sleeper_caller, (void *)(intptr_t)100000);
    green_t *g = green_spawn(gai_caller, NULL);
    ck_assert_int_eq(green_sleep(0.02), 0);
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(gai_rc, EAI_SYSTEM);
    ck_assert_int_eq(gai_errno, ECANCELED);
    ck_assert_int_eq(green_join(busy, 5), 0);
    green_release(busy);
    green_release(g);
    /* Killed while running in a worker: the result is freed later. */
    ck_assert_int_eq(green_threadpool_set_size(4), 0);
    g = green_spawn(gai_caller, NULL);
    ck_assert_int_eq(green_yield(), 0);
    ck_assert_int_eq(green_kill(g, 1), 0);
    green_release(g);
    ck_assert_int_eq(green_run(), 0);
}
END_TEST

static int gai_link_rc, gai_link_errno;
static void gai_in_link(green_t *g, void *arg)
{
    struct addrinfo *res = NULL;
    (void)g;
    (void)arg;
    errno = 0;
    gai_link_rc = green_getaddrinfo("127.0.0.1", NULL, NULL, &res);
    gai_link_errno = errno;
}

START_TEST(getaddrinfo_in_hub_is_edeadlk)
{
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, gai_in_link, NULL), 0);
    ck_assert_int_eq(green_join(g, 1), 0);
    ck_assert_int_eq(green_sleep(0.01), 0);
    ck_assert_int_eq(gai_link_rc, EAI_SYSTEM);
    ck_assert_int_eq(gai_link_errno, EDEADLK);
    green_release(g);
}
END_TEST

START_TEST(getaddrinfo_concurrent)
{
    green_t *g[20];
    for (int i = 0; i < 20; i++)
        g[i] = green_spawn(gai_caller, NULL);
    ck_assert_int_eq(green_joinall(g, 20, 10), 0);
    ck_assert_int_eq(gai_rc, 0);
    for (int i = 0; i < 20; i++)
        green_release(g[i]);
}
END_TEST

static void reset(void)
{
    atomic_store(&finished, 0);
    atomic_store(&started, 0);
    atomic_store(&gate, 0);
    ticks = 0;
    green_test_setup();
}

/* Issue 11 item 17: a job whose caller gave up (timeout) does not keep
   the process alive after main returns: exit() abandons it. */
static void *sleep_5s(void *arg)
{
    sleep(5);
    return arg;
}

START_TEST(abandoned_job_does_not_delay_exit)
{
    double t0 = test_now();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        green_timeout_t *t = green_timeout_start(0.05);
        int rc = green_threadpool_call(sleep_5s, NULL, NULL);
        int err = errno;
        green_timeout_cancel(t);
        exit(rc == -1 && err == ETIMEDOUT ? 0 : 1); /* runs atexit */
    }
    int status = -1;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %d", status);
    ck_assert_msg(test_now() - t0 < 2.5, "exit took %.2f s",
                  test_now() - t0);
}
END_TEST

static Suite *threadpool_suite(void)
{
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("results");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, call_returns_fn_result);
    tcase_add_test(tc, call_runs_in_a_worker_with_signals_blocked);
    tcase_add_test(tc, many_sequential_calls);
    tcase_add_test(tc, many_concurrent_callers);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, ten_jobs_run_in_parallel);
    tcase_add_test(tc, hundred_jobs_share_ten_workers);
    tcase_add_test(tc, other_greenlets_run_while_waiting);
    tcase_add_test(tc, set_size_limits_parallelism);
    suite_add_tcase(s, tc);

    tc = tcase_create("kill");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, kill_while_waiting_returns_ecanceled_job_finishes);
    tcase_add_test(tc, kill_before_a_worker_took_it_never_runs_it);
    tcase_add_test(tc, green_timeout_expires_during_call);
    tcase_add_test(tc, green_run_returns_promptly_after_calls);
    tcase_add_test(tc, shutdown_joins_workers_and_frees_orphans);
    tcase_add_test(tc, worker_fds_are_close_on_exec);
    tcase_add_test(tc, abandoned_job_does_not_delay_exit);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, bad_args_and_hub_context);
    suite_add_tcase(s, tc);

    tc = tcase_create("getaddrinfo");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, getaddrinfo_numeric);
    tcase_add_test(tc, getaddrinfo_localhost);
    tcase_add_test(tc, getaddrinfo_errors_unchanged);
    tcase_add_test(tc, getaddrinfo_killed_is_eai_system_ecanceled);
    tcase_add_test(tc, getaddrinfo_in_hub_is_edeadlk);
    tcase_add_test(tc, getaddrinfo_concurrent);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(threadpool_suite)
