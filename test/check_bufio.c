/* Buffered I/O: green_bufio_* over socketpairs, pipes and caller ops. */
#include <fcntl.h>
#include <sys/socket.h>

#include "testutil.h"

static int sv[2];

static void setup(void)
{
    green_test_setup();
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
}

static void teardown(void)
{
    green_close(sv[0]);
    if (sv[1] >= 0)
        green_close(sv[1]);
    green_test_teardown();
}

/* A slow peer: writes data in chunks of `chunk` bytes, yielding for
   1 ms between them, then closes its end when `close_after`. */
struct peer {
    int fd;
    const char *data;
    size_t len, chunk;
    int close_after;
};

static void *peer_body(void *a)
{
    struct peer *p = a;
    for (size_t off = 0; off < p->len; off += p->chunk) {
        size_t n = p->len - off < p->chunk ? p->len - off : p->chunk;
        if (green_write_all(p->fd, p->data + off, n) != (ssize_t)n)
            return (void *)1;
        green_sleep(0.001);
    }
    if (p->close_after) {
        green_close(p->fd);
        sv[1] = -1;
    }
    return NULL;
}

static green_t *slow_peer(struct peer *p)
{
    green_t *g = green_spawn(peer_body, p);
    ck_assert_ptr_nonnull(g);
    return g;
}

static void join_peer(green_t *g)
{
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_ptr_null(green_value(g));
    green_release(g);
}

START_TEST(readline_from_slow_peer_across_buffers)
{
    const char *text = "hello world\nsecond line\n\nlast";
    struct peer p = {sv[1], text, strlen(text), 3, 1};
    green_t *g = slow_peer(&p);
    green_bufio_t *b = green_bufio_new(sv[0], 8);
    ck_assert_ptr_nonnull(b);
    char line[64];
    ck_assert_int_eq(green_bufio_readline(b, line, sizeof line, '\n'), 12);
    ck_assert_str_eq(line, "hello world\n");
    ck_assert_int_eq(green_bufio_readline(b, line, sizeof line, '\n'), 12);
    ck_assert_str_eq(line, "second line\n");
    ck_assert_int_eq(green_bufio_readline(b, line, sizeof line, '\n'), 1);
    ck_assert_str_eq(line, "\n");
    /* End of input without a delimiter: the rest, then 0. */
    ck_assert_int_eq(green_bufio_readline(b, line, sizeof line, '\n'), 4);
    ck_assert_str_eq(line, "last");
    ck_assert_int_eq(green_bufio_readline(b, line, sizeof line, '\n'), 0);
    ck_assert_str_eq(line, "");
    ck_assert_int_eq(green_bufio_read(b, line, 10), 0);
    green_bufio_free(b);
    join_peer(g);
}
END_TEST

START_TEST(long_lines_max_length_and_delim)
{
    size_t n = 20000;
    char *big = malloc(n + 32);
    memset(big, 'x', n);
    strcpy(big + n, "\nabcdefghij\nk;l;");
    struct peer p = {sv[1], big, strlen(big), 1000, 1};
    green_t *g = slow_peer(&p);
    green_bufio_t *b = green_bufio_new(sv[0], 16);
    char *line = malloc(n + 2);
    /* A line far longer than the buffer. */
    ck_assert_int_eq(green_bufio_readline(b, line, n + 2, '\n'),
                     (ssize_t)n + 1);
    ck_assert(memcmp(line, big, n + 1) == 0 && line[n + 1] == '\0');
    /* max reached: what fits, the rest stays buffered. */
    ck_assert_int_eq(green_bufio_readline(b, line, 5, '\n'), 4);
    ck_assert_str_eq(line, "abcd");
    ck_assert_int_eq(green_bufio_readline(b, line, 5, '\n'), 4);
    ck_assert_str_eq(line, "efgh");
    ck_assert_int_eq(green_bufio_readline(b, line, 5, '\n'), 3);
    ck_assert_str_eq(line, "ij\n");
    ck_assert_int_eq(green_bufio_readline(b, line, 100, ';'), 2);
    ck_assert_str_eq(line, "k;");
    char two[2];
    ck_assert_int_eq(green_bufio_read_exactly(b, two, 2), 2);
    ck_assert(memcmp(two, "l;", 2) == 0);
    ck_assert_int_eq(green_bufio_readline(b, line, 100, ';'), 0);
    green_bufio_free(b);
    free(line);
    free(big);
    join_peer(g);
}
END_TEST

START_TEST(read_exactly_across_chunks_and_eof)
{
    size_t n = 100000;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 + i / 251);
    struct peer p = {sv[1], data, n, 1000, 1};
    green_t *g = slow_peer(&p);
    green_bufio_t *b = green_bufio_new(sv[0], 0);
    char *got = malloc(2 * n); /* room for the over-long read */
    /* read: whatever is there, at most what was asked. */
    ssize_t r = green_bufio_read(b, got, 10);
    ck_assert(r >= 1 && r <= 10);
    size_t off = (size_t)r;
    ck_assert_int_eq(green_bufio_read_exactly(b, got + off, 50000), 50000);
    off += 50000;
    /* More than is left: the short count at end of input, then 0. */
    ck_assert_int_eq(green_bufio_read_exactly(b, got + off, n),
                     (ssize_t)(n - off));
    ck_assert(memcmp(got, data, n) == 0);
    ck_assert_int_eq(green_bufio_read_exactly(b, got, 10), 0);
    ck_assert_int_eq(green_bufio_read_exactly(b, got, 0), 0);
    green_bufio_free(b);
    free(got);
    free(data);
    join_peer(g);
}
END_TEST

/* A slow reader: reads 4 KiB at a time, yielding in between. */
struct sink {
    int fd;
    char *buf;
    size_t len;
};

static void *sink_body(void *a)
{
    struct sink *s = a;
    ssize_t r;
    while ((r = green_read(s->fd, s->buf + s->len, 4096)) > 0) {
        s->len += (size_t)r;
        green_sleep(0);
    }
    return (void *)(intptr_t)r;
}

START_TEST(buffered_write_and_flush_to_slow_reader)
{
    int pfd[2];
    ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
    size_t n = 1u << 20;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i % 253);
    struct sink s = {pfd[0], malloc(n + 4096), 0};
    green_t *g = green_spawn(sink_body, &s);
    green_bufio_t *b = green_bufio_new(pfd[1], 4096);
    /* Small writes stay buffered until flushed. */
    ck_assert_int_eq(green_bufio_write(b, data, 10), 10);
    GREEN_ASSERT_ERRNO(green_wait_read(pfd[0], 0), EAGAIN);
    ck_assert_int_eq(green_bufio_flush(b), 0);
    ck_assert_int_eq(green_wait_read(pfd[0], 0), 0);
    size_t off = 10, step = 1;
    while (off < n) {
        size_t c = n - off < step ? n - off : step;
        ck_assert_int_eq(green_bufio_write(b, data + off, c), (ssize_t)c);
        off += c;
        step = step * 3 % 9001 + 1; /* 1 byte to 9 KiB: both paths */
    }
    ck_assert_int_eq(green_bufio_flush(b), 0);
    ck_assert_int_eq(green_bufio_flush(b), 0);
    green_bufio_free(b);
    green_close(pfd[1]);
    ck_assert_int_eq(green_join(g, -1), 0);
    ck_assert_int_eq((int)(intptr_t)green_value(g), 0);
    ck_assert_uint_eq(s.len, n);
    ck_assert(memcmp(s.buf, data, n) == 0);
    green_release(g);
    green_close(pfd[0]);
    free(s.buf);
    free(data);
}
END_TEST

struct reader {
    green_bufio_t *b;
    char line[64];
    ssize_t rc;
    int err;
};

static void *readline_body(void *a)
{
    struct reader *r = a;
    r->rc = green_bufio_readline(r->b, r->line, sizeof r->line, '\n');
    r->err = errno;
    return NULL;
}

/* A kill or a timeout in the middle of a line loses nothing: the next
   readline returns the whole line. */
START_TEST(kill_and_timeout_mid_readline_keep_bytes)
{
    green_bufio_t *b = green_bufio_new(sv[0], 4);
    struct reader r = {b, "", 0, 0};
    ck_assert_int_eq(green_write_all(sv[1], "hel", 3), 3);
    green_t *g = green_spawn(readline_body, &r);
    green_sleep(0.01);
    ck_assert_int_eq(green_kill(g, 1), 0);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_int_eq(r.err, ECANCELED);
    green_release(g);
    ck_assert_int_eq(green_write_all(sv[1], "lo", 2), 2);
    green_timeout_scope_t s;
    ck_assert_int_eq(green_timeout_begin(&s, 0.02), 0);
    GREEN_ASSERT_ERRNO(green_bufio_readline(b, r.line, 64, '\n'), ETIMEDOUT);
    green_timeout_end(&s);
    ck_assert_int_eq(green_write_all(sv[1], " you\nnext\n", 10), 10);
    ck_assert_int_eq(green_bufio_readline(b, r.line, 64, '\n'), 10);
    ck_assert_str_eq(r.line, "hello you\n");

    /* read_exactly: the bytes it had taken go back in front. */
    char got[12];
    ck_assert_int_eq(green_bufio_readline(b, r.line, 64, '\n'), 5);
    ck_assert_str_eq(r.line, "next\n");
    ck_assert_int_eq(green_write_all(sv[1], "0123", 4), 4);
    ck_assert_int_eq(green_timeout_begin(&s, 0.02), 0);
    GREEN_ASSERT_ERRNO(green_bufio_read_exactly(b, got, 9), ETIMEDOUT);
    green_timeout_end(&s);
    ck_assert_int_eq(green_write_all(sv[1], "45678\n", 6), 6);
    ck_assert_int_eq(green_bufio_read_exactly(b, got, 9), 9);
    ck_assert(memcmp(got, "012345678", 9) == 0);
    ck_assert_int_eq(green_bufio_readline(b, r.line, 64, '\n'), 1);
    green_bufio_free(b);
}
END_TEST

/* In the hub: a buffered line is returned, a read that must wait is
   EDEADLK. */
struct hubread {
    green_bufio_t *b;
    ssize_t first, second;
    int err;
    char line[16];
};

static void hub_cb(green_t *g, void *a)
{
    (void)g;
    struct hubread *h = a;
    h->first = green_bufio_readline(h->b, h->line, sizeof h->line, '\n');
    h->second = green_bufio_readline(h->b, h->line, sizeof h->line, '\n');
    h->err = errno;
}

START_TEST(edeadlk_in_hub)
{
    green_bufio_t *b = green_bufio_new(sv[0], 0);
    ck_assert_int_eq(green_write_all(sv[1], "one\ntw", 6), 6);
    char line[8];
    ck_assert_int_eq(green_bufio_read(b, line, 1), 1);
    struct hubread h = {b, 0, 0, 0, ""};
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, hub_cb, &h), 0);
    ck_assert_int_eq(green_join(g, -1), 0);
    green_sleep(0);
    ck_assert_int_eq(h.first, 3);
    ck_assert_int_eq(h.second, -1);
    ck_assert_int_eq(h.err, EDEADLK);
    green_release(g);
    green_bufio_free(b);
}
END_TEST

/* Caller ops: a source that hands out one byte per read (and fails
   once with EIO), a sink that takes at most 3 bytes per write. */
struct ops {
    const char *src;
    size_t pos, len;
    int fail_at;
    char sink[256];
    size_t sunk;
    int sink_full;
};

static ssize_t ops_read(void *ctx, void *buf, size_t n)
{
    struct ops *o = ctx;
    if (o->fail_at >= 0 && o->pos == (size_t)o->fail_at) {
        o->fail_at = -1;
        errno = EIO;
        return -1;
    }
    if (n == 0 || o->pos == o->len)
        return 0;
    *(char *)buf = o->src[o->pos++];
    return 1;
}

static ssize_t ops_write(void *ctx, const void *buf, size_t n)
{
    struct ops *o = ctx;
    if (o->sink_full) {
        errno = EPIPE;
        return -1;
    }
    size_t c = n < 3 ? n : 3;
    memcpy(o->sink + o->sunk, buf, c);
    o->sunk += c;
    return (ssize_t)c;
}

START_TEST(ops_instance)
{
    struct ops o = {"ab\ncd\n", 0, 6, 4, "", 0, 0};
    green_bufio_t *b = green_bufio_new_ops(&o, ops_read, ops_write, 0);
    ck_assert_ptr_nonnull(b);
    char line[16];
    ck_assert_int_eq(green_bufio_readline(b, line, sizeof line, '\n'), 3);
    ck_assert_str_eq(line, "ab\n");
    /* The EIO after "c": nothing lost. */
    GREEN_ASSERT_ERRNO(green_bufio_readline(b, line, sizeof line, '\n'), EIO);
    ck_assert_int_eq(green_bufio_readline(b, line, sizeof line, '\n'), 3);
    ck_assert_str_eq(line, "cd\n");
    ck_assert_int_eq(green_bufio_write(b, "hello, ops", 10), 10);
    ck_assert_uint_eq(o.sunk, 0);
    ck_assert_int_eq(green_bufio_flush(b), 0);
    ck_assert_uint_eq(o.sunk, 10);
    ck_assert(memcmp(o.sink, "hello, ops", 10) == 0);
    green_bufio_free(b);

    /* Write errors: the count of bytes accepted, the rest retried. */
    struct ops w = {"", 0, 0, -1, "", 0, 0};
    b = green_bufio_new_ops(&w, NULL, ops_write, 8);
    ck_assert_int_eq(green_bufio_write(b, "123456", 6), 6);
    w.sink_full = 1;
    errno = 0;
    ck_assert_int_eq(green_bufio_write(b, "abcdef", 6), 2); /* fills 8 */
    ck_assert_int_eq(errno, EPIPE);
    GREEN_ASSERT_ERRNO(green_bufio_flush(b), EPIPE);
    w.sink_full = 0;
    ck_assert_int_eq(green_bufio_flush(b), 0);
    ck_assert_uint_eq(w.sunk, 8);
    ck_assert(memcmp(w.sink, "123456ab", 8) == 0);
    /* Write-only: reads are EBADF. */
    GREEN_ASSERT_ERRNO(green_bufio_read(b, line, 1), EBADF);
    GREEN_ASSERT_ERRNO(green_bufio_readline(b, line, 4, '\n'), EBADF);
    green_bufio_free(b);
    b = green_bufio_new_ops(&o, ops_read, NULL, 0);
    GREEN_ASSERT_ERRNO(green_bufio_write(b, "x", 1), EBADF);
    GREEN_ASSERT_ERRNO(green_bufio_flush(b), EBADF);
    green_bufio_free(b);
}
END_TEST

START_TEST(bad_args_and_closed_fd)
{
    GREEN_ASSERT_ERRNO(green_bufio_new(-1, 0), EBADF);
    GREEN_ASSERT_ERRNO(green_bufio_new_ops(NULL, NULL, NULL, 0), EINVAL);
    char buf[8];
    GREEN_ASSERT_ERRNO(green_bufio_readline(NULL, buf, 8, '\n'), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_read(NULL, buf, 8), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_read_exactly(NULL, buf, 8), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_write(NULL, buf, 8), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_flush(NULL), EINVAL);
    green_bufio_free(NULL);
    green_bufio_t *b = green_bufio_new(sv[0], 0);
    GREEN_ASSERT_ERRNO(green_bufio_readline(b, NULL, 8, '\n'), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_readline(b, buf, 1, '\n'), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_readline(b, buf, 8, 256), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_readline(b, buf, 8, -1), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_read(b, NULL, 8), EINVAL);
    GREEN_ASSERT_ERRNO(green_bufio_write(b, NULL, 8), EINVAL);
    ck_assert_int_eq(green_bufio_read(b, buf, 0), 0);
    ck_assert_int_eq(green_bufio_write(b, buf, 0), 0);
    /* The fd's errors come through: a closed peer is EPIPE. */
    green_close(sv[1]);
    sv[1] = -1;
    ck_assert_int_eq(green_bufio_write(b, "x", 1), 1);
    GREEN_ASSERT_ERRNO(green_bufio_flush(b), EPIPE);
    green_bufio_free(b);
    /* An fd that is not open. */
    int fd = dup(sv[0]);
    green_close(fd);
    b = green_bufio_new(fd, 0);
    GREEN_ASSERT_ERRNO(green_bufio_readline(b, buf, 8, '\n'), EBADF);
    green_bufio_free(b);
}
END_TEST

static Suite *bufio_suite(void)
{
    Suite *s = suite_create("bufio");
    TCase *tc = tcase_create("bufio");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, readline_from_slow_peer_across_buffers);
    tcase_add_test(tc, long_lines_max_length_and_delim);
    tcase_add_test(tc, read_exactly_across_chunks_and_eof);
    tcase_add_test(tc, buffered_write_and_flush_to_slow_reader);
    tcase_add_test(tc, kill_and_timeout_mid_readline_keep_bytes);
    tcase_add_test(tc, edeadlk_in_hub);
    tcase_add_test(tc, ops_instance);
    tcase_add_test(tc, bad_args_and_closed_fd);
    suite_add_tcase(s, tc);
    return s;
}

GREEN_TEST_MAIN(bufio_suite)
