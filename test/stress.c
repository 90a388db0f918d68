/* Seeded randomized stress test: rounds of thousands of greenlets doing
   random spawn, kill, sleep, timeout, queue and socketpair I/O.  After
   every round the invariants must hold: every waiter returned, nothing
   alive, no active watcher (green_run returns 0), open fds and memory
   mappings back to baseline, and no memory growth between rounds.

   usage: stress [seconds [seed]]   (default 20 s, seed from the clock) */
#include <errno.h>
#include <green.h>
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
        kills, puts, gets, io_bytes, eagain;
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

static void *worker(void *arg)
{
    (void)arg;
    stats.started++;
    int ops = 1 + (int)pick(20);
    for (int i = 0; i < ops; i++) {
        switch (pick(7)) {
        case 0: op_sleep(); break;
        case 1: op_yield(); break;
        case 2: op_spawn(); break;
        case 3: op_kill_other(); break;
        case 4: op_queue(); break;
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
           "%ld puts, %ld gets, %ld timeouts, %ld I/O bytes\n",
           rounds, stats.started, stats.finished, stats.killed,
           stats.canceled,
           stats.spawns, stats.kills, stats.sleeps, stats.yields,
           stats.puts, stats.gets, stats.timed_out, stats.io_bytes);
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
