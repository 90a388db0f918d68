/* The bad-input matrix: every public function called with NULL handles,
   NULL buffers, negative or NaN timeouts, closed or invalid fds, and
   from the wrong context (the hub: a link callback).  Each row states
   the documented errno; nothing may crash or leak (the suite also runs
   under Valgrind and ASan). */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

#include "testutil.h"

typedef long (*call_fn)(void);

struct row {
    const char *name; /* the call, as a reader would write it */
    call_fn call;     /* returns the call's result as a long */
    int err;          /* expected errno with a -1 or NULL result */
};

static int closed_fd(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    return p[0];
}

static void noop_handler(int fd, void *arg)
{
    (void)fd;
    (void)arg;
}

static char buf[16];

/* One function per row keeps every call's exact arguments readable. */
#define CALL(id, expr)                                                    \
    static long id(void) { return (long)(intptr_t)(expr); }

CALL(spawn_null, green_spawn(NULL, NULL))
CALL(spawn_later_nan, green_spawn_later(NAN, test_noop, NULL))
CALL(new_null, green_new(NULL, NULL, NULL))
CALL(new_tiny_stack,
     green_new(test_noop, NULL, &(green_attr_t){.stack_size = 4096}))
CALL(start_null, green_start(NULL))
CALL(start_later_null, green_start_later(NULL, 1))
CALL(join_null, green_join(NULL, -1))
CALL(joinall_null, green_joinall(NULL, 2, -1))
CALL(kill_null, green_kill(NULL, 0))
CALL(killall_null, green_killall(NULL, 2, 0))
CALL(link_null, green_link(NULL, NULL, NULL))
CALL(sleep_nan, green_sleep(NAN))
CALL(timeout_nan, green_timeout_start(NAN))
CALL(wait_read_bad, green_wait_read(-1, 0.01))
CALL(wait_write_closed, green_wait_write(closed_fd(), 0.01))
CALL(wait_read_nan, green_wait_read(0, NAN))
CALL(read_bad, green_read(-1, buf, sizeof buf))
CALL(read_closed, green_read(closed_fd(), buf, sizeof buf))
CALL(write_closed, green_write(closed_fd(), buf, sizeof buf))
CALL(write_all_closed, green_write_all(closed_fd(), buf, sizeof buf))
CALL(readv_bad, green_readv(-1, NULL, 0))
CALL(writev_bad, green_writev(-1, NULL, 0))
CALL(recv_bad, green_recv(-1, buf, sizeof buf, 0))
CALL(send_bad, green_send(-1, buf, sizeof buf, 0))
CALL(recvfrom_bad, green_recvfrom(-1, buf, sizeof buf, 0, NULL, NULL))
CALL(sendto_bad, green_sendto(-1, buf, sizeof buf, 0, NULL, 0))
CALL(recvmsg_bad, green_recvmsg(-1, &(struct msghdr){0}, 0))
CALL(sendmsg_bad, green_sendmsg(-1, &(struct msghdr){0}, 0))
CALL(accept_bad, green_accept(-1, NULL, NULL))
CALL(connect_bad, green_connect(-1, NULL, 0))
CALL(close_bad, green_close(-1))
CALL(close_closed, green_close(closed_fd()))
CALL(poll_null, green_poll(NULL, 3, 0))
CALL(select_negative, green_select(-1, NULL, NULL, NULL, NULL))
CALL(tcp_listen_bad_port, green_tcp_listen("127.0.0.1", 70000, 1))
CALL(tcp_connect_bad_port, green_tcp_connect("127.0.0.1", -1, 1))
CALL(tcp_connect_nan, green_tcp_connect("127.0.0.1", 1, NAN))
CALL(threadpool_null, green_threadpool_call(NULL, NULL, NULL))
CALL(threadpool_size_zero, green_threadpool_set_size(0))
CALL(event_set_null, green_event_set(NULL))
CALL(event_wait_null, green_event_wait(NULL, -1))
CALL(result_get_null, green_result_get(NULL, -1, NULL))
CALL(sem_acquire_null, green_sem_acquire(NULL, -1))
CALL(sem_release_null, green_sem_release(NULL))
CALL(lock_acquire_null, green_lock_acquire(NULL, -1))
CALL(lock_release_null, green_lock_release(NULL))
CALL(cond_wait_null, green_cond_wait(NULL, NULL, -1))
CALL(queue_put_null, green_queue_put(NULL, NULL, -1))
CALL(queue_get_null, green_queue_get(NULL, NULL, -1))
CALL(queue_join_null, green_queue_join(NULL, -1))
CALL(pool_spawn_null, green_pool_spawn(NULL, test_noop, NULL))
CALL(pool_join_null, green_pool_join(NULL, -1))
CALL(pool_map_null, green_pool_map(NULL, test_noop, NULL, NULL, 1))
CALL(imap_next_null, green_imap_next(NULL, NULL))
CALL(server_new_null, green_server_new(NULL, noop_handler, NULL))
CALL(server_new_bad, green_server_new("no-port-here", noop_handler, NULL))
CALL(server_start_null, green_server_start(NULL))
CALL(server_stop_null, green_server_stop(NULL, 0))
CALL(signal_wait_bad, green_signal_wait(0, 0.01))
CALL(signal_wait_nan, green_signal_wait(SIGUSR1, NAN))
CALL(waitpid_no_child, green_waitpid(getpid() + 100000, NULL, 0))
CALL(hub_attach_null, green_hub_attach(NULL))
CALL(hub_spawn_null, green_hub_spawn(NULL, test_noop, NULL))
CALL(monitor_nan, green_monitor_start(NAN))

#define R(id, e) {#id, id, e}

static const struct row rows[] = {
    R(spawn_null, EINVAL),          R(spawn_later_nan, EINVAL),
    R(new_null, EINVAL),            R(new_tiny_stack, EINVAL),
    R(start_null, EINVAL),          R(start_later_null, EINVAL),
    R(join_null, EINVAL),           R(joinall_null, EINVAL),
    R(kill_null, EINVAL),           R(killall_null, EINVAL),
    R(link_null, EINVAL),           R(sleep_nan, EINVAL),
    R(timeout_nan, EINVAL),         R(wait_read_bad, EBADF),
    R(wait_write_closed, EBADF),    R(wait_read_nan, EINVAL),
    R(read_bad, EBADF),             R(read_closed, EBADF),
    R(write_closed, EBADF),         R(write_all_closed, EBADF),
    R(readv_bad, EBADF),            R(writev_bad, EBADF),
    R(recv_bad, EBADF),             R(send_bad, EBADF),
    R(recvfrom_bad, EBADF),         R(sendto_bad, EBADF),
    R(recvmsg_bad, EBADF),          R(sendmsg_bad, EBADF),
    R(accept_bad, EBADF),           R(connect_bad, EBADF),
    R(close_bad, EBADF),            R(close_closed, EBADF),
    R(poll_null, EFAULT),           R(select_negative, EINVAL),
    R(tcp_listen_bad_port, EINVAL), R(tcp_connect_bad_port, EINVAL),
    R(tcp_connect_nan, EINVAL),     R(threadpool_null, EINVAL),
    R(threadpool_size_zero, EINVAL), R(event_set_null, EINVAL),
    R(event_wait_null, EINVAL),     R(result_get_null, EINVAL),
    R(sem_acquire_null, EINVAL),    R(sem_release_null, EINVAL),
    R(lock_acquire_null, EINVAL),   R(lock_release_null, EINVAL),
    R(cond_wait_null, EINVAL),      R(queue_put_null, EINVAL),
    R(queue_get_null, EINVAL),      R(queue_join_null, EINVAL),
    R(pool_spawn_null, EINVAL),     R(pool_join_null, EINVAL),
    R(pool_map_null, EINVAL),       R(imap_next_null, EINVAL),
    R(server_new_null, EINVAL),     R(server_new_bad, EINVAL),
    R(server_start_null, EINVAL),   R(server_stop_null, EINVAL),
    R(signal_wait_bad, EINVAL),     R(signal_wait_nan, EINVAL),
    R(waitpid_no_child, ECHILD),    R(hub_attach_null, EINVAL),
    R(hub_spawn_null, EINVAL),      R(monitor_nan, EINVAL),
};
#define NROWS (sizeof rows / sizeof rows[0])

static void check_row(const struct row *r)
{
    errno = 0;
    long rc = r->call();
    int e = errno;
    ck_assert_msg((rc == -1 || rc == 0) && e == r->err,
                  "%s: rc=%ld errno=%s (%d), expected %s", r->name, rc,
                  strerror(e), e, strerror(r->err));
}

START_TEST(matrix_from_a_greenlet_context)
{
    check_row(&rows[_i]);
}
END_TEST

/* From the hub (a link callback) every blocking call is EDEADLK. */
static int hub_errs[16];
static int fds[2];

static void from_the_hub(green_t *g, void *arg)
{
    (void)g;
    (void)arg;
    int k = 0;
    char c;
    green_event_t *e = green_event_new();
    green_queue_t *q = green_queue_new(1);
    green_lock_t *l = green_lock_new(0);
    void *item;
    hub_errs[k++] = green_sleep(0.01) == -1 ? errno : 0;
    hub_errs[k++] = green_yield() == -1 ? errno : 0;
    hub_errs[k++] = green_read(fds[0], &c, 1) == -1 ? errno : 0;
    hub_errs[k++] = green_wait_read(fds[0], -1) == -1 ? errno : 0;
    hub_errs[k++] = green_event_wait(e, -1) == -1 ? errno : 0;
    hub_errs[k++] = green_queue_get(q, &item, -1) == -1 ? errno : 0;
    green_t *later = green_new(test_noop, NULL, NULL);
    hub_errs[k++] = green_join(later, -1) == -1 ? errno : 0;
    green_release(later);
    hub_errs[k++] = green_run() == -1 ? errno : 0;
    hub_errs[k++] = green_signal_wait(SIGUSR2, 1) == -1 ? errno : 0;
    hub_errs[k++] = green_threadpool_call(test_noop, NULL, &item) == -1 ? errno : 0;
    green_lock_free(l);
    green_queue_free(q);
    green_event_free(e);
}

START_TEST(blocking_from_the_hub_is_edeadlk)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    memset(hub_errs, 0xff, sizeof hub_errs);
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, from_the_hub, NULL), 0);
    ck_assert_int_eq(green_run(), 0);
    for (int i = 0; i < 10; i++)
        ck_assert_msg(hub_errs[i] == EDEADLK, "call %d: errno %d", i,
                      hub_errs[i]);
    green_release(g);
    green_close(fds[0]);
    green_close(fds[1]);
}
END_TEST

START_TEST(zero_timeouts_are_eagain_and_negative_waits)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    GREEN_ASSERT_ERRNO(green_wait_read(fds[0], 0), EAGAIN);
    green_event_t *e = green_event_new();
    GREEN_ASSERT_ERRNO(green_event_wait(e, 0), EAGAIN);
    green_event_free(e);
    /* A negative timeout waits: the data arrives 10 ms later. */
    green_timeout_t *t = green_timeout_start(5);
    ck_assert_int_eq(green_write(fds[1], "x", 1), 1);
    ck_assert_int_eq(green_wait_read(fds[0], -1), 0);
    green_timeout_cancel(t);
    green_close(fds[0]);
    green_close(fds[1]);
}
END_TEST

static Suite *badinput_suite(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = tcase_create("matrix");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_loop_test(tc, matrix_from_a_greenlet_context, 0, (int)NROWS);
    suite_add_tcase(s, tc);
    tc = tcase_create("context");
    tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
    tcase_add_test(tc, blocking_from_the_hub_is_edeadlk);
    tcase_add_test(tc, zero_timeouts_are_eagain_and_negative_waits);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(badinput_suite)
