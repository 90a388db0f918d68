/* The request scanning shared by demo/http_hello, demo/multicore_http
   and bench/http_libev, so the servers do the same work per request:
   find each complete request head ("\r\n\r\n"), answer it with one
   fixed 200 response, and note whether the client asked to close.
   Request bodies are not supported (a GET-only toy).  Also their common
   start-up step, http_raise_nofile, and the connection loop of the
   greenlet servers, http_serve. */
#ifndef HTTP_COMMON_H_INCLUDED
#define HTTP_COMMON_H_INCLUDED

#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/types.h>

static const char http_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";
#define HTTP_RESPONSE_LEN (sizeof http_response - 1)

/* Consume the complete requests at the start of buf[0..*len): append one
   response per request to out (capacity cap; stops early when full) and
   shift the unparsed rest to the front.  Returns the bytes appended;
   *close is set when a request said "Connection: close" or was
   HTTP/1.0 without keep-alive. */
static size_t http_consume(char *buf, size_t *len, char *out, size_t cap,
                           int *close)
{
    size_t done = 0, used = 0;
    for (;;) {
        char *start = buf + done;
        size_t left = *len - done;
        char *end = memmem(start, left, "\r\n\r\n", 4);
        if (!end || used + HTTP_RESPONSE_LEN > cap)
            break;
        size_t head = (size_t)(end - start) + 4;
        /* Header lines are scanned only for the rare closing cases. */
        char saved = start[head - 1];
        start[head - 1] = '\0';
        if (strcasestr(start, "\r\nconnection: close") ||
            (memmem(start, head, "HTTP/1.0", 8) &&
             !strcasestr(start, "\r\nconnection: keep-alive")))
            *close = 1;
        start[head - 1] = saved;
        memcpy(out + used, http_response, HTTP_RESPONSE_LEN);
        used += HTTP_RESPONSE_LEN;
        done += head;
        if (*close)
            break;
    }
    memmove(buf, buf + done, *len - done);
    *len -= done;
    return used;
}

/* How http_serve reads and writes one connection: plain green fds
   (http_hello) or TLS (https_hello).  wait_read may be NULL. */
struct http_io {
    ssize_t (*read)(void *conn, void *buf, size_t n);
    ssize_t (*write_all)(void *conn, const void *buf, size_t n);
    int (*wait_read)(void *conn);
};

/* Serve one keep-alive connection until the client closes or asks to,
   an error, or a request head too large for the buffer. */
static inline void http_serve(const struct http_io *io, void *conn)
{
    char buf[8192], out[16 * HTTP_RESPONSE_LEN];
    size_t len = 0;
    /* A new connection starts drained: its first request is waited for
       before the first read, as the callback server registers the fd
       and reads on readiness.  The watcher is registered on the first
       wait anyway, so this saves the read that so often finds nothing. */
    int close = 0, drained = 1;
    for (;;) {
        /* The last read came back short, so the socket is drained: wait
           for the next request before reading, instead of paying for a
           read that returns EAGAIN (the callback server does the same
           by reading once per readiness event). */
        if (drained && io->wait_read && io->wait_read(conn) != 0)
            return;
        ssize_t n = io->read(conn, buf + len, sizeof buf - len);
        if (n <= 0)
            return;
        drained = (size_t)n < sizeof buf - len;
        len += (size_t)n;
        for (;;) {
            size_t used = http_consume(buf, &len, out, sizeof out, &close);
            if (used && io->write_all(conn, out, used) < 0)
                return;
            if (!used || close)
                break;
        }
        if (close || len == sizeof buf)
            return; /* asked to, or a request head too large */
    }
}

/* Many connections: allow as many fds as the hard limit. */
static inline void http_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

#endif
