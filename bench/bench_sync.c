/* Synchronisation benchmarks; one "name value unit" line per figure:
     event_roundtrip      ns per set+wait round trip between two greenlets
     queue_put_get        ns per put+get pair on an unbounded queue (no switch)
     queue_pingpong       ns per item passed through a bounded queue of 1
                          between a producer and a consumer greenlet
     channel_handoff      ns per item through a rendezvous channel
     pool_spawn_join      greenlets/s spawned and finished through a pool of
                          100 (spawn waits while full, then a final join)
     pool10_spawn_join    the same through a pool of 10 (fewer stacks live
                          at once than the per-hub stack cache holds)
   BENCH_SCALE (default 1) multiplies the iteration counts. */
#include <green.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long scaled(long n)
{
    const char *s = getenv("BENCH_SCALE");
    double k = s ? atof(s) : 1;
    return k > 0 ? (long)(n * k) : n;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/******************************************************************************/

struct pingpong {
    green_event_t *ping, *pong;
    long n;
};

/* The responder: wait for ping, clear it, set pong. */
static void *event_responder(void *arg)
{
    struct pingpong *pp = arg;
    for (long i = 0; i < pp->n; i++) {
        if (green_event_wait(pp->ping, -1) != 0)
            die("green_event_wait");
        green_event_clear(pp->ping);
        green_event_set(pp->pong);
    }
    return NULL;
}

static void bench_event(void)
{
    struct pingpong pp = {green_event_new(), green_event_new(),
                          scaled(200000)};
    green_t *g = green_spawn(event_responder, &pp);
    if (!pp.ping || !pp.pong || !g)
        die("setup");
    double t0 = now();
    for (long i = 0; i < pp.n; i++) {
        green_event_set(pp.ping);
        if (green_event_wait(pp.pong, -1) != 0)
            die("green_event_wait");
        green_event_clear(pp.pong);
    }
    double dt = now() - t0;
    green_join(g, -1);
    green_release(g);
    green_event_free(pp.ping);
    green_event_free(pp.pong);
    printf("event_roundtrip %.1f ns\n", dt * 1e9 / (double)pp.n);
}

/******************************************************************************/

static void bench_queue_local(void)
{
    green_queue_t *q = green_queue_new(0);
    long n = scaled(2000000);
    void *v;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        green_queue_put(q, (void *)(intptr_t)i, -1);
        green_queue_get(q, &v, -1);
    }
    double dt = now() - t0;
    green_queue_free(q);
    printf("queue_put_get %.1f ns\n", dt * 1e9 / (double)n);
}

struct qconsumer {
    green_queue_t *q;
    long n;
};

static void *queue_consumer(void *arg)
{
    struct qconsumer *c = arg;
    void *v;
    for (long i = 0; i < c->n; i++)
        if (green_queue_get(c->q, &v, -1) != 0)
            die("green_queue_get");
    return NULL;
}

static void bench_queue_pair(const char *name, green_queue_t *q, long n)
{
    struct qconsumer c = {q, n};
    green_t *g = green_spawn(queue_consumer, &c);
    if (!q || !g)
        die("setup");
    double t0 = now();
    for (long i = 0; i < n; i++)
        if (green_queue_put(q, (void *)(intptr_t)i, -1) != 0)
            die("green_queue_put");
    green_join(g, -1);
    double dt = now() - t0;
    green_release(g);
    green_queue_free(q);
    printf("%s %.1f ns\n", name, dt * 1e9 / (double)n);
}

/******************************************************************************/

static void *trivial(void *arg)
{
    return arg;
}

static void bench_pool(const char *name, size_t size)
{
    green_pool_t *p = green_pool_new(size);
    long n = scaled(200000);
    if (!p)
        die("green_pool_new");
    double t0 = now();
    for (long i = 0; i < n; i++) {
        green_t *g = green_pool_spawn(p, trivial, NULL);
        if (!g)
            die("green_pool_spawn");
        green_release(g);
    }
    if (green_pool_join(p, -1) != 0)
        die("green_pool_join");
    double dt = now() - t0;
    green_pool_free(p);
    printf("%s %.0f greenlets/s\n", name, (double)n / dt);
}

int main(void)
{
    bench_event();
    bench_queue_local();
    bench_queue_pair("queue_pingpong", green_queue_new(1), scaled(500000));
    bench_queue_pair("channel_handoff", green_channel_new(), scaled(500000));
    bench_pool("pool_spawn_join", 100);
    bench_pool("pool10_spawn_join", 10);
    green_shutdown();
    return 0;
}
