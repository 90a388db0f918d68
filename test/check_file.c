/* Regular files off the hub (lib/proc/file.c): green_pread, green_pwrite,
   green_fsync, green_fdatasync, green_open, and green_read/green_write on
   a regular file.  Every test runs once per backend (GREEN_FILE_BACKEND);
   under Valgrind only the threadpool's (memcheck cannot see what the
   kernel writes through io_uring).  Cold reads: the file's pages are
   dropped from the page cache (posix_fadvise DONTNEED after fdatasync)
   so that a read must wait for the disk. */
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "config.h"
#include "testutil.h"

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

static const char *backend;  /* this tcase's GREEN_FILE_BACKEND */

static void setup_threadpool(void)
{
    backend = "threadpool";
    setenv("GREEN_FILE_BACKEND", backend, 1);
    alarm(60);
    green_test_setup();
}

static void setup_uring(void)
{
    backend = "io_uring";
    setenv("GREEN_FILE_BACKEND", backend, 1);
    alarm(60);
    green_test_setup();
}

static void teardown(void)
{
    alarm(0);
    green_test_teardown();
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 131u + (i >> 12));
}

/* A temporary file in the build directory's file system (not tmpfs:
   its pages must be droppable), unlinked; size bytes of pattern(). */
static int big_file(size_t size)
{
    char path[] = "green-file-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    unsigned char *b = malloc(1 << 16);
    for (size_t off = 0; off < size; off += 1 << 16) {
        size_t n = size - off < (1 << 16) ? size - off : (1 << 16);
        for (size_t i = 0; i < n; i++)
            b[i] = pattern(off + i);
        ck_assert_int_eq(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
    }
    free(b);
    return fd;
}

/* Out of the page cache: the next read waits for the disk. */
static void drop_cache(int fd)
{
    ck_assert_int_eq(fdatasync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
}

/* 1 if drop_cache works on fd's file system (not tmpfs): a read must
   then wait for the disk.  The tests that need a read in flight return
   early where it does not (nothing to prove with). */
static int cold_works(int fd)
{
    drop_cache(fd);
    char b[1];
    struct iovec iov = {b, 1};
    if (preadv2(fd, &iov, 1, 0, RWF_NOWAIT) < 0 && errno == EAGAIN)
        return 1;
    fprintf(stderr, "check_file: pages cannot be dropped here, "
                    "a test needing a cold read is skipped\n");
    return 0;
}

static void check_pattern(const unsigned char *b, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern(off + i))
            ck_abort_msg("byte %zu: %u, expected %u", off + i, b[i],
                         pattern(off + i));
}

static size_t big_size(void)
{
    return test_light() ? (4u << 20) : (8u << 20);
}

/* A big_file() for a test that needs a read in flight: -1 (the file
   closed) where cold_works() says its pages cannot be dropped. */
static int cold_big_file(size_t size)
{
    int fd = big_file(size);
    if (cold_works(fd))
        return fd;
    green_close(fd);
    return -1;
}

/******************************************************************************/
/*  Transfers                                                                 */
/******************************************************************************/

START_TEST(backend_is_the_one_asked_for)
{
    const char *b = green_file_backend();
    ck_assert_ptr_nonnull(b);
    if (strcmp(backend, "threadpool") == 0)
        ck_assert_str_eq(b, "threadpool");
    else if (strcmp(b, backend) != 0)
        fprintf(stderr, "check_file: io_uring unavailable here, the "
                        "io_uring tests ran on the threadpool\n");
}
END_TEST

START_TEST(pread_pwrite_round_trip_at_offsets)
{
    int fd = big_file(0);
    const off_t offs[] = {0, 4093, (1 << 20) + 3, 5 << 20};
    char buf[64], back[64];
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        memset(buf, 0, sizeof buf);
        snprintf(buf, sizeof buf, "record %zu at %lld", k, (long long)offs[k]);
        ck_assert_int_eq(green_pwrite(fd, buf, sizeof buf, offs[k]),
                         (ssize_t)sizeof buf);
    }
    drop_cache(fd);
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        memset(buf, 0, sizeof buf);
        snprintf(buf, sizeof buf, "record %zu at %lld", k, (long long)offs[k]);
        memset(back, 0, sizeof back);
        ck_assert_int_eq(green_pread(fd, back, sizeof back, offs[k]),
                         (ssize_t)sizeof back);
        ck_assert_mem_eq(back, buf, sizeof buf);
    }
    /* The hole between records reads as zeros; the position never moved. */
    ck_assert_int_eq(green_pread(fd, back, 8, 100), 8);
    ck_assert_mem_eq(back, "\0\0\0\0\0\0\0\0", 8);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

START_TEST(big_cold_read_is_full_and_correct)
{
    size_t size = big_size();
    int fd = big_file(size);
    drop_cache(fd);
    unsigned char *b = malloc(size);
    ck_assert_int_eq(green_pread(fd, b, size, 0), (ssize_t)size);
    check_pattern(b, size, 0);
    /* Half cached, half not: still one full read. */
    drop_cache(fd);
    ck_assert_int_eq(green_pread(fd, b, 4096, 0), 4096);
    ck_assert_int_eq(green_pread(fd, b, size / 2, 0), (ssize_t)(size / 2));
    check_pattern(b, size / 2, 0);
    free(b);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

START_TEST(short_read_at_eof)
{
    int fd = big_file(1000);
    char b[4096];
    for (int cold = 0; cold < 2; cold++) {
        if (cold)
            drop_cache(fd);
        ck_assert_int_eq(green_pread(fd, b, sizeof b, 0), 1000);
        check_pattern((unsigned char *)b, 1000, 0);
        if (cold)
            drop_cache(fd);
        ck_assert_int_eq(green_pread(fd, b, sizeof b, 990), 10);
        check_pattern((unsigned char *)b, 10, 990);
        ck_assert_int_eq(green_pread(fd, b, sizeof b, 1000), 0);
        ck_assert_int_eq(green_pread(fd, b, sizeof b, 1 << 30), 0);
    }
    ck_assert_int_eq(green_pread(fd, b, 0, 0), 0);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

START_TEST(read_write_use_and_advance_the_position)
{
    int fd = big_file(0);
    ck_assert_int_eq(green_write(fd, "hello", 5), 5);
    struct iovec wv[2] = {{" wide", 5}, {" world", 6}};
    ck_assert_int_eq(green_writev(fd, wv, 2), 11);
    ck_assert_int_eq(green_write_all(fd, "!", 1), 1);
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 17);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    drop_cache(fd);
    char a[6] = {0}, b[7] = {0}, c[6] = {0};
    ck_assert_int_eq(green_read(fd, a, 5), 5);
    ck_assert_str_eq(a, "hello");
    ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 5);
    struct iovec rv[2] = {{b, 5}, {c, 5}};
    ck_assert_int_eq(green_readv(fd, rv, 2), 10);
    ck_assert_str_eq(b, " wide");
    ck_assert_str_eq(c, " worl");
    ck_assert_int_eq(green_read(fd, a, 5), 2);
    ck_assert_int_eq(memcmp(a, "d!", 2), 0);
    ck_assert_int_eq(green_read(fd, a, 5), 0);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

START_TEST(o_append_appends)
{
    char path[] = "green-file-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "abc", 3), 3);
    close(fd);
    fd = green_open(path, O_RDWR | O_APPEND, 0);
    unlink(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(green_write(fd, "def", 3), 3);
    ck_assert_int_eq(green_write_all(fd, "gh", 2), 2);
    char b[16] = {0};
    ck_assert_int_eq(green_pread(fd, b, sizeof b, 0), 8);
    ck_assert_str_eq(b, "abcdefgh");
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

START_TEST(fsync_and_fdatasync)
{
    int fd = big_file(0);
    ck_assert_int_eq(green_pwrite(fd, "x", 1, 0), 1);
    ck_assert_int_eq(green_fsync(fd), 0);
    ck_assert_int_eq(green_pwrite(fd, "y", 1, 1), 1);
    ck_assert_int_eq(green_fdatasync(fd), 0);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    GREEN_ASSERT_ERRNO(green_fsync(p[0]), EINVAL);
    GREEN_ASSERT_ERRNO(green_fdatasync(p[1]), EINVAL);
    close(p[0]);
    close(p[1]);
    ck_assert_int_eq(green_close(fd), 0);
    GREEN_ASSERT_ERRNO(green_fsync(fd), EBADF);
    GREEN_ASSERT_ERRNO(green_fdatasync(-1), EBADF);
}
END_TEST

/******************************************************************************/
/*  Errors                                                                    */
/******************************************************************************/

START_TEST(bad_fds_and_arguments)
{
    char b[16];
    memset(b, 0, sizeof b);
    /* The hub (and its loop's fds) first: a closed number below must
       stay closed. */
    ck_assert_ptr_nonnull(green_file_backend());
    GREEN_ASSERT_ERRNO(green_pread(-1, b, sizeof b, 0), EBADF);
    GREEN_ASSERT_ERRNO(green_pwrite(-1, b, sizeof b, 0), EBADF);
    int fd = big_file(100);
    GREEN_ASSERT_ERRNO(green_pread(fd, b, sizeof b, -1), EINVAL);
    GREEN_ASSERT_ERRNO(green_pwrite(fd, b, sizeof b, -5), EINVAL);
    GREEN_ASSERT_ERRNO(green_pread(fd, NULL, 10, 0), EFAULT);
    GREEN_ASSERT_ERRNO(green_pread(fd, b, (size_t)SSIZE_MAX + 1, 0), EINVAL);
    ck_assert_int_eq(green_close(fd), 0);
    /* Closed: every call says EBADF, through each path. */
    GREEN_ASSERT_ERRNO(green_pread(fd, b, sizeof b, 0), EBADF);
    GREEN_ASSERT_ERRNO(green_pwrite(fd, b, sizeof b, 0), EBADF);
    GREEN_ASSERT_ERRNO(green_read(fd, b, sizeof b), EBADF);
    GREEN_ASSERT_ERRNO(green_write(fd, b, sizeof b), EBADF);
    /* Opened read-only: writing is EBADF (the backend's answer). */
    fd = green_open("/proc/self/exe", O_RDONLY, 0);
    ck_assert_int_ge(fd, 0);
    GREEN_ASSERT_ERRNO(green_pwrite(fd, b, sizeof b, 0), EBADF);
    ck_assert_int_eq(green_close(fd), 0);
    GREEN_ASSERT_ERRNO(green_open(NULL, O_RDONLY, 0), EFAULT);
    GREEN_ASSERT_ERRNO(green_open("/nonexistent/green", O_RDONLY, 0), ENOENT);
    /* A pipe has no offsets. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    GREEN_ASSERT_ERRNO(green_pread(p[0], b, sizeof b, 0), ESPIPE);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(directories)
{
    int fd = green_open(".", O_RDONLY | O_DIRECTORY, 0);
    ck_assert_int_ge(fd, 0);
    char b[16];
    GREEN_ASSERT_ERRNO(green_pread(fd, b, sizeof b, 0), EISDIR);
    GREEN_ASSERT_ERRNO(green_read(fd, b, sizeof b), EISDIR);
    ck_assert_int_eq(green_close(fd), 0);
    GREEN_ASSERT_ERRNO(green_open(".", O_WRONLY, 0), EISDIR);
}
END_TEST

/* Character devices keep the readiness path (and work). */
START_TEST(dev_null_and_dev_zero)
{
    int fd = green_open("/dev/zero", O_RDONLY, 0);
    ck_assert_int_ge(fd, 0);
    char b[32];
    memset(b, 1, sizeof b);
    ck_assert_int_eq(green_read(fd, b, sizeof b), (ssize_t)sizeof b);
    ck_assert_int_eq(b[0] | b[31], 0);
    ck_assert_int_eq(green_close(fd), 0);
    fd = green_open("/dev/null", O_WRONLY, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(green_write(fd, b, sizeof b), (ssize_t)sizeof b);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

/******************************************************************************/
/*  Kills, timeouts, the hub                                                  */
/******************************************************************************/

/* Let orphaned threadpool jobs (of killed callers) finish and be
   collected (bounded). */
static void wait_orphans(void)
{
    green_hub_stats_t st;
    for (int i = 0; i < 2000; i++) {
        ck_assert_int_eq(green_hub_stats(&st), 0);
        if (st.watchers == 0)
            return;
        ck_assert_int_eq(green_sleep(0.005), 0);
    }
    ck_abort_msg("%zu watcher(s) still active", st.watchers);
}

struct reader {
    int fd;
    size_t n;
    ssize_t rc;
    int err;
    int intact;          /* the buffer kept what was written after */
    atomic_int inside;   /* in green_pread */
};

/* Reads n cold bytes into a heap buffer; once the call returned, takes
   a snapshot of the buffer, blocks the thread for a while and checks
   nothing wrote into it any more (a request still running would: a
   worker directly, io_uring at this task's next syscall), then frees it
   and reuses the memory. */
static void *killed_reader(void *a)
{
    struct reader *r = a;
    unsigned char *b = malloc(r->n), *snap = malloc(r->n);
    memset(b, 0, r->n);
    atomic_store(&r->inside, 1);
    errno = 0;
    r->rc = green_pread(r->fd, b, r->n, 0);
    r->err = errno;
    memcpy(snap, b, r->n);
    atomic_store(&r->inside, 0);
    /* Killed: blocking calls fail now, so block the thread. */
    struct timespec ts = {0, 2000000};
    for (int i = 0; i < 25; i++)
        nanosleep(&ts, NULL);
    r->intact = memcmp(snap, b, r->n) == 0;
    free(b);
    free(snap);
    void *again = malloc(r->n);
    memset(again, 0x5A, r->n);
    free(again);
    return NULL;
}

START_TEST(kill_mid_read_leaves_the_buffer_alone)
{
    size_t size = big_size();
    int fd = cold_big_file(size);
    if (fd < 0)
        return;
    int cancelled = 0;
    for (int attempt = 0; attempt < 5 && cancelled < 2; attempt++) {
        drop_cache(fd);
        struct reader r = {.fd = fd, .n = size};
        green_t *g = green_spawn(killed_reader, &r);
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(green_yield(), 0);
        ck_assert_int_eq(atomic_load(&r.inside), 1); /* parked in the read */
        ck_assert_int_eq(green_kill(g, -1), 0);
        green_release(g);
        ck_assert_msg(r.intact, "the buffer was written after the call");
        if (r.rc == -1) {
            ck_assert_int_eq(r.err, ECANCELED);
            cancelled++;
        } else {
            ck_assert_int_eq(r.rc, (ssize_t)size); /* done before the kill */
        }
    }
    ck_assert_int_ge(cancelled, 2);
    wait_orphans();
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

START_TEST(timeout_scope_ends_a_cold_read)
{
    size_t size = big_size();
    int fd = cold_big_file(size);
    if (fd < 0)
        return;
    unsigned char *b = malloc(size);
    int timed_out = 0;
    for (int attempt = 0; attempt < 5 && !timed_out; attempt++) {
        drop_cache(fd);
        green_timeout_scope_t s;
        ck_assert_int_eq(green_timeout_begin(&s, 0.0005), 0);
        errno = 0;
        ssize_t rc = green_pread(fd, b, size, 0);
        int err = errno;
        ck_assert_int_ge(green_timeout_end(&s), 0);
        if (rc == -1) {
            ck_assert_int_eq(err, ETIMEDOUT);
            timed_out = 1;
        } else {
            ck_assert_int_eq(rc, (ssize_t)size);
        }
    }
    ck_assert(timed_out);
    wait_orphans();
    /* The scope is over: the next read works. */
    ck_assert_int_eq(green_pread(fd, b, 4096, 0), 4096);
    check_pattern(b, 4096, 0);
    free(b);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

/* In a link callback (the hub's context) nothing may park: the calls
   are the plain blocking syscalls and succeed. */
struct hub_calls {
    int fd;
    ssize_t read_rc;
    int sync_rc, open_fd, sleep_err;
    char b[8];
};

static void in_hub(green_t *g, void *a)
{
    (void)g;
    struct hub_calls *h = a;
    h->read_rc = green_pread(h->fd, h->b, sizeof h->b, 8);
    h->sync_rc = green_fsync(h->fd);
    h->open_fd = green_open("/proc/self/exe", O_RDONLY, 0);
    h->sleep_err = green_sleep(0.001) ? errno : 0;
}

START_TEST(hub_context_does_the_plain_call)
{
    int fd = big_file(4096);
    drop_cache(fd);
    struct hub_calls h = {.fd = fd};
    green_t *g = green_spawn(test_noop, NULL);
    ck_assert_int_eq(green_link(g, in_hub, &h), 0);
    ck_assert_int_eq(green_join(g, -1), 0);
    green_release(g);
    ck_assert_int_eq(h.sleep_err, EDEADLK); /* it was the hub */
    ck_assert_int_eq(h.read_rc, 8);
    check_pattern((unsigned char *)h.b, 8, 8);
    ck_assert_int_eq(h.sync_rc, 0);
    ck_assert_int_ge(h.open_fd, 0);
    ck_assert_int_eq(green_close(h.open_fd), 0);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

/* A cached read completes at once, even for a killed greenlet. */
static void *killed_then_reads_cached(void *a)
{
    struct reader *r = a;
    green_sleep(1e9); /* killed here */
    char b[16];
    errno = 0;
    r->rc = green_pread(r->fd, b, sizeof b, 0);
    r->err = errno;
    return NULL;
}

START_TEST(cached_read_completes_after_a_kill)
{
    int fd = big_file(4096);
    char b[16];
    ck_assert_int_eq(green_pread(fd, b, sizeof b, 0), 16); /* cached */
    struct reader r = {.fd = fd};
    green_t *g = green_spawn(killed_then_reads_cached, &r);
    ck_assert_int_eq(green_yield(), 0);
    ck_assert_int_eq(green_kill(g, -1), 0);
    green_release(g);
    ck_assert_int_eq(r.rc, 16);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

/******************************************************************************/
/*  The hub keeps running                                                     */
/******************************************************************************/

/* A write lease: an open for writing by anyone else blocks in the kernel
   until the lease holder gives it up, as long as it keeps it (45 s by
   default): a plain open(2) would stop the whole hub that long.  -1
   (the file gone) where the file system has no leases. */
static int lease_file(char *path, int *holder)
{
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    *holder = open(path, O_RDONLY);
    ck_assert_int_ge(*holder, 0);
    signal(SIGIO, SIG_IGN); /* the lease-break notice */
    if (fcntl(*holder, F_SETLEASE, F_RDLCK) == 0)
        return 0;
    unlink(path);
    close(*holder);
    return -1;
}

/* Until an open for writing is blocked on holder's lease: the kernel
   then breaks it, and F_GETLEASE gives the type it goes to (bounded). */
static void wait_lease_breaking(int holder)
{
    for (int i = 0; i < 5000; i++) {
        if (fcntl(holder, F_GETLEASE) == F_UNLCK)
            return;
        ck_assert_int_eq(green_sleep(0.002), 0);
    }
    ck_abort_msg("no open blocked on the lease");
}

struct opener {
    const char *path;
    int fd, err;
};

static void *open_for_writing(void *a)
{
    struct opener *o = a;
    errno = 0;
    o->fd = green_open(o->path, O_WRONLY, 0);
    o->err = errno;
    return NULL;
}

START_TEST(blocked_open_does_not_block_the_hub)
{
    char path[] = "green-lease-XXXXXX";
    int holder;
    if (lease_file(path, &holder) != 0)
        return; /* no leases here (file system): nothing to prove with */
    struct opener o = {.path = path, .fd = -2};
    green_t *g = green_spawn(open_for_writing, &o);
    int ticks = 0;
    green_t *t = green_spawn(test_ticker, &ticks);
    wait_lease_breaking(holder);
    ck_assert_int_eq(green_sleep(0.1), 0);
    ck_assert_int_eq(o.fd, -2);       /* still blocked in open */
    ck_assert_int_ge(ticks, 5);       /* and the hub went on */
    ck_assert_int_eq(fcntl(holder, F_SETLEASE, F_UNLCK), 0);
    ck_assert_int_eq(green_join(g, 10), 0);
    ck_assert_int_ge(o.fd, 0);
    ck_assert_int_eq(green_close(o.fd), 0);
    green_release(g);

    /* Killed while blocked: ECANCELED; the fd it may still get is
       closed (the teardown counts fds). */
    ck_assert_int_eq(fcntl(holder, F_SETLEASE, F_RDLCK), 0);
    o.fd = -2;
    g = green_spawn(open_for_writing, &o);
    wait_lease_breaking(holder);
    ck_assert_int_eq(o.fd, -2);
    ck_assert_int_eq(green_kill(g, 10), 0);
    ck_assert_int_eq(o.fd, -1);
    ck_assert_int_eq(o.err, ECANCELED);
    green_release(g);
    ck_assert_int_eq(fcntl(holder, F_SETLEASE, F_UNLCK), 0);
    ck_assert_int_eq(green_kill(t, -1), 0);
    green_release(t);
    close(holder);
    unlink(path);
    /* The orphaned threadpool job ends now that the lease is gone, and
       closes the fd it got. */
    wait_orphans();
}
END_TEST

struct streamer {
    int fd;
    size_t off, n;
    atomic_int *inside, *max_inside;
    int ok;
};

static void *stream_part(void *a)
{
    struct streamer *s = a;
    unsigned char *b = malloc(1 << 20);
    s->ok = 1;
    for (size_t done = 0; done < s->n; done += 1 << 20) {
        int now = atomic_fetch_add(s->inside, 1) + 1;
        if (now > atomic_load(s->max_inside))
            atomic_store(s->max_inside, now);
        ssize_t k = green_pread(s->fd, b, 1 << 20, (off_t)(s->off + done));
        atomic_fetch_sub(s->inside, 1);
        if (k != 1 << 20) {
            s->ok = 0;
            break;
        }
        check_pattern(b, 1 << 20, s->off + done);
    }
    free(b);
    return NULL;
}

/* Four greenlets stream a cold file: several are inside green_pread at
   once (a blocking read would let only one in at a time) while a
   ticker goes on. */
START_TEST(concurrent_cold_reads_overlap)
{
    size_t size = big_size();
    int fd = cold_big_file(size);
    if (fd < 0)
        return;
    drop_cache(fd);
    atomic_int inside = 0, max_inside = 0;
    struct streamer s[4];
    green_t *g[4];
    int ticks = 0;
    green_t *t = green_spawn(test_ticker, &ticks);
    for (int i = 0; i < 4; i++) {
        s[i] = (struct streamer){fd, (size_t)i * (size / 4), size / 4,
                                 &inside, &max_inside, 0};
        g[i] = green_spawn(stream_part, &s[i]);
    }
    ck_assert_int_eq(green_joinall(g, 4, 30), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert(s[i].ok);
        green_release(g[i]);
    }
    ck_assert_int_ge(atomic_load(&max_inside), 2);
    ck_assert_int_eq(green_kill(t, -1), 0);
    green_release(t);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

/******************************************************************************/
/*  green_fork                                                                */
/******************************************************************************/

START_TEST(fork_child_makes_its_own_ring)
{
    int fd = big_file(1 << 16);
    char b[64];
    ck_assert_int_eq(green_pwrite(fd, "parent", 6, 0), 6);
    const char *parent_backend = green_file_backend();
    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The child's own ring (or pool): cold reads and writes work. */
        if (strcmp(green_file_backend(), parent_backend) != 0)
            _exit(2);
        drop_cache(fd);
        if (green_pread(fd, b, 6, 0) != 6 || memcmp(b, "parent", 6) != 0)
            _exit(3);
        if (green_pwrite(fd, "child", 5, 100) != 5 || green_fsync(fd) != 0)
            _exit(4);
        _exit(0);
    }
    int status = -1;
    ck_assert_int_eq(green_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %d", status);
    /* The parent's ring still works too, and sees the child's write. */
    drop_cache(fd);
    ck_assert_int_eq(green_pread(fd, b, 5, 100), 5);
    ck_assert_int_eq(memcmp(b, "child", 5), 0);
    ck_assert_int_eq(green_close(fd), 0);
}
END_TEST

/* A call waiting when the process forks fails with ECANCELED in the
   child (the request belongs to the parent) and completes in the
   parent. */
START_TEST(fork_fails_calls_in_flight_in_the_child)
{
    char path[] = "green-lease-XXXXXX";
    int holder;
    if (lease_file(path, &holder) != 0)
        return;
    struct opener o = {.path = path, .fd = -2};
    green_t *g = green_spawn(open_for_writing, &o);
    wait_lease_breaking(holder);
    ck_assert_int_eq(o.fd, -2);
    pid_t pid = green_fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (green_join(g, 5) != 0)
            _exit(2);
        _exit(o.fd == -1 && o.err == ECANCELED ? 0 : 3);
    }
    int status = -1;
    ck_assert_int_eq(green_waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child status %d", status);
    ck_assert_int_eq(o.fd, -2);
    ck_assert_int_eq(fcntl(holder, F_SETLEASE, F_UNLCK), 0);
    ck_assert_int_eq(green_join(g, 10), 0);
    ck_assert_int_ge(o.fd, 0);
    ck_assert_int_eq(green_close(o.fd), 0);
    green_release(g);
    close(holder);
    unlink(path);
}
END_TEST

/* Where the kernel refuses io_uring (a seccomp policy: EPERM), the
   calls fall back to the threadpool silently. */
static int refuse_io_uring(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

START_TEST(io_uring_refused_falls_back_to_the_threadpool)
{
    int fd = big_file(1 << 16);
    pid_t pid = fork(); /* before this process has a hub */
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (refuse_io_uring() != 0)
            _exit(77);
        const char *b = green_file_backend();
        if (!b || strcmp(b, "threadpool") != 0)
            _exit(2);
        unsigned char buf[4096];
        drop_cache(fd);
        if (green_pread(fd, buf, sizeof buf, 4096) != (ssize_t)sizeof buf)
            _exit(3);
        for (size_t i = 0; i < sizeof buf; i++)
            if (buf[i] != pattern(4096 + i))
                _exit(4);
        green_shutdown();
        _exit(0);
    }
    int status = -1;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
                                        WEXITSTATUS(status) == 77),
                  "child status %d", status);
    close(fd);
}
END_TEST

static void add_tests(TCase *tc)
{
    tcase_add_test(tc, backend_is_the_one_asked_for);
    tcase_add_test(tc, pread_pwrite_round_trip_at_offsets);
    tcase_add_test(tc, big_cold_read_is_full_and_correct);
    tcase_add_test(tc, short_read_at_eof);
    tcase_add_test(tc, read_write_use_and_advance_the_position);
    tcase_add_test(tc, o_append_appends);
    tcase_add_test(tc, fsync_and_fdatasync);
    tcase_add_test(tc, bad_fds_and_arguments);
    tcase_add_test(tc, directories);
    tcase_add_test(tc, dev_null_and_dev_zero);
    tcase_add_test(tc, kill_mid_read_leaves_the_buffer_alone);
    tcase_add_test(tc, timeout_scope_ends_a_cold_read);
    tcase_add_test(tc, hub_context_does_the_plain_call);
    tcase_add_test(tc, cached_read_completes_after_a_kill);
    tcase_add_test(tc, blocked_open_does_not_block_the_hub);
    tcase_add_test(tc, concurrent_cold_reads_overlap);
    tcase_add_test(tc, fork_child_makes_its_own_ring);
    tcase_add_test(tc, fork_fails_calls_in_flight_in_the_child);
}

static Suite *file_suite(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("threadpool");
    tcase_add_checked_fixture(tc, setup_threadpool, teardown);
    add_tests(tc);
    suite_add_tcase(s, tc);
    if (!RUNNING_ON_VALGRIND) {
        tc = tcase_create("io_uring");
        tcase_add_checked_fixture(tc, setup_uring, teardown);
        add_tests(tc);
        tcase_add_test(tc, io_uring_refused_falls_back_to_the_threadpool);
        suite_add_tcase(s, tc);
    }
    return s;
}

GREEN_TEST_MAIN(file_suite)
