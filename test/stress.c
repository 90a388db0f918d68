/* Seeded randomized stress test: rounds of thousands of greenlets doing
   random spawn, kill, sleep, timeout, queue and socketpair I/O, plus the
   races outside testers found: a lock freed under a condition waiter,
   and green_poll racing green_close and the reuse of the fd number.  After
   every round the invariants must hold: every waiter returned, nothing
   alive, no active watcher (green_run returns 0), open fds and memory
   mappings back to baseline, and no memory growth between rounds.

   usage: stress [seconds [seed]]   (default 20 s, seed from the clock;
   make check runs 3 s through test/stress.sh, make stress the long run) */
#include <errno.h>
#include <green.h>
#include <poll.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"

#define WORKERS 2000
#define PAIRS 16

static uint64_t rng_state;

/* xorshift64*: deterministic for a seed. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static void fail(const char *what)
{
    fprintf(stderr, "stress: FAILED: %s (seed %" PRIu64 ")\n", what,
            rng_state);
    exit(1);
}

/* What happened, for the summary and for the invariants. */
static struct {
    long started, finished, killed, canceled, timed_out, sleeps, yields, spawns,
        kills, puts, gets, io_bytes, eagain, lock_frees, poll_reuses;
} stats;

static green_queue_t *queue;
static int pairs[PAIRS][2];
static green_t *workers[WORKERS];
static int nworkers;
static int round_running;

static void *child(void *arg)
{
    green_sleep((double)(uintptr_t)arg * 1e-4);
    return arg;
}

static void op_sleep(void)
{
    stats.sleeps++;
    if (green_sleep(pick(4) * 1e-3) == -1 && errno == ECANCELED)
        stats.canceled++;
}

static void op_yield(void)
{
    stats.yields++;
    green_yield();
}

static void op_spawn(void)
{
    green_t *c = green_spawn(child, (void *)(uintptr_t)pick(20));
    if (!c)
        fail("spawn");
    stats.spawns++;
    if (pick(2)) {
        if (green_kill(c, -1) != 0 && errno != ECANCELED)
            fail("kill child");
    } else if (green_join(c, 0.05) != 0) {
        if (errno == ETIMEDOUT || errno == ECANCELED)
            green_kill(c, 0);
        else
            fail("join child");
    }
    green_release(c);
}

static void op_kill_other(void)
{
    green_t *victim = workers[pick((unsigned)nworkers)];
    if (victim && victim != green_current() && !green_done(victim)) {
        stats.kills++;
        green_kill(victim, 0);
    }
}

static void op_queue(void)
{
    green_timeout_t *t = green_timeout_start(pick(3) * 1e-3);
    if (pick(2)) {
        if (green_queue_put(queue, (void *)1, -1) == 0)
            stats.puts++;
        else if (errno == ETIMEDOUT)
            stats.timed_out++;
    } else {
        void *item;
        if (green_queue_get(queue, &item, -1) == 0)
            stats.gets++;
        else if (errno == ETIMEDOUT)
            stats.timed_out++;
    }
    green_timeout_cancel(t);
}

static void op_io(void)
{
    int *p = pairs[pick(PAIRS)];
    char buf[64];
    size_t n = 1 + pick(sizeof buf - 1);
    memset(buf, 'x', n);
    int side = (int)pick(2);
    if (pick(2)) {
        ssize_t w = green_write(p[side], buf, n);
        if (w > 0)
            stats.io_bytes += w;
        return;
    }
    green_timeout_t *t = green_timeout_start(pick(5) * 1e-3);
    ssize_t r = green_read(p[side], buf, sizeof buf);
    if (r > 0)
        stats.io_bytes += r;
    else if (r < 0 && errno == ETIMEDOUT)
        stats.timed_out++;
    green_timeout_cancel(t);
}

/* A condition waiter whose lock is freed (nobody holds it) while it
   waits: the wait fails with EBADF (or timed out or was killed first),
   and the freed lock is never touched (ASan).  The case lives on the
   heap and a link on the waiter frees it: a killed op cannot wait for
   its waiter, and a waiter killed before it started never runs. */
struct cond_case {
    green_cond_t *c;
    green_lock_t *l;  /* NULL once the op freed it */
    int waiting;      /* the waiter holds the lock or waits on c */
};

static void cond_case_done(green_t *g, void *arg)
{
    (void)g;
    struct cond_case *k = arg;
    green_lock_free(k->l);
    green_cond_free(k->c);
    free(k);
}

static void *cond_waiter(void *arg)
{
    struct cond_case *k = arg;
    if (green_lock_acquire(k->l, -1) != 0)
        return NULL;
    k->waiting = 1;
    int rc = green_cond_wait(k->c, k->l, pick(3) * 1e-3 + 1e-3);
    int err = errno;
    k->waiting = 0;
    if (rc == -1 && err == EBADF) {
        if (k->l)
            fail("cond wait: EBADF but the lock exists");
        return NULL;
    }
    if (rc == -1 && err != ETIMEDOUT && err != ECANCELED)
        fail("cond wait");
    if (!k->l)
        fail("cond wait: the lock is held but was freed");
    green_lock_release(k->l);
    return NULL;
}

static void op_free_lock_under_cond(void)
{
    struct cond_case *k = malloc(sizeof *k);
    if (!k)
        fail("malloc");
    *k = (struct cond_case){green_cond_new(), green_lock_new(0), 0};
    green_t *w = green_spawn(cond_waiter, k);
    if (!k->c || !k->l || !w || green_link(w, cond_case_done, k) != 0)
        fail("cond case setup");
    green_yield(); /* w waits, the lock released */
    if (pick(2))
        green_cond_signal(k->c);
    if (k->waiting) {
        green_lock_free(k->l);
        k->l = NULL;
        stats.lock_frees++;
    }
    green_release(w);
}

/* green_poll on fd A while another greenlet green_closes A and a new
   socket takes number A with data in it: the poller must see POLLNVAL,
   never the new socket's readiness.  Freed by a link on the poller. */
struct poll_case {
    int fd;
    int started;      /* the poller called green_poll (and so parked or
                         returned before anyone else ran) */
    int reused;       /* the fd's number now names another socket */
    int closer[2];    /* the new socket pair */
};

static void poll_case_done(green_t *g, void *arg)
{
    (void)g;
    struct poll_case *k = arg;
    green_close(k->closer[0]);
    green_close(k->closer[1]);
    free(k);
}

static void *poller(void *arg)
{
    struct poll_case *k = arg;
    struct pollfd p = {k->fd, POLLIN, 0};
    k->started = 1;
    int rc = green_poll(&p, 1, 50);
    if (k->reused && rc > 0 && (p.revents & POLLIN))
        fail("poll reported a reused fd number ready");
    return NULL;
}

static void op_poll_close_reuse(void)
{
    int a[2], b[2];
    struct poll_case *k = malloc(sizeof *k);
    if (!k || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a))
        fail("socketpair");
    *k = (struct poll_case){a[0], 0, 0, {-1, -1}};
    green_t *p = green_spawn(poller, k);
    if (!p || green_link(p, poll_case_done, k) != 0)
        fail("poll case setup");
    green_yield(); /* the poller waits on a[0] */
    green_close(a[0]);
    green_close(a[1]);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b))
        fail("socketpair");
    /* A poll that starts after the number was reused polls the new
       socket, rightly: only a poller already waiting must see POLLNVAL
       (our yield fails at once if this worker was killed). */
    k->reused = k->started && (b[0] == k->fd || b[1] == k->fd);
    k->closer[0] = b[0];
    k->closer[1] = b[1];
    if (green_write(b[0] == k->fd ? b[1] : b[0], "x", 1) != 1)
        fail("write");
    stats.poll_reuses += k->reused;
    green_release(p);
}

static void *worker(void *arg)
{
    (void)arg;
    stats.started++;
    int ops = 1 + (int)pick(20);
    for (int i = 0; i < ops; i++) {
        switch (pick(9)) {
        case 0: op_sleep(); break;
        case 1: op_yield(); break;
        case 2: op_spawn(); break;
        case 3: op_kill_other(); break;
        case 4: op_queue(); break;
        case 5: if (!pick(8)) op_free_lock_under_cond(); break;
        case 6: if (!pick(8)) op_poll_close_reuse(); break;
        default: op_io(); break;
        }
    }
    return NULL;
}

static void on_finished(green_t *g, void *arg)
{
    (void)arg;
    stats.finished++;
    if (green_error(g) == ECANCELED)
        stats.killed++;
}

static void one_round(void)
{
    queue = green_queue_new(1 + pick(64));
    for (int i = 0; i < PAIRS; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]))
            fail("socketpair");
    nworkers = 200 + (int)pick(WORKERS - 200);
    long started_before = stats.finished;
    round_running = 1;
    for (int i = 0; i < nworkers; i++) {
        workers[i] = green_spawn(worker, NULL);
        if (!workers[i] || green_link(workers[i], on_finished, NULL))
            fail("spawn worker");
    }
    /* Let them run a while, then cancel whatever is left. */
    green_sleep(pick(50) * 1e-3);
    if (green_killall(workers, (size_t)nworkers, 5) != 0)
        fail("killall did not finish every worker");
    for (int i = 0; i < nworkers; i++) {
        if (!green_done(workers[i]))
            fail("worker alive after killall");
        green_release(workers[i]);
        workers[i] = NULL;
    }
    round_running = 0;
    /* Links have run, nothing is alive, no watcher is left active. */
    if (green_run() != 0)
        fail("green_run after a round");
    if (stats.finished - started_before != nworkers)
        fail("a worker's link did not run exactly once");
    void *item;
    while (green_queue_get(queue, &item, 0) == 0)
        ;
    green_queue_free(queue);
    for (int i = 0; i < PAIRS; i++) {
        green_close(pairs[i][0]);
        green_close(pairs[i][1]);
    }
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 20;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0)
                             : (uint64_t)time(NULL) * 2654435761u;
    if (!seed)
        seed = 1;
    rng_state = seed;
    printf("stress: seed %" PRIu64 ", %.0f s\n", seed, seconds);
    fflush(stdout);

    int fds0 = test_fd_count();
    one_round(); /* warm-up: hub, stack cache, libev structures */
    green_shutdown();
    int maps0 = test_map_count();
    long rss1 = 0;
    double end = test_now() + seconds;
    int rounds = 0;
    do {
        one_round();
        rounds++;
        if (rounds == 2)
            rss1 = test_rss_kib();
    } while (test_now() < end);
    green_shutdown();

    int fds = test_fd_count(), maps = test_map_count();
    long rss = test_rss_kib();
    printf("stress: %d rounds, %ld greenlets started, %ld finished "
           "(%ld killed), %ld calls canceled, %ld spawns, %ld kills, %ld sleeps, %ld yields, "
           "%ld puts, %ld gets, %ld timeouts, %ld I/O bytes, %ld locks freed "
           "under a cond wait, %ld polls raced by close+reuse\n",
           rounds, stats.started, stats.finished, stats.killed,
           stats.canceled,
           stats.spawns, stats.kills, stats.sleeps, stats.yields,
           stats.puts, stats.gets, stats.timed_out, stats.io_bytes,
           stats.lock_frees, stats.poll_reuses);
    printf("stress: fds %d -> %d, maps %d -> %d, rss %ld -> %ld KiB\n", fds0,
           fds, maps0, maps, rss1, rss);
    if (fds != fds0)
        fail("fd leak");
    /* ASan's allocator and Valgrind (GREEN_TEST_SLOW) map and unmap
       regions of their own as they go. */
    if (maps >
        maps0 + (GREEN_TEST_SANITIZED || getenv("GREEN_TEST_SLOW") ? 64 : 8))
        fail("mapping leak (stacks not returned)");
    if (rss1 && rss > rss1 + 16 * 1024 && !GREEN_TEST_SANITIZED &&
        !getenv("GREEN_TEST_SLOW"))
        fail("memory grew between rounds");
    printf("stress: OK\n");
    return 0;
}
