/* Shared by the benches: the monotonic clock and libgreen's own yield
   ping-pong (two greenlets yielding to each other), in ns per switch. */
#ifndef GREEN_BENCH_PINGPONG_H
#define GREEN_BENCH_PINGPONG_H

#include <green.h>
#include <stdint.h>
#include <time.h>

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *pingpong(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++)
        green_yield();
    return NULL;
}

/* ns per green_yield switch over `switches` switches. */
static inline double green_pingpong_ns(long switches)
{
    green_t *a = green_spawn(pingpong, (void *)(intptr_t)(switches / 2));
    green_t *b = green_spawn(pingpong, (void *)(intptr_t)(switches / 2));
    green_t *both[2] = {a, b};
    double t0 = now();
    green_joinall(both, 2, -1);
    double el = now() - t0;
    green_release(a);
    green_release(b);
    return el * 1e9 / (double)switches;
}

#endif
