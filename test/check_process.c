/* green_waitpid (ev_child) and green_fork.

   Fd waits here use a raw ev_io watcher on the hub's loop (wait_fd below)
   so that these tests need only the core: the callback kills a "gate"
   greenlet that the waiting greenlet joins. */
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "testutil.h"

/* In a forked child: exit with `code` unless cond holds. */
#define CHILD_CHECK(cond, code)                                             \
    do {                                                                    \
        if (!(cond))                                                        \
            _exit(code);                                                    \
    } while (0)

/* Parent side: the child exited with status 0. */
#define ASSERT_CHILD_OK(status)                                             \
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,            \
                  "child: exited %d status %d, signalled %d sig %d",        \
                  WIFEXITED(status), WEXITSTATUS(status),                   \
                  WIFSIGNALED(status),                                      \
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0)

/* Parent side: waitfn (waitpid or green_waitpid) reaps pid, which exited
   with status 0. */
#define ASSERT_CHILD_REAPED_OK(waitfn, pid)                                 \
    do {                                                                    \
        int status_ = -1;                                                   \
        ck_assert_int_eq(waitfn(pid, &status_, 0), pid);                    \
        ASSERT_CHILD_OK(status_);                                           \
    } while (0)

static void *gate_body(void *a)
{
    (void)a;
    green_sleep(3600);
    return NULL;
}

struct fdwait {
    ev_io io;       /* first: the callback casts */
    green_t *gate;
};

static void fdwait_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct fdwait *f = (struct fdwait *)w;
    ev_io_stop(loop, w);
    green_kill(f->gate, 0);
}

/* Wait until fd is readable: 0, or -1 with errno (ETIMEDOUT, ECANCELED). */
static int wait_fd(int fd, double timeout)
{
    struct fdwait f;
    f.gate = green_spawn(gate_body, NULL);
    if (!f.gate)
        return -1;
    ev_io_init(&f.io, fdwait_cb, fd, EV_READ);
    ev_io_start(green_hub_loop(), &f.io);
    int rc = green_join(f.gate, timeout);
    int err = errno;
    ev_io_stop(green_hub_loop(), &f.io);
    if (!green_done(f.gate))
        green_kill(f.gate, 0);
    green_release(f.gate);
    errno = err;
    return rc;
}

static int ticks; /* counted by test_ticker */

static pid_t fork_exit_after(double seconds, int code)
{
    pid_t pid = fork();
    if (pid == 0) {
        usleep((useconds_t)(seconds * 1e6));
        _exit(code);
    }
    return pid;
}

/* A child that exits with code once *wfd (the write end of its pipe,
   returned to the caller) is closed: its exit comes exactly when the
   test wants it, however slow the machine (Valgrind). */
static pid_t fork_exit_on_close(int *wfd, int code)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        _exit(read(p[0], &c, 1) == 0 ? code : 1);
    }
    close(p[0]);
    *wfd = p[1];
    return pid;
}

/******************************************************************************/
/*  green_waitpid                                                             */
/******************************************************************************/

START_TEST(waitpid_while_other_greenlets_tick)
{
    alarm(20);
    green_t *t = green_spawn(test_ticker, &ticks);
    pid_t pid = fork_exit_after(0.1, 7);
    ck_assert_int_gt(pid, 0);
    int status = -1;
    double t0 = test_now();
    ck_assert_int_eq(green_waitpid(pid, &status, 0), pid);
    ck_assert_msg(test_now() - t0 >= 0.05, "returned before the child ended");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 7);
    ck_assert_msg(ticks >= 3, "other greenlets blocked: %d ticks", ticks);
    ck_assert_int_eq(green_kill(t, 1), 0);
    green_release(t);
    /* Reaped exactly once. */
    GREEN_ASSERT_ERRNO(green_waitpid(pid, &status, WNOHANG), ECHILD);
    alarm(0);
}
END_TEST

START_TEST(waitpid_reports_signal_death)
{
    alarm(20);
    pid_t pid = fork();
    if (pid == 0) {
        /* Check's SIGTERM handler (inherited) would kill its group. */
        signal(SIGTERM, SIG_DFL);
        pause();
        _exit(0);
    }
    ck_assert_int_eq(green_sleep(0.02), 0);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    int status = 0;
    ck_assert_int_eq(green_waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGTERM);
    alarm(0);
}
END_TEST

START_TEST(wnohang_returns_at_once)
{
    alarm(20);
    pid_t pid = fork_exit_after(0.1, 3);
    int status = -1;
    double t0 = test_now();
    ck_assert_int_eq(green_waitpid(pid, &status, WNOHANG), 0);
    ck_assert_msg(test_now() - t0 < test_prompt(), "WNOHANG waited");
    ck_assert_int_eq(green_sleep(0.3), 0);
    /* Meanwhile libev reaped it: the status was kept for us. */
    ck_assert_int_eq(green_waitpid(pid, &status, WNOHANG), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 3);
    alarm(0);
}
END_TEST

START_TEST(status_of_child_that_exited_unwatched_is_kept)
{
    alarm(20);
    /* green_fork starts the catch-all watcher before the child exists. */
    pid_t pid = green_fork();
    if (pid == 0)
        _exit(5);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(green_sleep(0.2), 0); /* the loop reaps it */
    int status = -1;
    ck_assert_int_eq(green_waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 5);
    alarm(0);
}
END_TEST

struct pid_wait {
    pid_t pid;
    int options;
    pid_t rc;
    int err, status;
};

static void *pid_waiter(void *a)
{
    struct pid_wait *w = a;
    errno = 0;
    w->rc = green_waitpid(w->pid, &w->status, w->options);
    w->err = errno;
    return NULL;
}

/* The child a green_waitpid(x) waits for is never taken by a pid -1
   wait, whoever polls first: here x has exited and its waiter has not
   run yet (the main greenlet waits for the exit with a plain waitid
   that blocks the thread and reaps nothing), and a pid -1 WNOHANG poll
   comes first.  Both the pidfd and the polling forms (WUNTRACED polls). */
static void claimed_child_is_left_to_its_waiter(int options)
{
    /* x exits once its pipe is closed: after its waiter parked. */
    int xfd;
    pid_t x = fork_exit_on_close(&xfd, 21);
    ck_assert_int_gt(x, 0);
    pid_t y = fork_exit_after(0.2, 22);
    struct pid_wait wx = {x, options, 0, 0, 0};
    green_t *gx = green_spawn(pid_waiter, &wx);
    ck_assert_int_eq(green_yield(), 0); /* gx parked for x */
    ck_assert_int_eq(wx.rc, 0);
    close(xfd);
    siginfo_t si;
    int rc;
    while ((rc = waitid(P_PID, (id_t)x, &si, WEXITED | WNOWAIT)) < 0 &&
           errno == EINTR)
        ;
    ck_assert_msg(rc == 0, "waitid: %s", strerror(errno));
    int status = 0;
    ck_assert_int_eq(green_waitpid(-1, &status, WNOHANG), 0);
    ck_assert_int_eq(green_join(gx, 5), 0);
    ck_assert_int_eq(wx.rc, x);
    ck_assert_int_eq(WEXITSTATUS(wx.status), 21);
    ck_assert_int_eq(green_waitpid(-1, &status, 0), y);
    ck_assert_int_eq(WEXITSTATUS(status), 22);
    green_release(gx);
}

START_TEST(pid_minus_one_leaves_a_claimed_child)
{
    alarm(20);
    claimed_child_is_left_to_its_waiter(0);
    claimed_child_is_left_to_its_waiter(WUNTRACED);
    alarm(0);
}
END_TEST

START_TEST(any_child_and_specific_waiters)
{
    alarm(20);
    pid_t x = fork_exit_after(0.05, 11);
    pid_t y = fork_exit_after(0.15, 12);
    struct pid_wait wx = {x, 0, 0, 0, 0};
    green_t *gx = green_spawn(pid_waiter, &wx);
    ck_assert_int_eq(green_yield(), 0); /* gx parked for x first */
    int status = 0;
    /* x goes to its own waiter, y to the pid -1 waiter. */
    ck_assert_int_eq(green_waitpid(-1, &status, 0), y);
    ck_assert_int_eq(WEXITSTATUS(status), 12);
    ck_assert_int_eq(green_join(gx, 5), 0);
    ck_assert_int_eq(wx.rc, x);
    ck_assert_int_eq(WEXITSTATUS(wx.status), 11);
    GREEN_ASSERT_ERRNO(green_waitpid(-1, &status, 0), ECHILD);
    green_release(gx);
    alarm(0);
}
END_TEST

START_TEST(kill_during_waitpid_then_collect_later)
{
    alarm(20);
    pid_t pid = fork_exit_after(0.1, 9);
    struct pid_wait w = {pid, 0, 0, 0, 0};
    green_t *g = green_spawn(pid_waiter, &w);
    ck_assert_int_eq(green_sleep(0.02), 0);
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_int_eq(w.err, ECANCELED);
    int status = 0;
    ck_assert_int_eq(green_waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 9);
    green_release(g);
    alarm(0);
}
END_TEST

START_TEST(wuntraced_reports_stop)
{
    alarm(20);
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(0);
    }
    int status = 0;
    ck_assert_int_eq(green_waitpid(pid, &status, WUNTRACED), pid);
    ck_assert(WIFSTOPPED(status));
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(green_waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGKILL);
    alarm(0);
}
END_TEST

static void *thread_waitpid(void *a)
{
    struct pid_wait *w = a;
    /* This thread's hub has its own loop: green_waitpid polls. */
    green_t *t = green_spawn(test_ticker, &ticks);
    errno = 0;
    w->rc = green_waitpid(w->pid, &w->status, 0);
    w->err = errno;
    green_kill(t, 1);
    green_release(t);
    green_shutdown();
    return NULL;
}

START_TEST(waitpid_from_non_main_thread_polls)
{
    alarm(20);
    /* The child exits once the thread's ticker ticked three times while
       the thread waits (or after 10 s if it never does), however loaded
       the machine: a fixed delay was too short under load. */
    int wfd;
    struct pid_wait w = {fork_exit_on_close(&wfd, 4), 0, 0, 0, 0};
    ck_assert_int_gt(w.pid, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_waitpid, &w), 0);
    for (int i = 0; i < 10000 && __atomic_load_n(&ticks, __ATOMIC_SEQ_CST) < 3;
         i++)
        usleep(1000);
    close(wfd);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(w.rc, w.pid);
    ck_assert(WIFEXITED(w.status));
    ck_assert_int_eq(WEXITSTATUS(w.status), 4);
    ck_assert_msg(ticks >= 3, "thread's greenlets blocked: %d", ticks);
    alarm(0);
}
END_TEST

static int link_rc, link_err;
static void waitpid_in_link(green_t *g, void *arg)
{
    (void)g;
    errno = 0;
    link_rc = green_waitpid((pid_t)(intptr_t)arg, NULL, 0);
    link_err = errno;
}

START_TEST(waitpid_errors)
{
    alarm(20);
    int status;
    GREEN_ASSERT_ERRNO(green_waitpid(0, &status, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_waitpid(-5, &status, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_waitpid(-1, &status, 0x40000), EINVAL);
    GREEN_ASSERT_ERRNO(green_waitpid(getpid(), &status, 0), ECHILD);
    GREEN_ASSERT_ERRNO(green_waitpid(-1, &status, 0), ECHILD);
    /* Blocking from the hub is EDEADLK; WNOHANG is fine there. */
    int wfd;
    pid_t pid = fork_exit_on_close(&wfd, 0);
    ck_assert_int_gt(pid, 0);
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, waitpid_in_link, (void *)(intptr_t)pid),
                     0);
    ck_assert_int_eq(green_join(g, 1), 0);
    ck_assert_int_eq(green_sleep(0.01), 0);
    ck_assert_int_eq(link_rc, -1);
    ck_assert_int_eq(link_err, EDEADLK);
    close(wfd);
    ck_assert_int_eq(green_waitpid(pid, NULL, 0), pid); /* status NULL ok */
    green_release(g);
    alarm(0);
}
END_TEST

/******************************************************************************/
/*  green_fork                                                                */
/******************************************************************************/

static void *sleep_then(void *a)
{
    int *flag = a;
    if (green_sleep(0.1) == 0)
        (*flag)++;
    return NULL;
}

static void *fd_reader(void *a)
{
    int fd = (int)(intptr_t)a;
    if (wait_fd(fd, -1) != 0)
        return (void *)(intptr_t)-errno;
    char c;
    return (void *)(intptr_t)(read(fd, &c, 1) == 1 ? c : -1000);
}

static void *writer_after(void *a)
{
    int fd = (int)(intptr_t)a;
    green_sleep(0.02);
    return (void *)(intptr_t)write(fd, "ping", 4);
}

START_TEST(fork_child_spawns_sleeps_does_io_and_exits_0)
{
    /* Prime the hub with a timer and an fd watcher first. */
    alarm(20);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int slept = 0;
    green_t *timer = green_spawn(sleep_then, &slept);
    green_t *reader = green_spawn(fd_reader, (void *)(intptr_t)sv[0]);
    ck_assert_int_eq(green_sleep(0.01), 0);

    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* A fresh timer, spawns, sleeps, socketpair I/O. */
        double t0 = test_now();
        CHILD_CHECK(green_sleep(0.03) == 0, 10);
        CHILD_CHECK(test_now() - t0 >= 0.03 - 0.001, 11);
        int p[2];
        CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0, 12);
        green_t *w = green_spawn(writer_after, (void *)(intptr_t)p[1]);
        CHILD_CHECK(w != NULL, 13);
        CHILD_CHECK(wait_fd(p[0], 5) == 0, 14);
        char buf[8];
        CHILD_CHECK(read(p[0], buf, sizeof buf) == 4, 15);
        CHILD_CHECK(memcmp(buf, "ping", 4) == 0, 16);
        CHILD_CHECK(green_join(w, 1) == 0, 17);
        CHILD_CHECK(green_value(w) == (void *)(intptr_t)4, 18);
        green_release(w);
        /* The inherited greenlets are there and can be killed. */
        CHILD_CHECK(green_kill(reader, 1) == 0, 19);
        CHILD_CHECK(green_kill(timer, 1) == 0, 20);
        green_release(reader);
        green_release(timer);
        green_shutdown();
        _exit(0);
    }
    ASSERT_CHILD_REAPED_OK(green_waitpid, pid);
    /* The parent is unaffected: its timer fired, its fd watcher works. */
    ck_assert_int_eq(green_join(timer, 5), 0);
    ck_assert_int_eq(slept, 1);
    ck_assert_int_eq(write(sv[1], "z", 1), 1);
    ck_assert_int_eq(green_join(reader, 5), 0);
    ck_assert_ptr_eq(green_value(reader), (void *)(intptr_t)'z');
    green_release(timer);
    green_release(reader);
    close(sv[0]);
    close(sv[1]);
    alarm(0);
}
END_TEST

/* The fork test's watcher: counts events and consumes what it reads. */
struct counting {
    ev_io io;
    int events;
    char got[16];
    size_t len;
};

static void counting_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct counting *c = (struct counting *)w;
    c->events++;
    ssize_t n = read(w->fd, c->got + c->len, sizeof c->got - 1 - c->len);
    if (n > 0)
        c->len += (size_t)n;
}

START_TEST(watcher_started_before_fork_fires_once_in_child)
{
    /* (libuv fork_socketpair_started) */
    alarm(20);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct counting c = {.events = 0, .len = 0};
    ev_io_init(&c.io, counting_cb, sv[0], EV_READ);
    ev_io_start(green_hub_loop(), &c.io);
    ck_assert_int_eq(green_sleep(0.01), 0); /* registered with epoll */

    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        double deadline = test_now() + 5;
        while (c.events == 0 && test_now() < deadline)
            CHILD_CHECK(green_sleep(0.005) == 0, 10);
        CHILD_CHECK(c.events == 1, 11);
        CHILD_CHECK(green_sleep(0.05) == 0, 12);
        CHILD_CHECK(c.events == 1, 13); /* not delivered twice */
        CHILD_CHECK(c.len == 2 && memcmp(c.got, "hi", 2) == 0, 14);
        ev_io_stop(green_hub_loop(), &c.io);
        _exit(0);
    }
    ck_assert_int_eq(write(sv[1], "hi", 2), 2);
    /* Wait without running our loop, as libuv's test does. */
    ASSERT_CHILD_REAPED_OK(waitpid, pid);
    ck_assert_int_eq(c.events, 0);
    /* The child consumed the data: nothing fires here... */
    ck_assert_int_eq(green_sleep(0.05), 0);
    ck_assert_int_eq(c.events, 0);
    /* ...and the parent's watcher still works, once per write. */
    ck_assert_int_eq(write(sv[1], "p", 1), 1);
    double deadline = test_now() + 5;
    while (c.events == 0 && test_now() < deadline)
        ck_assert_int_eq(green_sleep(0.005), 0);
    ck_assert_int_eq(green_sleep(0.02), 0);
    ck_assert_int_eq(c.events, 1);
    ck_assert_int_eq((int)c.len, 1);
    ck_assert_int_eq(c.got[0], 'p');
    ev_io_stop(green_hub_loop(), &c.io);
    close(sv[0]);
    close(sv[1]);
    alarm(0);
}
END_TEST

static void *job_double(void *a)
{
    return (void *)((intptr_t)a * 2);
}

static atomic_int jobs_started;
static void *job_sleep(void *a)
{
    atomic_fetch_add(&jobs_started, 1);
    usleep((useconds_t)(intptr_t)a);
    return a;
}

struct tp_call {
    int rc, err;
};

static void *tp_caller(void *a)
{
    struct tp_call *c = a;
    errno = 0;
    c->rc = green_threadpool_call(job_sleep, (void *)(intptr_t)300000, NULL);
    c->err = errno;
    return NULL;
}

static void *short_tp_caller(void *a)
{
    (void)a;
    return (void *)(intptr_t)green_threadpool_call(job_sleep,
                                                   (void *)100000, NULL);
}

START_TEST(threadpool_works_in_child)
{
    /* Live workers at fork time, one running a job. */
    alarm(30);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(green_threadpool_call(job_double, NULL, NULL), 0);
    struct tp_call inflight = {9, 0};
    atomic_store(&jobs_started, 0);
    green_t *g = green_spawn(tp_caller, &inflight);
    /* Running in a worker (not just queued) when we fork. */
    double deadline = test_now() + 10;
    while (atomic_load(&jobs_started) == 0 && test_now() < deadline)
        ck_assert_int_eq(green_sleep(0.001), 0);
    ck_assert_int_eq(atomic_load(&jobs_started), 1);

    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The running job's worker is gone: its caller fails. */
        CHILD_CHECK(green_join(g, 5) == 0, 10);
        CHILD_CHECK(inflight.rc == -1 && inflight.err == ECANCELED, 11);
        void *r = NULL;
        CHILD_CHECK(green_threadpool_call(job_double, (void *)4, &r) == 0,
                    12);
        CHILD_CHECK(r == (void *)8, 13);
        struct addrinfo *res = NULL;
        CHILD_CHECK(green_getaddrinfo("localhost", NULL, NULL, &res) == 0,
                    14);
        freeaddrinfo(res);
        /* Workers come back in parallel. */
        green_t *p[5];
        double t0 = test_now();
        for (int i = 0; i < 5; i++)
            p[i] = green_spawn(short_tp_caller, NULL);
        CHILD_CHECK(green_joinall(p, 5, 5) == 0, 15);
        CHILD_CHECK(test_now() - t0 < 0.1 + 3 * test_slack(), 16);
        for (int i = 0; i < 5; i++) {
            CHILD_CHECK(green_value(p[i]) == NULL, 17);
            green_release(p[i]);
        }
        green_release(g);
        green_shutdown();
        _exit(0);
    }
    /* The parent's call completes normally. */
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(inflight.rc, 0);
    ASSERT_CHILD_REAPED_OK(green_waitpid, pid);
    green_release(g);
    alarm(0);
}
END_TEST

/* Two greenlets alive across a fork: a sleeps then sets *done, b
   reads one byte from k->sv[0] and returns it. */
struct kept {
    int sv[2];
    int a_done;
    green_t *a, *b;
};

static void kept_start(struct kept *k)
{
    alarm(20);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, k->sv), 0);
    k->a_done = 0;
    k->a = green_spawn(sleep_then, &k->a_done);
    k->b = green_spawn(fd_reader, (void *)(intptr_t)k->sv[0]);
    ck_assert_int_eq(green_sleep(0.01), 0);
}

/* In the parent, after the child: b gets `byte` from us. */
static void kept_finish(struct kept *k, char byte)
{
    ck_assert_int_eq(green_join(k->a, 5), 0);
    ck_assert_int_eq(k->a_done, 1);
    ck_assert_int_eq(green_done(k->b), 0);
    ck_assert_int_eq(write(k->sv[1], &byte, 1), 1);
    ck_assert_int_eq(green_join(k->b, 5), 0);
    ck_assert_ptr_eq(green_value(k->b), (void *)(intptr_t)byte);
    green_release(k->a);
    green_release(k->b);
    close(k->sv[0]);
    close(k->sv[1]);
    alarm(0);
}

START_TEST(kept_greenlets_run_only_when_child_yields_and_can_be_killed)
{
    /* gevent's policy: the child keeps every greenlet. */
    struct kept k;
    kept_start(&k);
    green_t *a = k.a, *b = k.b;

    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Nothing ran before we yield. */
        CHILD_CHECK(!green_done(a) && !green_done(b) && k.a_done == 0, 10);
        CHILD_CHECK(green_kill(a, 1) == 0, 11);
        CHILD_CHECK(green_error(a) == ECANCELED, 12);
        CHILD_CHECK(green_kill(b, 1) == 0, 13);
        CHILD_CHECK(green_error(b) == ECANCELED, 14);
        /* a's timer never fires here after the kill. */
        CHILD_CHECK(green_sleep(0.15) == 0, 15);
        CHILD_CHECK(k.a_done == 0, 16);
        green_release(a);
        green_release(b);
        _exit(0);
    }
    ASSERT_CHILD_REAPED_OK(green_waitpid, pid);
    /* In the parent both run on. */
    kept_finish(&k, 'q');
}
END_TEST

START_TEST(kept_greenlets_run_in_child_each_event_once)
{
    /* Other half: the child yields and its copies run. */
    struct kept k;
    kept_start(&k);
    green_t *a = k.a, *b = k.b;
    int *sv = k.sv;

    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        CHILD_CHECK(green_join(a, 5) == 0 && k.a_done == 1, 10);
        CHILD_CHECK(write(sv[1], "c", 1) == 1, 11);
        CHILD_CHECK(green_join(b, 5) == 0, 12);
        CHILD_CHECK(green_value(b) == (void *)(intptr_t)'c', 13);
        green_release(a);
        green_release(b);
        _exit(0);
    }
    /* Do not run our loop until the child is done: it reads the byte. */
    ASSERT_CHILD_REAPED_OK(waitpid, pid);
    /* The child's byte was consumed there: b waits for ours. */
    ck_assert_int_eq(green_sleep(0.05), 0);
    kept_finish(&k, 'p');
}
END_TEST

static void *sig_waiter(void *a)
{
    (void)a;
    return (void *)(intptr_t)green_signal_wait(SIGUSR1, 5);
}

START_TEST(fork_keeps_signal_mask_and_waiters)
{
    /* The mask is not changed by green_fork (so an exec
       in the child starts with the parent's mask, here empty), and a kept
       signal waiter in the child wakes for the child's own signal. */
    alarm(20);
    sigset_t empty, cur;
    sigemptyset(&empty);
    ck_assert_int_eq(sigprocmask(SIG_SETMASK, &empty, NULL), 0);
    green_t *w = green_spawn(sig_waiter, NULL);
    ck_assert_int_eq(green_sleep(0.01), 0);
    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, NULL, &cur);
        for (int s = 1; s < 32; s++)
            CHILD_CHECK(!sigismember(&cur, s), 10);
        CHILD_CHECK(kill(getpid(), SIGUSR1) == 0, 11);
        CHILD_CHECK(green_join(w, 5) == 0, 12);
        CHILD_CHECK(green_value(w) == NULL, 13);
        green_release(w);
        _exit(0);
    }
    ASSERT_CHILD_REAPED_OK(green_waitpid, pid);
    /* The child's signal did not reach the parent's waiter. */
    ck_assert_int_eq(green_done(w), 0);
    ck_assert_int_eq(green_kill(w, 1), 0);
    green_release(w);
    sigprocmask(SIG_SETMASK, NULL, &cur);
    for (int s = 1; s < 32; s++)
        ck_assert(!sigismember(&cur, s));
    alarm(0);
}
END_TEST

static int depth(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    return n > 0 ? depth(n - 1) + pad[0] : 0;
}

static void *overflow(void *a)
{
    (void)a;
    return (void *)(intptr_t)depth(1 << 20);
}

START_TEST(guard_page_still_works_in_child)
{
    /* The overflow report comes from the child. */
    alarm(20);
    int errp[2];
    ck_assert_int_eq(pipe(errp), 0);
    green_t *keep = green_spawn(test_noop, NULL);
    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(errp[1], 2);
        green_attr_t attr = {.stack_size = 64 * 1024, .name = "deep"};
        green_t *g = green_new(overflow, NULL, &attr);
        green_start(g);
        green_join(g, 5);
        _exit(0); /* not reached */
    }
    close(errp[1]);
    int status = -1;
    ck_assert_int_eq(green_waitpid(pid, &status, 0), pid);
    ck_assert_msg(test_died_of_segv(status), "child status %d", status);
    char buf[512] = {0};
    ssize_t n = read(errp[0], buf, sizeof buf - 1);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(strstr(buf, "stack overflow in greenlet 'deep'"),
                  "stderr: %s", buf);
    close(errp[0]);
    ck_assert_int_eq(green_join(keep, 5), 0);
    green_release(keep);
    alarm(0);
}
END_TEST

static void *thread_forks(void *a)
{
    int *result = a;
    green_t *t = green_spawn(test_ticker, &ticks);
    *result = 0;
    if (green_threadpool_call(job_double, NULL, NULL) != 0)
        return NULL;
    pid_t pid = green_fork();
    if (pid == 0) {
        /* The child's only thread runs this (non-default-loop) hub. */
        CHILD_CHECK(green_sleep(0.02) == 0, 10);
        void *r = NULL;
        CHILD_CHECK(green_threadpool_call(job_double, (void *)5, &r) == 0,
                    11);
        CHILD_CHECK(r == (void *)10, 12);
        green_kill(t, 1);
        green_release(t);
        green_shutdown();
        _exit(0);
    }
    int status = -1;
    *result = green_waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0;
    green_kill(t, 1);
    green_release(t);
    green_shutdown();
    return NULL;
}

START_TEST(fork_from_non_main_thread_hub)
{
    alarm(20);
    int ok = 0;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_forks, &ok), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert(ok);
    alarm(0);
}
END_TEST

static void reset(void)
{
    ticks = 0;
    green_test_setup();
}

/* Issue 11 item 10: libgreen reaps only the children it is asked for.
   After cooperative waits (during which the child exits and SIGCHLD
   arrives) a plain waitpid() and system() still get their children. */
START_TEST(plain_waitpid_and_system_keep_their_children)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(4);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(green_sleep(0.01), 0);
    int status = -1;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 4);
    status = system("exit 3");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 3,
                  "system: %d", status);
}
END_TEST

/* ... and green_waitpid on a non-main hub always gets its own child
   (no reaping race), many times over. */
static void *thread_waits_children(void *arg)
{
    int *bad = arg;
    for (int i = 0; i < 20; i++) {
        pid_t pid = green_fork();
        if (pid == 0)
            _exit(i);
        int status = -1;
        if (green_waitpid(pid, &status, 0) != pid ||
            WEXITSTATUS(status) != i)
            (*bad)++;
    }
    green_shutdown();
    return NULL;
}

START_TEST(waitpid_on_a_thread_hub_gets_its_own_children)
{
    int bad = 0;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_waits_children, &bad),
                     0);
    /* Meanwhile the main hub waits cooperatively too. */
    for (int i = 0; i < 10; i++)
        green_sleep(0.005);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(bad, 0);
}
END_TEST

static Suite *process_suite(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("waitpid");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, waitpid_while_other_greenlets_tick);
    tcase_add_test(tc, waitpid_reports_signal_death);
    tcase_add_test(tc, wnohang_returns_at_once);
    tcase_add_test(tc, status_of_child_that_exited_unwatched_is_kept);
    tcase_add_test(tc, any_child_and_specific_waiters);
    tcase_add_test(tc, pid_minus_one_leaves_a_claimed_child);
    tcase_add_test(tc, kill_during_waitpid_then_collect_later);
    tcase_add_test(tc, wuntraced_reports_stop);
    tcase_add_test(tc, waitpid_from_non_main_thread_polls);
    tcase_add_test(tc, waitpid_errors);
    tcase_add_test(tc, plain_waitpid_and_system_keep_their_children);
    tcase_add_test(tc, waitpid_on_a_thread_hub_gets_its_own_children);
    suite_add_tcase(s, tc);

    tc = tcase_create("fork");
    tcase_add_checked_fixture(tc, reset, green_test_teardown);
    tcase_add_test(tc, fork_child_spawns_sleeps_does_io_and_exits_0);
    tcase_add_test(tc, watcher_started_before_fork_fires_once_in_child);
    tcase_add_test(tc, threadpool_works_in_child);
    tcase_add_test(tc,
                   kept_greenlets_run_only_when_child_yields_and_can_be_killed);
    tcase_add_test(tc, kept_greenlets_run_in_child_each_event_once);
    tcase_add_test(tc, fork_keeps_signal_mask_and_waiters);
    tcase_add_test(tc, guard_page_still_works_in_child);
    tcase_add_test(tc, fork_from_non_main_thread_hub);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(process_suite)
