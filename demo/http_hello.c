/* A tiny HTTP/1.1 keep-alive server on green_server: every request gets
   the same small 200 response.  Usage: http_hello PORT (0 picks a free
   port); prints "listening on 127.0.0.1:PORT" and serves until killed.
   Usable with wrk; `make bench` compares it with bench/http_libev, the
   same server written as plain libev callbacks. */
#include <green.h>

#include "http_common.h"
#include "serve_main.h"

static void http(int fd, void *arg)
{
    (void)arg;
    char buf[8192], out[16 * HTTP_RESPONSE_LEN];
    size_t len = 0;
    int close = 0, drained = 0;
    for (;;) {
        /* The last read came back short, so the socket is drained: wait
           for the next request before reading, instead of paying for a
           read that returns EAGAIN (the callback server does the same
           by reading once per readiness event). */
        if (drained && green_wait_read(fd, -1) != 0)
            return;
        ssize_t n = green_read(fd, buf + len, sizeof buf - len);
        if (n <= 0)
            return;
        drained = (size_t)n < sizeof buf - len;
        len += (size_t)n;
        for (;;) {
            size_t used = http_consume(buf, &len, out, sizeof out, &close);
            if (used && green_write_all(fd, out, used) < 0)
                return;
            if (!used || close)
                break;
        }
        if (close || len == sizeof buf)
            return; /* asked to, or a request head too large */
    }
}

int main(int argc, char **argv)
{
    http_raise_nofile();
    return serve_main(argc, argv, http);
}
