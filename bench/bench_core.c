/* Core figures: switch cost (green_yield beside two same-run floors: a
   bare swapcontext pair and a bare asm switch ping-pong saving what the
   asm backend saves), spawn+join+release cost, resident memory per idle
   greenlet.  Prints one "name value unit" line per figure. */
#include <green.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "bare_switch.h"
#include "green_pingpong.h"

#define YIELDS 1000000
#define SPAWNS 200000
#define IDLE 10000

static double bench_yield(void)
{
    return green_pingpong_ns(YIELDS);
}

static ucontext_t uc_main, uc_other;
static long bare_left;

static void bare_other(void)
{
    for (;;)
        swapcontext(&uc_other, &uc_main);
}

static double bench_swapcontext(void)
{
    static char stack[64 * 1024];
    getcontext(&uc_other);
    uc_other.uc_stack.ss_sp = stack;
    uc_other.uc_stack.ss_size = sizeof stack;
    uc_other.uc_link = NULL;
    makecontext(&uc_other, bare_other, 0);
    bare_left = YIELDS / 2;
    double t0 = now();
    while (bare_left-- > 0)
        swapcontext(&uc_main, &uc_other); /* two switches per round */
    return (now() - t0) * 1e9 / YIELDS;
}

#ifdef BARE_SWITCH
static void *bare_main_sp, *bare_other_sp;

static void bare_asm_other(void)
{
    for (;;)
        bench_bare_switch(&bare_other_sp, bare_main_sp);
}

static double bench_bare_asm(void)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    bare_other_sp = bench_bare_make(stack, sizeof stack, bare_asm_other);
    long left = YIELDS / 2;
    double t0 = now();
    while (left-- > 0) /* two switches per round */
        bench_bare_switch(&bare_main_sp, bare_other_sp);
    return (now() - t0) * 1e9 / YIELDS;
}
#endif

static void *empty(void *arg)
{
    return arg;
}

static double bench_spawn(void)
{
    for (int i = 0; i < 1000; i++) { /* warm the stack cache */
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

static void *idle(void *arg)
{
    (void)arg;
    green_sleep(3600);
    return NULL;
}

static double bench_idle_rss(void)
{
    static green_t *g[IDLE];
    green_yield();
    long before = rss_bytes();
    for (int i = 0; i < IDLE; i++)
        g[i] = green_spawn(idle, NULL);
    green_yield(); /* every one runs and parks in its sleep */
    long after = rss_bytes();
    green_killall(g, IDLE, -1);
    for (int i = 0; i < IDLE; i++)
        green_release(g[i]);
    return (double)(after - before) / IDLE;
}

#define GETS 10000000

/* green_getspecific on a set key, from a spawned greenlet. */
static void *gets(void *arg)
{
    green_key_t key = *(green_key_t *)arg;
    green_setspecific(key, arg);
    uintptr_t sum = 0;
    double t0 = now();
    for (long i = 0; i < GETS; i++) {
        sum += (uintptr_t)green_getspecific(key);
        __asm__ volatile("" : "+r"(sum));
    }
    double *ns = malloc(sizeof *ns);
    if (ns)
        *ns = (now() - t0) * 1e9 / GETS;
    return ns;
}

static double bench_getspecific(void)
{
    green_key_t key;
    if (green_key_create(&key, NULL) != 0)
        return -1;
    green_t *g = green_spawn(gets, &key);
    green_join(g, -1);
    double *ns = green_value(g);
    double r = ns ? *ns : -1;
    free(ns);
    green_release(g);
    green_key_delete(key);
    return r;
}

int main(void)
{
    double swap = bench_swapcontext();
#ifdef BARE_SWITCH
    double bare = bench_bare_asm();
#endif
    double yield = bench_yield();
    printf("swapcontext_switch %.1f ns\n", swap);
#ifdef BARE_SWITCH
    printf("bare_asm_switch %.1f ns\n", bare);
#endif
    printf("green_yield_switch %.1f ns\n", yield);
    printf("yield_over_swapcontext %.2f ratio\n", yield / swap);
#ifdef BARE_SWITCH
    printf("yield_over_bare_asm_switch %.2f ratio\n", yield / bare);
#endif
    printf("spawn_join_release %.1f ns\n", bench_spawn());
    printf("idle_greenlet_rss %.0f bytes\n", bench_idle_rss());
    printf("green_getspecific %.2f ns\n", bench_getspecific());
    green_shutdown();
    return 0;
}
