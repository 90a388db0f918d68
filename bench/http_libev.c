/* The event-loop reference for `make bench`: demo/http_hello written as
   plain libev callbacks, no greenlets.  Same request scanning, same
   response, same one-read-per-readiness-event policy.
   Usage: http_libev PORT (0 picks one); prints
   "listening on 127.0.0.1:PORT" and serves until killed. */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../demo/http_common.h"

struct conn {
    ev_io rio, wio;
    char buf[8192];
    size_t len;
    char out[16 * HTTP_RESPONSE_LEN];
    size_t out_len, out_off;
    int close;
};

static void conn_free(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    close(c->rio.fd);
    free(c);
}

/* Send what is buffered; 0 when all went, 1 when the socket is full,
   -1 on error. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->rio.fd, c->out + c->out_off,
                         c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 1 : -1;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Answer the complete requests in buf.  Returns 0 to keep going, 1 when
   waiting for the socket to drain, -1 to close. */
static int respond(struct ev_loop *loop, struct conn *c)
{
    for (;;) {
        c->out_len = http_consume(c->buf, &c->len, c->out, sizeof c->out,
                                  &c->close);
        if (!c->out_len)
            break;
        int r = flush_out(c);
        if (r < 0)
            return -1;
        if (r > 0) {
            ev_io_stop(loop, &c->rio);
            ev_io_start(loop, &c->wio);
            return 1;
        }
        if (c->close)
            return -1;
    }
    return c->len == sizeof c->buf ? -1 : 0;
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct conn *c = (struct conn *)w;
    ssize_t n = read(w->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        conn_free(loop, c);
        return;
    }
    c->len += (size_t)n;
    if (respond(loop, c) < 0)
        conn_free(loop, c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, wio));
    int r = flush_out(c);
    if (r < 0 || (r == 0 && c->close)) {
        conn_free(loop, c);
        return;
    }
    if (r > 0)
        return;
    ev_io_stop(loop, &c->wio);
    ev_io_start(loop, &c->rio);
    if (respond(loop, c) < 0)
        conn_free(loop, c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or EMFILE: the toy just retries later */
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        ev_io_init(&c->rio, on_read, fd, EV_READ);
        ev_io_init(&c->wio, on_write, fd, EV_WRITE);
        ev_io_start(loop, &c->rio);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    http_raise_nofile();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)atoi(argv[1]));
    socklen_t len = sizeof a;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("listen");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    ev_io lw;
    ev_io_init(&lw, on_accept, fd, EV_READ);
    ev_io_start(loop, &lw);
    ev_run(loop, 0);
    return 0;
}
