/* libgreen-patch: plain libc calls made by greenlets become cooperative
   after green_patch_all(), keep the caller's blocking semantics, and go
   straight to libc everywhere else.  This binary is linked with
   libgreen-patch, so every read/write/poll/sleep below (including the
   ones made by Check itself) goes through the interposers. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "io/patchops.h"
#include "testutil.h"

/* glibc's fortified entry points (declared only under _FORTIFY_SOURCE). */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
                       int flags, struct sockaddr *addr, socklen_t *len);
int __poll(struct pollfd *fds, nfds_t n, int timeout);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);

/******************************************************************************/
/*  Helpers                                                                   */
/******************************************************************************/

/* The kernel's flags, bypassing the interposed fcntl. */
static int real_flags(int fd)
{
    return (int)syscall(SYS_fcntl, fd, F_GETFL, 0);
}

/* A ticker greenlet proves that other greenlets run while one waits. */
static volatile int ticks;
static volatile int ticker_stop;

static void *ticker(void *arg)
{
    (void)arg;
    while (!ticker_stop) {
        ticks++;
        green_sleep(0.01);
    }
    return NULL;
}

static green_t *start_ticker(void)
{
    ticks = 0;
    ticker_stop = 0;
    green_t *t = green_spawn(ticker, NULL);
    ck_assert_ptr_nonnull(t);
    return t;
}

static void stop_ticker(green_t *t)
{
    ticker_stop = 1;
    ck_assert_int_eq(green_join(t, -1), 0);
    green_release(t);
}

static void join_release(green_t *g)
{
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(green_join(g, -1), 0);
    green_release(g);
}

/* A call's outcome, filled in by the greenlet that made it. */
struct outcome {
    int fd;                     /* the fd to use */
    ssize_t rc;                 /* what the call returned */
    int err;                    /* errno after it */
    double t;                   /* how long it took */
    char buf[64];               /* data read */
};

/* Write `msg` to fd after `delay` seconds (a greenlet). */
struct delayed {
    int fd;
    double delay;
    const char *msg;
};

static void *delayed_write(void *arg)
{
    struct delayed *d = arg;
    green_sleep(d->delay);
    ssize_t n = (ssize_t)strlen(d->msg);
    return write(d->fd, d->msg, (size_t)n) == n ? NULL : (void *)1;
}

static void *read_one(void *arg)
{
    struct outcome *o = arg;
    double t0 = test_now();
    errno = 1234; /* a successful call leaves it alone, even after EAGAIN */
    o->rc = read(o->fd, o->buf, sizeof o->buf - 1);
    o->err = errno;
    o->t = test_now() - t0;
    if (o->rc > 0)
        o->buf[o->rc] = '\0';
    return NULL;
}

/* Patching on, and a hub for this thread: from then on the main
   greenlet's calls cooperate too.  (Without a hub, calls go to libc.) */
static void patch_on(void)
{
    ck_assert_int_eq(green_patch_all(), 0);
    ck_assert_int_eq(green_patch_active(), 1);
    ck_assert_int_eq(green_yield(), 0);
}

/******************************************************************************/
/*  Inert until green_patch_all                                               */
/******************************************************************************/

static void *usleep_100ms(void *arg)
{
    int *seen = arg;
    int before = ticks;
    ck_assert_int_eq(usleep(100000), 0);
    *seen = ticks - before;
    return NULL;
}

START_TEST(test_inert_before_patch_all)
{
    ck_assert_int_eq(green_patch_active(), 0);
    green_t *t = start_ticker();
    green_sleep(0.02);
    int seen = -1;
    green_t *g = green_spawn(usleep_100ms, &seen);
    join_release(g);
    stop_ticker(t);
    /* The usleep blocked the whole thread: the ticker never ran. */
    ck_assert_int_eq(seen, 0);

    /* A pipe read by a greenlet is the plain read: the fd is untouched. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "hi", 2), 2);
    struct outcome o = {.fd = p[0]};
    join_release(green_spawn(read_one, &o));
    ck_assert_int_eq(o.rc, 2);
    ck_assert_int_eq(real_flags(p[0]) & O_NONBLOCK, 0);
    ck_assert_int_eq(green_patch_active(), 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_patch_all_is_idempotent)
{
    ck_assert_int_eq(green_patch_all(), 0);
    ck_assert_int_eq(green_patch_all(), 0);
    ck_assert_int_eq(green_patch_active(), 1);
}
END_TEST

/******************************************************************************/
/*  Sleeping                                                                  */
/******************************************************************************/

static void *do_sleep(void *arg)
{
    (void)arg;
    return sleep(1) == 0 ? NULL : (void *)1;
}

static void *do_usleep(void *arg)
{
    (void)arg;
    return usleep(1000000) == 0 ? NULL : (void *)1;
}

static void *do_nanosleep(void *arg)
{
    (void)arg;
    struct timespec ts = {1, 0};
    return nanosleep(&ts, NULL) == 0 ? NULL : (void *)1;
}

static void *do_clock_nanosleep(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 500000000L};
    if (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) != 0)
        return (void *)1;
    /* And an absolute deadline 0.5 s later. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 500000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == 0
               ? NULL
               : (void *)1;
}

START_TEST(test_sleep_functions_cooperate)
{
    patch_on();
    green_t *t = start_ticker();
    green_t *g[4] = {green_spawn(do_sleep, NULL), green_spawn(do_usleep, NULL),
                     green_spawn(do_nanosleep, NULL),
                     green_spawn(do_clock_nanosleep, NULL)};
    double t0 = test_now();
    ck_assert_int_eq(green_joinall(g, 4, -1), 0);
    double el = test_now() - t0;
    stop_ticker(t);
    for (int i = 0; i < 4; i++) {
        ck_assert_ptr_null(green_value(g[i]));
        green_release(g[i]);
    }
    /* Four 1 s sleeps side by side: about 1 s, not 4. */
    GREEN_ASSERT_TIME(el, 1.0);
    ck_assert_int_ge(ticks, 10);
}
END_TEST

static void *nanosleep_outcome(void *arg)
{
    struct outcome *o = arg;
    struct timespec ts = {1, 0}, rem = {0, 0};
    errno = 0;
    o->rc = nanosleep(&ts, &rem);
    o->err = errno;
    o->t = (double)rem.tv_sec + (double)rem.tv_nsec * 1e-9;
    return NULL;
}

START_TEST(test_nanosleep_killed_is_ECANCELED_with_remaining_time)
{
    patch_on();
    struct outcome o = {0};
    green_t *g = green_spawn(nanosleep_outcome, &o);
    green_sleep(0.1);
    ck_assert_int_eq(green_kill(g, -1), 0);
    green_release(g);
    ck_assert_int_eq(o.rc, -1);
    ck_assert_int_eq(o.err, ECANCELED);
    /* The sleeper started a moment after our 0.1 s sleep did, so a
       little more than 0.9 s may remain. */
    ck_assert_msg(o.t > 0.9 - test_slack() && o.t < 0.95, "remaining %.3f",
                  o.t);
}
END_TEST

START_TEST(test_usleep_under_green_timeout_is_ETIMEDOUT)
{
    patch_on();
    green_timeout_t *to = green_timeout_start(0.1);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(usleep(1000000), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    ck_assert_int_eq(green_timeout_expired(to), 1);
    green_timeout_cancel(to);
    /* sleep reports the seconds it did not sleep. */
    to = green_timeout_start(0.1);
    ck_assert_uint_eq(sleep(3), 3);
    ck_assert_int_eq(errno, ETIMEDOUT);
    green_timeout_cancel(to);
}
END_TEST

/******************************************************************************/
/*  Reads and writes on descriptors the caller left blocking                  */
/******************************************************************************/

START_TEST(test_pipe_read_waits_while_others_run)
{
    patch_on();
    alarm(10);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    green_t *t = start_ticker();
    struct outcome o = {.fd = p[0]};
    struct delayed d = {p[1], 0.2, "hello"};
    green_t *r = green_spawn(read_one, &o);
    green_t *w = green_spawn(delayed_write, &d);
    join_release(r);
    join_release(w);
    stop_ticker(t);
    ck_assert_int_eq(o.rc, 5);
    ck_assert_int_eq(o.err, 1234);
    ck_assert_str_eq(o.buf, "hello");
    GREEN_ASSERT_TIME(o.t, 0.2);
    ck_assert_int_ge(ticks, 3);
    /* Non-blocking underneath, blocking as far as the caller can tell. */
    ck_assert_int_ne(real_flags(p[0]) & O_NONBLOCK, 0);
    ck_assert_int_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* Stream `len` bytes of a counting pattern through a socket or pipe. */
struct bulk {
    int fd;
    size_t len;
    int how;        /* writer: 0 write, 1 send, 2 writev, 3 sendmsg */
    ssize_t rc;
    int ok;
};

static void *bulk_write(void *arg)
{
    struct bulk *b = arg;
    unsigned char *buf = malloc(b->len);
    for (size_t i = 0; i < b->len; i++)
        buf[i] = (unsigned char)(i * 7);
    size_t half = b->len / 2;
    struct iovec iov[2] = {{buf, half}, {buf + half, b->len - half}};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    switch (b->how) {
    case 0: b->rc = write(b->fd, buf, b->len); break;
    case 1: b->rc = send(b->fd, buf, b->len, 0); break;
    case 2: b->rc = writev(b->fd, iov, 2); break;
    default: b->rc = sendmsg(b->fd, &msg, 0); break;
    }
    free(buf);
    return NULL;
}

static void *bulk_read(void *arg)
{
    struct bulk *b = arg;
    size_t got = 0;
    unsigned char buf[4096];
    b->ok = 1;
    while (got < b->len) {
        ssize_t n = read(b->fd, buf, sizeof buf);
        if (n <= 0) {
            b->ok = 0;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (unsigned char)((got + (size_t)i) * 7))
                b->ok = 0;
        got += (size_t)n;
    }
    b->rc = (ssize_t)got;
    return NULL;
}

START_TEST(test_large_blocking_writes_complete)
{
    patch_on();
    alarm(20);
    for (int how = 0; how < 4; how++) {
        int sv[2];
        if (how == 0) {
            ck_assert_int_eq(pipe(sv), 0);
            int t = sv[0];
            sv[0] = sv[1];
            sv[1] = t; /* sv[0] writes, sv[1] reads */
        } else {
            ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        }
        struct bulk w = {sv[0], 4 << 20, how, 0, 0};
        struct bulk r = {sv[1], 4 << 20, 0, 0, 0};
        green_t *gw = green_spawn(bulk_write, &w);
        green_t *gr = green_spawn(bulk_read, &r);
        join_release(gw);
        join_release(gr);
        /* One call wrote everything, as a blocking write does. */
        ck_assert_msg(w.rc == 4 << 20, "how %d: wrote %zd", how, w.rc);
        ck_assert_int_eq(r.rc, 4 << 20);
        ck_assert_int_eq(r.ok, 1);
        close(sv[0]);
        close(sv[1]);
    }
}
END_TEST

/* Sends 10 bytes every 20 ms, ten times. */
static void *trickle(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (int i = 0; i < 10; i++) {
        green_sleep(0.02);
        if (send(fd, "0123456789", 10, 0) != 10)
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_recv_waitall_collects_everything)
{
    patch_on();
    alarm(10);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    green_t *w = green_spawn(trickle, (void *)(intptr_t)sv[1]);
    char buf[100];
    ck_assert_int_eq(recv(sv[0], buf, sizeof buf, MSG_WAITALL), 100);
    ck_assert_int_eq(memcmp(buf + 90, "0123456789", 10), 0);
    join_release(w);
    /* And through recvmsg with two buffers. */
    w = green_spawn(trickle, (void *)(intptr_t)sv[1]);
    char a[30], b[70];
    struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ck_assert_int_eq(recvmsg(sv[0], &msg, MSG_WAITALL), 100);
    ck_assert_int_eq(memcmp(b + 60, "0123456789", 10), 0);
    join_release(w);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/* Each read-side entry point waits cooperatively for data written 50 ms
   later. */
static void *read_variants(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    struct pollfd p = {fd, POLLIN, 0};
    long bad = 0;
    for (int i = 0; i < 8; i++) {
        ssize_t n;
        switch (i) {
        case 0: n = readv(fd, &iov, 1); break;
        case 1: n = recv(fd, buf, sizeof buf, 0); break;
        case 2:
            n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&ss, &sl);
            break;
        case 3: n = recvmsg(fd, &msg, 0); break;
        case 4: n = __read_chk(fd, buf, sizeof buf, sizeof buf); break;
        case 5: n = __recv_chk(fd, buf, sizeof buf, sizeof buf, 0); break;
        case 6:
            n = __recvfrom_chk(fd, buf, sizeof buf, sizeof buf, 0, NULL, NULL);
            break;
        default:
            n = __poll_chk(&p, 1, -1, sizeof p) == 1 && __poll(&p, 1, -1) == 1
                    ? recv(fd, buf, sizeof buf, 0)
                    : -1;
            break;
        }
        if (n != 1)
            bad |= 1L << i;
    }
    return (void *)bad;
}

static void *write_variants(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (int i = 0; i < 8; i++) {
        green_sleep(0.05);
        if (write(fd, "x", 1) != 1)
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_every_read_entry_point_cooperates)
{
    patch_on();
    alarm(10);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    green_t *t = start_ticker();
    green_t *r = green_spawn(read_variants, (void *)(intptr_t)sv[0]);
    green_t *w = green_spawn(write_variants, (void *)(intptr_t)sv[1]);
    double t0 = test_now();
    ck_assert_int_eq(green_join(r, -1), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.4);
    ck_assert_ptr_null(green_value(r));
    green_release(r);
    join_release(w);
    stop_ticker(t);
    ck_assert_int_ge(ticks, 3);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

/******************************************************************************/
/*  The caller's O_NONBLOCK                                                   */
/******************************************************************************/

START_TEST(test_caller_nonblock_keeps_EAGAIN)
{
    patch_on();
    alarm(10);
    int p[2];
    /* Set before the patch library ever saw the fd. */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    char c;
    GREEN_ASSERT_ERRNO(read(p[0], &c, 1), EAGAIN);
    ck_assert_int_ne(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    close(p[0]);
    close(p[1]);

    /* Set after it made the fd its own: the caller's view changes, the
       fd stays non-blocking underneath. */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "a", 1), 1);
    ck_assert_int_eq(read(p[0], &c, 1), 1); /* first sight */
    int fl = fcntl(p[0], F_GETFL);
    ck_assert_int_eq(fl & O_NONBLOCK, 0);
    ck_assert_int_eq(fcntl(p[0], F_SETFL, fl | O_NONBLOCK), 0);
    ck_assert_int_ne(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    GREEN_ASSERT_ERRNO(read(p[0], &c, 1), EAGAIN);
    /* Back to blocking: it waits again, and the fd is still ours. */
    ck_assert_int_eq(fcntl(p[0], F_SETFL, fl), 0);
    ck_assert_int_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_ne(real_flags(p[0]) & O_NONBLOCK, 0);
    struct delayed d = {p[1], 0.1, "b"};
    green_t *w = green_spawn(delayed_write, &d);
    double t0 = test_now();
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    join_release(w);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_dontwait_fionbio_and_sock_nonblock_keep_EAGAIN)
{
    patch_on();
    alarm(10);
    int sv[2];
    char c;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    GREEN_ASSERT_ERRNO(recv(sv[0], &c, 1, MSG_DONTWAIT), EAGAIN);
    int on = 1, off = 0;
    ck_assert_int_eq(ioctl(sv[0], FIONBIO, &on), 0);
    GREEN_ASSERT_ERRNO(read(sv[0], &c, 1), EAGAIN);
    ck_assert_int_ne(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_eq(ioctl(sv[0], FIONBIO, &off), 0);
    ck_assert_int_eq(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    struct delayed d = {sv[1], 0.05, "z"};
    green_t *w = green_spawn(delayed_write, &d);
    ck_assert_int_eq(read(sv[0], &c, 1), 1);
    join_release(w);
    close(sv[0]);
    close(sv[1]);

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    GREEN_ASSERT_ERRNO(read(sv[0], &c, 1), EAGAIN);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_dup_shares_the_callers_view)
{
    patch_on();
    alarm(10);
    int p[2];
    char c;
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "a", 1), 1);
    ck_assert_int_eq(read(p[0], &c, 1), 1); /* managed now */
    int d1 = dup(p[0]);
    int d2 = fcntl(p[0], F_DUPFD_CLOEXEC, 0);
    ck_assert_int_ge(d1, 0);
    ck_assert_int_ge(d2, 0);
    ck_assert_int_eq(fcntl(d1, F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_eq(fcntl(d2, F_GETFL) & O_NONBLOCK, 0);
    struct delayed d = {p[1], 0.05, "b"};
    green_t *w = green_spawn(delayed_write, &d);
    ck_assert_int_eq(read(d1, &c, 1), 1); /* waits, no EAGAIN */
    join_release(w);
    close(d1);
    close(d2);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* Sockets libgreen created non-blocking itself (green_tcp_connect,
   green_accept): plain libc code never asked for O_NONBLOCK, so for it
   they are blocking sockets. */
START_TEST(test_libgreen_fds_look_blocking_to_libc_calls)
{
    patch_on();
    alarm(10);
    int l = green_tcp_listen("127.0.0.1", 0, 8);
    ck_assert_int_ge(l, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    int c = green_tcp_connect("127.0.0.1", ntohs(sa.sin_port), -1);
    ck_assert_int_ge(c, 0);
    int s = green_accept(l, NULL, NULL);
    ck_assert_int_ge(s, 0);
    ck_assert_int_ne(real_flags(c) & O_NONBLOCK, 0);
    ck_assert_int_eq(fcntl(c, F_GETFL) & O_NONBLOCK, 0);
    struct delayed d = {s, 0.1, "data"};
    green_t *w = green_spawn(delayed_write, &d);
    struct outcome o = {.fd = c};
    read_one(&o);
    ck_assert_int_eq(o.rc, 4);
    GREEN_ASSERT_TIME(o.t, 0.1);
    join_release(w);
    /* And the other way round, through green_read. */
    d.fd = c;
    d.msg = "back";
    w = green_spawn(delayed_write, &d);
    char buf[8];
    ck_assert_int_eq(green_read(s, buf, sizeof buf), 4);
    join_release(w);
    close(c);
    green_close(s);
    close(l);
}
END_TEST

/******************************************************************************/
/*  Connect and accept                                                        */
/******************************************************************************/

/* A blocking listener on 127.0.0.1, port chosen by the kernel. */
static int listener(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof *sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)sa, sl), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sa, &sl), 0);
    return fd;
}

struct server {
    int lfd;
    int flags;          /* accept4 flags */
    int cfd;
    double waited;
    char buf[16];
};

static void *serve_once(void *arg)
{
    struct server *s = arg;
    double t0 = test_now();
    s->cfd = accept4(s->lfd, NULL, NULL, s->flags);
    s->waited = test_now() - t0;
    if (s->cfd < 0)
        return (void *)1;
    if (!(s->flags & SOCK_NONBLOCK) &&
        (read(s->cfd, s->buf, 4) != 4 || write(s->cfd, "pong", 4) != 4))
        return (void *)1;
    return NULL;
}

START_TEST(test_connect_and_accept_on_loopback)
{
    patch_on();
    alarm(10);
    struct sockaddr_in sa;
    struct server s = {.lfd = listener(&sa)};
    green_t *t = start_ticker();
    green_t *srv = green_spawn(serve_once, &s);
    green_sleep(0.1); /* the server waits in accept meanwhile */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(write(fd, "ping", 4), 4);
    char buf[4];
    ck_assert_int_eq(read(fd, buf, 4), 4);
    ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
    join_release(srv);
    stop_ticker(t);
    /* (It started a little after main's 0.1 s sleep did.) */
    ck_assert_msg(s.waited >= 0.05, "accept waited %.3f", s.waited);
    ck_assert_int_ge(ticks, 3);
    ck_assert_int_eq(memcmp(s.buf, "ping", 4), 0);
    /* The accepted fd is blocking, as the caller asked. */
    ck_assert_int_eq(fcntl(s.cfd, F_GETFL) & O_NONBLOCK, 0);
    close(s.cfd);
    close(fd);

    /* accept4(SOCK_NONBLOCK): the caller asked for EAGAIN. */
    s.flags = SOCK_NONBLOCK;
    srv = green_spawn(serve_once, &s);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    join_release(srv);
    ck_assert_int_ne(fcntl(s.cfd, F_GETFL) & O_NONBLOCK, 0);
    GREEN_ASSERT_ERRNO(read(s.cfd, buf, 1), EAGAIN);
    close(s.cfd);
    close(fd);
    close(s.lfd);
}
END_TEST

START_TEST(test_connect_to_closed_port_is_ECONNREFUSED)
{
    patch_on();
    alarm(10);
    struct sockaddr_in sa;
    int l = listener(&sa);
    close(l); /* nothing listens on sa any more */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    GREEN_ASSERT_ERRNO(connect(fd, (struct sockaddr *)&sa, sizeof sa),
                       ECONNREFUSED);
    close(fd);
}
END_TEST

/******************************************************************************/
/*  Timeouts, kill, close                                                     */
/******************************************************************************/

static void set_timeo(int fd, int opt, double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (time_t)s) * 1e6)};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv), 0);
}

START_TEST(test_so_rcvtimeo_is_EAGAIN_after_the_timeout)
{
    patch_on();
    alarm(10);
    int sv[2];
    char c;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* Set before first sight (read back with getsockopt)... */
    set_timeo(sv[0], SO_RCVTIMEO, 0.2);
    green_t *t = start_ticker();
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(read(sv[0], &c, 1), EAGAIN);
    GREEN_ASSERT_TIME(test_now() - t0, 0.2);
    ck_assert_int_ge(ticks, 3);
    /* ... and after it (seen by the interposed setsockopt). */
    ck_assert_int_eq(write(sv[0], "q", 1), 1);
    ck_assert_int_eq(read(sv[1], &c, 1), 1);
    set_timeo(sv[1], SO_RCVTIMEO, 0.1);
    t0 = test_now();
    GREEN_ASSERT_ERRNO(recv(sv[1], &c, 1, 0), EAGAIN);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    /* An enclosing green_timeout that expires first wins: ETIMEDOUT. */
    green_timeout_t *to = green_timeout_start(0.05);
    t0 = test_now();
    GREEN_ASSERT_ERRNO(read(sv[0], &c, 1), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.05);
    green_timeout_cancel(to);
    /* A later green_timeout leaves the socket's own EAGAIN. */
    to = green_timeout_start(5);
    GREEN_ASSERT_ERRNO(read(sv[0], &c, 1), EAGAIN);
    ck_assert_int_eq(green_timeout_expired(to), 0);
    green_timeout_cancel(to);
    stop_ticker(t);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_so_sndtimeo_bounds_a_blocking_write)
{
    patch_on();
    alarm(10);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    set_timeo(sv[0], SO_SNDTIMEO, 0.2);
    size_t len = 16 << 20;
    char *buf = calloc(1, len);
    double t0 = test_now();
    /* Nobody reads: part of it fits in the buffers, then the timeout
       ends the call with the count so far, as the kernel does. */
    ssize_t n = write(sv[0], buf, len);
    GREEN_ASSERT_TIME(test_now() - t0, 0.2);
    ck_assert_msg(n > 0 && (size_t)n < len, "wrote %zd", n);
    /* Full buffers, nothing written: -1/EAGAIN. */
    GREEN_ASSERT_ERRNO(write(sv[0], buf, len), EAGAIN);
    free(buf);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_green_timeout_ends_a_patched_read)
{
    patch_on();
    alarm(10);
    int p[2];
    char c;
    ck_assert_int_eq(pipe(p), 0);
    green_timeout_t *to = green_timeout_start(0.1);
    double t0 = test_now();
    GREEN_ASSERT_ERRNO(read(p[0], &c, 1), ETIMEDOUT);
    GREEN_ASSERT_TIME(test_now() - t0, 0.1);
    ck_assert_int_eq(green_timeout_expired(to), 1);
    green_timeout_cancel(to);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_killed_during_patched_read_is_ECANCELED)
{
    patch_on();
    alarm(10);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct outcome o = {.fd = p[0]};
    green_t *r = green_spawn(read_one, &o);
    green_sleep(0.05);
    double t0 = test_now();
    ck_assert_int_eq(green_kill(r, 1), 0);
    ck_assert(test_now() - t0 < test_slack()); /* promptly */
    green_release(r);
    ck_assert_int_eq(o.rc, -1);
    ck_assert_int_eq(o.err, ECANCELED);
    /* The fd works for the next reader. */
    struct delayed d = {p[1], 0.05, "k"};
    green_t *w = green_spawn(delayed_write, &d);
    char c;
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    join_release(w);
    close(p[0]);
    close(p[1]);
}
END_TEST

static void *close_later(void *arg)
{
    int fd = (int)(intptr_t)arg;
    green_sleep(0.05);
    /* fd < 0 encodes "use green_close". */
    return (fd >= 0 ? close(fd) : green_close(-fd - 1)) == 0 ? NULL
                                                             : (void *)1;
}

START_TEST(test_close_wakes_a_patched_reader_with_EBADF)
{
    patch_on();
    alarm(10);
    for (int api = 0; api < 2; api++) {
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        struct outcome o = {.fd = sv[0]};
        green_t *r = green_spawn(read_one, &o);
        green_t *c = green_spawn(close_later,
                                 (void *)(intptr_t)(api ? -sv[0] - 1 : sv[0]));
        join_release(r);
        join_release(c);
        ck_assert_int_eq(o.rc, -1);
        ck_assert_int_eq(o.err, EBADF);
        GREEN_ASSERT_TIME(o.t, 0.05);
        /* The number's next fd starts fresh: a blocking pipe end. */
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        ck_assert_int_eq(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
        close(p[0]);
        close(p[1]);
        close(sv[1]);
    }
}
END_TEST

/******************************************************************************/
/*  Pass-through: no greenlet, no hub, the hub itself, regular files          */
/******************************************************************************/

START_TEST(test_outside_greenlets_calls_go_to_libc)
{
    ck_assert_int_eq(green_patch_all(), 0);
    /* No hub in this thread yet: the calls must not create one. */
    int p[2];
    char c;
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "a", 1), 1);
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    double t0 = test_now();
    ck_assert_int_eq(usleep(20000), 0);
    ck_assert(test_now() - t0 >= 0.019);
    struct pollfd pf = {p[0], POLLIN, 0};
    ck_assert_int_eq(poll(&pf, 1, 10), 0);
    ck_assert_int_eq(real_flags(p[0]) & O_NONBLOCK, 0);
    ck_assert_int_eq(green__patch_ops()->coop(), 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

struct thread_arg {
    int fd;
    int rc;
    int err;
    int coop;
    double t;           /* when the read returned */
};

static void *thread_read(void *arg)
{
    struct thread_arg *a = arg;
    char c;
    errno = 0;
    a->rc = (int)read(a->fd, &c, 1);
    a->err = errno;
    a->t = test_now(); /* when it returned */
    a->coop = green__patch_ops()->coop();
    return NULL;
}

START_TEST(test_thread_without_hub_blocks_as_libc_does)
{
    patch_on();
    alarm(10);
    int p[2];
    char c;
    ck_assert_int_eq(pipe(p), 0);
    /* A fd no greenlet has used: the thread's read is libc's read, and
       the fd is left alone. */
    ck_assert_int_eq(write(p[1], "a", 1), 1);
    struct thread_arg a = {p[0], 0, 0, 0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_read, &a), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(a.rc, 1);
    ck_assert_int_eq(a.coop, 0);
    ck_assert_int_eq(real_flags(p[0]) & O_NONBLOCK, 0);

    /* A fd a greenlet made non-blocking underneath: the thread (no hub)
       still gets a blocking read, not EAGAIN. */
    ck_assert_int_eq(write(p[1], "b", 1), 1);
    ck_assert_int_eq(read(p[0], &c, 1), 1); /* main greenlet: managed */
    ck_assert_int_ne(real_flags(p[0]) & O_NONBLOCK, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, thread_read, &a), 0);
    green_sleep(0.2);
    double written = test_now();
    ck_assert_int_eq(write(p[1], "c", 1), 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(a.rc == 1, "thread read: %d (%s)", a.rc, strerror(a.err));
    /* It waited for the byte: returned only after the write. */
    ck_assert_msg(a.t >= written, "thread read returned %.3f s early",
                  written - a.t);
    close(p[0]);
    close(p[1]);
}
END_TEST

struct link_arg {
    int fd;
    int usleep_rc;
    int read_rc;
    double slept;
};

static void in_link(green_t *g, void *arg)
{
    (void)g;
    struct link_arg *a = arg;
    /* The hub context: a cooperative wait would be EDEADLK; the patch
       library must hand these to libc instead. */
    double t0 = test_now();
    a->usleep_rc = usleep(20000);
    a->slept = test_now() - t0;
    char c;
    a->read_rc = (int)read(a->fd, &c, 1);
}

START_TEST(test_hub_and_link_callbacks_go_to_libc)
{
    patch_on();
    alarm(10);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "a", 1), 1);
    struct link_arg a = {p[0], -2, -2, 0};
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, in_link, &a), 0);
    join_release(g);
    green_sleep(0.01); /* let the link run */
    ck_assert_int_eq(a.usleep_rc, 0);
    ck_assert(a.slept >= 0.019);
    ck_assert_int_eq(a.read_rc, 1);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* Pipes on fds 0-2 are usually shared with other processes (a shell,
   make): they are never made non-blocking. */
START_TEST(test_stdio_pipes_pass_through)
{
    patch_on();
    int saved = dup(0);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(dup2(p[0], 0), 0);
    ck_assert_int_eq(write(p[1], "in", 2), 2);
    struct outcome o = {.fd = 0};
    join_release(green_spawn(read_one, &o));
    ck_assert_int_eq(o.rc, 2);
    ck_assert_int_eq(real_flags(0) & O_NONBLOCK, 0);
    ck_assert_int_eq(dup2(saved, 0), 0);
    close(saved);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_regular_file_passes_through)
{
    patch_on();
    char path[] = "/tmp/check_patch_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(write(fd, "file data", 9), 9);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    struct outcome o = {.fd = fd};
    join_release(green_spawn(read_one, &o));
    ck_assert_int_eq(o.rc, 9);
    ck_assert_str_eq(o.buf, "file data");
    ck_assert_int_eq(real_flags(fd) & O_NONBLOCK, 0);
    ck_assert_int_eq(fcntl(fd, F_GETFL), real_flags(fd));
    close(fd);
}
END_TEST

/* Plain pread(2) on a cold regular file goes off the hub (libgreen's
   file path): four greenlets are inside pread at the same time, which a
   pread blocking the hub would never allow. */
struct file_part {
    int fd;
    size_t off, n;
    int *inside, *max_inside, ok;
};

static void *read_file_part(void *a)
{
    struct file_part *p = a;
    char *b = malloc(1 << 20);
    p->ok = 1;
    for (size_t done = 0; done < p->n; done += 1 << 20) {
        if (++*p->inside > *p->max_inside)
            *p->max_inside = *p->inside;
        ssize_t k = pread(p->fd, b, 1 << 20, (off_t)(p->off + done));
        --*p->inside;
        if (k != 1 << 20 || b[0] != (char)((p->off + done) >> 20) ||
            b[(1 << 20) - 1] != b[0])
            p->ok = 0;
    }
    free(b);
    return NULL;
}

START_TEST(test_regular_file_reads_go_off_the_hub)
{
    patch_on();
    char path[] = "check_patch_file_XXXXXX"; /* not tmpfs: droppable */
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    const size_t size = 4 << 20;
    char *b = malloc(1 << 20);
    for (size_t off = 0; off < size; off += 1 << 20) {
        memset(b, (int)(off >> 20), 1 << 20);
        ck_assert_int_eq(pwrite(fd, b, 1 << 20, (off_t)off), 1 << 20);
    }
    free(b);
    ck_assert_int_eq(fsync(fd), 0);
    ck_assert_int_eq(fdatasync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    char c;
    struct iovec iov = {&c, 1};
    if (preadv2(fd, &iov, 1, 0, RWF_NOWAIT) < 0 && errno == EAGAIN) {
        int inside = 0, max_inside = 0;
        struct file_part p[4];
        green_t *g[4];
        for (int i = 0; i < 4; i++) {
            p[i] = (struct file_part){fd, (size_t)i << 20, 1 << 20, &inside,
                                      &max_inside, 0};
            g[i] = green_spawn(read_file_part, &p[i]);
        }
        ck_assert_int_eq(green_joinall(g, 4, 30), 0);
        for (int i = 0; i < 4; i++) {
            ck_assert(p[i].ok);
            green_release(g[i]);
        }
        ck_assert_int_ge(max_inside, 2);
    }
    /* read and write at the file position, fsync: the same path. */
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(write(fd, "head", 4), 4);
    char h[5] = {0};
    ck_assert_int_eq(pread(fd, h, 4, 0), 4);
    ck_assert_str_eq(h, "head");
    ck_assert_int_eq(read(fd, &c, 1), 1);
    ck_assert_int_eq(c, 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 5);
    GREEN_ASSERT_ERRNO(pread(fd, h, 4, -1), EINVAL);
    close(fd);
}
END_TEST

/******************************************************************************/
/*  poll, select, getaddrinfo                                                 */
/******************************************************************************/

static void *poll_nothing(void *arg)
{
    (void)arg;
    return poll(NULL, 0, 200) == 0 ? NULL : (void *)1;
}

static void *select_nothing(void *arg)
{
    (void)arg;
    struct timeval tv = {0, 200000};
    return select(0, NULL, NULL, NULL, &tv) == 0 ? NULL : (void *)1;
}

static void *ppoll_pselect_nothing(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 100000000L};
    if (ppoll(NULL, 0, &ts, NULL) != 0)
        return (void *)1;
    return pselect(0, NULL, NULL, NULL, &ts, NULL) == 0 ? NULL : (void *)1;
}

static void *poll_pipe(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct pollfd p = {fd, POLLIN, 0};
    fd_set r;
    FD_ZERO(&r);
    FD_SET(fd, &r);
    if (poll(&p, 1, -1) != 1 || !(p.revents & POLLIN))
        return (void *)1;
    return select(fd + 1, &r, NULL, NULL, NULL) == 1 && FD_ISSET(fd, &r)
               ? NULL
               : (void *)1;
}

START_TEST(test_poll_and_select_cooperate)
{
    patch_on();
    alarm(10);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct delayed d = {p[1], 0.1, "r"};
    green_t *t = start_ticker();
    green_t *g[5] = {green_spawn(poll_nothing, NULL),
                     green_spawn(select_nothing, NULL),
                     green_spawn(ppoll_pselect_nothing, NULL),
                     green_spawn(poll_pipe, (void *)(intptr_t)p[0]),
                     green_spawn(delayed_write, &d)};
    double t0 = test_now();
    ck_assert_int_eq(green_joinall(g, 5, -1), 0);
    GREEN_ASSERT_TIME(test_now() - t0, 0.2);
    stop_ticker(t);
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(green_value(g[i]) == NULL, "greenlet %d failed", i);
        green_release(g[i]);
    }
    ck_assert_int_ge(ticks, 3);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_getaddrinfo_works)
{
    patch_on();
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    ck_assert_int_eq(getaddrinfo("127.0.0.1", "80", &hints, &res), 0);
    ck_assert_ptr_nonnull(res);
    struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
    ck_assert_int_eq(ntohs(sin->sin_port), 80);
    ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    freeaddrinfo(res);
    /* A name goes through the threadpool while the caller waits. */
    res = NULL;
    ck_assert_int_eq(getaddrinfo("localhost", NULL, &hints, &res), 0);
    ck_assert_ptr_nonnull(res);
    freeaddrinfo(res);
}
END_TEST

/******************************************************************************/

/******************************************************************************/
/*  Signals: libc's EINTR where no greenlet can wait                          */
/******************************************************************************/

static void on_usr1(int sig)
{
    (void)sig;
}

/* Install on_usr1 for SIGUSR1 with or without SA_RESTART; *old gets the
   previous action. */
static void catch_usr1(int flags, struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, old), 0);
}

/* Issue 11 item 20: a thread without a hub, blocked in read() on a
   socket libgreen made non-blocking underneath, gets EINTR from a
   handler without SA_RESTART, exactly as libc's blocking read; with
   SA_RESTART the read goes on and returns the data. */
START_TEST(test_thread_read_is_interrupted_like_libc)
{
    patch_on();
    alarm(10);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char c;
    ck_assert_int_eq(write(sv[1], "a", 1), 1);
    ck_assert_int_eq(read(sv[0], &c, 1), 1); /* main greenlet: managed */
    ck_assert_int_ne(real_flags(sv[0]) & O_NONBLOCK, 0);
    struct sigaction old;
    /* Which signal interrupted a wait cannot be known, so the restart
       rule looks at every handler: the SA_RESTART half needs the test
       harness's own handlers (SIGINT, SIGALRM, SIGTERM) out of the
       way for a moment. */
    const int others[] = {SIGINT, SIGALRM, SIGTERM};
    struct sigaction saved[3];
    for (int restart = 0; restart < 2; restart++) {
        catch_usr1(restart ? SA_RESTART : 0, restart ? NULL : &old);
        for (int i = 0; restart && i < 3; i++) {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            ck_assert_int_eq(sigaction(others[i], &dfl, &saved[i]), 0);
        }
        struct thread_arg a = {sv[0], -2, 0, 0, 0};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, thread_read, &a), 0);
        usleep(50000); /* libc's: the hub does not run, the thread blocks */
        ck_assert_int_eq(pthread_kill(th, SIGUSR1), 0);
        usleep(50000);
        if (restart)
            ck_assert_int_eq(write(sv[1], "b", 1), 1);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        for (int i = 0; restart && i < 3; i++)
            ck_assert_int_eq(sigaction(others[i], &saved[i], NULL), 0);
        if (restart) {
            ck_assert_msg(a.rc == 1, "SA_RESTART read: %d (%s)", a.rc,
                          strerror(a.err));
        } else {
            ck_assert_int_eq(a.rc, -1);
            ck_assert_int_eq(a.err, EINTR);
        }
    }
    ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
    close(sv[0]);
    close(sv[1]);
    alarm(0);
}
END_TEST

/* Sends SIGUSR1 to a thread after a delay. */
struct kicker {
    pthread_t target;
    double delay;
};

static void *kick_later(void *arg)
{
    struct kicker *k = arg;
    struct timespec ts = {0, (long)(k->delay * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    pthread_kill(k->target, SIGUSR1);
    return NULL;
}

/* Issue 11 item 21: poll(NULL, 0, -1) and select(0, NULL, NULL, NULL,
   NULL) in the main greenlet are a pause until a signal, as unpatched
   (they failed at once with EDEADLK). */
START_TEST(test_pause_forms_of_poll_and_select_wait_for_a_signal)
{
    patch_on();
    alarm(10);
    struct sigaction old;
    catch_usr1(0, &old);
    for (int form = 0; form < 4; form++) {
        struct kicker k = {pthread_self(), 0.05};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, kick_later, &k), 0);
        double t0 = test_now();
        int rc;
        errno = 0;
        switch (form) {
        case 0:
            rc = poll(NULL, 0, -1);
            break;
        case 1:
            rc = select(0, NULL, NULL, NULL, NULL);
            break;
        case 2:
            rc = ppoll(NULL, 0, NULL, NULL);
            break;
        default:
            rc = pselect(0, NULL, NULL, NULL, NULL, NULL);
            break;
        }
        int err = errno;
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_msg(rc == -1 && err == EINTR, "form %d: rc %d (%s)", form,
                      rc, strerror(err));
        ck_assert(test_now() - t0 >= 0.04);
    }
    ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
    alarm(0);
}
END_TEST

/******************************************************************************/
/*  stdio on sockets and pipes                                                */
/******************************************************************************/

#define STDIO_BIG (8 << 20)

/* A slow peer: echoes lines back with a pause, then drains `drain`
   bytes in small sips and records what it got. */
struct slow_peer {
    int fd;
    size_t drain;
    size_t got;
    unsigned sum, want_sum;
};

static void *slow_peer(void *arg)
{
    struct slow_peer *p = arg;
    char line[64];
    size_t n = 0;
    /* Echo one line, late. */
    while (n < sizeof line - 1) {
        ssize_t r = read(p->fd, line + n, 1);
        if (r <= 0)
            return NULL;
        if (line[n++] == '\n')
            break;
    }
    usleep(30000);
    if (write(p->fd, line, n) != (ssize_t)n)
        return NULL;
    static char buf[65536];
    while (p->got < p->drain) {
        ssize_t r = read(p->fd, buf, sizeof buf);
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            p->sum = p->sum * 31 + (unsigned char)buf[i];
        p->got += (size_t)r;
        if (p->got % (1 << 20) < sizeof buf)
            usleep(2000); /* slow */
    }
    return NULL;
}

/* fdopen of a socket under patching: fprintf/fgets wait for a slow
   peer instead of failing with EAGAIN, and an 8 MiB fwrite arrives
   whole (it used to stop after ~4 MiB), while other greenlets run. */
START_TEST(test_stdio_on_a_socket_waits_and_loses_nothing)
{
    patch_on();
    alarm(20);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char *big = malloc(STDIO_BIG);
    ck_assert_ptr_nonnull(big);
    unsigned want = 0;
    for (size_t i = 0; i < STDIO_BIG; i++) {
        big[i] = (char)(i * 7 + i / 4096);
        want = want * 31 + (unsigned char)big[i];
    }
    struct slow_peer p = {sv[1], STDIO_BIG, 0, 0, want};
    green_t *g = green_spawn(slow_peer, &p);
    green_t *t = start_ticker();
    FILE *f = fdopen(sv[0], "r+");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_gt(fprintf(f, "hello %d\n", 42), 0);
    ck_assert_int_eq(fflush(f), 0);
    char line[64];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "hello 42\n");
    ck_assert_int_eq(fwrite(big, 1, STDIO_BIG, f), STDIO_BIG);
    ck_assert_int_eq(fflush(f), 0);
    ck_assert_int_eq(green_join(g, 15), 0);
    ck_assert_uint_eq(p.got, STDIO_BIG);
    ck_assert_uint_eq(p.sum, want);
    ck_assert_int_gt(ticks, 0); /* the others ran meanwhile */
    ck_assert_int_eq(fclose(f), 0);
    ticker_stop = 1;
    join_release(t);
    green_release(g);
    free(big);
    close(sv[1]);
    alarm(0);
}
END_TEST

/* A FILE libgreen-patch does not control keeps a blocking fd: popen's
   pipe, and an fdopen made before green_patch_all, even after a
   greenlet looked at the fd (fcntl, poll). */
START_TEST(test_foreign_streams_keep_a_blocking_fd)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    FILE *early = fdopen(p[0], "r"); /* before patching */
    ck_assert_ptr_nonnull(early);
    patch_on();
    alarm(10);
    ck_assert_int_eq(write(p[1], "one\ntwo\n", 8), 8);
    ck_assert_int_ge(fcntl(p[0], F_GETFL), 0); /* first sight: passes */
    ck_assert_int_eq(real_flags(p[0]) & O_NONBLOCK, 0);
    char line[16];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, early));
    ck_assert_str_eq(line, "one\n");
    ck_assert_int_eq(fclose(early), 0);
    close(p[1]);

    FILE *f = popen("head -c 300000 /dev/zero", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fcntl(fileno(f), F_GETFL), 0);
    ck_assert_int_eq(real_flags(fileno(f)) & O_NONBLOCK, 0);
    static char buf[400000];
    size_t n = 0, r;
    while ((r = fread(buf + n, 1, sizeof buf - n, f)) > 0)
        n += r;
    ck_assert(!ferror(f));
    ck_assert_uint_eq(n, 300000);
    ck_assert_int_eq(pclose(f), 0);
    alarm(0);
}
END_TEST

struct sf_drain {
    int fd;
    size_t got;
};

static void *sf_drain_slowly(void *arg)
{
    struct sf_drain *d = arg;
    static char buf[16384];
    ssize_t n;
    while ((n = read(d->fd, buf, sizeof buf)) > 0) {
        d->got += (size_t)n;
        if (d->got % (256 << 10) < sizeof buf)
            usleep(1000);
    }
    return NULL;
}

/* sendfile from a greenlet to a socket the caller left blocking: all
   of it arrives, and other greenlets run while it waits. */
START_TEST(test_sendfile_cooperates)
{
    patch_on();
    alarm(20);
    char path[] = "/tmp/green_psendfile_XXXXXX";
    int file = mkstemp(path);
    ck_assert_int_ge(file, 0);
    unlink(path);
    enum { SIZE = 2 << 20 };
    static char chunk[65536];
    memset(chunk, 'z', sizeof chunk);
    for (int i = 0; i < SIZE / (int)sizeof chunk; i++)
        ck_assert_int_eq(write(file, chunk, sizeof chunk), sizeof chunk);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct sf_drain d = {sv[1], 0};
    green_t *g = green_spawn(sf_drain_slowly, &d);
    green_t *t = start_ticker();
    off_t off = 0;
    ck_assert_int_eq(sendfile(sv[0], file, &off, SIZE), SIZE);
    ck_assert_int_eq(off, SIZE);
    ck_assert_int_gt(ticks, 0);
    close(sv[0]);
    join_release(g);
    stop_ticker(t);
    ck_assert_uint_eq(d.got, SIZE);
    close(sv[1]);
    close(file);
    alarm(0);
}
END_TEST

/* gethostbyname(_r), gethostbyaddr and getnameinfo resolve in the
   threadpool from a greenlet: correct results, and the cooperative
   errors (an expired green_timeout: ETIMEDOUT) instead of a blocking
   libc call; numeric input never leaves the thread. */
START_TEST(test_old_resolvers_use_the_threadpool)
{
    patch_on();
    alarm(20);
    struct hostent *h = gethostbyname("localhost");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->h_addrtype, AF_INET);
    ck_assert_int_eq((unsigned char)h->h_addr_list[0][0], 127);

    struct hostent he, *res = NULL;
    char buf[1024];
    int herr = 0;
    ck_assert_int_eq(gethostbyname_r("localhost", &he, buf, sizeof buf, &res,
                                     &herr), 0);
    ck_assert_ptr_eq(res, &he);
    ck_assert_str_eq(he.h_name, h->h_name);
    ck_assert_ptr_nonnull(he.h_addr_list[0]);
    /* Every pointer lands in the caller's buffer. */
    ck_assert(he.h_name >= buf && he.h_name < buf + sizeof buf);
    ck_assert(he.h_addr_list[0] >= buf && he.h_addr_list[0] < buf + sizeof buf);

    struct in_addr lo = {htonl(INADDR_LOOPBACK)};
    h = gethostbyaddr(&lo, sizeof lo, AF_INET);
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(h->h_name);

    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr = lo;
    sin.sin_port = htons(80);
    char host[256], serv[32];
    ck_assert_int_eq(getnameinfo((struct sockaddr *)&sin, sizeof sin, host,
                                 sizeof host, serv, sizeof serv, 0), 0);
    ck_assert(strlen(host) > 0);

    /* Cooperative: an expired green_timeout ends them, as it ends
       getaddrinfo; numeric input still resolves inline. */
    green_timeout_t *t = green_timeout_start(0.001);
    ck_assert_int_eq(green_sleep(0.05), -1);
    errno = 0;
    ck_assert_ptr_null(gethostbyname("localhost"));
    ck_assert_int_eq(h_errno, NETDB_INTERNAL);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(gethostbyname_r("localhost", &he, buf, sizeof buf, &res,
                                     &herr), ETIMEDOUT);
    ck_assert_int_eq(getnameinfo((struct sockaddr *)&sin, sizeof sin, host,
                                 sizeof host, NULL, 0, 0), EAI_SYSTEM);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_ptr_nonnull(gethostbyname("127.0.0.1"));
    ck_assert_int_eq(getnameinfo((struct sockaddr *)&sin, sizeof sin, host,
                                 sizeof host, serv, sizeof serv,
                                 NI_NUMERICHOST | NI_NUMERICSERV), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    green_timeout_cancel(t);
    alarm(0);
}
END_TEST

static Suite *patch_suite(void)
{
    Suite *s = suite_create("patch");
    struct {
        const char *name;
        const TTest *tests[8];
    } groups[] = {
        {"inert", {test_inert_before_patch_all, test_patch_all_is_idempotent}},
        {"sleep",
         {test_sleep_functions_cooperate,
          test_nanosleep_killed_is_ECANCELED_with_remaining_time,
          test_usleep_under_green_timeout_is_ETIMEDOUT}},
        {"blocking-io",
         {test_pipe_read_waits_while_others_run,
          test_large_blocking_writes_complete,
          test_recv_waitall_collects_everything,
          test_every_read_entry_point_cooperates}},
        {"nonblock",
         {test_caller_nonblock_keeps_EAGAIN,
          test_dontwait_fionbio_and_sock_nonblock_keep_EAGAIN,
          test_dup_shares_the_callers_view,
          test_libgreen_fds_look_blocking_to_libc_calls}},
        {"connect",
         {test_connect_and_accept_on_loopback,
          test_connect_to_closed_port_is_ECONNREFUSED}},
        {"timeouts",
         {test_so_rcvtimeo_is_EAGAIN_after_the_timeout,
          test_so_sndtimeo_bounds_a_blocking_write,
          test_green_timeout_ends_a_patched_read,
          test_killed_during_patched_read_is_ECANCELED,
          test_close_wakes_a_patched_reader_with_EBADF}},
        {"pass-through",
         {test_outside_greenlets_calls_go_to_libc,
          test_thread_without_hub_blocks_as_libc_does,
          test_hub_and_link_callbacks_go_to_libc,
          test_stdio_pipes_pass_through, test_regular_file_passes_through,
          test_regular_file_reads_go_off_the_hub}},
        {"poll-dns",
         {test_poll_and_select_cooperate, test_getaddrinfo_works,
          test_old_resolvers_use_the_threadpool}},
        {"stdio",
         {test_stdio_on_a_socket_waits_and_loses_nothing,
          test_foreign_streams_keep_a_blocking_fd, test_sendfile_cooperates}},
        {"signals",
         {test_thread_read_is_interrupted_like_libc,
          test_pause_forms_of_poll_and_select_wait_for_a_signal}},
    };
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        TCase *tc = tcase_create(groups[i].name);
        tcase_add_checked_fixture(tc, green_test_setup, green_test_teardown);
        tcase_set_timeout(tc, 60);
        for (int j = 0; j < 8 && groups[i].tests[j]; j++)
            tcase_add_test(tc, groups[i].tests[j]);
        suite_add_tcase(s, tc);
    }
    return s;
}

GREEN_TEST_MAIN(patch_suite)
