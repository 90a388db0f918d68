/* libgreen beside a peer and a floor, measured in the same run:
   State Threads (libst-dev) create+join, cond ping-pong and resident
   memory per idle thread, each printed next to libgreen's
   spawn+join+release, green_yield ping-pong and idle greenlet; and a
   bare asm switch ping-pong (bare_switch.h) next to green_yield.  Built
   by configure only when State Threads is installed; a bench, never a
   test dependency.  One "name value unit" line per figure. */
#include <green.h>
#include <st.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bare_switch.h"
#include "green_pingpong.h"

#define SWITCHES 1000000
#define SPAWNS 200000
#define IDLE 10000

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * sysconf(_SC_PAGESIZE);
}

/******************************************************************************/
/*  State Threads                                                             */
/******************************************************************************/

static void *st_empty(void *arg)
{
    return arg;
}

static double st_create_join(void)
{
    for (int i = 0; i < 1000; i++) { /* warm its stack cache */
        st_thread_t t = st_thread_create(st_empty, NULL, 1, 0);
        st_thread_join(t, NULL);
    }
    double t0 = now();
    for (int i = 0; i < SPAWNS; i++) {
        st_thread_t t = st_thread_create(st_empty, NULL, 1, 0);
        st_thread_join(t, NULL);
    }
    return (now() - t0) * 1e9 / SPAWNS;
}

/* Two threads handing a turn back and forth through two conds. */
static st_cond_t st_ping, st_pong;
static volatile int st_turn;

static void *st_ponger(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        while (st_turn != 1)
            st_cond_wait(st_ping);
        st_turn = 0;
        st_cond_signal(st_pong);
    }
    return NULL;
}

static double st_cond_pingpong(void)
{
    long rounds = SWITCHES / 2;
    st_ping = st_cond_new();
    st_pong = st_cond_new();
    st_thread_t t =
        st_thread_create(st_ponger, (void *)(intptr_t)rounds, 1, 0);
    st_usleep(0); /* let it wait first */
    double t0 = now();
    for (long i = 0; i < rounds; i++) {
        st_turn = 1;
        st_cond_signal(st_ping);
        while (st_turn != 0)
            st_cond_wait(st_pong);
    }
    double el = now() - t0;
    st_thread_join(t, NULL);
    st_cond_destroy(st_ping);
    st_cond_destroy(st_pong);
    return el * 1e9 / SWITCHES;
}

static void *st_idle(void *arg)
{
    (void)arg;
    st_usleep((st_utime_t)3600 * 1000000);
    return NULL;
}

static double st_idle_rss(void)
{
    static st_thread_t t[IDLE];
    st_usleep(0);
    long before = rss_bytes();
    for (int i = 0; i < IDLE; i++)
        t[i] = st_thread_create(st_idle, NULL, 1, 0);
    st_usleep(0); /* every one runs and sleeps */
    long after = rss_bytes();
    for (int i = 0; i < IDLE; i++)
        st_thread_interrupt(t[i]);
    for (int i = 0; i < IDLE; i++)
        st_thread_join(t[i], NULL);
    return (double)(after - before) / IDLE;
}

/******************************************************************************/
/*  libgreen and the bare switch                                              */
/******************************************************************************/

static double green_pingpong(void)
{
    return green_pingpong_ns(SWITCHES);
}

static void *empty(void *arg)
{
    return arg;
}

static double green_spawn_join(void)
{
    for (int i = 0; i < 1000; i++) {
        green_t *g = green_spawn(empty, NULL);
        green_join(g, -1);
        green_release(g);
    }
    double t0 = now();
    for (int i = 0; i < SPAWNS; i++) {
        green_t *g = green_spawn(empty, NULL);
        green_join(g, -1);
        green_release(g);
    }
    return (now() - t0) * 1e9 / SPAWNS;
}

static void *idle(void *arg)
{
    (void)arg;
    green_sleep(3600);
    return NULL;
}

static double green_idle_rss(void)
{
    static green_t *g[IDLE];
    green_yield();
    long before = rss_bytes();
    for (int i = 0; i < IDLE; i++)
        g[i] = green_spawn(idle, NULL);
    green_yield();
    long after = rss_bytes();
    green_killall(g, IDLE, -1);
    for (int i = 0; i < IDLE; i++)
        green_release(g[i]);
    return (double)(after - before) / IDLE;
}

#ifdef BARE_SWITCH
static void *bare_main_sp, *bare_other_sp;

static void bare_other(void)
{
    for (;;)
        bench_bare_switch(&bare_other_sp, bare_main_sp);
}

static double bare_pingpong(void)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    bare_other_sp = bench_bare_make(stack, sizeof stack, bare_other);
    long left = SWITCHES / 2;
    double t0 = now();
    while (left-- > 0) /* two switches per round */
        bench_bare_switch(&bare_main_sp, bare_other_sp);
    return (now() - t0) * 1e9 / SWITCHES;
}
#endif

int main(void)
{
    if (st_init() != 0) {
        perror("st_init");
        return 1;
    }
    /* Each pair in one run: the peer or floor, then libgreen. */
    double st_spawn = st_create_join();
    double gr_spawn = green_spawn_join();
    double st_switch = st_cond_pingpong();
#ifdef BARE_SWITCH
    double bare = bare_pingpong();
#endif
    double gr_switch = green_pingpong();
    double st_rss = st_idle_rss();
    double gr_rss = green_idle_rss();

    printf("st_create_join %.1f ns\n", st_spawn);
    printf("green_spawn_join_release %.1f ns\n", gr_spawn);
    printf("spawn_over_st %.2f ratio\n", gr_spawn / st_spawn);
    printf("st_cond_pingpong_switch %.1f ns\n", st_switch);
#ifdef BARE_SWITCH
    printf("bare_asm_switch %.1f ns\n", bare);
#endif
    printf("green_yield_switch %.1f ns\n", gr_switch);
#ifdef BARE_SWITCH
    printf("yield_over_bare_asm_switch %.2f ratio\n", gr_switch / bare);
#endif
    printf("st_idle_thread_rss %.0f bytes\n", st_rss);
    printf("idle_greenlet_rss %.0f bytes\n", gr_rss);
    green_shutdown();
    return 0;
}
