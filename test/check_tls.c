/* libgreen-tls: handshakes, verification, SNI, ALPN, reads and writes,
   shutdown, the blocking errors (timeouts, kills, the hub) and the TLS
   server mode, over socketpairs and loopback TCP with certificates made
   at test time (test/tlstest.h). */
#include "testutil.h"
#include "iotest.h"
#include "tlstest.h"

static const struct tls_files *files;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A client context that trusts the test CA. */
static green_tls_ctx_t *client_ctx(void)
{
    green_tls_ctx_t *ctx = green_tls_client_ctx();
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(green_tls_ctx_load_ca(ctx, files->ca), 0);
    return ctx;
}

static green_tls_ctx_t *server_ctx(void)
{
    green_tls_ctx_t *ctx = green_tls_server_ctx(files->cert, files->key);
    ck_assert_msg(ctx != NULL, "%s", green_tls_error(NULL));
    return ctx;
}

/* The server side of a handshake, run in a greenlet. */
struct side {
    green_tls_ctx_t *ctx;
    int fd;
    double timeout;
    green_tls_t *t;
    int err;
};

static void *accept_main(void *arg)
{
    struct side *s = arg;
    s->t = green_tls_accept(s->ctx, s->fd, s->timeout);
    s->err = s->t ? 0 : errno;
    return NULL;
}

/* A connection over a socketpair: the client handshakes in the caller
   (host), the server in a greenlet.  Returns the client (NULL: *cerr
   has its errno); *server gets the server side's result. */
struct pair {
    int sv[2];
    green_tls_t *c;
    int cerr;
    struct side s;
};

/* The test's contexts, made by the fixture (tls_setup) and freed by
   it: a client that trusts the test CA and a server with the CA-signed
   certificate.  A test that wants another one replaces it (the
   teardown frees whatever is here then; NULL: nothing). */
static green_tls_ctx_t *cctx, *sctx;

static void tls_setup(void)
{
    green_test_setup();
    cctx = client_ctx();
    sctx = server_ctx();
}

static void tls_teardown(void)
{
    green_tls_ctx_free(cctx);
    green_tls_ctx_free(sctx);
    green_test_teardown();
}

/* A connection between cctx and sctx over a socketpair. */
static void pair_open(struct pair *p, const char *host)
{
    test_socketpair(p->sv);
    p->s = (struct side){.ctx = sctx, .fd = p->sv[1], .timeout = 5};
    green_t *g = green_spawn(accept_main, &p->s);
    ck_assert_ptr_nonnull(g);
    errno = 0;
    p->c = green_tls_connect(cctx, p->sv[0], host, 5);
    p->cerr = p->c ? 0 : errno;
    ck_assert_int_eq(green_join(g, 10), 0);
    green_release(g);
}

/* A connection that must succeed on both sides. */
static void pair_ok(struct pair *p, const char *host)
{
    pair_open(p, host);
    ck_assert_msg(p->c && p->s.t, "client %s, server %s",
                  strerror(p->cerr), strerror(p->s.err));
}

/* A connection the client's handshake must refuse (EPROTO). */
static void pair_refused(struct pair *p, const char *host)
{
    pair_open(p, host);
    ck_assert_ptr_null(p->c);
    ck_assert_int_eq(p->cerr, EPROTO);
}

/* Frees both sides and closes the socket ends a test has not closed
   itself (it sets those to -1). */
static void pair_close(struct pair *p)
{
    green_tls_free(p->c);
    green_tls_free(p->s.t);
    for (int i = 0; i < 2; i++)
        if (p->sv[i] >= 0)
            green_close(p->sv[i]);
}

/******************************************************************************/
/*  Handshake, verification, SNI, ALPN                                        */
/******************************************************************************/

START_TEST(handshake_then_echo)
{
    struct pair p;
    pair_ok(&p, "localhost");
    ck_assert_int_eq(green_tls_fd(p.c), p.sv[0]);
    ck_assert_ptr_null(green_tls_alpn(p.c));
    ck_assert_int_eq(green_tls_write(p.c, "hello", 5), 5);
    char buf[16];
    ck_assert_int_eq(green_tls_read(p.s.t, buf, sizeof buf), 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    ck_assert_int_eq(green_tls_write_all(p.s.t, "world!", 6), 6);
    ck_assert_int_eq(green_tls_read(p.c, buf, sizeof buf), 6);
    ck_assert_int_eq(memcmp(buf, "world!", 6), 0);
    ck_assert_int_eq(green_tls_read(p.c, buf, 0), 0);
    /* MSG_DONTWAIT: the blocking socketpair's flags are left alone. */
    ck_assert(!test_is_nonblock(p.sv[0]));
    ck_assert(!test_is_nonblock(p.sv[1]));
    pair_close(&p);
}
END_TEST

START_TEST(untrusted_certificate_fails_verification)
{
    /* Verification is on by default: the self-signed certificate is
       not signed by any trusted CA. */
    green_tls_ctx_free(sctx);
    sctx = green_tls_server_ctx(files->self_cert, files->self_key);
    ck_assert_ptr_nonnull(sctx);
    struct pair p;
    pair_refused(&p, "localhost");
    ck_assert_msg(strstr(green_tls_error(NULL), "certificate verify failed"),
                  "%s", green_tls_error(NULL));
    /* The server hears the client's alert. */
    ck_assert_ptr_null(p.s.t);
    ck_assert_int_eq(p.s.err, EPROTO);
    pair_close(&p);
    /* With verification off, the same server is accepted. */
    ck_assert_int_eq(green_tls_ctx_set_verify(cctx, 0), 0);
    pair_ok(&p, NULL);
    pair_close(&p);
}
END_TEST

START_TEST(system_store_alone_does_not_trust_the_test_ca)
{
    green_tls_ctx_free(cctx);
    cctx = green_tls_client_ctx();
    struct pair p;
    pair_refused(&p, "localhost");
    pair_close(&p);
}
END_TEST

START_TEST(hostname_mismatch_is_EPROTO)
{
    struct pair p;
    pair_refused(&p, "wrong.test");
    ck_assert_msg(strstr(green_tls_error(NULL), "hostname mismatch"), "%s",
                  green_tls_error(NULL));
    pair_close(&p);
    /* An IP address is checked against the certificate's IP names. */
    pair_ok(&p, "127.0.0.1");
    ck_assert_ptr_null(green_tls_sni(p.s.t)); /* no SNI for an address */
    pair_close(&p);
    pair_refused(&p, "127.0.0.2");
    pair_close(&p);
}
END_TEST

START_TEST(server_sees_sni)
{
    struct pair p;
    pair_ok(&p, "alt.test");
    ck_assert_str_eq(green_tls_sni(p.s.t), "alt.test");
    ck_assert_str_eq(green_tls_sni(p.c), "alt.test");
    pair_close(&p);
}
END_TEST

START_TEST(alpn_server_preference_and_no_overlap)
{
    const char *offer[] = {"h2", "http/1.1"}, *have[] = {"http/1.1", "h2"};
    ck_assert_int_eq(green_tls_ctx_set_alpn(cctx, offer, 2), 0);
    ck_assert_int_eq(green_tls_ctx_set_alpn(sctx, have, 2), 0);
    struct pair p;
    pair_ok(&p, "localhost");
    ck_assert_str_eq(green_tls_alpn(p.c), "http/1.1");
    ck_assert_str_eq(green_tls_alpn(p.s.t), "http/1.1");
    pair_close(&p);
    /* No protocol in common: the handshake fails on both sides. */
    const char *other[] = {"spdy/3"};
    ck_assert_int_eq(green_tls_ctx_set_alpn(cctx, other, 1), 0);
    pair_refused(&p, "localhost");
    ck_assert_ptr_null(p.s.t);
    ck_assert_int_eq(p.s.err, EPROTO);
    pair_close(&p);
    /* A client that offers nothing gets no protocol. */
    ck_assert_int_eq(green_tls_ctx_set_alpn(cctx, NULL, 0), 0);
    pair_ok(&p, "localhost");
    ck_assert_ptr_null(green_tls_alpn(p.s.t));
    pair_close(&p);
}
END_TEST

START_TEST(server_asks_for_a_client_certificate)
{
    ck_assert_int_eq(green_tls_ctx_set_verify(sctx, 1), 0);
    ck_assert_int_eq(green_tls_ctx_load_ca(sctx, files->ca), 0);
    /* No client certificate: the server refuses (the TLS 1.3 client
       learns it at its first read). */
    struct pair p;
    pair_open(&p, "localhost");
    ck_assert_ptr_null(p.s.t);
    ck_assert_int_eq(p.s.err, EPROTO);
    char buf[4];
    if (p.c)
        GREEN_ASSERT_ERRNO(green_tls_read(p.c, buf, sizeof buf), EPROTO);
    pair_close(&p);
    /* An untrusted one: refused too. */
    ck_assert_int_eq(
        green_tls_ctx_use_cert(cctx, files->self_cert, files->self_key), 0);
    pair_open(&p, "localhost");
    ck_assert_int_eq(p.s.err, EPROTO);
    pair_close(&p);
    /* One the CA signed: accepted. */
    ck_assert_int_eq(green_tls_ctx_use_cert(cctx, files->cert, files->key),
                     0);
    pair_ok(&p, "localhost");
    ck_assert_int_eq(green_tls_write_all(p.s.t, "mtls", 4), 4);
    ck_assert_int_eq(green_tls_read(p.c, buf, sizeof buf), 4);
    pair_close(&p);
    GREEN_ASSERT_ERRNO(green_tls_ctx_use_cert(cctx, files->cert, NULL),
                       EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_ctx_use_cert(cctx, "/nonexistent", files->key),
                       ENOENT);
}
END_TEST

START_TEST(garbage_from_the_peer_is_EPROTO)
{
    int sv[2];
    test_socketpair(sv);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(green_write_all(sv[0], junk, sizeof junk - 1),
                     (ssize_t)sizeof junk - 1);
    GREEN_ASSERT_ERRNO(green_tls_accept(sctx, sv[1], 5), EPROTO);
    ck_assert_str_ne(green_tls_error(NULL), "");
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

/******************************************************************************/
/*  Data, shutdown                                                            */
/******************************************************************************/

struct bulk {
    green_tls_t *t;
    size_t n;
    size_t got;
    int ok;
};

/* Reads slowly (a pause every 64 KiB) and checks every byte. */
static void *slow_reader(void *arg)
{
    struct bulk *b = arg;
    char buf[4096];
    size_t since = 0;
    b->ok = 1;
    while (b->got < b->n) {
        ssize_t r = green_tls_read(b->t, buf, sizeof buf);
        if (r <= 0) {
            b->ok = 0;
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != (char)((b->got + (size_t)i) * 7 % 251))
                b->ok = 0;
        b->got += (size_t)r;
        since += (size_t)r;
        if (since >= 65536) {
            since = 0;
            green_sleep(0.001);
        }
    }
    return NULL;
}

START_TEST(records_read_ahead_are_read_without_waiting)
{
    struct pair p;
    pair_ok(&p, "localhost");
    for (const char *c = "abc"; *c; c++)
        ck_assert_int_eq(green_tls_write(p.c, c, 1), 1);
    /* Three records are waiting: the server's first recv takes them all
       in (read ahead) and comes back short, so the socket is drained,
       yet what OpenSSL holds must be read without waiting for the fd. */
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 1), 0);
    char buf[16];
    size_t len = 0;
    while (len < 3) {
        ssize_t n = green_tls_read(p.s.t, buf + len, sizeof buf - len);
        ck_assert_msg(n > 0, "%s", strerror(errno));
        len += (size_t)n;
    }
    ck_assert_int_eq(green_timeout_end(&s), 0);
    ck_assert_int_eq(memcmp(buf, "abc", 3), 0);
    /* The next read waits for the fd, then reads. */
    ck_assert_int_eq(green_tls_write(p.c, "d", 1), 1);
    ck_assert_int_eq(green_tls_read(p.s.t, buf, sizeof buf), 1);
    ck_assert_int_eq(buf[0], 'd');
    pair_close(&p);
}
END_TEST

START_TEST(write_all_mebibytes_to_a_slow_reader)
{
    struct pair p;
    pair_ok(&p, "localhost");
    size_t n = (test_light() ? 1 : 4) << 20;
    char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 % 251);
    struct bulk b = {.t = p.s.t, .n = n};
    green_t *g = green_spawn(slow_reader, &b);
    ck_assert_int_eq(green_tls_write_all(p.c, data, n), (ssize_t)n);
    ck_assert_int_eq(green_join(g, 30), 0);
    ck_assert_int_eq(b.got, n);
    ck_assert(b.ok);
    green_release(g);
    free(data);
    pair_close(&p);
}
END_TEST

static void *shutdown_main(void *arg)
{
    green_tls_t *t = arg;
    return (void *)(intptr_t)(green_tls_shutdown(t, 5) == 0 ? 0 : errno);
}

START_TEST(clean_shutdown_reads_0_abrupt_eof_is_ECONNRESET)
{
    struct pair p;
    pair_ok(&p, "localhost");
    /* The server closes cleanly: it waits for the client's close_notify. */
    green_t *g = green_spawn(shutdown_main, p.s.t);
    char buf[8];
    ck_assert_int_eq(green_tls_read(p.c, buf, sizeof buf), 0);
    ck_assert_int_eq(green_tls_shutdown(p.c, 5), 0);
    ck_assert_int_eq(green_join(g, 5), 0);
    ck_assert_int_eq((intptr_t)green_value(g), 0);
    green_release(g);
    pair_close(&p);

    /* The server just closes its socket: a truncation. */
    pair_ok(&p, "localhost");
    ck_assert_int_eq(green_tls_write_all(p.s.t, "part", 4), 4);
    green_close(p.sv[1]);
    ck_assert_int_eq(green_tls_read(p.c, buf, sizeof buf), 4);
    GREEN_ASSERT_ERRNO(green_tls_read(p.c, buf, sizeof buf), ECONNRESET);
    ck_assert_msg(strstr(green_tls_error(p.c), "close_notify"), "%s",
                  green_tls_error(p.c));
    /* Sticky. */
    GREEN_ASSERT_ERRNO(green_tls_read(p.c, buf, sizeof buf), ECONNRESET);
    GREEN_ASSERT_ERRNO(green_tls_shutdown(p.c, 1), ECONNRESET);
    p.sv[1] = -1;
    pair_close(&p);

    /* Shutdown with timeout 0: close_notify goes, the peer's is not
       there yet. */
    pair_open(&p, "localhost");
    GREEN_ASSERT_ERRNO(green_tls_shutdown(p.c, 0), EAGAIN);
    ck_assert_int_eq(green_tls_read(p.s.t, buf, sizeof buf), 0);
    ck_assert_int_eq(green_tls_shutdown(p.s.t, 0), 0);
    ck_assert_int_eq(green_tls_shutdown(p.c, 0), 0);
    pair_close(&p);
}
END_TEST

START_TEST(shutdown_times_out_against_a_silent_peer)
{
    struct pair p;
    pair_ok(&p, "localhost");
    double t0 = now();
    GREEN_ASSERT_ERRNO(green_tls_shutdown(p.c, 0.2), ETIMEDOUT);
    GREEN_ASSERT_TIME(now() - t0, 0.2);
    pair_close(&p);
}
END_TEST

/******************************************************************************/
/*  Blocking errors                                                           */
/******************************************************************************/

START_TEST(handshake_timeout_against_a_silent_peer)
{
    int sv[2];
    test_socketpair(sv);
    double t0 = now();
    GREEN_ASSERT_ERRNO(green_tls_connect(cctx, sv[0], "localhost", 0.2),
                       ETIMEDOUT);
    GREEN_ASSERT_TIME(now() - t0, 0.2);
    t0 = now();
    GREEN_ASSERT_ERRNO(green_tls_accept(sctx, sv[1], 0.1), ETIMEDOUT);
    GREEN_ASSERT_TIME(now() - t0, 0.1);
    /* Timeout 0: EAGAIN as soon as it would wait. */
    GREEN_ASSERT_ERRNO(green_tls_accept(sctx, sv[1], 0), EAGAIN);
    /* An enclosing green_timeout is earlier than the call's own. */
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.1), 0);
    t0 = now();
    GREEN_ASSERT_ERRNO(green_tls_accept(sctx, sv[1], 10), ETIMEDOUT);
    GREEN_ASSERT_TIME(now() - t0, 0.1);
    ck_assert_int_eq(green_timeout_end(&s), 1);
    green_close(sv[0]);
    green_close(sv[1]);
}
END_TEST

static void *read_main(void *arg)
{
    char buf[8];
    ssize_t r = green_tls_read(arg, buf, sizeof buf);
    return (void *)(intptr_t)(r < 0 ? errno : 0);
}

START_TEST(kill_during_read_is_ECANCELED)
{
    struct pair p;
    pair_ok(&p, "localhost");
    green_t *g = green_spawn(read_main, p.c);
    green_sleep(0.01);
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq((intptr_t)green_value(g), ECANCELED);
    green_release(g);
    /* The connection is still good for a greenlet that was not killed. */
    ck_assert_int_eq(green_tls_write_all(p.s.t, "ok", 2), 2);
    char buf[4];
    ck_assert_int_eq(green_tls_read(p.c, buf, sizeof buf), 2);
    pair_close(&p);
}
END_TEST

START_TEST(timeout_scope_around_read)
{
    struct pair p;
    pair_ok(&p, "localhost");
    green_timeout_scope_t s;
    char buf[4];
    ck_assert_int_eq(green_timeout_begin(&s, 0.1), 0);
    double t0 = now();
    GREEN_ASSERT_ERRNO(green_tls_read(p.c, buf, sizeof buf), ETIMEDOUT);
    GREEN_ASSERT_TIME(now() - t0, 0.1);
    ck_assert_int_eq(green_timeout_end(&s), 1);
    /* Not a TLS failure: reading again works. */
    ck_assert_int_eq(green_tls_write_all(p.s.t, "go", 2), 2);
    ck_assert_int_eq(green_tls_read(p.c, buf, sizeof buf), 2);
    pair_close(&p);
}
END_TEST

static green_tls_t *hub_t;
static int hub_err;

static void read_in_link(green_t *g, void *arg)
{
    (void)g;
    (void)arg;
    char c;
    errno = 0;
    hub_err = green_tls_read(hub_t, &c, 1) < 0 ? errno : 0;
}

START_TEST(read_in_the_hub_is_EDEADLK)
{
    struct pair p;
    pair_ok(&p, "localhost");
    hub_t = p.c;
    hub_err = -1;
    green_t *g = green_spawn(test_noop, NULL);
    green_link(g, read_in_link, NULL);
    green_join(g, -1);
    green_sleep(0.01);
    ck_assert_int_eq(hub_err, EDEADLK);
    green_release(g);
    pair_close(&p);
}
END_TEST

START_TEST(closing_the_fd_during_read_is_EBADF)
{
    struct pair p;
    pair_ok(&p, "localhost");
    green_t *g = green_spawn(read_main, p.c);
    green_sleep(0.01);
    green_close(p.sv[0]);
    ck_assert_int_eq(green_join(g, 1), 0);
    ck_assert_int_eq((intptr_t)green_value(g), EBADF);
    green_release(g);
    p.sv[0] = -1;
    pair_close(&p);
}
END_TEST

START_TEST(bad_arguments)
{
    char buf[4];
    GREEN_ASSERT_ERRNO(green_tls_server_ctx(NULL, files->key), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_server_ctx("/nonexistent/c.pem", files->key),
                       ENOENT);
    /* A key that does not belong to the certificate. */
    GREEN_ASSERT_ERRNO(green_tls_server_ctx(files->cert, files->self_key),
                       EINVAL);
    ck_assert_str_ne(green_tls_error(NULL), "");
    GREEN_ASSERT_ERRNO(green_tls_server_ctx(files->key, files->key), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_ctx_load_ca(NULL, files->ca), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_ctx_load_ca(cctx, "/nonexistent"), ENOENT);
    GREEN_ASSERT_ERRNO(green_tls_ctx_load_ca(cctx, files->key), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_ctx_set_verify(NULL, 1), EINVAL);
    const char *empty[] = {""}, *null[] = {NULL};
    GREEN_ASSERT_ERRNO(green_tls_ctx_set_alpn(cctx, empty, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_ctx_set_alpn(cctx, null, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_ctx_set_alpn(cctx, NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_ctx_set_alpn(NULL, empty, 0), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_connect(NULL, 0, "x", 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_connect(sctx, 0, "x", 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_connect(cctx, 0, NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_connect(cctx, -1, "x", 1), EBADF);
    GREEN_ASSERT_ERRNO(green_tls_connect(cctx, 0, "x", 0.0 / 0.0), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_accept(cctx, 0, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_accept(NULL, 0, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_read(NULL, buf, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_write(NULL, buf, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_write_all(NULL, buf, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_shutdown(NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_fd(NULL), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_server_new("127.0.0.1:0", cctx, NULL, NULL),
                       EINVAL);
    ck_assert_ptr_null(green_tls_alpn(NULL));
    ck_assert_ptr_null(green_tls_sni(NULL));
    green_tls_free(NULL);
    green_tls_ctx_free(NULL);
    /* Not a socket. */
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    GREEN_ASSERT_ERRNO(green_tls_connect(cctx, pfd[0], "localhost", 1),
                       ENOTSOCK);
    green_close(pfd[0]);
    green_close(pfd[1]);
    /* NULL buffers, NaN shutdown timeout on a live connection. */
    struct pair p;
    pair_ok(&p, "localhost");
    GREEN_ASSERT_ERRNO(green_tls_read(p.c, NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_write(p.c, NULL, 1), EINVAL);
    GREEN_ASSERT_ERRNO(green_tls_shutdown(p.c, 0.0 / 0.0), EINVAL);
    ck_assert_int_eq(green_tls_write(p.c, buf, 0), 0);
    pair_close(&p);
}
END_TEST

START_TEST(connections_outlive_their_ctx)
{
    struct pair p;
    pair_ok(&p, "localhost");
    green_tls_ctx_free(cctx);
    green_tls_ctx_free(sctx);
    cctx = sctx = NULL; /* already freed: the teardown has none to free */
    ck_assert_int_eq(green_tls_write_all(p.c, "abc", 3), 3);
    char buf[4];
    ck_assert_int_eq(green_tls_read(p.s.t, buf, sizeof buf), 3);
    pair_close(&p);
}
END_TEST

/******************************************************************************/
/*  Server mode                                                               */
/******************************************************************************/

/* Echoes one line, upper-cased, then returns. */
static void upper_handler(green_tls_t *t, void *arg)
{
    int *served = arg;
    char buf[64];
    ssize_t n = green_tls_read(t, buf, sizeof buf);
    if (n <= 0)
        return;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z')
            buf[i] = (char)(buf[i] - 'a' + 'A');
    if (green_tls_write_all(t, buf, (size_t)n) == n)
        (*served)++;
}

struct client {
    int port;
    green_tls_ctx_t *ctx;
    int id;
    int ok;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    int fd = green_tcp_connect("127.0.0.1", c->port, 5);
    if (fd < 0)
        return NULL;
    green_tls_t *t = green_tls_connect(c->ctx, fd, "localhost", 5);
    char msg[32], want[32], buf[64];
    snprintf(msg, sizeof msg, "client %d", c->id);
    snprintf(want, sizeof want, "CLIENT %d", c->id);
    size_t got = 0;
    if (t && green_tls_write_all(t, msg, strlen(msg)) >= 0) {
        ssize_t n;
        while ((n = green_tls_read(t, buf + got, sizeof buf - got)) > 0)
            got += (size_t)n;
        /* The server ends with close_notify: a clean 0. */
        c->ok = n == 0 && got == strlen(want) && !memcmp(buf, want, got);
    }
    green_tls_free(t);
    green_close(fd);
    return NULL;
}

START_TEST(server_mode_concurrent_clients)
{
    int served = 0;
    green_server_t *s =
        green_tls_server_new("127.0.0.1:0", sctx, upper_handler, &served);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(green_server_start(s), 0);
    enum { N = 20 };
    struct client c[N];
    green_t *g[N];
    for (int i = 0; i < N; i++) {
        c[i] = (struct client){green_server_port(s), cctx, i, 0};
        g[i] = green_spawn(client_main, &c[i]);
    }
    ck_assert_int_eq(green_joinall(g, N, 30), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(c[i].ok, "client %d failed", i);
        green_release(g[i]);
    }
    ck_assert_int_eq(served, N);
    ck_assert_int_eq(green_server_stop(s, 1), 0);
    green_server_free(s);
}
END_TEST

static void never_called(green_tls_t *t, void *arg)
{
    (void)t;
    (*(int *)arg)++;
}

START_TEST(servers_on_one_ctx_keep_their_handler_and_arg)
{
    /* The first two share ctx's record for (upper_handler, &served). */
    int served = 0, other = 0;
    int *counts[3] = {&served, &served, &other};
    green_server_t *s[3];
    struct client c[3];
    green_t *g[3];
    for (int i = 0; i < 3; i++) {
        s[i] = green_tls_server_new("127.0.0.1:0", sctx, upper_handler,
                                    counts[i]);
        ck_assert_ptr_nonnull(s[i]);
        ck_assert_int_eq(green_server_start(s[i]), 0);
        c[i] = (struct client){green_server_port(s[i]), cctx, i, 0};
        g[i] = green_spawn(client_main, &c[i]);
    }
    ck_assert_int_eq(green_joinall(g, 3, 30), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(c[i].ok, "client %d failed", i);
        green_release(g[i]);
        ck_assert_int_eq(green_server_stop(s[i], 1), 0);
        green_server_free(s[i]);
    }
    ck_assert_int_eq(served, 2);
    ck_assert_int_eq(other, 1);
}
END_TEST

START_TEST(server_stop_kills_handshakes_in_progress)
{
    int called = 0;
    green_server_t *s =
        green_tls_server_new("127.0.0.1:0", sctx, never_called, &called);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(green_server_start(s), 0);
    /* Plain TCP clients that never say hello: the handshakes wait. */
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = green_tcp_connect("127.0.0.1", green_server_port(s), 5);
        ck_assert_int_ge(fds[i], 0);
    }
    green_sleep(0.05);
    double t0 = now();
    ck_assert_int_eq(green_server_stop(s, 0.05), 0);
    ck_assert_double_lt(now() - t0, 1 + test_slack());
    ck_assert_int_eq(called, 0);
    /* The server closed its ends without a TLS word. */
    char c;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(green_read(fds[i], &c, 1), 0);
        green_close(fds[i]);
    }
    green_server_free(s);
}
END_TEST

static void *serve_main(void *arg)
{
    return (void *)(intptr_t)(green_server_serve_forever(arg) == 0 ? 0
                                                                   : errno);
}

START_TEST(killing_serve_forever_kills_handshakes_in_progress)
{
    int called = 0;
    green_server_t *s =
        green_tls_server_new("127.0.0.1:0", sctx, never_called, &called);
    ck_assert_ptr_nonnull(s);
    green_t *g = green_spawn(serve_main, s);
    green_sleep(0.01);
    /* Half a ClientHello: the handshake waits for the rest. */
    int fd = green_tcp_connect("127.0.0.1", green_server_port(s), 5);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(green_write_all(fd, "\x16\x03\x01\x01\x00\x01", 6), 6);
    green_sleep(0.05);
    ck_assert_int_eq(green_kill(g, 2), 0);
    ck_assert_int_eq((intptr_t)green_value(g), ECANCELED);
    green_release(g);
    char c;
    ck_assert_int_eq(green_read(fd, &c, 1), 0);
    ck_assert_int_eq(called, 0);
    green_close(fd);
    green_server_free(s);
}
END_TEST

static void read_forever_handler(green_tls_t *t, void *arg)
{
    char buf[16];
    int *state = arg;
    *state = 1;
    errno = 0;
    *state = green_tls_read(t, buf, sizeof buf) < 0 && errno == ECANCELED
                 ? 2
                 : 3;
}

START_TEST(server_stop_kills_a_handler_in_read)
{
    int state = 0;
    green_server_t *s = green_tls_server_new("127.0.0.1:0", sctx,
                                             read_forever_handler, &state);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(green_server_start(s), 0);
    int fd = green_tcp_connect("127.0.0.1", green_server_port(s), 5);
    ck_assert_int_ge(fd, 0);
    green_tls_t *t = green_tls_connect(cctx, fd, "localhost", 5);
    ck_assert_ptr_nonnull(t);
    green_sleep(0.05);
    ck_assert_int_eq(state, 1);
    ck_assert_int_eq(green_server_stop(s, 0.05), 0);
    ck_assert_int_eq(state, 2);
    /* The killed connection's close_notify cannot go: an abrupt end. */
    char buf[4];
    GREEN_ASSERT_ERRNO(green_tls_read(t, buf, sizeof buf), ECONNRESET);
    green_tls_free(t);
    green_close(fd);
    green_server_free(s);
}
END_TEST

static Suite *tls_suite(void)
{
    files = tls_make_files();
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("handshake");
    tcase_add_checked_fixture(tc, tls_setup, tls_teardown);
    tcase_add_test(tc, handshake_then_echo);
    tcase_add_test(tc, untrusted_certificate_fails_verification);
    tcase_add_test(tc, system_store_alone_does_not_trust_the_test_ca);
    tcase_add_test(tc, hostname_mismatch_is_EPROTO);
    tcase_add_test(tc, server_sees_sni);
    tcase_add_test(tc, alpn_server_preference_and_no_overlap);
    tcase_add_test(tc, server_asks_for_a_client_certificate);
    tcase_add_test(tc, garbage_from_the_peer_is_EPROTO);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, connections_outlive_their_ctx);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_add_checked_fixture(tc, tls_setup, tls_teardown);
    tcase_add_test(tc, records_read_ahead_are_read_without_waiting);
    tcase_add_test(tc, write_all_mebibytes_to_a_slow_reader);
    tcase_add_test(tc, clean_shutdown_reads_0_abrupt_eof_is_ECONNRESET);
    tcase_add_test(tc, shutdown_times_out_against_a_silent_peer);
    suite_add_tcase(s, tc);

    tc = tcase_create("blocking");
    tcase_add_checked_fixture(tc, tls_setup, tls_teardown);
    tcase_add_test(tc, handshake_timeout_against_a_silent_peer);
    tcase_add_test(tc, kill_during_read_is_ECANCELED);
    tcase_add_test(tc, timeout_scope_around_read);
    tcase_add_test(tc, read_in_the_hub_is_EDEADLK);
    tcase_add_test(tc, closing_the_fd_during_read_is_EBADF);
    suite_add_tcase(s, tc);

    tc = tcase_create("server");
    tcase_add_checked_fixture(tc, tls_setup, tls_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, server_mode_concurrent_clients);
    tcase_add_test(tc, servers_on_one_ctx_keep_their_handler_and_arg);
    tcase_add_test(tc, server_stop_kills_handshakes_in_progress);
    tcase_add_test(tc, killing_serve_forever_kills_handshakes_in_progress);
    tcase_add_test(tc, server_stop_kills_a_handler_in_read);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(tls_suite)
