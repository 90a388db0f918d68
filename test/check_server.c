/* green_server_*: address forms, one greenlet per connection, fd closed
   after the handler, connection limit, stop semantics, 1,000 concurrent
   echo clients, EMFILE back-off. */
#include <stdint.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "iotest.h"

static void echo_handler(int fd, void *arg)
{
    (void)arg;
    char buf[4096];
    ssize_t n;
    while ((n = green_read(fd, buf, sizeof buf)) > 0)
        if (green_write_all(fd, buf, (size_t)n) < 0)
            break;
}

static green_server_t *start_server(const char *addr,
                                    void (*h)(int, void *), void *arg)
{
    green_server_t *s = green_server_new(addr, h, arg);
    ck_assert_msg(s != NULL, "green_server_new(%s): %s", addr,
                  strerror(errno));
    ck_assert_int_eq(green_server_start(s), 0);
    return s;
}

/******************************************************************************/
/*  1,000 concurrent echo clients                                             */
/******************************************************************************/

struct client {
    int port;
    int id;
    int ok;
};

static void *echo_client(void *arg)
{
    struct client *c = arg;
    size_t len = (size_t)(c->id * 37 % 4000) + 1;
    unsigned char out[4001], in[4001];
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(c->id + i * 13);
    int fd = green_tcp_connect("127.0.0.1", c->port, 20);
    if (fd < 0)
        return NULL;
    if (green_write_all(fd, out, len) == (ssize_t)len) {
        size_t got = 0;
        while (got < len) {
            ssize_t n = green_read(fd, in + got, len - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        c->ok = got == len && memcmp(in, out, len) == 0;
    }
    green_close(fd);
    return NULL;
}

START_TEST(echo_1000_concurrent_clients_every_byte_checked)
{
    enum { MAX = 1000 };
    /* Scale is the point here; under Valgrind a tenth still checks
       every byte. */
    int N = test_light() ? MAX / 10 : MAX;
    ck_assert_msg(test_want_fds(2 * (rlim_t)N + 100), "need %d fds",
                  2 * N + 100);
    alarm(60);
    green_server_t *s = start_server("127.0.0.1:0", echo_handler, NULL);
    int port = green_server_port(s);
    ck_assert_int_gt(port, 0);
    static struct client cs[MAX];
    static green_t *gs[MAX];
    for (int i = 0; i < N; i++) {
        cs[i] = (struct client){port, i, 0};
        gs[i] = green_spawn(echo_client, &cs[i]);
        ck_assert_ptr_nonnull(gs[i]);
    }
    ck_assert_int_eq(green_joinall(gs, (size_t)N, 50), 0);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += cs[i].ok;
        green_release(gs[i]);
    }
    ck_assert_int_eq(ok, N);
    ck_assert_int_eq(green_server_stop(s, 5), 0);
    green_server_free(s);
    alarm(0);
}
END_TEST

/******************************************************************************/
/*  Connections and addresses                                                 */
/******************************************************************************/

static void bye_handler(int fd, void *arg)
{
    int *calls = arg;
    (*calls)++;
    green_write_all(fd, "bye", 3);
}

START_TEST(fd_is_closed_when_handler_returns)
{
    int calls = 0;
    green_server_t *s = start_server("127.0.0.1:0", bye_handler, &calls);
    int fd = green_tcp_connect("127.0.0.1", green_server_port(s), 5);
    ck_assert_int_ge(fd, 0);
    char buf[8];
    ck_assert_int_eq(green_read(fd, buf, sizeof buf), 3);
    ck_assert(memcmp(buf, "bye", 3) == 0);
    ck_assert_int_eq(green_read(fd, buf, sizeof buf), 0); /* closed */
    ck_assert_int_eq(calls, 1);
    green_close(fd);
    green_server_free(s);
}
END_TEST

/* Connect to a server address and check the echo. */
static void check_echo(int fd)
{
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(green_write_all(fd, "ping", 4), 4);
    char buf[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t n = green_read(fd, buf + got, 4 - got);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
    }
    ck_assert(memcmp(buf, "ping", 4) == 0);
    green_close(fd);
}

START_TEST(address_forms)
{
    const char *tcp[] = {"127.0.0.1:0", ":0", "localhost:0", "[::1]:0"};
    for (int i = 0; i < 4; i++) {
        if (i == 3 && !test_have_ipv6())
            break;
        green_server_t *s = start_server(tcp[i], echo_handler, NULL);
        int port = green_server_port(s);
        ck_assert_int_gt(port, 0);
        check_echo(green_tcp_connect(i == 3 ? "::1" : "127.0.0.1", port, 5));
        ck_assert_int_eq(green_server_stop(s, 1), 0);
        green_server_free(s);
    }
}
END_TEST

START_TEST(unix_socket_server)
{
    char path[108], addr[120];
    snprintf(path, sizeof path, "/tmp/green-check-server-%d.sock",
             (int)getpid());
    unlink(path);
    snprintf(addr, sizeof addr, "unix:%s", path);
    green_server_t *s = start_server(addr, echo_handler, NULL);
    ck_assert_int_eq(green_server_port(s), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, path);
    ck_assert_int_eq(green_connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    check_echo(fd);
    ck_assert_int_eq(green_server_stop(s, 1), 0);
    ck_assert_int_ne(access(path, F_OK), 0); /* removed at stop */
    green_server_free(s);
}
END_TEST

static void never_called(int fd, void *arg)
{
    (void)fd;
    (void)arg;
}

START_TEST(bad_addresses_are_EINVAL)
{
    const char *bad[] = {"nocolon", "127.0.0.1:", "127.0.0.1:x",
                         "127.0.0.1:70000", "::1:80", "[::1:80",
                         "127.0.0.1:-1", "unix:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        ck_assert_msg(green_server_new(bad[i], never_called, NULL) == NULL &&
                          errno == EINVAL,
                      "%s: errno %s", bad[i], strerror(errno));
    }
    GREEN_ASSERT_ERRNO(green_server_new(NULL, never_called, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_server_new("127.0.0.1:0", NULL, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_server_start(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_server_stop(NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_server_port(NULL), EINVAL);
    green_server_free(NULL);
}
END_TEST

/******************************************************************************/
/*  Connection limit                                                          */
/******************************************************************************/

struct limit {
    int running;
    int max_seen;
    int served;
};

/* Runs until its client sends one byte. */
static void limited_handler(int fd, void *arg)
{
    struct limit *l = arg;
    l->running++;
    if (l->running > l->max_seen)
        l->max_seen = l->running;
    char c;
    green_read(fd, &c, 1);
    l->running--;
    l->served++;
}

START_TEST(connection_limit_holds_accept_while_full)
{
    struct limit l = {0, 0, 0};
    green_server_t *s = green_server_new("127.0.0.1:0", limited_handler, &l);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(green_server_set_max_connections(s, 2), 0);
    ck_assert_int_eq(green_server_start(s), 0);
    int port = green_server_port(s);
    int c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = green_tcp_connect("127.0.0.1", port, 5);
        ck_assert_int_ge(c[i], 0);
    }
    green_sleep(0.05);
    ck_assert_int_eq(l.running, 2); /* the third waits in the backlog */
    ck_assert_int_eq(green_write(c[0], "x", 1), 1);
    green_sleep(0.05);
    ck_assert_int_eq(l.served, 1);
    ck_assert_int_eq(l.running, 2); /* the third one got the slot */
    ck_assert_int_eq(green_write(c[1], "x", 1), 1);
    ck_assert_int_eq(green_write(c[2], "x", 1), 1);
    green_sleep(0.05);
    ck_assert_int_eq(l.served, 3);
    ck_assert_int_eq(l.max_seen, 2);
    for (int i = 0; i < 3; i++)
        green_close(c[i]);
    ck_assert_int_eq(green_server_stop(s, 1), 0);
    green_server_free(s);
}
END_TEST

/******************************************************************************/
/*  Stop                                                                      */
/******************************************************************************/

struct sleeper {
    double seconds;
    int started;
    int finished; /* slept the whole time */
    int err;      /* errno of the sleep if it failed */
};

static void sleepy_handler(int fd, void *arg)
{
    (void)fd;
    struct sleeper *sl = arg;
    sl->started++;
    if (green_sleep(sl->seconds) == 0)
        sl->finished++;
    else
        sl->err = errno;
}

START_TEST(stop_kills_a_handler_still_running)
{
    struct sleeper sl = {10, 0, 0, 0};
    green_server_t *s = start_server("127.0.0.1:0", sleepy_handler, &sl);
    int port = green_server_port(s);
    int c = green_tcp_connect("127.0.0.1", port, 5);
    ck_assert_int_ge(c, 0);
    green_sleep(0.02);
    ck_assert_int_eq(sl.started, 1);
    double t0 = test_now();
    ck_assert_int_eq(green_server_stop(s, 0.05), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    ck_assert_int_eq(sl.finished, 0);
    ck_assert_int_eq(sl.err, ECANCELED);
    /* Not accepting any more. */
    GREEN_ASSERT_ERRNO(green_tcp_connect("127.0.0.1", port, 5), ECONNREFUSED);
    /* The killed handler's fd was closed: the client sees EOF. */
    char buf[4];
    green_sleep(0.01);
    ck_assert_int_eq(green_read(c, buf, sizeof buf), 0);
    green_close(c);
    green_server_free(s);
}
END_TEST

START_TEST(stop_waits_for_handlers_that_finish_in_time)
{
    struct sleeper sl = {0.05, 0, 0, 0};
    green_server_t *s = start_server("127.0.0.1:0", sleepy_handler, &sl);
    int c = green_tcp_connect("127.0.0.1", green_server_port(s), 5);
    green_sleep(0.01);
    double t0 = test_now();
    ck_assert_int_eq(green_server_stop(s, 5), 0);
    double el = test_now() - t0;
    ck_assert_msg(el < 0.05 + test_slack(), "stop took %.3f s", el);
    ck_assert_int_eq(sl.finished, 1);
    green_close(c);
    green_server_free(s);
}
END_TEST

struct forever {
    green_server_t *s;
    int rc;
    int err;
};

static void *serve(void *arg)
{
    struct forever *f = arg;
    errno = 0;
    f->rc = green_server_serve_forever(f->s);
    f->err = errno;
    return NULL;
}

START_TEST(serve_forever_returns_after_stop)
{
    struct forever f = {green_server_new("127.0.0.1:0", echo_handler, NULL),
                        -2, 0};
    ck_assert_ptr_nonnull(f.s);
    green_t *g = green_spawn(serve, &f);
    green_sleep(0.01);
    check_echo(green_tcp_connect("127.0.0.1", green_server_port(f.s), 5));
    ck_assert(!green_done(g));
    ck_assert_int_eq(green_server_stop(f.s, 1), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(f.rc, 0);
    /* Started again after stop: no. */
    GREEN_ASSERT_ERRNO(green_server_start(f.s), EINVAL);
    green_release(g);
    green_server_free(f.s);
}
END_TEST

START_TEST(serve_forever_killed_stops_the_server)
{
    struct forever f = {green_server_new("127.0.0.1:0", echo_handler, NULL),
                        -2, 0};
    int port = green_server_port(f.s);
    green_t *g = green_spawn(serve, &f);
    green_sleep(0.01);
    ck_assert_int_eq(green_kill(g, 5), 0);
    ck_assert_int_eq(f.rc, -1);
    ck_assert_int_eq(f.err, ECANCELED);
    GREEN_ASSERT_ERRNO(green_tcp_connect("127.0.0.1", port, 5), ECONNREFUSED);
    green_release(g);
    green_server_free(f.s);
}
END_TEST

START_TEST(free_without_stop_closes_everything)
{
    ck_assert_ptr_nonnull(green_hub_loop()); /* its fds first */
    int fds0 = test_count_fds();
    struct sleeper sl = {10, 0, 0, 0};
    green_server_t *s = start_server("127.0.0.1:0", sleepy_handler, &sl);
    int c = green_tcp_connect("127.0.0.1", green_server_port(s), 5);
    green_sleep(0.02);
    ck_assert_int_eq(green_server_start(s), 0); /* again: no-op */
    green_server_free(s);
    green_sleep(0.02); /* the killed handler's link callback ran */
    green_close(c);
    ck_assert_int_eq(test_count_fds(), fds0);
}
END_TEST

/******************************************************************************/
/*  EMFILE                                                                    */
/******************************************************************************/

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* In a forked child (the fd limit is lowered there only).  Exit codes:
   0 ok, 77 cannot lower the limit here, else the failing step. */
static int emfile_child(void)
{
    enum { CLIENTS = 3 };
    green_server_t *s = green_server_new("127.0.0.1:0", echo_handler, NULL);
    if (!s || green_server_start(s) != 0)
        return 2;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)green_server_port(s));
    int c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        if ((c[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
            return 3;
    struct rlimit rl = {(rlim_t)test_count_fds() + 16, 0};
    struct rlimit old;
    getrlimit(RLIMIT_NOFILE, &old);
    rl.rlim_max = old.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 77;
    /* Fill the fd table. */
    int fill[64], nfill = 0;
    while (nfill < 64 && (fill[nfill] = dup(0)) >= 0)
        nfill++;
    if (nfill == 64 || errno != EMFILE)
        return 4;
    for (int i = 0; i < CLIENTS; i++)
        connect(c[i], (struct sockaddr *)&a, sizeof a);
    /* Saturated: accept fails with EMFILE; the server must not spin. */
    double cpu0 = cpu_seconds();
    green_sleep(0.5);
    double cpu = cpu_seconds() - cpu0;
    if (cpu > 0.25)
        return 5;
    /* Free some fds: the server accepts again and serves. */
    for (int i = 0; i < 8; i++)
        close(fill[--nfill]);
    for (int i = 0; i < CLIENTS; i++) {
        if (green_write_all(c[i], "ping", 4) != 4)
            return 6;
        if (green_wait_read(c[i], 5) != 0)
            return 7;
        char buf[4];
        if (green_read(c[i], buf, 4) != 4 || memcmp(buf, "ping", 4) != 0)
            return 8;
        green_close(c[i]);
    }
    if (green_server_stop(s, 1) != 0)
        return 9;
    green_server_free(s);
    green_shutdown();
    return 0;
}

START_TEST(emfile_backs_off_and_keeps_serving)
{
    /* Valgrind keeps fds of its own and refuses a lowered limit. */
    if (test_light())
        return;
    alarm(30);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(emfile_child());
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "child died by signal %d",
                  WTERMSIG(status));
    ck_assert_msg(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77,
                  "child failed at step %d", WEXITSTATUS(status));
    alarm(0);
}
END_TEST

/* Issue 11 item 2: green_server_free from another greenlet while one
   is in serve_forever, and while one is in stop: serve_forever returns
   0, stop returns normally, nothing is used after it is freed. */
struct serving {
    green_server_t *s;
    int rc;
};

static void *serve_it(void *arg)
{
    struct serving *sv = arg;
    sv->rc = green_server_serve_forever(sv->s);
    return NULL;
}

static void slow_handler(int fd, void *arg)
{
    (void)fd;
    (void)arg;
    green_sleep(0.1);
}

static void *stop_it(void *arg)
{
    struct serving *sv = arg;
    sv->rc = green_server_stop(sv->s, 2);
    return NULL;
}

START_TEST(server_free_during_serve_forever_and_stop)
{
    struct serving sv = {green_server_new("127.0.0.1:0", slow_handler, NULL),
                         -2};
    ck_assert_ptr_nonnull(sv.s);
    green_t *g = green_spawn(serve_it, &sv);
    green_yield();
    green_server_free(sv.s);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(sv.rc, 0);
    green_release(g);

    sv = (struct serving){start_server("127.0.0.1:0", slow_handler, NULL),
                          -2};
    int fd = green_tcp_connect("127.0.0.1", green_server_port(sv.s), 5);
    ck_assert_int_ge(fd, 0);
    green_sleep(0.02); /* the handler runs */
    g = green_spawn(stop_it, &sv);
    green_yield(); /* stop waits for the handler */
    green_server_free(sv.s);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(sv.rc, 0);
    green_release(g);
    green_close(fd);
}
END_TEST

/* Issue 11 item 18: after green_shutdown, green_server_free closes
   nothing twice and leaks nothing: shutdown already closed the listening
   socket and released the acceptor (the teardown counts fds, LeakSanitizer
   and Valgrind count memory). */
START_TEST(server_free_after_shutdown_leaks_nothing)
{
    int before = test_open_fds();
    green_server_t *s = start_server("127.0.0.1:0", slow_handler, NULL);
    int fd = green_tcp_connect("127.0.0.1", green_server_port(s), 5);
    ck_assert_int_ge(fd, 0);
    green_sleep(0.02); /* a handler is running */
    green_close(fd);
    green_shutdown();
    ck_assert_int_le(test_open_fds(), before);
    green_server_free(s);
    GREEN_ASSERT_ERRNO(green_server_start(s = NULL), EINVAL);
}
END_TEST

static Suite *server_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("serve");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_1000_concurrent_clients_every_byte_checked);
    tcase_add_test(tc, fd_is_closed_when_handler_returns);
    tcase_add_test(tc, address_forms);
    tcase_add_test(tc, unix_socket_server);
    tcase_add_test(tc, bad_addresses_are_EINVAL);
    tcase_add_test(tc, connection_limit_holds_accept_while_full);
    suite_add_tcase(s, tc);

    tc = tcase_create("stop");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, stop_kills_a_handler_still_running);
    tcase_add_test(tc, stop_waits_for_handlers_that_finish_in_time);
    tcase_add_test(tc, serve_forever_returns_after_stop);
    tcase_add_test(tc, serve_forever_killed_stops_the_server);
    tcase_add_test(tc, free_without_stop_closes_everything);
    tcase_add_test(tc, server_free_during_serve_forever_and_stop);
    tcase_add_test(tc, server_free_after_shutdown_leaks_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("overload");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, emfile_backs_off_and_keeps_serving);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(server_suite)
