/* demo/http_hello over TLS, with libgreen-tls: the same keep-alive
   server (demo/http_common.h) on green_tls_server_new.  Usage:
   https_hello PORT CERT KEY (PEM files; PORT 0 picks a free port);
   prints "listening on 127.0.0.1:PORT" and serves until killed.
   `make bench-https` measures it with wrk against http_hello. */
#include <green.h>

#include "http_common.h"
#include "serve_main.h"

static ssize_t tls_read(void *conn, void *buf, size_t n)
{
    return green_tls_read(conn, buf, n);
}

static ssize_t tls_write_all(void *conn, const void *buf, size_t n)
{
    return green_tls_write_all(conn, buf, n);
}

static void https(green_tls_t *t, void *arg)
{
    (void)arg;
    /* No wait_read: OpenSSL may hold bytes the fd does not show, so
       every read goes through green_tls_read (which itself waits
       first once a read found the socket drained). */
    static const struct http_io io = {tls_read, tls_write_all, NULL};
    http_serve(&io, t);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT CERT KEY\n", argv[0]);
        return 2;
    }
    http_raise_nofile();
    green_tls_ctx_t *ctx = green_tls_server_ctx(argv[2], argv[3]);
    if (!ctx) {
        fprintf(stderr, "%s: %s\n", argv[0], green_tls_error(NULL));
        return 1;
    }
    char addr[64];
    serve_address(addr, sizeof addr, argv[1]);
    int rc = serve_server(green_tls_server_new(addr, ctx, https, NULL));
    green_tls_ctx_free(ctx);
    return rc;
}
