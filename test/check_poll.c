/* green_poll and green_select: libc results on mixed fds, waits,
   timeouts, kill, close, and the zero-fd sleep form. */
#include <math.h>
#include <sys/select.h>

#include "iotest.h"

struct delayed_write {
    int fd;
    double delay;
};

static void *write_later(void *arg)
{
    struct delayed_write *d = arg;
    green_sleep(d->delay);
    ck_assert_int_eq(green_write(d->fd, "x", 1), 1);
    return NULL;
}

/* Counts how often it ran while the main greenlet polled. */
static int ticks;

static void *ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        ticks++;
        green_sleep(0.005);
    }
    return NULL;
}

/******************************************************************************/
/*  green_poll                                                                */
/******************************************************************************/

START_TEST(poll_results_match_libc_on_mixed_fds)
{
    int a[2], b[2], p[2];
    test_socketpair(a);
    test_socketpair(b);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(a[1], "x", 1), 1);
    close(b[1]); /* b[0]: hang-up */
    struct pollfd mine[6] = {
        {a[0], POLLIN, 0},          /* readable */
        {a[1], POLLIN, 0},          /* not readable */
        {a[1], POLLOUT, 0},         /* writable */
        {p[0], POLLIN, 0},          /* empty pipe */
        {-1, POLLIN, 0},            /* ignored */
        {b[0], POLLIN | POLLOUT, 0} /* peer gone */
    };
    struct pollfd libc[6];
    memcpy(libc, mine, sizeof mine);
    int want = poll(libc, 6, 0);
    ck_assert_int_eq(green_poll(mine, 6, 1000), want);
    ck_assert_int_eq(want, 3);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(mine[i].revents == libc[i].revents,
                      "fd %d: revents %#x, libc %#x", mine[i].fd,
                      mine[i].revents, libc[i].revents);
    green_close(a[0]);
    green_close(a[1]);
    green_close(b[0]);
    green_close(p[0]);
    green_close(p[1]);
}
END_TEST

START_TEST(poll_waits_cooperatively_until_ready)
{
    int sv[2], sv2[2];
    test_socketpair(sv);
    test_socketpair(sv2);
    struct delayed_write d = {sv[1], 0.05};
    ticks = 0;
    green_t *g[2] = {green_spawn(write_later, &d), green_spawn(ticker, NULL)};
    struct pollfd pfd[2] = {{sv2[0], POLLIN, 0}, {sv[0], POLLIN, 0}};
    double t0 = test_now();
    ck_assert_int_eq(green_poll(pfd, 2, -1), 1);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert_int_eq(pfd[0].revents, 0);
    ck_assert_int_eq(pfd[1].revents, POLLIN);
    /* Others ran while we polled (all 5 ticks on an idle machine). */
    ck_assert_int_ge(ticks, 2);
    green_joinall(g, 2, -1);
    green_release(g[0]);
    green_release(g[1]);
    green_close(sv[0]);
    green_close(sv[1]);
    green_close(sv2[0]);
    green_close(sv2[1]);
}
END_TEST

START_TEST(poll_timeout_and_zero_timeout)
{
    int sv[2];
    test_socketpair(sv);
    struct pollfd pfd = {sv[0], POLLIN, 0};
    double t0 = test_now();
    ck_assert_int_eq(green_poll(&pfd, 1, 50), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    t0 = test_now();
    ck_assert_int_eq(green_poll(&pfd, 1, 0), 0);
    ck_assert(test_now() - t0 < 0.01 + test_slack());
    /* No fds at all: a plain sleep. */
    t0 = test_now();
    ck_assert_int_eq(green_poll(NULL, 0, 30), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.03);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(poll_reports_invalid_fd_as_POLLNVAL)
{
    /* The hub (and its epoll fd) first, so p[0] stays unused. */
    ck_assert_ptr_nonnull(green_hub_loop());
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    struct pollfd pfd[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    ck_assert_int_eq(green_poll(pfd, 2, 1000), 2);
    ck_assert_int_eq(pfd[0].revents, POLLNVAL);
    ck_assert_int_eq(pfd[1].revents, POLLOUT | POLLERR); /* no reader */
    GREEN_ASSERT_ERRNO(green_poll(NULL, 1, 0), EFAULT);
    green_close(p[1]);
}
END_TEST

struct poller {
    struct pollfd pfd;
    int rc;
    int err;
};

static void *poll_forever(void *arg)
{
    struct poller *p = arg;
    errno = 0;
    p->rc = green_poll(&p->pfd, 1, -1);
    p->err = errno;
    return NULL;
}

START_TEST(poll_killed_is_ECANCELED_and_fd_reusable)
{
    int sv[2];
    test_socketpair(sv);
    struct poller p = {{sv[0], POLLIN, 0}, 0, 0};
    green_t *g = green_spawn(poll_forever, &p);
    green_yield();
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(p.rc, -1);
    ck_assert_int_eq(p.err, ECANCELED);
    green_release(g);
    struct delayed_write d = {sv[1], 0.01};
    g = green_spawn(write_later, &d);
    struct pollfd pfd = {sv[0], POLLIN, 0};
    ck_assert_int_eq(green_poll(&pfd, 1, 5000), 1);
    green_join(g, -1);
    green_release(g);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(poll_under_green_timeout_is_ETIMEDOUT)
{
    int sv[2];
    test_socketpair(sv);
    struct pollfd pfd = {sv[0], POLLIN, 0};
    green_timeout_t *t = green_timeout_start(0.03);
    GREEN_ASSERT_ERRNO(green_poll(&pfd, 1, 5000), ETIMEDOUT);
    green_timeout_cancel(t);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

struct closer {
    int fd;
};

static void *close_soon(void *arg)
{
    struct closer *c = arg;
    green_sleep(0.02);
    green_close(c->fd);
    return NULL;
}

START_TEST(poll_sees_green_close_as_POLLNVAL)
{
    int sv[2];
    test_socketpair(sv);
    struct closer c = {sv[0]};
    green_t *g = green_spawn(close_soon, &c);
    struct pollfd pfd = {sv[0], POLLIN, 0};
    ck_assert_int_eq(green_poll(&pfd, 1, 5000), 1);
    ck_assert_int_eq(pfd.revents, POLLNVAL);
    green_join(g, -1);
    green_release(g);
    green_close(sv[1]);
}
END_TEST

START_TEST(poll_many_fds)
{
    enum { N = 40 };
    int sv[N][2];
    struct pollfd pfd[N];
    for (int i = 0; i < N; i++) {
        test_socketpair(sv[i]);
        pfd[i].fd = sv[i][0];
        pfd[i].events = POLLIN;
    }
    struct delayed_write d = {sv[N - 3][1], 0.02};
    green_t *g = green_spawn(write_later, &d);
    ck_assert_int_eq(green_poll(pfd, N, 5000), 1);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pfd[i].revents, i == N - 3 ? POLLIN : 0);
    green_join(g, -1);
    green_release(g);
    for (int i = 0; i < N; i++) {
        green_close(sv[i][0]);
        green_close(sv[i][1]);
    }
}
END_TEST

/******************************************************************************/
/*  green_select                                                              */
/******************************************************************************/

START_TEST(select_results_match_libc_on_mixed_fds)
{
    int a[2], b[2];
    test_socketpair(a);
    test_socketpair(b);
    ck_assert_int_eq(write(a[1], "x", 1), 1);
    int nfds = (a[0] > b[0] ? a[0] : b[0]) + 1;
    if (a[1] + 1 > nfds)
        nfds = a[1] + 1;
    fd_set r, w, lr, lw;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(a[0], &r);
    FD_SET(b[0], &r);
    FD_SET(a[1], &w);
    lr = r;
    lw = w;
    struct timeval zero = {0, 0}, tv = {1, 0};
    int want = select(nfds, &lr, &lw, NULL, &zero);
    ck_assert_int_eq(want, 2);
    ck_assert_int_eq(green_select(nfds, &r, &w, NULL, &tv), want);
    ck_assert(FD_ISSET(a[0], &r));
    ck_assert(!FD_ISSET(b[0], &r));
    ck_assert(FD_ISSET(a[1], &w));
    for (int fd = 0; fd < nfds; fd++) {
        ck_assert_int_eq(!!FD_ISSET(fd, &r), !!FD_ISSET(fd, &lr));
        ck_assert_int_eq(!!FD_ISSET(fd, &w), !!FD_ISSET(fd, &lw));
    }
    green_close(a[0]);
    green_close(a[1]);
    green_close(b[0]);
    green_close(b[1]);
}
END_TEST

START_TEST(select_waits_until_readable)
{
    int sv[2];
    test_socketpair(sv);
    struct delayed_write d = {sv[1], 0.04};
    green_t *g = green_spawn(write_later, &d);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(sv[0], &r);
    double t0 = test_now();
    ck_assert_int_eq(green_select(sv[0] + 1, &r, NULL, NULL, NULL), 1);
    GREEN_ASSERT_TIME(test_now() - t0, 0.04);
    ck_assert(FD_ISSET(sv[0], &r));
    green_join(g, -1);
    green_release(g);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(select_timeout_clears_sets_and_updates_tv)
{
    int sv[2];
    test_socketpair(sv);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(sv[0], &r);
    struct timeval tv = {0, 50000};
    double t0 = test_now();
    ck_assert_int_eq(green_select(sv[0] + 1, &r, NULL, NULL, &tv), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert(!FD_ISSET(sv[0], &r));
    ck_assert(tv.tv_sec == 0 && tv.tv_usec == 0);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

/* The tutorial's form: select(0, NULL, NULL, NULL, &tv) as a sleep, in
   two greenlets at once: both done after about one period. */
static void *select_sleep(void *arg)
{
    (void)arg;
    struct timeval tv = {0, 100000};
    ck_assert_int_eq(green_select(0, NULL, NULL, NULL, &tv), 0);
    return NULL;
}

START_TEST(select_zero_fds_sleeps_cooperatively)
{
    double t0 = test_now();
    green_t *g[2] = {green_spawn(select_sleep, NULL),
                     green_spawn(select_sleep, NULL)};
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    green_release(g[0]);
    green_release(g[1]);
}
END_TEST

START_TEST(select_errors)
{
    struct timeval bad = {0, 1000000}, neg = {-1, 0};
    GREEN_ASSERT_ERRNO(green_select(-1, NULL, NULL, NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_select(0, NULL, NULL, NULL, &bad), EINVAL);
    GREEN_ASSERT_ERRNO(green_select(0, NULL, NULL, NULL, &neg), EINVAL);
    /* The hub (and its epoll fd) first, so p[0] stays unused. */
    ck_assert_ptr_nonnull(green_hub_loop());
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {1, 0};
    GREEN_ASSERT_ERRNO(green_select(p[0] + 1, &r, NULL, NULL, &tv), EBADF);
    green_close(p[1]);
}
END_TEST

static void *select_forever(void *arg)
{
    int *err = arg;
    errno = 0;
    int rc = green_select(0, NULL, NULL, NULL, NULL);
    *err = rc < 0 ? errno : 0;
    return NULL;
}

START_TEST(select_killed_is_ECANCELED)
{
    int err = -1;
    green_t *g = green_spawn(select_forever, &err);
    green_yield();
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(err, ECANCELED);
    green_release(g);
}
END_TEST

/******************************************************************************/
/*  Close and reuse, large fd sets                                            */
/******************************************************************************/

/* Closes fd A with green_close, then makes a new socket take number A
   and gives it data: a poller still looking at "A" must not take the
   new socket's readiness for the old one's. */
struct reuser {
    int fd;       /* A */
    int peer[2];  /* the new pair; peer[0] == A afterwards */
};

static void *close_and_reuse(void *arg)
{
    struct reuser *r = arg;
    green_sleep(0.02);
    ck_assert_int_eq(green_close(r->fd), 0);
    test_socketpair(r->peer);
    ck_assert_int_eq(r->peer[0], r->fd); /* the lowest free number */
    ck_assert_int_eq(write(r->peer[1], "data", 4), 4);
    return NULL;
}

/* Issue 11 item 9: poll reports POLLNVAL, select EBADF. */
START_TEST(poll_and_select_see_close_and_reuse_as_invalid)
{
    alarm(10);
    for (int use_select = 0; use_select < 2; use_select++) {
        ck_assert_ptr_nonnull(green_hub_loop());
        int sv[2];
        test_socketpair(sv);
        /* The new pair's first fd must get sv[0]'s number: no lower
           hole may be open. */
        struct reuser r = {sv[0], {-1, -1}};
        green_t *g = green_spawn(close_and_reuse, &r);
        if (!use_select) {
            struct pollfd p = {sv[0], POLLIN, 0};
            ck_assert_int_eq(green_poll(&p, 1, 5000), 1);
            ck_assert_int_eq(p.revents, POLLNVAL);
        } else {
            fd_set rs;
            FD_ZERO(&rs);
            FD_SET(sv[0], &rs);
            struct timeval tv = {5, 0};
            GREEN_ASSERT_ERRNO(green_select(sv[0] + 1, &rs, NULL, NULL, &tv),
                               EBADF);
        }
        ck_assert_int_eq(green_join(g, -1), 0);
        green_release(g);
        /* The new socket's data is still there for its owner. */
        char buf[8];
        ck_assert_int_eq(green_read(r.peer[0], buf, sizeof buf), 4);
        green_close(r.peer[0]);
        green_close(r.peer[1]);
        green_close(sv[1]);
    }
    alarm(0);
}
END_TEST

/* Issue 11 item 22: nfds above FD_SETSIZE with sets the caller sized
   for nfds bits, as libc allows: ready at once, and after a wait. */
START_TEST(select_above_FD_SETSIZE)
{
    enum { HIGH = FD_SETSIZE + 476 }; /* 1500 */
    if (!test_want_fds(HIGH + 16)) {
        fprintf(stderr, "select_above_FD_SETSIZE: RLIMIT_NOFILE too low\n");
        return;
    }
    alarm(10);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(dup2(p[0], HIGH), HIGH);
    close(p[0]);
    size_t words = (HIGH + 1 + 8 * sizeof(long) - 1) / (8 * sizeof(long));
    unsigned long *set = calloc(words, sizeof *set);
    ck_assert_ptr_nonnull(set);
    const unsigned long bit = 1UL << (HIGH % (8 * sizeof(long)));
    unsigned long *word = &set[HIGH / (8 * sizeof(long))];
    struct timeval tv = {0, 0};

    /* Not ready: a zero timeout clears the bit. */
    *word = bit;
    ck_assert_int_eq(green_select(HIGH + 1, (fd_set *)set, NULL, NULL, &tv),
                     0);
    ck_assert(!(*word & bit));
    /* Becomes ready while we wait. */
    struct delayed_write d = {p[1], 0.02};
    green_t *g = green_spawn(write_later, &d);
    *word = bit;
    tv.tv_sec = 5;
    ck_assert_int_eq(green_select(HIGH + 1, (fd_set *)set, NULL, NULL, &tv),
                     1);
    ck_assert(*word & bit);
    green_join(g, -1);
    green_release(g);
    free(set);
    green_close(HIGH);
    green_close(p[1]);
    alarm(0);
}
END_TEST

static Suite *poll_suite(void)
{
    Suite *s = suite_create("poll");
    TCase *tc = tcase_create("poll");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, poll_results_match_libc_on_mixed_fds);
    tcase_add_test(tc, poll_waits_cooperatively_until_ready);
    tcase_add_test(tc, poll_timeout_and_zero_timeout);
    tcase_add_test(tc, poll_reports_invalid_fd_as_POLLNVAL);
    tcase_add_test(tc, poll_killed_is_ECANCELED_and_fd_reusable);
    tcase_add_test(tc, poll_under_green_timeout_is_ETIMEDOUT);
    tcase_add_test(tc, poll_sees_green_close_as_POLLNVAL);
    tcase_add_test(tc, poll_many_fds);
    suite_add_tcase(s, tc);

    tc = tcase_create("select");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, select_results_match_libc_on_mixed_fds);
    tcase_add_test(tc, select_waits_until_readable);
    tcase_add_test(tc, select_timeout_clears_sets_and_updates_tv);
    tcase_add_test(tc, select_zero_fds_sleeps_cooperatively);
    tcase_add_test(tc, select_errors);
    tcase_add_test(tc, select_killed_is_ECANCELED);
    suite_add_tcase(s, tc);

    tc = tcase_create("reuse");
    tcase_add_checked_fixture(tc, NULL, green_test_teardown);
    tcase_add_test(tc, poll_and_select_see_close_and_reuse_as_invalid);
    tcase_add_test(tc, select_above_FD_SETSIZE);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(poll_suite)
