/* libgreen-tls: TLS over green fds with OpenSSL (gevent.ssl, libdill's
   TLS sockets), without patching.

   The SSL object talks to the socket through a small BIO of ours whose
   read and write are green_recv/green_send with MSG_DONTWAIT: they never
   wait, so OpenSSL reports SSL_ERROR_WANT_READ/WANT_WRITE, and tls_run
   waits for the fd with green_wait_read/green_wait_write.  OpenSSL reads
   ahead (one recv takes in whatever has arrived, up to its buffer), so
   a recv that comes back short means the socket is drained: the next
   read waits for the fd first instead of making a recv that would fail
   with EAGAIN (libev's readiness is what the wait needs).  Every wait is
   therefore an ordinary libgreen wait: kills (ECANCELED), green_timeout
   scopes (ETIMEDOUT), timeout 0 (EAGAIN) and the hub (EDEADLK) work as
   for green_read.  A call's own timeout (handshake, shutdown) is a
   green_timeout scope around its waits, begun only once it has to wait.

   This library uses libgreen's public API only (libgreen.so exports
   nothing else), so green_tls_server_new is built on green_server_new. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <green.h>

/* Room for a failure message. */
#define MSG_LEN 256

/* How long a green_tls_server_new connection may take to handshake. */
#define SERVER_HANDSHAKE_TIMEOUT 10.0

/* One green_tls_server_new server: what its connection greenlets run. */
struct tls_server {
    struct tls_server *next;     /* in ctx->servers (one per pair) */
    green_tls_ctx_t *ctx;
    void (*handler)(green_tls_t *t, void *arg);
    void *arg;
};

struct green_tls_ctx {
    SSL_CTX *ssl;
    int server;                  /* made by green_tls_server_ctx */
    int verify;                  /* client: peer verification on */
    atomic_int refs;             /* the user's + one per green_tls_t */
    unsigned char *alpn;         /* server: its list, wire format */
    size_t alpn_len;
    pthread_mutex_t lock;        /* guards servers (ctxs cross threads) */
    struct tls_server *servers;  /* freed with the ctx */
};

struct green_tls {
    SSL *ssl;
    green_tls_ctx_t *ctx;
    int fd;
    int err;                     /* sticky errno after a fatal failure */
    int io_err;                  /* errno of the BIO's last failed call */
    int drained;                 /* the last recv came back short */
    char alpn[256];              /* negotiated protocol, NUL-terminated */
    char msg[MSG_LEN];           /* the last failure, for green_tls_error */
};

/******************************************************************************/
/*  Errors                                                                    */
/******************************************************************************/

/* The last failure of a green_tls call, per greenlet (greenlet-local
   storage: the greenlets of a thread interleave), or per thread where
   that is unavailable (no hub). */
static _Thread_local char thread_msg[MSG_LEN];
static green_key_t msg_key;
static int msg_key_ok;
static pthread_once_t msg_once = PTHREAD_ONCE_INIT;

static void msg_key_init(void)
{
    msg_key_ok = green_key_create(&msg_key, free) == 0;
}

/* The calling greenlet's message buffer; create: make it if needed. */
static char *last_msg(int create)
{
    pthread_once(&msg_once, msg_key_init);
    char *msg = msg_key_ok ? green_getspecific(msg_key) : NULL;
    if (!msg && create && msg_key_ok) {
        msg = calloc(1, MSG_LEN);
        if (msg && green_setspecific(msg_key, msg) != 0) {
            free(msg);
            msg = NULL;
        }
    }
    return msg ? msg : thread_msg;
}

/* Record a failure message for green_tls_error (the thread's, and t's if
   t) and return -1 with errno err. */
__attribute__((format(printf, 3, 4)))
static int fail_msg(green_tls_t *t, int err, const char *fmt, ...)
{
    char *msg = last_msg(1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, MSG_LEN, fmt, ap);
    va_end(ap);
    if (t)
        memcpy(t->msg, msg, MSG_LEN);
    errno = err;
    return -1;
}

/* errno err, described by strerror. */
static int fail(green_tls_t *t, int err)
{
    return fail_msg(t, err, "%s", strerror(err));
}

/* The message of OpenSSL's error queue (or what); clears the queue. */
static int fail_openssl(green_tls_t *t, int err, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[200];
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return fail_msg(t, err, "%s%s%s", what, e ? ": " : "", e ? buf : "");
}

/* A fatal TLS failure (SSL_get_error gave e): set t's sticky errno.
   Peer verification failure and protocol errors are EPROTO; EOF without
   close_notify is ECONNRESET; a socket error keeps its errno. */
static int fail_tls(green_tls_t *t, int e)
{
    unsigned long code = ERR_peek_last_error();
    long verify = SSL_get_verify_result(t->ssl);
    if (e == SSL_ERROR_SYSCALL && t->io_err)
        fail(t, t->io_err);
    else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ||
             (e == SSL_ERROR_SSL && ERR_GET_LIB(code) == ERR_LIB_SSL &&
              ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
        fail_msg(t, ECONNRESET,
                 "the peer closed the connection without close_notify");
    else if (verify != X509_V_OK)
        fail_msg(t, EPROTO, "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
    else
        fail_openssl(t, EPROTO, "TLS failure");
    ERR_clear_error();
    t->err = errno;
    return -1;
}

const char *green_tls_error(const green_tls_t *t)
{
    return t ? t->msg : last_msg(0);
}

/******************************************************************************/
/*  The BIO: non-blocking green_recv/green_send on the fd                     */
/******************************************************************************/

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *buf, int len)
{
    green_tls_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = green_send(t->fd, buf, (size_t)len, MSG_DONTWAIT);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    else
        t->io_err = errno;
    return -1;
}

static int bio_read(BIO *b, char *buf, int len)
{
    green_tls_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->drained) {
        /* Nothing had arrived after the last recv's bytes: have
           tls_run wait for the fd before the next recv. */
        t->drained = 0;
        BIO_set_retry_read(b);
        return -1;
    }
    ssize_t n = green_recv(t->fd, buf, (size_t)len, MSG_DONTWAIT);
    if (n >= 0) {
        t->drained = n > 0 && n < len;
        return (int)n; /* 0: EOF */
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_read(b);
    else
        t->io_err = errno;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH; /* writes are unbuffered */
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "libgreen");
    if (m && BIO_meth_set_write(m, bio_write) &&
        BIO_meth_set_read(m, bio_read) && BIO_meth_set_ctrl(m, bio_ctrl) &&
        BIO_meth_set_create(m, bio_create))
        bio_method = m;
    else
        BIO_meth_free(m);
}

__attribute__((destructor)) static void bio_method_fini(void)
{
    BIO_meth_free(bio_method);
}

/******************************************************************************/
/*  Contexts                                                                  */
/******************************************************************************/

static green_tls_ctx_t *ctx_new(const SSL_METHOD *method, int server)
{
    green_tls_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        fail(NULL, ENOMEM);
        return NULL;
    }
    ctx->ssl = SSL_CTX_new(method);
    if (!ctx->ssl || pthread_mutex_init(&ctx->lock, NULL) != 0) {
        SSL_CTX_free(ctx->ssl);
        free(ctx);
        fail_openssl(NULL, ENOMEM, "SSL_CTX_new");
        return NULL;
    }
    ctx->server = server;
    atomic_init(&ctx->refs, 1);
    SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION);
    /* One recv for what has arrived, not two per record (header, body);
       and bio_read can tell a drained socket by a short recv. */
    SSL_CTX_set_read_ahead(ctx->ssl, 1);
    /* green_tls_write returns after partial progress (write(2)-like),
       and a retried write may come from another buffer. */
    SSL_CTX_set_mode(ctx->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

static void ctx_unref(green_tls_ctx_t *ctx)
{
    if (atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    while (ctx->servers) {
        struct tls_server *s = ctx->servers;
        ctx->servers = s->next;
        free(s);
    }
    pthread_mutex_destroy(&ctx->lock);
    SSL_CTX_free(ctx->ssl);
    free(ctx->alpn);
    free(ctx);
}

green_tls_ctx_t *green_tls_client_ctx(void)
{
    green_tls_ctx_t *ctx = ctx_new(TLS_client_method(), 0);
    if (!ctx)
        return NULL;
    ctx->verify = 1;
    SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
    /* No system store is not an error: green_tls_ctx_load_ca adds one. */
    SSL_CTX_set_default_verify_paths(ctx->ssl);
    ERR_clear_error();
    return ctx;
}

/* 0 if file can be read, else -1 with its errno (ENOENT, EACCES). */
static int readable(const char *file)
{
    if (access(file, R_OK) == 0)
        return 0;
    return fail_msg(NULL, errno, "%s: %s", file, strerror(errno));
}

/* Server ALPN: pick the server's first protocol the client offers;
   none in common is a fatal no_application_protocol alert (RFC 7301). */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)ssl;
    green_tls_ctx_t *ctx = arg;
    if (!ctx->alpn)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ctx->alpn,
                              (unsigned)ctx->alpn_len, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int green_tls_ctx_use_cert(green_tls_ctx_t *ctx, const char *cert_file,
                           const char *key_file)
{
    if (!ctx || !cert_file || !key_file)
        return fail(NULL, EINVAL);
    if (readable(cert_file) != 0 || readable(key_file) != 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx->ssl, key_file,
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx->ssl) != 1)
        return fail_openssl(NULL, EINVAL, "loading the certificate and key");
    return 0;
}

green_tls_ctx_t *green_tls_server_ctx(const char *cert_file,
                                      const char *key_file)
{
    green_tls_ctx_t *ctx = ctx_new(TLS_server_method(), 1);
    if (!ctx)
        return NULL;
    if (green_tls_ctx_use_cert(ctx, cert_file, key_file) != 0) {
        int err = errno;
        ctx_unref(ctx);
        errno = err;
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, ctx);
    return ctx;
}

int green_tls_ctx_load_ca(green_tls_ctx_t *ctx, const char *ca_file)
{
    if (!ctx || !ca_file)
        return fail(NULL, EINVAL);
    if (readable(ca_file) != 0)
        return -1;
    if (SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1)
        return fail_openssl(NULL, EINVAL, ca_file);
    return 0;
}

int green_tls_ctx_set_verify(green_tls_ctx_t *ctx, int on)
{
    if (!ctx)
        return fail(NULL, EINVAL);
    int mode = SSL_VERIFY_NONE;
    if (on)
        mode = ctx->server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(ctx->ssl, mode, NULL);
    ctx->verify = on != 0;
    return 0;
}

int green_tls_ctx_set_alpn(green_tls_ctx_t *ctx, const char *const *protos,
                           size_t n)
{
    if (!ctx || (n && !protos))
        return fail(NULL, EINVAL);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = protos[i] ? strlen(protos[i]) : 0;
        if (l == 0 || l > 255)
            return fail(NULL, EINVAL);
        len += 1 + l;
    }
    if (len > 65535)
        return fail(NULL, EINVAL);
    unsigned char *wire = n ? malloc(len) : NULL, *p = wire;
    if (n && !wire)
        return fail(NULL, ENOMEM);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(protos[i]);
        *p++ = (unsigned char)l;
        memcpy(p, protos[i], l);
        p += l;
    }
    if (!ctx->server) {
        /* SSL_CTX_set_alpn_protos returns 0 on success. */
        int bad = SSL_CTX_set_alpn_protos(ctx->ssl, wire, (unsigned)len);
        free(wire);
        return bad ? fail_openssl(NULL, ENOMEM, "SSL_CTX_set_alpn_protos")
                   : 0;
    }
    free(ctx->alpn);
    ctx->alpn = wire;
    ctx->alpn_len = len;
    return 0;
}

void green_tls_ctx_free(green_tls_ctx_t *ctx)
{
    if (ctx)
        ctx_unref(ctx);
}

/******************************************************************************/
/*  Running an operation                                                      */
/******************************************************************************/

enum op_kind {
    OP_HANDSHAKE,
    OP_READ,
    OP_WRITE,
    OP_SHUTDOWN,     /* close_notify, then wait for the peer's */
    OP_CLOSE_NOTIFY, /* close_notify only */
};

struct tls_op {
    enum op_kind kind;
    void *buf;
    size_t n;
    size_t done;                 /* bytes read or written */
};

/* close_notify, then read (and drop) until the peer's arrives.  Returns
   1 once both went, else <= 0 for SSL_get_error. */
static int shutdown_step(SSL *ssl)
{
    int r = SSL_shutdown(ssl);
    if (r != 0)
        return r; /* 1: done; < 0: see SSL_get_error */
    char junk[4096];
    size_t got;
    while ((r = SSL_read_ex(ssl, junk, sizeof junk, &got)) == 1)
        ;
    if (SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN)
        return SSL_shutdown(ssl);
    return r;
}

static int op_call(green_tls_t *t, struct tls_op *op)
{
    switch (op->kind) {
    case OP_HANDSHAKE:
        return SSL_do_handshake(t->ssl);
    case OP_READ:
        return SSL_read_ex(t->ssl, op->buf, op->n, &op->done);
    case OP_WRITE:
        return SSL_write_ex(t->ssl, op->buf, op->n, &op->done);
    case OP_SHUTDOWN:
        return shutdown_step(t->ssl);
    case OP_CLOSE_NOTIFY: {
        int r = SSL_shutdown(t->ssl); /* 0: sent, the peer's not seen */
        return r >= 0 ? 1 : r;
    }
    }
    return -1;
}

/* Run op until it succeeds, waiting for the fd whenever OpenSSL wants to
   read or write it.  timeout: < 0 none, 0 never wait (EAGAIN), > 0 a
   green_timeout scope over the waits.  Returns 0 or -1 with errno (and
   a message for green_tls_error).  A clean close_notify ends a read with
   op->done 0. */
static int tls_run(green_tls_t *t, struct tls_op *op, double timeout)
{
    if (t->err)
        return fail_msg(t, t->err, "%s", t->msg); /* broken already */
    green_timeout_scope_t scope;
    int scoped = 0, rc = 0;
    for (;;) {
        ERR_clear_error();
        t->io_err = 0;
        int r = op_call(t, op);
        if (r > 0)
            break;
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN && op->kind == OP_READ) {
            op->done = 0;
            break;
        }
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            rc = fail_tls(t, e);
            break;
        }
        if (timeout > 0 && !scoped) {
            if (green_timeout_begin(&scope, timeout) != 0) {
                rc = fail(t, errno);
                break;
            }
            scoped = 1;
        }
        double wait = timeout == 0 ? 0 : -1;
        if ((e == SSL_ERROR_WANT_READ ? green_wait_read(t->fd, wait)
                                      : green_wait_write(t->fd, wait)) != 0) {
            rc = fail(t, errno);
            break;
        }
    }
    if (scoped) {
        int err = errno;
        green_timeout_end(&scope);
        errno = err;
    }
    return rc;
}

/******************************************************************************/
/*  Connections                                                               */
/******************************************************************************/

/* A green_tls_t for fd on ctx, or NULL/errno. */
static green_tls_t *tls_new(green_tls_ctx_t *ctx, int fd, double timeout)
{
    if (timeout != timeout) {
        fail(NULL, EINVAL);
        return NULL;
    }
    if (fd < 0) {
        fail(NULL, EBADF);
        return NULL;
    }
    pthread_once(&bio_once, bio_method_init);
    green_tls_t *t = calloc(1, sizeof *t);
    BIO *bio = t && bio_method ? BIO_new(bio_method) : NULL;
    SSL *ssl = bio ? SSL_new(ctx->ssl) : NULL;
    if (!ssl) {
        BIO_free(bio);
        free(t);
        fail_openssl(NULL, ENOMEM, "SSL_new");
        return NULL;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(ssl, bio, bio);
    t->ssl = ssl;
    t->fd = fd;
    t->ctx = ctx;
    atomic_fetch_add(&ctx->refs, 1);
    return t;
}

/* Handshake t; on failure free it and return NULL/errno. */
static green_tls_t *handshake(green_tls_t *t, double timeout)
{
    struct tls_op op = {.kind = OP_HANDSHAKE};
    if (tls_run(t, &op, timeout) != 0) {
        int err = errno;
        green_tls_free(t);
        errno = err;
        return NULL;
    }
    const unsigned char *p;
    unsigned len;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    if (len) /* p is NULL when none was agreed on */
        memcpy(t->alpn, p, len); /* len <= 255 */
    t->alpn[len] = '\0';
    return t;
}

/* Name hostname for SNI and check it against the certificate (an IP
   address: no SNI, the certificate's IP SAN). */
static int set_host(green_tls_t *t, const char *hostname, int verify)
{
    unsigned char addr[16];
    int ip = inet_pton(AF_INET, hostname, addr) == 1 ||
             inet_pton(AF_INET6, hostname, addr) == 1;
    if (!ip && SSL_set_tlsext_host_name(t->ssl, hostname) != 1)
        return fail_openssl(t, EINVAL, "server name");
    if (!verify)
        return 0;
    X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);
    if (ip ? X509_VERIFY_PARAM_set1_ip_asc(param, hostname) != 1
           : SSL_set1_host(t->ssl, hostname) != 1)
        return fail_openssl(t, EINVAL, "host name");
    return 0;
}

green_tls_t *green_tls_connect(green_tls_ctx_t *ctx, int fd,
                               const char *hostname, double timeout)
{
    if (!ctx || ctx->server || (!hostname && ctx->verify) ||
        (hostname && !*hostname)) {
        fail(NULL, EINVAL);
        return NULL;
    }
    green_tls_t *t = tls_new(ctx, fd, timeout);
    if (!t)
        return NULL;
    SSL_set_connect_state(t->ssl);
    if (hostname && set_host(t, hostname, ctx->verify) != 0) {
        green_tls_free(t);
        errno = EINVAL;
        return NULL;
    }
    return handshake(t, timeout);
}

green_tls_t *green_tls_accept(green_tls_ctx_t *ctx, int fd, double timeout)
{
    if (!ctx || !ctx->server) {
        fail(NULL, EINVAL);
        return NULL;
    }
    green_tls_t *t = tls_new(ctx, fd, timeout);
    if (!t)
        return NULL;
    SSL_set_accept_state(t->ssl);
    return handshake(t, timeout);
}

/* One read or write of up to n bytes (n checked by the caller): the
   bytes moved, 0 for n == 0 without touching the connection, or -1. */
static ssize_t tls_io(green_tls_t *t, enum op_kind kind, void *buf, size_t n)
{
    if (n == 0)
        return 0;
    struct tls_op op = {.kind = kind, .buf = buf, .n = n};
    if (tls_run(t, &op, -1) != 0)
        return -1;
    return (ssize_t)op.done;
}

ssize_t green_tls_read(green_tls_t *t, void *buf, size_t n)
{
    if (!t || (!buf && n))
        return fail(t, EINVAL);
    return tls_io(t, OP_READ, buf, n);
}

ssize_t green_tls_write(green_tls_t *t, const void *buf, size_t n)
{
    if (!t || (!buf && n) || n > SSIZE_MAX)
        return fail(t, EINVAL);
    return tls_io(t, OP_WRITE, (void *)buf, n);
}

ssize_t green_tls_write_all(green_tls_t *t, const void *buf, size_t n)
{
    if (!t || (!buf && n) || n > SSIZE_MAX)
        return fail(t, EINVAL);
    for (size_t done = 0; done < n;) {
        ssize_t w = green_tls_write(t, (const char *)buf + done, n - done);
        if (w < 0)
            return -1;
        done += (size_t)w;
    }
    return (ssize_t)n;
}

int green_tls_shutdown(green_tls_t *t, double timeout)
{
    if (!t || timeout != timeout)
        return fail(t, EINVAL);
    struct tls_op op = {.kind = OP_SHUTDOWN};
    return tls_run(t, &op, timeout);
}

const char *green_tls_alpn(const green_tls_t *t)
{
    return t && t->alpn[0] ? t->alpn : NULL;
}

const char *green_tls_sni(const green_tls_t *t)
{
    return t ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

int green_tls_fd(const green_tls_t *t)
{
    if (!t)
        return fail(NULL, EINVAL);
    return t->fd;
}

void green_tls_free(green_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* and the BIO; the fd stays open */
    ctx_unref(t->ctx);
    free(t);
}

/******************************************************************************/
/*  Servers                                                                   */
/******************************************************************************/

/* A connection of green_tls_server_new: handshake, the user's handler,
   close_notify without waiting for the peer's (unless killed), free.  green_server
   closes the fd afterwards, however the greenlet ended. */
static void tls_conn(int fd, void *arg)
{
    struct tls_server *s = arg;
    green_tls_t *t = green_tls_accept(s->ctx, fd, SERVER_HANDSHAKE_TIMEOUT);
    if (!t)
        return;
    s->handler(t, s->arg);
    /* A killed handler may have stopped mid-reply: no close_notify, so
       the client sees a truncation, not a clean end.  Nor on a broken
       connection.  Only our close_notify: no read for the peer's. */
    if (!green_killed() && !t->err) {
        struct tls_op op = {.kind = OP_CLOSE_NOTIFY};
        tls_run(t, &op, 0);
    }
    green_tls_free(t);
}

/* ctx's record for handler and arg, made if it has none yet: servers
   with the same pair share it, so a ctx that outlives many servers keeps
   one record per pair (all freed with ctx).  NULL/ENOMEM. */
static struct tls_server *server_record(green_tls_ctx_t *ctx,
                                        void (*handler)(green_tls_t *t,
                                                        void *arg),
                                        void *arg)
{
    pthread_mutex_lock(&ctx->lock);
    struct tls_server *s = ctx->servers;
    while (s && (s->handler != handler || s->arg != arg))
        s = s->next;
    if (!s && (s = malloc(sizeof *s)) != NULL) {
        *s = (struct tls_server){.next = ctx->servers, .ctx = ctx,
                                 .handler = handler, .arg = arg};
        ctx->servers = s;
    }
    pthread_mutex_unlock(&ctx->lock);
    if (!s)
        fail(NULL, ENOMEM);
    return s;
}

green_server_t *green_tls_server_new(const char *address,
                                     green_tls_ctx_t *ctx,
                                     void (*handler)(green_tls_t *t,
                                                     void *arg),
                                     void *arg)
{
    if (!address || !ctx || !ctx->server || !handler) {
        fail(NULL, EINVAL);
        return NULL;
    }
    struct tls_server *s = server_record(ctx, handler, arg);
    if (!s)
        return NULL;
    green_server_t *server = green_server_new(address, tls_conn, s);
    if (!server)
        fail(NULL, errno);
    return server;
}
