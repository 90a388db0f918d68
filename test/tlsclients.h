/* Unmodified blocking TLS clients (libcurl's easy interface, a raw
   OpenSSL client on a blocking socket) and the slow HTTPS handler they
   talk to, shared by test/check_tls_clients and bench/tls_clients_bench:
   under libgreen-patch each client waits cooperatively, so N of them in
   N greenlets take one request's time. */
#ifndef GREEN_TLSCLIENTS_H_INCLUDED
#define GREEN_TLSCLIENTS_H_INCLUDED

#include <green.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#ifdef HAVE_LIBCURL
#define GREEN_WITH_LIBCURL
#endif
#include "clients.h" /* test_body, test_curl_get, test_http_ok */

#define SLOW_BODY "hello, tls"

/* green_tls_server_new handler: read the request head, sleep
   *(double *)arg seconds, answer SLOW_BODY and close. */
static void slow_hello(green_tls_t *t, void *arg)
{
    char buf[2048];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t n = green_tls_read(t, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    if (green_sleep(*(double *)arg) != 0)
        return;
    char out[256];
    int n = test_http_ok(out, sizeof out, "Connection: close", SLOW_BODY);
    green_tls_write_all(t, out, (size_t)n);
}

/* Where the clients below connect: the server's port, the CA file
   (curl) or a client SSL_CTX trusting it (openssl_client_ctx). */
struct tls_target {
    int port;
    const char *ca;
    SSL_CTX *ctx;
};

#ifdef HAVE_LIBCURL
/* GET https://127.0.0.1:port/ trusting ca, as any program would; the
   CURLcode, the body in *b. */
static int curl_get(int port, const char *ca, struct test_body *b)
{
    char base[64];
    snprintf(base, sizeof base, "https://127.0.0.1:%d", port);
    memset(b, 0, sizeof *b);
    CURL *c = curl_easy_init();
    if (!c)
        return CURLE_FAILED_INIT;
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    int rc = (int)test_curl_get(c, base, "/", b);
    curl_easy_cleanup(c);
    return rc;
}

/* One greenlet of the workload (arg: a struct tls_target), for
   test_run_concurrently: a curl_get.  NULL, or what failed. */
static void *tls_curl_unit(void *arg)
{
    const struct tls_target *t = arg;
    struct test_body b;
    int rc = curl_get(t->port, t->ca, &b);
    if (rc != CURLE_OK)
        return (void *)curl_easy_strerror((CURLcode)rc);
    return strcmp(b.data, SLOW_BODY) == 0 ? NULL : "wrong body";
}
#endif

/* A blocking client in plain OpenSSL: connect(2), SSL_connect verifying
   "localhost" against ca_ctx's CAs, one GET, SSL_read to the end.
   Returns 0 if the body is SLOW_BODY, else -1. */
static int openssl_get(SSL_CTX *ctx, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    SSL *ssl = NULL;
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        (ssl = SSL_new(ctx)) != NULL && SSL_set_fd(ssl, fd) == 1 &&
        SSL_set_tlsext_host_name(ssl, "localhost") == 1 &&
        SSL_set1_host(ssl, "localhost") == 1 && SSL_connect(ssl) == 1) {
        static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        char buf[512];
        size_t len = 0;
        int n = SSL_write(ssl, req, (int)sizeof req - 1);
        while (n > 0 && len < sizeof buf - 1 &&
               (n = SSL_read(ssl, buf + len, (int)(sizeof buf - 1 - len))) > 0)
            len += (size_t)n;
        buf[len] = '\0';
        char *body = strstr(buf, "\r\n\r\n");
        ok = body && strcmp(body + 4, SLOW_BODY) == 0;
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    return ok ? 0 : -1;
}

/* One greenlet of the workload (arg: a struct tls_target), for
   test_run_concurrently: an openssl_get.  NULL, or what failed. */
static void *tls_openssl_unit(void *arg)
{
    const struct tls_target *t = arg;
    return openssl_get(t->ctx, t->port) == 0 ? NULL : "openssl_get";
}

/* A client SSL_CTX for openssl_get that trusts ca_file. */
static SSL_CTX *openssl_client_ctx(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ctx)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

#endif
