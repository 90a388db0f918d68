/* A tiny HTTP/1.1 keep-alive server on green_server: every request gets
   the same small 200 response.  Usage: http_hello PORT (0 picks a free
   port); prints "listening on 127.0.0.1:PORT" and serves until killed.
   Usable with wrk; `make bench` compares it with bench/http_libev, the
   same server written as plain libev callbacks. */
#include <green.h>

#include "http_common.h"
#include "serve_main.h"

static ssize_t fd_read(void *conn, void *buf, size_t n)
{
    return green_read((int)(intptr_t)conn, buf, n);
}

static ssize_t fd_write_all(void *conn, const void *buf, size_t n)
{
    return green_write_all((int)(intptr_t)conn, buf, n);
}

static int fd_wait_read(void *conn)
{
    return green_wait_read((int)(intptr_t)conn, -1);
}

static void http(int fd, void *arg)
{
    (void)arg;
    static const struct http_io io = {fd_read, fd_write_all, fd_wait_read};
    http_serve(&io, (void *)(intptr_t)fd);
}

int main(int argc, char **argv)
{
    http_raise_nofile();
    return serve_main(argc, argv, http);
}
