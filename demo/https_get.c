/* Fetch an https:// URL with libgreen-tls and print the body: the
   server's certificate is verified (the system's CAs, plus --cafile's)
   and must name the URL's host.  Usage:
   https_get [--cafile FILE] https://HOST[:PORT]/PATH
   Exit status 0 for a 2xx answer; on a TLS failure green_tls_error says
   why ("certificate verify failed: ..."). */
#include <green.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT 10.0
#define MAX_RESPONSE (16 << 20)

struct url {
    char host[256];
    int port;
    const char *path;
};

/* https://HOST[:PORT][/PATH]; 0 or -1. */
static int parse_url(const char *s, struct url *u)
{
    if (strncmp(s, "https://", 8) != 0)
        return -1;
    s += 8;
    const char *slash = strchr(s, '/');
    u->path = slash ? slash : "/";
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    const char *colon = memchr(s, ':', len);
    size_t hlen = colon ? (size_t)(colon - s) : len;
    if (hlen == 0 || hlen >= sizeof u->host)
        return -1;
    memcpy(u->host, s, hlen);
    u->host[hlen] = '\0';
    u->port = colon ? atoi(colon + 1) : 443;
    return u->port > 0 && u->port < 65536 ? 0 : -1;
}

/* The whole response (until the server's close_notify); NULL on error. */
static char *fetch(green_tls_t *t, const struct url *u, size_t *len)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: %s\r\n"
                     "User-Agent: libgreen-https_get\r\n\r\n",
                     u->path, u->host);
    if (n < 0 || (size_t)n >= sizeof req ||
        green_tls_write_all(t, req, (size_t)n) < 0)
        return NULL;
    size_t cap = 65536;
    char *buf = malloc(cap + 1);
    *len = 0;
    ssize_t r;
    while (buf && (r = green_tls_read(t, buf + *len, cap - *len)) > 0) {
        *len += (size_t)r;
        if (*len == cap) {
            char *more = cap < MAX_RESPONSE ? realloc(buf, 2 * cap + 1) : NULL;
            if (!more) {
                free(buf);
                return NULL;
            }
            buf = more;
            cap *= 2;
        }
    }
    if (!buf || r < 0) { /* ECONNRESET: a truncated answer */
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

int main(int argc, char **argv)
{
    const char *cafile = NULL;
    struct url u;
    int i = 1;
    if (argc == 4 && strcmp(argv[1], "--cafile") == 0) {
        cafile = argv[2];
        i = 3;
    }
    if (i != argc - 1 || parse_url(argv[i], &u) != 0) {
        fprintf(stderr, "usage: %s [--cafile FILE] https://HOST[:PORT]/PATH\n",
                argv[0]);
        return 2;
    }
    green_tls_ctx_t *ctx = green_tls_client_ctx();
    if (!ctx || (cafile && green_tls_ctx_load_ca(ctx, cafile) != 0)) {
        fprintf(stderr, "https_get: %s\n", green_tls_error(NULL));
        return 1;
    }
    int rc = 1, fd = green_tcp_connect(u.host, u.port, TIMEOUT);
    green_tls_t *t = NULL;
    if (fd < 0)
        perror("https_get: connect");
    else if (!(t = green_tls_connect(ctx, fd, u.host, TIMEOUT)))
        fprintf(stderr, "https_get: %s\n", green_tls_error(NULL));
    size_t len;
    char *resp = t ? fetch(t, &u, &len) : NULL;
    char *body = resp ? strstr(resp, "\r\n\r\n") : NULL;
    if (t && !body)
        fprintf(stderr, "https_get: no complete answer: %s\n",
                green_tls_error(t));
    if (body) {
        fwrite(body + 4, 1, len - (size_t)(body + 4 - resp), stdout);
        rc = len > 9 && strncmp(resp, "HTTP/1.", 7) == 0 && resp[9] == '2'
                 ? 0
                 : 1;
    }
    free(resp);
    if (t)
        green_tls_shutdown(t, 1);
    green_tls_free(t);
    if (fd >= 0)
        green_close(fd);
    green_tls_ctx_free(ctx);
    return rc;
}
