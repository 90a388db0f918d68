/* Cooperative I/O on fds: read/write family, waits, timeouts, kill,
   green_close, SIGPIPE, partial writes. */
#include <ev.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iotest.h"

/******************************************************************************/
/*  Helpers                                                                   */
/******************************************************************************/

/* A greenlet that reads once from fd and records the outcome. */
struct reader {
    int fd;
    ssize_t rc;
    int err;
    char buf[64];
    double woke; /* test_now() when the call returned */
};

static void *read_once(void *arg)
{
    struct reader *r = arg;
    errno = 0;
    r->rc = green_read(r->fd, r->buf, sizeof r->buf);
    r->err = errno;
    r->woke = test_now();
    return NULL;
}

static void *wait_read_forever(void *arg)
{
    struct reader *r = arg;
    errno = 0;
    r->rc = green_wait_read(r->fd, -1);
    r->err = errno;
    r->woke = test_now();
    return NULL;
}

struct delayed_write {
    int fd;
    double delay;
    const char *data;
};

static void *write_later(void *arg)
{
    struct delayed_write *d = arg;
    green_sleep(d->delay);
    green_write_all(d->fd, d->data, strlen(d->data));
    return NULL;
}

/******************************************************************************/
/*  Reading and writing                                                       */
/******************************************************************************/

struct pingpong {
    int fd;
    int rounds;
    int first; /* 1: sends first */
    int ok;
};

static void *pingpong_side(void *arg)
{
    struct pingpong *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        uint32_t v = 0;
        if (p->first) {
            v = (uint32_t)i;
            if (green_write_all(p->fd, &v, sizeof v) != sizeof v)
                return NULL;
            if (green_read(p->fd, &v, sizeof v) != sizeof v ||
                v != (uint32_t)i + 1000)
                return NULL;
        } else {
            if (green_read(p->fd, &v, sizeof v) != sizeof v ||
                v != (uint32_t)i)
                return NULL;
            v += 1000;
            if (green_write_all(p->fd, &v, sizeof v) != sizeof v)
                return NULL;
        }
    }
    p->ok = 1;
    return NULL;
}

START_TEST(socketpair_ping_pong_between_greenlets)
{
    int sv[2];
    test_socketpair(sv);
    struct pingpong a = {sv[0], 1000, 1, 0}, b = {sv[1], 1000, 0, 0};
    green_t *g[2] = {green_spawn(pingpong_side, &a),
                     green_spawn(pingpong_side, &b)};
    ck_assert_int_eq(green_joinall(g, 2, 10), 0);
    ck_assert(a.ok && b.ok);
    green_release(g[0]);
    green_release(g[1]);
    ck_assert_int_eq(green_close(sv[0]), 0);
    ck_assert_int_eq(green_close(sv[1]), 0);
}
END_TEST

START_TEST(read_parks_only_the_caller)
{
    int sv[2];
    test_socketpair(sv);
    struct reader r = {.fd = sv[0]};
    struct delayed_write d = {sv[1], 0.05, "hello"};
    double t0 = test_now();
    green_t *rg = green_spawn(read_once, &r);
    green_t *wg = green_spawn(write_later, &d);
    /* The main greenlet keeps running while the reader waits. */
    ck_assert_int_eq(green_yield(), 0);
    ck_assert(!green_done(rg));
    ck_assert_int_eq(green_join(rg, 5), 0);
    ck_assert_int_eq(r.rc, 5);
    ck_assert(memcmp(r.buf, "hello", 5) == 0);
    GREEN_ASSERT_TIME(r.woke - t0, 0.05);
    green_join(wg, -1);
    green_release(rg);
    green_release(wg);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(fd_is_made_nonblocking_on_first_use)
{
    int sv[2];
    test_socketpair(sv);
    ck_assert(!test_is_nonblock(sv[0]));
    ck_assert_int_eq(green_write(sv[0], "x", 1), 1);
    ck_assert(test_is_nonblock(sv[0]));
    char c;
    ck_assert_int_eq(green_read(sv[1], &c, 1), 1);
    ck_assert(test_is_nonblock(sv[1]));
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(read_returns_zero_at_eof)
{
    int sv[2];
    test_socketpair(sv);
    struct reader r = {.fd = sv[0]};
    green_t *g = green_spawn(read_once, &r);
    green_yield();
    close(sv[1]);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(r.rc, 0);
    green_release(g);
    green_close(sv[0]);
}
END_TEST

START_TEST(vector_and_socket_calls_match_libc)
{
    int sv[2];
    test_socketpair(sv);
    struct iovec out[2] = {{"ab", 2}, {"cde", 3}};
    ck_assert_int_eq(green_writev(sv[0], out, 2), 5);
    char a[2], b[3];
    struct iovec in[2] = {{a, 2}, {b, 3}};
    ck_assert_int_eq(green_readv(sv[1], in, 2), 5);
    ck_assert(memcmp(a, "ab", 2) == 0 && memcmp(b, "cde", 3) == 0);

    ck_assert_int_eq(green_send(sv[1], "xyz", 3, 0), 3);
    char buf[8];
    ck_assert_int_eq(green_recv(sv[0], buf, sizeof buf, MSG_PEEK), 3);
    ck_assert_int_eq(green_recv(sv[0], buf, sizeof buf, 0), 3);
    ck_assert(memcmp(buf, "xyz", 3) == 0);

    struct iovec iov = {"msg", 3};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ck_assert_int_eq(green_sendmsg(sv[0], &mh, 0), 3);
    char r[4] = {0};
    struct iovec riov = {r, 3};
    mh.msg_iov = &riov;
    ck_assert_int_eq(green_recvmsg(sv[1], &mh, 0), 3);
    ck_assert_str_eq(r, "msg");

    /* MSG_DONTWAIT asks for EAGAIN, which the caller then gets. */
    GREEN_ASSERT_ERRNO(green_recv(sv[1], buf, 1, MSG_DONTWAIT), EAGAIN);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(datagram_sendto_recvfrom)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    ck_assert_int_eq(green_sendto(sv[0], "dgram", 5, 0, NULL, 0), 5);
    char buf[16];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ck_assert_int_eq(green_recvfrom(sv[1], buf, sizeof buf, 0,
                                    (struct sockaddr *)&ss, &len), 5);
    ck_assert(memcmp(buf, "dgram", 5) == 0);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(pipe_read_write)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct reader r = {.fd = p[0]};
    struct delayed_write d = {p[1], 0.02, "pipe"};
    green_t *g[2] = {green_spawn(read_once, &r), green_spawn(write_later, &d)};
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    ck_assert_int_eq(r.rc, 4);
    green_release(g[0]);
    green_release(g[1]);
    green_close(p[0]);
    green_close(p[1]);
}
END_TEST

START_TEST(bad_fds_fail_like_libc)
{
    char c;
    GREEN_ASSERT_ERRNO(green_read(-1, &c, 1), EBADF);
    GREEN_ASSERT_ERRNO(green_write(-1, &c, 1), EBADF);
    GREEN_ASSERT_ERRNO(green_wait_read(-1, 1), EBADF);
    GREEN_ASSERT_ERRNO(green_close(-1), EBADF);
    ck_assert_ptr_nonnull(green_hub_loop()); /* its fds first */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    GREEN_ASSERT_ERRNO(green_read(p[0], &c, 1), EBADF);
    GREEN_ASSERT_ERRNO(green_close(p[1]), EBADF);
    /* Waiting on an fd that is not open wakes with EBADF (libev finds
       it invalid), it does not hang. */
    alarm(10);
    GREEN_ASSERT_ERRNO(green_wait_read(p[0], 5), EBADF);
    alarm(0);
}
END_TEST


/******************************************************************************/
/*  Partial writes                                                            */
/******************************************************************************/

enum { BIG = 1 << 20 };

struct bulk {
    int fd;
    unsigned char *buf;
    ssize_t rc;
    int err;
};

static void *bulk_write(void *arg)
{
    struct bulk *b = arg;
    b->rc = green_write_all(b->fd, b->buf, BIG);
    b->err = errno;
    return NULL;
}

/* Reads everything in small pieces, sleeping now and then. */
static void *bulk_read_slowly(void *arg)
{
    struct bulk *b = arg;
    size_t got = 0;
    int i = 0;
    while (got < BIG) {
        size_t want = BIG - got < 3000 ? BIG - got : 3000;
        ssize_t n = green_read(b->fd, b->buf + got, want);
        if (n <= 0) {
            b->rc = -1;
            b->err = errno;
            return NULL;
        }
        got += (size_t)n;
        if (++i % 16 == 0)
            green_sleep(0.001);
    }
    b->rc = (ssize_t)got;
    return NULL;
}

/* A number the caller closed before the hub existed: the hub's epoll fd
   takes it.  Using it must fail like a closed fd (libev would abort if
   asked to watch its own epoll fd). */
START_TEST(stale_fd_taken_by_the_hub_is_EBADF)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    char c;
    alarm(10);
    GREEN_ASSERT_ERRNO(green_wait_write(p[0], 0.01), EBADF);
    GREEN_ASSERT_ERRNO(green_read(p[0], &c, 1), EBADF);
    GREEN_ASSERT_ERRNO(green_write(p[0], &c, 1), EBADF);
    struct pollfd pfd = {p[0], POLLIN, 0};
    ck_assert_int_ge(green_poll(&pfd, 1, 10), 0); /* no crash */
    alarm(0);
}
END_TEST

START_TEST(write_all_sends_1mib_in_order_to_slow_reader)
{
    int sv[2];
    test_socketpair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    unsigned char *src = malloc(BIG), *dst = calloc(1, BIG);
    ck_assert(src && dst);
    for (size_t i = 0; i < BIG; i++)
        src[i] = (unsigned char)(i * 7 + i / 251);
    struct bulk w = {sv[0], src, 0, 0}, r = {sv[1], dst, 0, 0};
    green_t *g[2] = {green_spawn(bulk_write, &w),
                     green_spawn(bulk_read_slowly, &r)};
    ck_assert_int_eq(green_joinall(g, 2, 30), 0);
    ck_assert_int_eq(w.rc, BIG);
    ck_assert_int_eq(r.rc, BIG);
    ck_assert(memcmp(src, dst, BIG) == 0);
    green_release(g[0]);
    green_release(g[1]);
    free(src);
    free(dst);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

/******************************************************************************/
/*  Timeouts                                                                  */
/******************************************************************************/

START_TEST(wait_times_out)
{
    int sv[2];
    test_socketpair(sv);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_wait_read(sv[0], 0.05), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    /* The fd can be waited on again at once, and works. */
    struct delayed_write d = {sv[1], 0.01, "x"};
    green_t *g = green_spawn(write_later, &d);
    ck_assert_int_eq(green_wait_read(sv[0], 5), 0);
    green_join(g, -1);
    green_release(g);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(wait_timeout_zero_and_nan)
{
    int sv[2];
    test_socketpair(sv);
    GREEN_ASSERT_ERRNO(green_wait_read(sv[0], 0), EAGAIN);
    ck_assert_int_eq(green_wait_write(sv[0], 0), 0);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(green_wait_read(sv[0], 0), 0);
    GREEN_ASSERT_ERRNO(green_wait_read(sv[0], NAN), EINVAL);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(green_timeout_interrupts_read)
{
    int sv[2];
    test_socketpair(sv);
    green_timeout_t *t = green_timeout_start(0.05);
    char c;
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_read(sv[0], &c, 1), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert(green_timeout_expired(t));
    green_timeout_cancel(t);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

/* A wait made where blocking is impossible (a link callback runs in the
   hub) fails with EDEADLK instead of blocking the hub. */
static int hub_err;
static int hub_fd;

static void wait_in_link(green_t *g, void *arg)
{
    (void)g;
    (void)arg;
    char c;
    errno = 0;
    hub_err = green_read(hub_fd, &c, 1) < 0 ? errno : 0;
}

START_TEST(read_in_hub_is_EDEADLK)
{
    int sv[2];
    test_socketpair(sv);
    hub_fd = sv[0];
    hub_err = -1;
    green_t *g = green_spawn(test_noop, NULL);
    green_link(g, wait_in_link, NULL);
    green_join(g, -1);
    green_sleep(0.01);
    ck_assert_int_eq(hub_err, EDEADLK);
    green_release(g);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

/******************************************************************************/
/*  Kill during a wait, then reuse                                            */
/******************************************************************************/

START_TEST(kill_during_read_then_reuse_fd)
{
    int sv[2];
    test_socketpair(sv);
    struct reader a = {.fd = sv[0]}, b = {.fd = sv[0]};
    green_t *ga = green_spawn(read_once, &a);
    green_yield();
    ck_assert_int_eq(green_kill(ga, 1), 0);
    ck_assert_int_eq(a.rc, -1);
    ck_assert_int_eq(a.err, ECANCELED);
    /* Another greenlet reads the same fd at once; the dead waiter gets
       nothing. */
    green_t *gb = green_spawn(read_once, &b);
    green_yield();
    ck_assert_int_eq(write(sv[1], "abc", 3), 3);
    ck_assert_int_eq(green_join(gb, 5), 0);
    ck_assert_int_eq(b.rc, 3);
    green_release(ga);
    green_release(gb);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(timeout_leaves_no_watcher_behind)
{
    /* After a timed-out wait nothing of libgreen's keeps the loop
       alive: green_run returns at once instead of hanging. */
    int sv[2];
    test_socketpair(sv);
    GREEN_ASSERT_ERRNO(green_wait_read(sv[0], 0.01), ETIMEDOUT);
    alarm(10);
    double t0 = test_now();
    ck_assert_int_eq(green_run(), 0);
    ck_assert(test_now() - t0 < 1);
    alarm(0);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

struct acceptor {
    int fd;
    int rc;
    int err;
};

static void *accept_once(void *arg)
{
    struct acceptor *a = arg;
    errno = 0;
    a->rc = green_accept(a->fd, NULL, NULL);
    a->err = errno;
    return NULL;
}

START_TEST(kill_during_accept_then_accept_again)
{
    struct sockaddr_in addr;
    int l = test_listener(16, &addr);
    struct acceptor a = {l, 0, 0}, b = {l, 0, 0};
    green_t *ga = green_spawn(accept_once, &a);
    green_yield();
    ck_assert_int_eq(green_kill(ga, 1), 0);
    ck_assert_int_eq(a.rc, -1);
    ck_assert_int_eq(a.err, ECANCELED);
    green_t *gb = green_spawn(accept_once, &b);
    green_yield();
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(green_join(gb, 5), 0);
    ck_assert_int_ge(b.rc, 0);
    /* Accepted fds are non-blocking and close-on-exec. */
    ck_assert(test_is_nonblock(b.rc));
    ck_assert(test_is_cloexec(b.rc));
    green_close(b.rc);
    close(c);
    green_release(ga);
    green_release(gb);
    green_close(l);
}
END_TEST

struct connector {
    int fd;
    struct sockaddr_in addr;
    int rc;
    int err;
};

static void *connect_once(void *arg)
{
    struct connector *c = arg;
    errno = 0;
    c->rc = green_connect(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr);
    c->err = errno;
    return NULL;
}

START_TEST(kill_during_connect_then_connect_again)
{
    struct sockaddr_in stuck, good;
    int plugs[2];
    int sl = test_stuck_listener(&stuck, plugs);
    int gl = test_listener(16, &good);
    struct connector c = {socket(AF_INET, SOCK_STREAM, 0), stuck, 0, 0};
    green_t *g = green_spawn(connect_once, &c);
    green_sleep(0.05);
    ck_assert(!green_done(g));
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(c.rc, -1);
    ck_assert_int_eq(c.err, ECANCELED);
    green_release(g);
    /* The number is recycled for a new socket at once: it works. */
    int old = c.fd;
    green_close(old);
    struct connector d = {socket(AF_INET, SOCK_STREAM, 0), good, 0, 0};
    ck_assert_int_eq(d.fd, old);
    g = green_spawn(connect_once, &d);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(d.rc, 0);
    green_release(g);
    green_close(d.fd);
    close(plugs[0]);
    close(plugs[1]);
    close(sl);
    close(gl);
}
END_TEST

START_TEST(connect_reports_the_real_error)
{
    struct sockaddr_in addr;
    int l = test_listener(1, &addr);
    close(l); /* nobody listens on that port any more */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    GREEN_ASSERT_ERRNO(green_connect(fd, (struct sockaddr *)&addr,
                                     sizeof addr), ECONNREFUSED);
    green_close(fd);
}
END_TEST

/******************************************************************************/
/*  green_close                                                               */
/******************************************************************************/

struct closer {
    int fd;
    double delay;
    int rc;
};

static void *close_later(void *arg)
{
    struct closer *c = arg;
    green_sleep(c->delay);
    c->rc = green_close(c->fd);
    return NULL;
}

START_TEST(close_wakes_every_waiter_with_EBADF)
{
    int sv[2];
    test_socketpair(sv);
    struct reader r1 = {.fd = sv[0]}, r2 = {.fd = sv[0]};
    struct closer c = {sv[0], 0.02, -1};
    green_t *g[3] = {green_spawn(wait_read_forever, &r1),
                     green_spawn(read_once, &r2),
                     green_spawn(close_later, &c)};
    double t0 = test_now();
    ck_assert_int_eq(green_joinall(g, 3, 5), 0);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(r1.rc, -1);
    ck_assert_int_eq(r1.err, EBADF);
    ck_assert_int_eq(r2.rc, -1);
    ck_assert_int_eq(r2.err, EBADF);
    /* Promptly: within 0.1 s of the close. */
    ck_assert(r1.woke - t0 < 0.02 + 0.1 + test_slack());
    ck_assert(r2.woke - t0 < 0.02 + 0.1 + test_slack());
    /* And the fd really is closed. */
    ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1);
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    green_close(sv[1]);
}
END_TEST

START_TEST(reused_fd_number_gets_a_fresh_watcher)
{
    /* After the close above a new pipe takes the same number; waiting on it
       works, and the woken greenlets never touched it. */
    int sv[2];
    test_socketpair(sv);
    int old = sv[0];
    struct reader r1 = {.fd = old}, r2 = {.fd = old};
    green_t *g1 = green_spawn(read_once, &r1);
    green_t *g2 = green_spawn(read_once, &r2);
    green_yield();
    ck_assert_int_eq(green_close(old), 0);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(p[0], old);
    ck_assert_int_eq(write(p[1], "new", 3), 3);
    ck_assert_int_eq(green_join(g1, 5), 0);
    ck_assert_int_eq(green_join(g2, 5), 0);
    ck_assert(r1.rc == -1 && r1.err == EBADF);
    ck_assert(r2.rc == -1 && r2.err == EBADF);
    /* The data is still in the new pipe: nobody stole it. */
    struct reader r3 = {.fd = p[0]};
    green_t *g3 = green_spawn(read_once, &r3);
    ck_assert_int_eq(green_join(g3, 5), 0);
    ck_assert_int_eq(r3.rc, 3);
    ck_assert(memcmp(r3.buf, "new", 3) == 0);
    /* And waiting on the new fd works (a fresh watcher). */
    struct delayed_write d = {p[1], 0.02, "more"};
    green_t *gw = green_spawn(write_later, &d);
    struct reader r4 = {.fd = p[0]};
    green_t *g4 = green_spawn(read_once, &r4);
    ck_assert_int_eq(green_join(g4, 5), 0);
    ck_assert_int_eq(r4.rc, 4);
    green_join(gw, -1);
    green_release(g1);
    green_release(g2);
    green_release(g3);
    green_release(g4);
    green_release(gw);
    green_close(p[0]);
    green_close(p[1]);
    green_close(sv[1]);
}
END_TEST

/* Two greenlets, each woken by data on its own fd in the same poll;
   whichever runs first closes the other's fd.  The other was already
   woken (runnable) but must still get EBADF and never read. */
struct crossed {
    int mine, other;
    ssize_t rc;
    int err;
};

static void *read_then_close_other(void *arg)
{
    struct crossed *c = arg;
    char buf[8];
    errno = 0;
    c->rc = green_read(c->mine, buf, sizeof buf);
    c->err = errno;
    if (c->rc > 0)
        green_close(c->other);
    return NULL;
}

START_TEST(close_overrides_a_pending_readiness_wakeup)
{
    int a[2], b[2];
    test_socketpair(a);
    test_socketpair(b);
    struct crossed x = {a[0], b[0], 0, 0}, y = {b[0], a[0], 0, 0};
    green_t *g[2] = {green_spawn(read_then_close_other, &x),
                     green_spawn(read_then_close_other, &y)};
    green_yield(); /* both parked */
    ck_assert_int_eq(write(a[1], "1", 1), 1);
    ck_assert_int_eq(write(b[1], "2", 1), 1);
    ck_assert_int_eq(green_joinall(g, 2, 5), 0);
    /* Exactly one read its data; the other got EBADF. */
    ck_assert_msg((x.rc == 1 && y.rc == -1 && y.err == EBADF) ||
                      (y.rc == 1 && x.rc == -1 && x.err == EBADF),
                  "x: %zd/%d y: %zd/%d", x.rc, x.err, y.rc, y.err);
    green_release(g[0]);
    green_release(g[1]);
    /* The winner closed the loser's fd; its own is still open. */
    green_close(x.rc == 1 ? a[0] : b[0]);
    green_close(a[1]);
    green_close(b[1]);
}
END_TEST

/* green_close from the hub (a link callback) while green_connect
   is pending: the connect fails with EBADF. */
static int link_close_fd;

static void close_in_link(green_t *g, void *arg)
{
    (void)g;
    (void)arg;
    green_close(link_close_fd);
}

static void *sleep_briefly(void *arg)
{
    (void)arg;
    green_sleep(0.03);
    return NULL;
}

START_TEST(close_from_hub_fails_pending_connect)
{
    struct sockaddr_in stuck;
    int plugs[2];
    int sl = test_stuck_listener(&stuck, plugs);
    struct connector c = {socket(AF_INET, SOCK_STREAM, 0), stuck, 0, 0};
    link_close_fd = c.fd;
    green_t *gc = green_spawn(connect_once, &c);
    green_t *gs = green_spawn(sleep_briefly, NULL);
    green_link(gs, close_in_link, NULL);
    ck_assert_int_eq(green_join(gc, 5), 0);
    ck_assert_int_eq(c.rc, -1);
    ck_assert_int_eq(c.err, EBADF);
    green_release(gc);
    green_release(gs);
    close(plugs[0]);
    close(plugs[1]);
    close(sl);
}
END_TEST

/******************************************************************************/
/*  SIGPIPE                                                                   */
/******************************************************************************/

static void assert_sigpipe_untouched(const struct sigaction *before,
                                     const sigset_t *mask_before)
{
    struct sigaction after;
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &after), 0);
    ck_assert(after.sa_handler == before->sa_handler);
    sigset_t mask, pending;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    ck_assert_int_eq(sigismember(&mask, SIGPIPE),
                     sigismember(mask_before, SIGPIPE));
    sigpending(&pending);
    ck_assert(!sigismember(&pending, SIGPIPE));
}

START_TEST(write_to_closed_socket_is_EPIPE_not_SIGPIPE)
{
    struct sigaction before;
    sigset_t mask;
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &before), 0);
    ck_assert(before.sa_handler == SIG_DFL);
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    int sv[2];
    test_socketpair(sv);
    close(sv[1]);
    GREEN_ASSERT_ERRNO(green_write(sv[0], "x", 1), EPIPE);
    GREEN_ASSERT_ERRNO(green_write_all(sv[0], "x", 1), EPIPE);
    GREEN_ASSERT_ERRNO(green_send(sv[0], "x", 1, 0), EPIPE);
    struct iovec iov[2] = {{"a", 1}, {"b", 1}};
    GREEN_ASSERT_ERRNO(green_writev(sv[0], iov, 2), EPIPE);
    assert_sigpipe_untouched(&before, &mask);
    green_close(sv[0]);
}
END_TEST

START_TEST(write_to_closed_pipe_is_EPIPE_not_SIGPIPE)
{
    struct sigaction before;
    sigset_t mask;
    ck_assert_int_eq(sigaction(SIGPIPE, NULL, &before), 0);
    ck_assert(before.sa_handler == SIG_DFL);
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    GREEN_ASSERT_ERRNO(green_write(p[1], "x", 1), EPIPE);
    struct iovec iov[2] = {{"a", 1}, {"b", 1}};
    GREEN_ASSERT_ERRNO(green_writev(p[1], iov, 2), EPIPE);
    GREEN_ASSERT_ERRNO(green_write_all(p[1], "xy", 2), EPIPE);
    assert_sigpipe_untouched(&before, &mask);
    green_close(p[1]);
}
END_TEST

/******************************************************************************/
/*  Diagnostics and leaks                                                     */
/******************************************************************************/

START_TEST(dump_shows_the_fd_waited_on)
{
    int sv[2];
    test_socketpair(sv);
    struct reader r = {.fd = sv[0]};
    green_t *g = green_spawn(read_once, &r);
    green_yield();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    green_dump(f);
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "on fd %d", sv[0]);
    ck_assert_msg(strstr(text, want) && strstr(text, "waiting to read"),
                  "dump: %s", text);
    free(text);
    green_kill(g, 1);
    green_release(g);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

START_TEST(no_fd_or_mapping_leaks_after_shutdown)
{
    int fds0 = test_count_fds();
    for (int round = 0; round < 3; round++) {
        int sv[2];
        test_socketpair(sv);
        struct pingpong a = {sv[0], 50, 1, 0}, b = {sv[1], 50, 0, 0};
        green_t *g[2] = {green_spawn(pingpong_side, &a),
                         green_spawn(pingpong_side, &b)};
        ck_assert_int_eq(green_joinall(g, 2, 10), 0);
        green_release(g[0]);
        green_release(g[1]);
        green_close(sv[0]);
        green_close(sv[1]);
        green_shutdown();
        ck_assert_int_eq(test_count_fds(), fds0);
    }
}
END_TEST

/******************************************************************************/
/*  The fd layer: impossible numbers, epoll fds, plain close, timeouts        */
/******************************************************************************/

/* A number the process cannot have is EBADF at once, from every entry
   point, and grows no table (it used to allocate ~1 GiB). */
START_TEST(impossible_fd_numbers_are_EBADF_and_grow_nothing)
{
    const int big[] = {100000000, INT_MAX, -1, -100};
    char c = 'x';
    long rss0 = test_rss_kib();
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        int fd = big[i];
        GREEN_ASSERT_ERRNO(green_write(fd, &c, 1), EBADF);
        GREEN_ASSERT_ERRNO(green_read(fd, &c, 1), EBADF);
        GREEN_ASSERT_ERRNO(green_write_all(fd, &c, 1), EBADF);
        GREEN_ASSERT_ERRNO(green_accept(fd, NULL, NULL), EBADF);
        GREEN_ASSERT_ERRNO(green_wait_read(fd, 0.01), EBADF);
        GREEN_ASSERT_ERRNO(green_wait_write(fd, -1), EBADF);
        GREEN_ASSERT_ERRNO(green_close(fd), EBADF);
        struct pollfd p = {fd, POLLIN, 0};
        ck_assert_int_eq(green_poll(&p, 1, 10), fd < 0 ? 0 : 1);
    }
    if (test_measures_rss())
        ck_assert_msg(test_rss_kib() - rss0 < 16 * 1024,
                      "RSS grew by %ld KiB", test_rss_kib() - rss0);
}
END_TEST

/* The epoll fds of this process (the hub's among them). */
static int epoll_fds(int *out, int max)
{
    int n = 0;
    for (int fd = 0; fd < 1024 && n < max; fd++) {
        char path[40], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(path, target, sizeof target - 1);
        if (k <= 0)
            continue;
        target[k] = '\0';
        if (strcmp(target, "anon_inode:[eventpoll]") == 0)
            out[n++] = fd;
    }
    return n;
}

/* Every wait on every epoll fd (libev's own among them) is EBADF. */
static int wait_on_epoll_fds_fails(void)
{
    int ep[8];
    int n = epoll_fds(ep, 8);
    if (n == 0)
        return 0;
    char c;
    for (int i = 0; i < n; i++) {
        if (green_wait_read(ep[i], 0.05) != -1 || errno != EBADF ||
            green_wait_write(ep[i], -1) != -1 || errno != EBADF ||
            green_read(ep[i], &c, 1) != -1 || errno != EBADF)
            return 0;
        struct pollfd p = {ep[i], POLLIN, 0};
        if (green_poll(&p, 1, 20) < 0) /* polled periodically: no crash */
            return 0;
    }
    return n;
}

/* Issue 11 item 6: waiting on libev's own epoll fd aborted the process
   (epoll_ctl EINVAL), also in a green_fork child where the number
   libgreen recorded goes stale. */
START_TEST(waiting_on_the_hubs_epoll_fd_is_EBADF)
{
    alarm(10);
    /* A placeholder below the hub's epoll fd, freed before the fork:
       the child's libev then renews its epoll fd under that lower
       number, and the number recorded at creation goes stale. */
    int placeholder = dup(0);
    ck_assert_int_ge(placeholder, 0);
    ck_assert_int_eq(green_sleep(0.001), 0); /* the hub exists */
    ck_assert_int_ge(wait_on_epoll_fds_fails(), 1);
    close(placeholder);
    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int before = wait_on_epoll_fds_fails(); /* parent's, inherited */
        green_sleep(0.01);                      /* libev renews its fd */
        int ep[8];
        int renewed = epoll_fds(ep, 8) >= 1 && ep[0] == placeholder;
        int after = wait_on_epoll_fds_fails();
        _exit(before >= 1 && renewed && after >= 1 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %#x", status);
    alarm(0);
}
END_TEST

/* The same in an embedded hub, where libgreen never saw the loop being
   created. */
struct epoll_probe {
    int found;
    int done;
};

static void *probe_epoll_fds(void *arg)
{
    struct epoll_probe *p = arg;
    p->found = wait_on_epoll_fds_fails();
    p->done = 1;
    return NULL;
}

START_TEST(waiting_on_an_embedded_loops_epoll_fd_is_EBADF)
{
    alarm(10);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_ptr_nonnull(loop);
    ck_assert_int_eq(green_hub_attach(loop), 0);
    struct epoll_probe p = {0, 0};
    green_t *g = green_spawn(probe_epoll_fds, &p);
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < 1000 && !p.done; i++)
        ev_run(loop, EVRUN_ONCE);
    green_release(g);
    green_shutdown();
    ev_loop_destroy(loop);
    ck_assert(p.done);
    ck_assert_int_ge(p.found, 1);
    alarm(0);
}
END_TEST

/* One wait of up to 2 s on r->fd: its result, errno and end time. */
static void *wait_fd_2s(struct reader *r, int (*wait)(int, double))
{
    errno = 0;
    r->rc = wait(r->fd, 2.0);
    r->err = errno;
    r->woke = test_now();
    return NULL;
}

static void *wait_read_2s(void *arg)
{
    return wait_fd_2s(arg, green_wait_read);
}

static void *wait_write_2s(void *arg)
{
    return wait_fd_2s(arg, green_wait_write);
}

static void *plain_close(void *arg)
{
    close(*(int *)arg); /* behind libgreen's back */
    return NULL;
}

/* Issue 11 item 7: a plain close(2) of an fd a greenlet has just
   started waiting on, before the loop polls again, aborted in libev's
   epoll_ctl.  The waiter gets EBADF now, long before its timeout.  Both
   greenlets run in the same round: no poll between the wait and the
   close. */
START_TEST(plain_close_before_the_poll_wakes_the_waiter_with_EBADF)
{
    alarm(10);
    for (int round = 0; round < 3; round++) {
        int sv[2];
        test_socketpair(sv);
        struct reader r = {sv[0], -2, 0, {0}, 0};
        double t0 = test_now();
        green_t *w = green_spawn(wait_read_2s, &r);
        green_t *c = green_spawn(plain_close, &sv[0]);
        ck_assert_int_eq(green_join(w, 1.5), 0);
        ck_assert_int_eq(green_join(c, -1), 0);
        green_release(w);
        green_release(c);
        ck_assert_int_eq(r.rc, -1);
        ck_assert_int_eq(r.err, EBADF);
        ck_assert(r.woke - t0 < test_prompt());
        close(sv[1]);
    }
    alarm(0);
}
END_TEST

/* The same with both directions of the fd started in that round: the
   prepare hook looks at the fd once for both, and both get EBADF (libev
   would abort on either). */
START_TEST(plain_close_before_the_poll_fails_both_directions)
{
    alarm(10);
    int sv[2];
    test_socketpair(sv);
    struct reader r = {sv[0], -2, 0, {0}, 0};
    struct reader wr = {sv[0], -2, 0, {0}, 0};
    double t0 = test_now();
    green_t *a = green_spawn(wait_read_2s, &r);
    green_t *b = green_spawn(wait_write_2s, &wr);
    green_t *c = green_spawn(plain_close, &sv[0]);
    ck_assert_int_eq(green_join(a, 1.5), 0);
    ck_assert_int_eq(green_join(b, 1.5), 0);
    ck_assert_int_eq(green_join(c, -1), 0);
    green_release(a);
    green_release(b);
    green_release(c);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_int_eq(r.err, EBADF);
    ck_assert_int_eq(wr.rc, -1);
    ck_assert_int_eq(wr.err, EBADF);
    ck_assert(r.woke - t0 < test_prompt());
    ck_assert(wr.woke - t0 < test_prompt());
    close(sv[1]);
    alarm(0);
}
END_TEST

struct ready_in_hub {
    int rfd, wfd, idle;
    int read_ok, write_ok, read_again, idle_read;
    int e_again, e_idle;
};

static void check_ready_in_hub(green_t *g, void *arg)
{
    (void)g;
    struct ready_in_hub *a = arg;
    a->read_ok = green_wait_read(a->rfd, 0);
    a->write_ok = green_wait_write(a->wfd, 0);
    a->idle_read = green_wait_read(a->idle, 0);
    a->e_idle = errno;
    a->read_again = green_wait_read(a->rfd, 1.0); /* a real wait */
    a->e_again = errno;
}

/* Issue 11 item 19: timeout 0 from the hub or a callback reports
   readiness (0, or EAGAIN when not ready); only a real wait is
   EDEADLK there. */
START_TEST(timeout_zero_on_fds_from_a_callback)
{
    int sv[2], idle[2];
    test_socketpair(sv);
    test_socketpair(idle);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    struct ready_in_hub a = {sv[0], sv[1], idle[0], -2, -2, -2, -2, 0, 0};
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, check_ready_in_hub, &a), 0);
    ck_assert_int_eq(green_join(g, -1), 0);
    green_release(g);
    green_sleep(0.001);
    ck_assert_int_eq(a.read_ok, 0);
    ck_assert_int_eq(a.write_ok, 0);
    ck_assert_int_eq(a.idle_read, -1);
    ck_assert_int_eq(a.e_idle, EAGAIN);
    ck_assert_int_eq(a.read_again, -1);
    ck_assert_int_eq(a.e_again, EDEADLK);
    close(sv[0]);
    close(sv[1]);
    close(idle[0]);
    close(idle[1]);
}
END_TEST

static void set_timeo(int fd, int opt, double t)
{
    struct timeval tv = {(time_t)t, (suseconds_t)((t - (long)t) * 1e6)};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv), 0);
}

/* Issue 12: SO_RCVTIMEO/SO_SNDTIMEO bound the green_* calls as they
   bound a blocking socket's: -1/EAGAIN after the timeout.  Set after
   libgreen first saw the fd (the kernel, not a cache, is asked). */
START_TEST(socket_timeouts_bound_green_calls_with_EAGAIN)
{
    alarm(10);
    int sv[2];
    test_socketpair(sv);
    char buf[65536];
    memset(buf, 'x', sizeof buf);
    ck_assert_int_eq(green_write(sv[1], "a", 1), 1);
    ck_assert_int_eq(green_read(sv[0], buf, 1), 1);
    set_timeo(sv[0], SO_RCVTIMEO, 0.1);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_read(sv[0], buf, 1), EAGAIN);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    t0 = test_now();
    GREEN_ASSERT_ERRNO(green_recv(sv[0], buf, 1, 0), EAGAIN);
    ck_assert(test_now() - t0 >= 0.1);
    /* An enclosing green_timeout keeps its own errno. */
    green_timeout_t *to = green_timeout_start(0.03);
    GREEN_ASSERT_ERRNO(green_read(sv[0], buf, 1), ETIMEDOUT);
    green_timeout_cancel(to);

    /* Writes: fill the buffer, then the next write waits 0.1 s. */
    set_timeo(sv[1], SO_SNDTIMEO, 0.1);
    while (send(sv[1], buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
    t0 = test_now();
    GREEN_ASSERT_ERRNO(green_write(sv[1], buf, sizeof buf), EAGAIN);
    ck_assert(test_now() - t0 >= 0.1);
    GREEN_ASSERT_ERRNO(green_write_all(sv[1], buf, sizeof buf), EAGAIN);
    /* Data arriving in time is read as usual. */
    struct delayed_write d = {sv[0], 0.02, "y"};
    green_t *g = green_spawn(write_later, &d);
    set_timeo(sv[1], SO_RCVTIMEO, 1.0);
    char c;
    ck_assert_int_eq(green_read(sv[1], &c, 1), 1);
    green_join(g, -1);
    green_release(g);
    green_close(sv[0]);
    green_close(sv[1]);

    /* connect: SO_SNDTIMEO bounds the handshake (EINPROGRESS, as the
       kernel says for a blocking socket). */
    struct sockaddr_in addr;
    int plugs[2];
    int l = test_stuck_listener(&addr, plugs);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(cfd, 0);
    set_timeo(cfd, SO_SNDTIMEO, 0.1);
    t0 = test_now();
    GREEN_ASSERT_ERRNO(green_connect(cfd, (struct sockaddr *)&addr,
                                     sizeof addr), EINPROGRESS);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    green_close(cfd);
    close(plugs[0]);
    close(plugs[1]);
    close(l);
    alarm(0);
}
END_TEST

/******************************************************************************/
/*  green_sendfile                                                            */
/******************************************************************************/

#define SF_SIZE (3 << 20)

/* A temporary file of SF_SIZE patterned bytes, unlinked. */
static int sf_file(void)
{
    char path[] = "/tmp/green_sendfile_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    static char chunk[65536];
    for (size_t off = 0; off < SF_SIZE; off += sizeof chunk) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (char)((off + i) * 13 + (off + i) / 1000);
        ck_assert_int_eq(write(fd, chunk, sizeof chunk), sizeof chunk);
    }
    return fd;
}

struct sf_reader {
    int fd;
    size_t got;
    int bad;
};

static void *sf_read_slowly(void *arg)
{
    struct sf_reader *r = arg;
    static char buf[32768];
    for (int i = 0;; i++) {
        ssize_t n = green_read(r->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t k = 0; k < n; k++) {
            size_t at = r->got + (size_t)k;
            if (buf[k] != (char)(at * 13 + at / 1000))
                r->bad = 1;
        }
        r->got += (size_t)n;
        if (i % 16 == 0)
            green_sleep(0.001);
    }
    return NULL;
}

/* All of a 3 MiB file reaches a slow reader, in order, with and without
   an offset; the offset advances; errors are sendfile's, and a closed
   peer is EPIPE, not SIGPIPE. */
START_TEST(sendfile_sends_everything_cooperatively)
{
    alarm(20);
    int file = sf_file();
    for (int with_offset = 0; with_offset < 2; with_offset++) {
        int sv[2];
        test_socketpair(sv);
        struct sf_reader r = {sv[1], 0, 0};
        green_t *g = green_spawn(sf_read_slowly, &r);
        off_t off = 0;
        ck_assert_int_eq(lseek(file, 0, SEEK_SET), 0);
        ssize_t n = green_sendfile(sv[0], file, with_offset ? &off : NULL,
                                   SF_SIZE + 100); /* past the end */
        ck_assert_int_eq(n, SF_SIZE);
        if (with_offset)
            ck_assert_int_eq(off, SF_SIZE);
        else
            ck_assert_int_eq(lseek(file, 0, SEEK_CUR), SF_SIZE);
        green_close(sv[0]);
        ck_assert_int_eq(green_join(g, 10), 0);
        green_release(g);
        ck_assert_uint_eq(r.got, SF_SIZE);
        ck_assert_int_eq(r.bad, 0);
        green_close(sv[1]);
    }
    int sv[2];
    test_socketpair(sv);
    off_t off = 0;
    GREEN_ASSERT_ERRNO(green_sendfile(sv[0], -1, &off, 10), EBADF);
    GREEN_ASSERT_ERRNO(green_sendfile(-1, file, &off, 10), EBADF);
    close(sv[1]);
    GREEN_ASSERT_ERRNO(green_sendfile(sv[0], file, &off, 10), EPIPE);
    green_close(sv[0]);
    close(file);
    alarm(0);
}
END_TEST

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("read_write");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, socketpair_ping_pong_between_greenlets);
    tcase_add_test(tc, read_parks_only_the_caller);
    tcase_add_test(tc, fd_is_made_nonblocking_on_first_use);
    tcase_add_test(tc, read_returns_zero_at_eof);
    tcase_add_test(tc, vector_and_socket_calls_match_libc);
    tcase_add_test(tc, datagram_sendto_recvfrom);
    tcase_add_test(tc, pipe_read_write);
    tcase_add_test(tc, bad_fds_fail_like_libc);
    tcase_add_test(tc, stale_fd_taken_by_the_hub_is_EBADF);
    tcase_add_test(tc, write_all_sends_1mib_in_order_to_slow_reader);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeouts");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, wait_times_out);
    tcase_add_test(tc, wait_timeout_zero_and_nan);
    tcase_add_test(tc, green_timeout_interrupts_read);
    tcase_add_test(tc, read_in_hub_is_EDEADLK);
    tcase_add_test(tc, timeout_leaves_no_watcher_behind);
    suite_add_tcase(s, tc);

    tc = tcase_create("kill");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, kill_during_read_then_reuse_fd);
    tcase_add_test(tc, kill_during_accept_then_accept_again);
    tcase_add_test(tc, kill_during_connect_then_connect_again);
    tcase_add_test(tc, connect_reports_the_real_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, close_wakes_every_waiter_with_EBADF);
    tcase_add_test(tc, reused_fd_number_gets_a_fresh_watcher);
    tcase_add_test(tc, close_overrides_a_pending_readiness_wakeup);
    tcase_add_test(tc, close_from_hub_fails_pending_connect);
    suite_add_tcase(s, tc);

    tc = tcase_create("sigpipe");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, write_to_closed_socket_is_EPIPE_not_SIGPIPE);
    tcase_add_test(tc, write_to_closed_pipe_is_EPIPE_not_SIGPIPE);
    suite_add_tcase(s, tc);

    tc = tcase_create("fd_layer");
    tcase_add_checked_fixture(tc, NULL, green_test_teardown);
    tcase_add_test(tc, impossible_fd_numbers_are_EBADF_and_grow_nothing);
    tcase_add_test(tc, waiting_on_the_hubs_epoll_fd_is_EBADF);
    tcase_add_test(tc, waiting_on_an_embedded_loops_epoll_fd_is_EBADF);
    tcase_add_test(tc, plain_close_before_the_poll_wakes_the_waiter_with_EBADF);
    tcase_add_test(tc, plain_close_before_the_poll_fails_both_directions);
    tcase_add_test(tc, timeout_zero_on_fds_from_a_callback);
    tcase_add_test(tc, socket_timeouts_bound_green_calls_with_EAGAIN);
    tcase_add_test(tc, sendfile_sends_everything_cooperatively);
    suite_add_tcase(s, tc);

    tc = tcase_create("diagnostics");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, dump_shows_the_fd_waited_on);
    tcase_add_test(tc, no_fd_or_mapping_leaks_after_shutdown);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(io_suite)
