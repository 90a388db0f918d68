/* Buffered I/O (gevent's FileObject): a read buffer and a write buffer
   over a green fd or a caller's read/write pair.

   Read buffer: the unread bytes are rbuf[rpos, rlen).  A read consumes
   bytes (moves rpos) only once it has everything it returns, so a read
   that fails in the underlying call (a kill, a timeout) leaves the
   buffer as it was; read_exactly, which hands bytes to the caller as it
   goes, puts them back in front on failure.  Write buffer: wbuf[0,
   wlen); flush keeps whatever it could not write. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

#define BUFIO_DEFAULT 8192

struct green_bufio {
    void *ctx;
    green_bufio_read_fn rd;     /* NULL: write-only */
    green_bufio_write_fn wr;    /* NULL: read-only */
    int fd;                     /* green_bufio_new's fd (ctx points here) */
    size_t size;                /* buffer size asked for */
    char *rbuf;                 /* allocated on first read */
    size_t rcap, rpos, rlen;
    char *wbuf;                 /* allocated on first buffered write */
    size_t wlen;
};

static ssize_t fd_read(void *ctx, void *buf, size_t n)
{
    return green_read(*(int *)ctx, buf, n);
}

static ssize_t fd_write(void *ctx, const void *buf, size_t n)
{
    return green_write(*(int *)ctx, buf, n);
}

green_bufio_t *green_bufio_new_ops(void *ctx, green_bufio_read_fn rd,
                                   green_bufio_write_fn wr, size_t bufsize)
{
    if (!rd && !wr) {
        errno = EINVAL;
        return NULL;
    }
    green_bufio_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->ctx = ctx;
    b->rd = rd;
    b->wr = wr;
    b->fd = -1;
    b->size = bufsize ? bufsize : BUFIO_DEFAULT;
    return b;
}

green_bufio_t *green_bufio_new(int fd, size_t bufsize)
{
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    green_bufio_t *b = green_bufio_new_ops(NULL, fd_read, fd_write, bufsize);
    if (b) {
        b->fd = fd;
        b->ctx = &b->fd;
    }
    return b;
}

void green_bufio_free(green_bufio_t *b)
{
    if (!b)
        return;
    free(b->rbuf);
    free(b->wbuf);
    free(b);
}

/******************************************************************************/
/*  Reading                                                                   */
/******************************************************************************/

static size_t unread(const green_bufio_t *b)
{
    return b->rlen - b->rpos;
}

/* Room for at least `need` bytes from rbuf[0] on: the unread bytes are
   moved to the front, the buffer grows (at least doubling) if needed.
   0 or ENOMEM. */
static int rbuf_room(green_bufio_t *b, size_t need)
{
    size_t have = unread(b);
    if (b->rpos > 0) {
        memmove(b->rbuf, b->rbuf + b->rpos, have);
        b->rpos = 0;
        b->rlen = have;
    }
    if (need <= b->rcap)
        return 0;
    size_t cap = b->rcap * 2 > need ? b->rcap * 2 : need;
    cap = cap < b->size ? b->size : cap;
    char *r = realloc(b->rbuf, cap);
    if (!r)
        return ENOMEM;
    b->rbuf = r;
    b->rcap = cap;
    return 0;
}

/* One read of the stream after the unread bytes, with room for at
   least one new byte.  The read's result (0: end of input). */
static ssize_t fill(green_bufio_t *b)
{
    if (!b->rd)
        return green__fail(EBADF);
    int err = rbuf_room(b, unread(b) + 1);
    if (err)
        return green__fail(err);
    ssize_t r = b->rd(b->ctx, b->rbuf + b->rlen, b->rcap - b->rlen);
    if (r > 0)
        b->rlen += (size_t)r;
    return r;
}

/* Consume n unread bytes into dst. */
static size_t take(green_bufio_t *b, void *dst, size_t n)
{
    memcpy(dst, b->rbuf + b->rpos, n);
    b->rpos += n;
    if (b->rpos == b->rlen)
        b->rpos = b->rlen = 0;
    return n;
}

static ssize_t take_line(green_bufio_t *b, char *dst, size_t n)
{
    take(b, dst, n);
    dst[n] = '\0';
    return (ssize_t)n;
}

ssize_t green_bufio_readline(green_bufio_t *b, char *buf, size_t max,
                             int delim)
{
    if (!b || !buf || max < 2 || delim < 0 || delim > 255)
        return green__fail(EINVAL);
    size_t limit = max - 1, scanned = 0;
    for (;;) {
        size_t have = unread(b);
        size_t look = have < limit ? have : limit;
        char *hit = look > scanned ? memchr(b->rbuf + b->rpos + scanned,
                                            delim, look - scanned)
                                   : NULL;
        if (hit)
            return take_line(b, buf, (size_t)(hit - (b->rbuf + b->rpos)) + 1);
        if (have >= limit)
            return take_line(b, buf, limit);
        scanned = look;
        ssize_t r = fill(b);
        if (r < 0)
            return -1;
        if (r == 0)
            return take_line(b, buf, have);
    }
}

ssize_t green_bufio_read(green_bufio_t *b, void *buf, size_t n)
{
    if (!b || (!buf && n))
        return green__fail(EINVAL);
    if (!b->rd)
        return green__fail(EBADF);
    if (n == 0)
        return 0;
    if (unread(b) == 0) {
        if (n >= b->size)
            return b->rd(b->ctx, buf, n);
        ssize_t r = fill(b);
        if (r <= 0)
            return r;
    }
    return (ssize_t)take(b, buf, n < unread(b) ? n : unread(b));
}

/* Put n bytes back in front of the unread ones.  0 or ENOMEM. */
static int push_back(green_bufio_t *b, const void *data, size_t n)
{
    size_t have = unread(b);
    int err = rbuf_room(b, have + n);
    if (err)
        return err;
    memmove(b->rbuf + n, b->rbuf, have);
    memcpy(b->rbuf, data, n);
    b->rlen = have + n;
    return 0;
}

ssize_t green_bufio_read_exactly(green_bufio_t *b, void *buf, size_t n)
{
    if (!b || (!buf && n))
        return green__fail(EINVAL);
    size_t got = 0;
    while (got < n) {
        ssize_t r = green_bufio_read(b, (char *)buf + got, n - got);
        if (r < 0) {
            int err = errno;
            if (got && push_back(b, buf, got) != 0)
                return (ssize_t)got; /* ENOMEM: keep what was read */
            return green__fail(err);
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/******************************************************************************/
/*  Writing                                                                   */
/******************************************************************************/

/* Write n bytes of data with as many writes as it takes.  Returns how
   many were written; *err gets 0, or the error that stopped it. */
static size_t write_out(green_bufio_t *b, const char *data, size_t n,
                        int *err)
{
    size_t done = 0;
    *err = 0;
    while (done < n) {
        ssize_t r = b->wr(b->ctx, data + done, n - done);
        if (r <= 0) {
            *err = r < 0 ? errno : EIO; /* 0: no progress, ever */
            break;
        }
        done += (size_t)r;
    }
    return done;
}

int green_bufio_flush(green_bufio_t *b)
{
    if (!b)
        return green__fail(EINVAL);
    if (!b->wr)
        return green__fail(EBADF);
    if (b->wlen == 0)
        return 0;
    int err;
    size_t done = write_out(b, b->wbuf, b->wlen, &err);
    memmove(b->wbuf, b->wbuf + done, b->wlen - done);
    b->wlen -= done;
    return err ? green__fail(err) : 0;
}

/* What write returns once an error stopped it after `done` bytes. */
static ssize_t write_failed(size_t done, int err)
{
    errno = err;
    return done ? (ssize_t)done : -1;
}

ssize_t green_bufio_write(green_bufio_t *b, const void *buf, size_t n)
{
    if (!b || (!buf && n))
        return green__fail(EINVAL);
    if (!b->wr)
        return green__fail(EBADF);
    if (!b->wbuf && n && !(b->wbuf = malloc(b->size)))
        return -1;
    const char *src = buf;
    size_t done = 0;
    while (done < n) {
        if (b->wlen == 0 && n - done >= b->size) {
            int err;
            done += write_out(b, src + done, n - done, &err);
            return err ? write_failed(done, err) : (ssize_t)n;
        }
        if (b->wlen == b->size && green_bufio_flush(b) != 0)
            return write_failed(done, errno);
        size_t c = b->size - b->wlen;
        c = c < n - done ? c : n - done;
        memcpy(b->wbuf + b->wlen, src + done, c);
        b->wlen += c;
        done += c;
    }
    return (ssize_t)n;
}
