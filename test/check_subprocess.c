/* Subprocesses: green_proc_spawn, communicate, wait, kill, free. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* sh -c script with the given stdin, stdout and stderr modes. */
static green_proc_t *sh(const char *script, int in, int out, int err)
{
    char *const argv[] = {"sh", "-c", (char *)script, NULL};
    green_proc_attr_t attr = {.stdin_mode = in, .stdout_mode = out,
                              .stderr_mode = err};
    green_proc_t *p = green_proc_spawn("sh", argv, &attr);
    ck_assert_msg(p != NULL, "spawn: %s", strerror(errno));
    return p;
}

/* All of p's stdout (a pipe; nothing goes to its stdin), p freed. */
static char *stdout_of(green_proc_t *p)
{
    char *out;
    ck_assert_int_eq(green_proc_communicate(p, NULL, 0, &out, NULL, NULL,
                                            NULL, 10), 0);
    green_proc_free(p);
    return out;
}

/* Kill p's child, reap it and free p. */
static void kill_and_free(green_proc_t *p)
{
    green_proc_kill(p, SIGKILL);
    ck_assert_int_eq(green_proc_wait(p, NULL, -1), 0);
    green_proc_free(p);
}

/* 1 while pid exists (running, or a zombie nobody reaped). */
static int pid_exists(pid_t pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

/* cat with pipes on its stdin and stdout. */
static green_proc_t *spawn_cat(void)
{
    char *const argv[] = {"cat", NULL};
    green_proc_attr_t attr = {.stdin_mode = GREEN_PROC_PIPE,
                              .stdout_mode = GREEN_PROC_PIPE};
    green_proc_t *p = green_proc_spawn("cat", argv, &attr);
    ck_assert_ptr_nonnull(p);
    return p;
}

START_TEST(echo_round_trip)
{
    green_proc_t *p = spawn_cat();
    ck_assert_int_gt(green_proc_pid(p), 0);
    ck_assert_int_ge(green_proc_stdin_fd(p), 0);
    ck_assert_int_ge(green_proc_stdout_fd(p), 0);
    ck_assert_int_eq(green_proc_stderr_fd(p), -1);
    GREEN_ASSERT_ERRNO(green_proc_status(p), EAGAIN);
    char *out = NULL, *err = (char *)1;
    size_t outlen = 0, errlen = 9;
    ck_assert_int_eq(green_proc_communicate(p, "hello\n", 6, &out, &outlen,
                                            &err, &errlen, 10), 0);
    ck_assert_str_eq(out, "hello\n");
    ck_assert_uint_eq(outlen, 6);
    ck_assert_ptr_null(err); /* stderr was not a pipe */
    ck_assert_uint_eq(errlen, 0);
    int st = green_proc_status(p);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Pipes closed after success; a second call returns empty output. */
    ck_assert_int_eq(green_proc_stdout_fd(p), -1);
    free(out);
    ck_assert_int_eq(green_proc_communicate(p, NULL, 0, &out, &outlen,
                                            NULL, NULL, 0), 0);
    ck_assert_str_eq(out, "");
    free(out);
    green_proc_free(p);
}
END_TEST

START_TEST(exit_status_and_both_streams)
{
    green_proc_t *p = sh("echo out; echo err >&2; exit 3",
                         GREEN_PROC_DEVNULL, GREEN_PROC_PIPE, GREEN_PROC_PIPE);
    char *out, *err;
    ck_assert_int_eq(green_proc_communicate(p, NULL, 0, &out, NULL, &err,
                                            NULL, 10), 0);
    ck_assert_str_eq(out, "out\n");
    ck_assert_str_eq(err, "err\n");
    free(out);
    free(err);
    int st = -1;
    ck_assert_int_eq(green_proc_wait(p, &st, 0), 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    ck_assert_int_eq(green_proc_status(p), st);
    green_proc_free(p);
}
END_TEST

START_TEST(stderr_into_stdout_devnull_and_cwd)
{
    green_proc_t *p = sh("echo a; echo b >&2; cat; pwd", GREEN_PROC_DEVNULL,
                         GREEN_PROC_PIPE, GREEN_PROC_STDOUT);
    char *out = stdout_of(p);
    ck_assert_msg(strncmp(out, "a\nb\n", 4) == 0, "out: %s", out);
    free(out);

    char *const argv[] = {"pwd", NULL};
    green_proc_attr_t attr = {.stdout_mode = GREEN_PROC_PIPE, .cwd = "/"};
    p = green_proc_spawn("pwd", argv, &attr);
    ck_assert_ptr_nonnull(p);
    out = stdout_of(p);
    ck_assert_str_eq(out, "/\n");
    free(out);

    char *const envp[] = {"GREEN_SUB_TEST=42", NULL};
    char *const argv2[] = {"sh", "-c", "echo $GREEN_SUB_TEST", NULL};
    green_proc_attr_t attr2 = {.stdout_mode = GREEN_PROC_PIPE,
                               .envp = envp};
    p = green_proc_spawn("/bin/sh", argv2, &attr2);
    ck_assert_ptr_nonnull(p);
    out = stdout_of(p);
    ck_assert_str_eq(out, "42\n");
    free(out);
}
END_TEST

START_TEST(signal_death_status)
{
    green_proc_t *p = sh("exec sleep 10", 0, 0, 0);
    ck_assert_int_eq(green_proc_kill(p, 0), 0);
    ck_assert_int_eq(green_proc_kill(p, SIGTERM), 0);
    int st = -1;
    ck_assert_int_eq(green_proc_wait(p, &st, 10), 0);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    /* Reaped: never signalled again, the status stays. */
    GREEN_ASSERT_ERRNO(green_proc_kill(p, SIGKILL), ESRCH);
    st = -1;
    ck_assert_int_eq(green_proc_wait(p, &st, 0), 0);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    green_proc_free(p);
}
END_TEST

/* The child writes 3 MB to stderr before it reads its 4 MiB of stdin
   and echoes it: with one stream at a time this deadlocks. */
START_TEST(large_bidirectional_io)
{
    size_t inlen = 4u << 20, errn = 3000000;
    char *in = malloc(inlen);
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < inlen; i++)
        in[i] = (char)('a' + i % 26);
    green_proc_t *p = sh("head -c 3000000 /dev/zero >&2; cat",
                         GREEN_PROC_PIPE, GREEN_PROC_PIPE, GREEN_PROC_PIPE);
    int ticks = 0;
    green_t *t = green_spawn(test_ticker, &ticks);
    char *out, *err;
    size_t outlen, errlen;
    ck_assert_int_eq(green_proc_communicate(p, in, inlen, &out, &outlen,
                                            &err, &errlen, 60), 0);
    ck_assert_uint_eq(outlen, inlen);
    ck_assert(memcmp(out, in, inlen) == 0);
    ck_assert_uint_eq(errlen, errn);
    ck_assert_ptr_null(memchr(err, 1, errlen)); /* all zero bytes */
    ck_assert_int_eq(err[errlen], '\0');
    free(out);
    free(err);
    free(in);
    green_proc_free(p);
    green_kill(t, -1);
    green_release(t);
}
END_TEST

START_TEST(communicate_timeout_then_kill_then_wait)
{
    green_proc_t *p = sh("echo first; echo e >&2; exec sleep 10",
                         GREEN_PROC_PIPE, GREEN_PROC_PIPE, GREEN_PROC_PIPE);
    char *out = (char *)1, *err = (char *)1;
    double t0 = now();
    GREEN_ASSERT_ERRNO(green_proc_communicate(p, "xy", 2, &out, NULL, &err,
                                              NULL, 0.2), ETIMEDOUT);
    GREEN_ASSERT_TIME(now() - t0, 0.2);
    ck_assert_ptr_null(out);
    ck_assert_ptr_null(err);
    GREEN_ASSERT_ERRNO(green_proc_communicate(p, "xy", 2, &out, NULL, &err,
                                              NULL, 0), EAGAIN);
    GREEN_ASSERT_ERRNO(green_proc_wait(p, NULL, 0), EAGAIN);
    t0 = now();
    GREEN_ASSERT_ERRNO(green_proc_wait(p, NULL, 0.1), ETIMEDOUT);
    GREEN_ASSERT_TIME(now() - t0, 0.1);
    ck_assert_int_eq(green_proc_kill(p, SIGKILL), 0);
    /* The output read before the timeout is not lost. */
    size_t outlen;
    ck_assert_int_eq(green_proc_communicate(p, "xy", 2, &out, &outlen, &err,
                                            NULL, 10), 0);
    ck_assert_str_eq(out, "first\n");
    ck_assert_uint_eq(outlen, 6);
    ck_assert_str_eq(err, "e\n");
    free(out);
    free(err);
    int st;
    ck_assert_int_eq(green_proc_wait(p, &st, -1), 0);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    green_proc_free(p);
}
END_TEST

struct call {
    green_proc_t *p;
    int rc, err;
    char *out;
};

static void *communicate_body(void *a)
{
    struct call *c = a;
    c->rc = green_proc_communicate(c->p, NULL, 0, &c->out, NULL, NULL, NULL,
                                   -1);
    c->err = errno;
    return NULL;
}

static void *wait_body(void *a)
{
    struct call *c = a;
    c->rc = green_proc_wait(c->p, NULL, -1);
    c->err = errno;
    return NULL;
}

START_TEST(kill_of_blocked_caller)
{
    green_proc_t *p = sh("echo part; exec sleep 10", 0, GREEN_PROC_PIPE, 0);
    struct call c = {p, 0, 0, (char *)1};
    green_t *g = green_spawn(communicate_body, &c);
    green_sleep(0.05);
    /* A second communicate at the same time is refused. */
    GREEN_ASSERT_ERRNO(green_proc_communicate(p, NULL, 0, NULL, NULL, NULL,
                                              NULL, 0), EBUSY);
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(c.rc, -1);
    ck_assert_int_eq(c.err, ECANCELED);
    ck_assert_ptr_null(c.out);
    green_release(g);

    green_t *w = green_spawn(wait_body, &c);
    green_sleep(0.02);
    ck_assert_int_eq(green_kill(w, 1), 0);
    ck_assert_int_eq(c.err, ECANCELED);
    green_release(w);

    /* A green_timeout scope bounds communicate. */
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.05), 0);
    GREEN_ASSERT_ERRNO(green_proc_communicate(p, NULL, 0, NULL, NULL, NULL,
                                              NULL, -1), ETIMEDOUT);
    ck_assert_int_eq(green_timeout_end(&s), 1);

    ck_assert_int_eq(green_proc_kill(p, SIGKILL), 0);
    ck_assert_int_eq(green_proc_communicate(p, NULL, 0, &c.out, NULL, NULL,
                                            NULL, 10), 0);
    ck_assert_str_eq(c.out, "part\n");
    free(c.out);
    green_proc_free(p);
}
END_TEST

/* Blocking calls from a link callback (the hub): EDEADLK; timeout 0
   still answers. */
struct hubcall {
    green_proc_t *p;
    int wait_rc, wait_err, comm_err, zero_err;
};

static void hub_cb(green_t *g, void *a)
{
    (void)g;
    struct hubcall *h = a;
    h->wait_rc = green_proc_wait(h->p, NULL, -1);
    h->wait_err = errno;
    green_proc_communicate(h->p, NULL, 0, NULL, NULL, NULL, NULL, -1);
    h->comm_err = errno;
    green_proc_wait(h->p, NULL, 0);
    h->zero_err = errno;
}

START_TEST(deadlk_in_hub)
{
    struct hubcall h = {sh("exec sleep 10", 0, GREEN_PROC_PIPE, 0), 0, 0,
                        0, 0};
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, hub_cb, &h), 0);
    ck_assert_int_eq(green_join(g, -1), 0);
    green_sleep(0);
    ck_assert_int_eq(h.wait_rc, -1);
    ck_assert_int_eq(h.wait_err, EDEADLK);
    ck_assert_int_eq(h.comm_err, EDEADLK);
    ck_assert_int_eq(h.zero_err, EAGAIN);
    green_release(g);
    kill_and_free(h.p);
}
END_TEST

START_TEST(spawn_errors_and_bad_args)
{
    char *const argv[] = {"no-such-program-libgreen", NULL};
    GREEN_ASSERT_ERRNO(green_proc_spawn("no-such-program-libgreen", argv,
                                        NULL), ENOENT);
    char *const argv2[] = {"x", NULL};
    GREEN_ASSERT_ERRNO(green_proc_spawn("/nonexistent/x", argv2, NULL),
                       ENOENT);
    GREEN_ASSERT_ERRNO(green_proc_spawn(NULL, argv, NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_proc_spawn("true", NULL, NULL), EINVAL);
    char *const t[] = {"true", NULL};
    green_proc_attr_t bad = {.stdout_mode = GREEN_PROC_STDOUT};
    GREEN_ASSERT_ERRNO(green_proc_spawn("true", t, &bad), EINVAL);
    green_proc_attr_t bad2 = {.stdin_mode = 7};
    GREEN_ASSERT_ERRNO(green_proc_spawn("true", t, &bad2), EINVAL);
    green_proc_attr_t badcwd = {.stdout_mode = GREEN_PROC_PIPE,
                                .cwd = "/nonexistent-dir"};
    GREEN_ASSERT_ERRNO(green_proc_spawn("true", t, &badcwd), ENOENT);

    GREEN_ASSERT_ERRNO(green_proc_pid(NULL), EINVAL);
    ck_assert_int_eq(green_proc_stdin_fd(NULL), -1);
    GREEN_ASSERT_ERRNO(green_proc_wait(NULL, NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_proc_kill(NULL, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_proc_status(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_proc_communicate(NULL, NULL, 0, NULL, NULL,
                                              NULL, NULL, 0), EINVAL);
    green_proc_free(NULL);

    green_proc_t *p = sh("exit 0", 0, GREEN_PROC_PIPE, 0);
    /* Input while stdin is not a pipe; NULL input; NaN. */
    GREEN_ASSERT_ERRNO(green_proc_communicate(p, "x", 1, NULL, NULL, NULL,
                                              NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_proc_communicate(p, NULL, 1, NULL, NULL, NULL,
                                              NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_proc_communicate(p, NULL, 0, NULL, NULL, NULL,
                                              NULL, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_proc_wait(p, NULL, NAN), EINVAL);
    GREEN_ASSERT_ERRNO(green_proc_kill(p, 12345), EINVAL);
    ck_assert_int_eq(green_proc_communicate(p, NULL, 0, NULL, NULL, NULL,
                                            NULL, 10), 0);
    green_proc_free(p);
}
END_TEST

/* A child that stops reading its stdin early is not an error. */
START_TEST(child_closes_stdin_early)
{
    green_proc_t *p = sh("exec 0<&-; echo done", GREEN_PROC_PIPE,
                         GREEN_PROC_PIPE, 0);
    size_t n = 1u << 20;
    char *in = calloc(1, n);
    char *out;
    ck_assert_int_eq(green_proc_communicate(p, in, n, &out, NULL, NULL,
                                            NULL, 10), 0);
    ck_assert_str_eq(out, "done\n");
    free(out);
    free(in);
    green_proc_free(p);
}
END_TEST

/* Freed while running: the hub reaps it when it exits (no zombie), and
   the program's own children are left to its own waitpid. */
START_TEST(free_running_child_and_plain_waitpid)
{
    pid_t own = fork();
    ck_assert_int_ge(own, 0);
    if (own == 0) {
        usleep(200000);
        _exit(7);
    }
    green_proc_t *p = sh("exec sleep 0.1", 0, GREEN_PROC_PIPE, 0);
    pid_t pid = green_proc_pid(p);
    green_proc_free(p);
    ck_assert(pid_exists(pid));
    double t0 = now();
    while (pid_exists(pid) && now() - t0 < 5 + test_slack())
        green_sleep(0.01);
    ck_assert_msg(!pid_exists(pid), "the freed child was not reaped");
    int st = -1;
    ck_assert_int_eq(waitpid(own, &st, 0), own);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7);
}
END_TEST

/* Pipe ends: non-blocking, close-on-exec, and never inherited by
   another child (cat ends when we close its stdin although a second
   child is running); libgreen's anonymous fds (epoll, eventfd, pidfd)
   are not inherited either.  (Other pipes may be: make's jobserver.) */
START_TEST(no_fd_leaks_into_children)
{
    green_proc_t *a = spawn_cat();
    for (int fd = green_proc_stdin_fd(a), i = 0; i < 2;
         fd = green_proc_stdout_fd(a), i++) {
        ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
        ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    }
    green_proc_t *b = sh("ls -l /proc/self/fd", GREEN_PROC_DEVNULL,
                         GREEN_PROC_PIPE, GREEN_PROC_DEVNULL);
    green_proc_t *c = sh("exec sleep 5", 0, 0, 0);
    char *out;
    ck_assert_int_eq(green_proc_communicate(a, NULL, 0, &out, NULL, NULL,
                                            NULL, 2), 0);
    free(out);
    ck_assert_int_eq(green_proc_communicate(b, NULL, 0, &out, NULL, NULL,
                                            NULL, 10), 0);
    ck_assert_msg(strstr(out, "anon_inode") == NULL, "child fds: %s", out);
    free(out);
    green_proc_free(a);
    green_proc_free(b);
    kill_and_free(c);
}
END_TEST

/* Spawn, communicate, free: 0 if all went well. */
static int echo_check(void)
{
    char *const argv[] = {"echo", "thread", NULL};
    green_proc_attr_t attr = {.stdout_mode = GREEN_PROC_PIPE};
    green_proc_t *p = green_proc_spawn("echo", argv, &attr);
    if (!p)
        return 1;
    char *out = NULL;
    int rc = green_proc_communicate(p, NULL, 0, &out, NULL, NULL, NULL, 10);
    int ok = rc == 0 && strcmp(out, "thread\n") == 0 &&
             green_proc_status(p) == 0;
    free(out);
    green_proc_free(p);
    return !ok;
}

static void *thread_body(void *a)
{
    (void)a;
    int bad = echo_check();
    /* A freed running child is reaped by this thread's hub too. */
    char *const argv[] = {"sleep", "0.05", NULL};
    green_proc_t *p = green_proc_spawn("sleep", argv, NULL);
    pid_t pid = green_proc_pid(p);
    green_proc_free(p);
    for (int i = 0; i < 500 && pid_exists(pid); i++)
        green_sleep(0.01);
    bad |= pid_exists(pid) << 1;
    green_shutdown();
    return (void *)(intptr_t)bad;
}

START_TEST(hub_in_other_thread)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, thread_body, NULL), 0);
    void *res;
    ck_assert_int_eq(pthread_join(t, &res), 0);
    ck_assert_int_eq((int)(intptr_t)res, 0);
}
END_TEST

START_TEST(after_green_fork)
{
    green_proc_t *p = sh("exec sleep 5", 0, 0, 0);
    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* p's child is the parent's: not ours to wait for. */
        int bad = green_proc_wait(p, NULL, 0) != -1 || errno != ECHILD;
        _exit(echo_check() | bad << 2);
    }
    int st = -1;
    ck_assert_int_eq(green_waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    kill_and_free(p);
}
END_TEST

/* Streaming: write through a bufio on stdin, close it, read lines back
   through a bufio on stdout. */
START_TEST(stream_with_bufio_and_close_stdin)
{
    green_proc_t *p = spawn_cat();
    green_bufio_t *in = green_bufio_new(green_proc_stdin_fd(p), 0);
    green_bufio_t *out = green_bufio_new(green_proc_stdout_fd(p), 0);
    ck_assert_int_eq(green_bufio_write(in, "one\ntwo\n", 8), 8);
    ck_assert_int_eq(green_bufio_flush(in), 0);
    green_bufio_free(in);
    char line[16];
    ck_assert_int_eq(green_bufio_readline(out, line, sizeof line, '\n'), 4);
    ck_assert_str_eq(line, "one\n");
    ck_assert_int_eq(green_proc_close_stdin(p), 0);
    GREEN_ASSERT_ERRNO(green_proc_close_stdin(p), EBADF);
    ck_assert_int_eq(green_proc_stdin_fd(p), -1);
    ck_assert_int_eq(green_bufio_readline(out, line, sizeof line, '\n'), 4);
    ck_assert_str_eq(line, "two\n");
    ck_assert_int_eq(green_bufio_readline(out, line, sizeof line, '\n'), 0);
    green_bufio_free(out);
    int st = -1;
    ck_assert_int_eq(green_proc_wait(p, &st, 10), 0);
    ck_assert_int_eq(st, 0);
    green_proc_free(p);
    GREEN_ASSERT_ERRNO(green_proc_close_stdin(NULL), EINVAL);
    p = sh("exit 0", 0, 0, 0);
    GREEN_ASSERT_ERRNO(green_proc_close_stdin(p), EBADF);
    ck_assert_int_eq(green_proc_wait(p, NULL, 10), 0);
    green_proc_free(p);
}
END_TEST

/* The child starts with no blocked signal and SIGPIPE at its default,
   whatever the parent's mask and SIGPIPE disposition. */
START_TEST(child_signal_state_is_reset)
{
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldpipe;
    ck_assert_int_eq(sigaction(SIGPIPE, &ign, &oldpipe), 0);
    green_proc_t *a = sh("kill -USR1 $$; exit 0", 0, 0, 0);
    green_proc_t *b = sh("kill -PIPE $$; exit 0", 0, 0, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGPIPE, &oldpipe, NULL);
    int st = -1;
    ck_assert_int_eq(green_proc_wait(a, &st, 10), 0);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1, "st %d", st);
    ck_assert_int_eq(green_proc_wait(b, &st, 10), 0);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE, "st %d", st);
    green_proc_free(a);
    green_proc_free(b);
}
END_TEST

/* The program reaped the child behind p's back: p never signals the pid
   again (it may be recycled) and wait says ECHILD. */
START_TEST(reaped_by_the_program)
{
    green_proc_t *p = sh("exit 5", 0, 0, 0);
    int st = -1;
    ck_assert_int_eq(waitpid(green_proc_pid(p), &st, 0), green_proc_pid(p));
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 5);
    GREEN_ASSERT_ERRNO(green_proc_kill(p, SIGKILL), ESRCH);
    GREEN_ASSERT_ERRNO(green_proc_wait(p, NULL, 1), ECHILD);
    GREEN_ASSERT_ERRNO(green_proc_status(p), EAGAIN);
    green_proc_free(p);
}
END_TEST

/* While green_proc_wait waits, its child is claimed: a green_waitpid(-1)
   leaves it alone even after it exited (here before the waiter ran). */
START_TEST(pid_minus_one_leaves_a_waited_child)
{
    green_proc_t *p = sh("read x; exit 3", GREEN_PROC_PIPE, 0, 0);
    struct call c = {.p = p};
    green_t *g = green_spawn(wait_body, &c);
    ck_assert_int_eq(green_yield(), 0); /* g parked in green_proc_wait */
    ck_assert_int_eq(green_proc_close_stdin(p), 0);
    siginfo_t si;
    int rc;
    while ((rc = waitid(P_PID, (id_t)green_proc_pid(p), &si,
                        WEXITED | WNOWAIT)) < 0 &&
           errno == EINTR)
        ;
    ck_assert_int_eq(rc, 0);
    int st = 0;
    ck_assert_int_eq(green_waitpid(-1, &st, WNOHANG), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(WEXITSTATUS(green_proc_status(p)), 3);
    green_release(g);
    green_proc_free(p);
}
END_TEST

static Suite *subprocess_suite(void)
{
    Suite *s = suite_create("subprocess");
    TCase *tc = tcase_create("subprocess");
    tcase_add_checked_fixture(tc, test_alarm_setup, test_alarm_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_round_trip);
    tcase_add_test(tc, exit_status_and_both_streams);
    tcase_add_test(tc, stderr_into_stdout_devnull_and_cwd);
    tcase_add_test(tc, signal_death_status);
    tcase_add_test(tc, large_bidirectional_io);
    tcase_add_test(tc, communicate_timeout_then_kill_then_wait);
    tcase_add_test(tc, kill_of_blocked_caller);
    tcase_add_test(tc, deadlk_in_hub);
    tcase_add_test(tc, spawn_errors_and_bad_args);
    tcase_add_test(tc, child_closes_stdin_early);
    tcase_add_test(tc, free_running_child_and_plain_waitpid);
    tcase_add_test(tc, no_fd_leaks_into_children);
    tcase_add_test(tc, hub_in_other_thread);
    tcase_add_test(tc, after_green_fork);
    tcase_add_test(tc, stream_with_bufio_and_close_stdin);
    tcase_add_test(tc, child_signal_state_is_reset);
    tcase_add_test(tc, reaped_by_the_program);
    tcase_add_test(tc, pid_minus_one_leaves_a_waited_child);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(subprocess_suite)
