/* green_tcp_listen / green_tcp_connect: ports, families, errors, flags
   of the fds libgreen creates, TCP ping-pong. */
#include <math.h>
#include <netinet/tcp.h>
#include <stdint.h>

#include "iotest.h"

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss.ss_family;
}

struct echo_once {
    int lfd;
    int ok;
};

/* Accept one connection and echo 4-byte counters until EOF. */
static void *serve_one(void *arg)
{
    struct echo_once *e = arg;
    int c = green_accept(e->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    uint32_t v;
    while (green_read(c, &v, sizeof v) == sizeof v)
        if (green_write_all(c, &v, sizeof v) != sizeof v)
            break;
    green_close(c);
    e->ok = 1;
    return NULL;
}

static void ping_pong(int fd, int rounds)
{
    for (uint32_t i = 0; i < (uint32_t)rounds; i++) {
        uint32_t v = i;
        ck_assert_int_eq(green_write_all(fd, &v, sizeof v), sizeof v);
        ck_assert_int_eq(green_read(fd, &v, sizeof v), sizeof v);
        ck_assert_uint_eq(v, i);
    }
}

/* One echo connection through listener l: a greenlet serves it while we
   connect to host at l's port (checking the socket family if fam is
   not 0) and ping-pong rounds times.  Returns whether the server saw
   every byte. */
static int echo_through(int l, const char *host, int fam, int rounds)
{
    struct echo_once e = {l, 0};
    green_t *g = green_spawn(serve_one, &e);
    int c = green_tcp_connect(host, local_port(l), 5);
    ck_assert_int_ge(c, 0);
    if (fam)
        ck_assert_int_eq(family(c), fam);
    ping_pong(c, rounds);
    green_close(c);
    ck_assert_int_eq(green_join(g, 5), 0);
    green_release(g);
    return e.ok;
}

START_TEST(tcp_ping_pong_between_greenlets)
{
    int l = green_tcp_listen("127.0.0.1", 0, 16);
    ck_assert_int_ge(l, 0);
    int port = local_port(l);
    ck_assert_int_gt(port, 0);
    ck_assert(echo_through(l, "127.0.0.1", 0, 500));
    green_close(l);
}
END_TEST

START_TEST(listen_sets_reuseaddr_and_flags)
{
    int l = green_tcp_listen("127.0.0.1", 0, 0);
    ck_assert_int_ge(l, 0);
    int v = 0;
    socklen_t len = sizeof v;
    ck_assert_int_eq(getsockopt(l, SOL_SOCKET, SO_REUSEADDR, &v, &len), 0);
    ck_assert_int_ne(v, 0);
    ck_assert(test_is_nonblock(l));
    ck_assert(test_is_cloexec(l));
    /* A second listener on the same port fails like bind(2) does. */
    GREEN_ASSERT_ERRNO(green_tcp_listen("127.0.0.1", local_port(l), 1),
                       EADDRINUSE);
    green_close(l);
}
END_TEST

START_TEST(fds_created_by_libgreen_are_cloexec)
{
    /* Listening, connected and accepted sockets, and libev's own
       fds (the epoll fd is the first fd the hub opens). */
    int probe = dup(0);
    close(probe);
    ck_assert_ptr_nonnull(green_hub_loop());
    ck_assert(test_is_cloexec(probe)); /* the epoll fd took that number */
    int l = green_tcp_listen("127.0.0.1", 0, 16);
    int c = green_tcp_connect("127.0.0.1", local_port(l), 5);
    ck_assert_int_ge(c, 0);
    int a = green_accept(l, NULL, NULL);
    ck_assert_int_ge(a, 0);
    ck_assert(test_is_cloexec(l) && test_is_cloexec(c) && test_is_cloexec(a));
    ck_assert(test_is_nonblock(c) && test_is_nonblock(a));
    green_close(a);
    green_close(c);
    green_close(l);
}
END_TEST

START_TEST(listen_on_all_interfaces_reachable_on_loopback)
{
    int l = green_tcp_listen(NULL, 0, 16);
    ck_assert_int_ge(l, 0);
    echo_through(l, "127.0.0.1", 0, 10);
    green_close(l);
}
END_TEST

START_TEST(localhost_resolves)
{
    int l = green_tcp_listen("localhost", 0, 16);
    ck_assert_int_ge(l, 0);
    /* localhost may resolve to ::1 and 127.0.0.1 in either order; the
       connect tries each until one answers. */
    echo_through(l, "localhost", 0, 10);
    green_close(l);
}
END_TEST

START_TEST(ipv6_loopback)
{
    if (!test_have_ipv6())
        return; /* no IPv6 here: nothing to check */
    int l = green_tcp_listen("::1", 0, 16);
    ck_assert_int_ge(l, 0);
    ck_assert_int_eq(family(l), AF_INET6);
    echo_through(l, "::1", AF_INET6, 10);
    green_close(l);
}
END_TEST

START_TEST(connect_to_closed_port_is_ECONNREFUSED)
{
    int l = green_tcp_listen("127.0.0.1", 0, 1);
    int port = local_port(l);
    green_close(l);
    GREEN_ASSERT_ERRNO(green_tcp_connect("127.0.0.1", port, 5), ECONNREFUSED);
}
END_TEST

START_TEST(connect_times_out)
{
    struct sockaddr_in stuck;
    int plugs[2];
    int sl = test_stuck_listener(&stuck, plugs);
    ck_assert_ptr_nonnull(green_hub_loop()); /* its fds first */
    int fds0 = test_count_fds();
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(green_tcp_connect("127.0.0.1", ntohs(stuck.sin_port),
                                         0.1), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    ck_assert_int_eq(test_count_fds(), fds0); /* the socket was closed */
    close(plugs[0]);
    close(plugs[1]);
    close(sl);
}
END_TEST

static void *connect_stuck(void *arg)
{
    int *port = arg;
    errno = 0;
    int fd = green_tcp_connect("127.0.0.1", *port, -1);
    *port = fd < 0 ? errno : 0;
    return NULL;
}

START_TEST(connect_killed_is_ECANCELED)
{
    struct sockaddr_in stuck;
    int plugs[2];
    int sl = test_stuck_listener(&stuck, plugs);
    int arg = ntohs(stuck.sin_port);
    green_t *g = green_spawn(connect_stuck, &arg);
    green_sleep(0.02);
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(arg, ECANCELED);
    green_release(g);
    close(plugs[0]);
    close(plugs[1]);
    close(sl);
}
END_TEST

START_TEST(bad_arguments)
{
    GREEN_ASSERT_ERRNO(green_tcp_listen("127.0.0.1", -1, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tcp_listen("127.0.0.1", 65536, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tcp_connect("127.0.0.1", 70000, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tcp_connect("127.0.0.1", 80, NAN), EINVAL);
    /* Not an address of this host. */
    GREEN_ASSERT_ERRNO(green_tcp_listen("192.0.2.1", 0, 1), EADDRNOTAVAIL);
}
END_TEST

static Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("listen");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, tcp_ping_pong_between_greenlets);
    tcase_add_test(tc, listen_sets_reuseaddr_and_flags);
    tcase_add_test(tc, fds_created_by_libgreen_are_cloexec);
    tcase_add_test(tc, listen_on_all_interfaces_reachable_on_loopback);
    tcase_add_test(tc, localhost_resolves);
    tcase_add_test(tc, ipv6_loopback);
    suite_add_tcase(s, tc);

    tc = tcase_create("connect");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, connect_to_closed_port_is_ECONNREFUSED);
    tcase_add_test(tc, connect_times_out);
    tcase_add_test(tc, connect_killed_is_ECANCELED);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(net_suite)
