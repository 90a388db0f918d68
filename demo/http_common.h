/* The request scanning shared by demo/http_hello, demo/multicore_http
   and bench/http_libev, so the servers do the same work per request:
   find each complete request head ("\r\n\r\n"), answer it with one
   fixed 200 response, and note whether the client asked to close.
   Request bodies are not supported (a GET-only toy).  Also their common
   start-up step, http_raise_nofile. */
#ifndef HTTP_COMMON_H_INCLUDED
#define HTTP_COMMON_H_INCLUDED

#include <string.h>
#include <strings.h>
#include <sys/resource.h>

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
