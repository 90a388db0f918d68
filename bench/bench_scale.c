/* Scale: N greenlets alive at once, each on a fresh stack, asleep.
   Prints ns per spawn (green_spawn alone, and until every greenlet ran
   and parked), ns per kill+join+release, resident bytes and mappings
   per greenlet, and beside them the bare cost of one guarded stack made
   by hand the way a naive runtime would: mmap + guard (+ touching its
   top page, as a greenlet's first run does) + munmap, with as many
   alive at once; and the kernel's own cost of the one page each fresh
   stack needs (that difference, and its floor: pages filled in one
   batched call and freed in one munmap).  One "name value unit" line per figure.

   bench/bench_scale [N]     N defaults to 100000 (make bench); the
                             issue's figure is N = 1000000. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <green.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long statm(int field)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long v[2] = {0, 0};
    if (f) {
        if (fscanf(f, "%ld %ld", &v[0], &v[1]) != 2)
            v[0] = v[1] = 0;
        fclose(f);
    }
    return v[field] * sysconf(_SC_PAGESIZE);
}

static long maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (!f)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void *sleeper(void *arg)
{
    (void)arg;
    green_sleep(3600);
    return NULL;
}

/* The bare cost, n stacks of `size` usable bytes alive at once: map
   each with its own mmap and guard page, optionally touch its top
   page, then unmap them all.  Returns ns per stack for the map+guard
   part in *map_ns and for munmap in *unmap_ns. */
static int bare(size_t n, size_t size, int touch, double *map_ns,
                double *unmap_ns)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t total = size + page;
    char **m = malloc(n * sizeof *m);
    if (!m)
        return -1;
    int use_madvise = 1;
    size_t made = 0;
    double t0 = now();
    for (; made < n; made++) {
        char *p = mmap(NULL, total, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED)
            break;
        if (use_madvise && madvise(p, page, MADV_GUARD_INSTALL) != 0)
            use_madvise = 0;
        if (!use_madvise && mprotect(p, page, PROT_NONE) != 0) {
            munmap(p, total);
            break;
        }
        if (touch)
            p[total - 64] = 1;
        m[made] = p;
    }
    double t1 = now();
    for (size_t i = 0; i < made; i++)
        munmap(m[i], total);
    double t2 = now();
    free(m);
    if (made < n) {
        fprintf(stderr, "bench_scale: bare stopped at %zu stacks\n", made);
        return -1;
    }
    *map_ns = (t1 - t0) * 1e9 / (double)n;
    *unmap_ns = (t2 - t1) * 1e9 / (double)n;
    return 0;
}

/* The kernel's least cost for the one page each fresh stack needs:
   n pages of one mapping filled by a single MADV_POPULATE_WRITE (no
   fault, no per-page call) and freed by one munmap.  ns per page, or
   -1 where the kernel lacks MADV_POPULATE_WRITE (Linux < 5.14). */
static double page_floor(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    double t0 = now();
    int ok = madvise(p, n * page, MADV_POPULATE_WRITE) == 0;
    munmap(p, n * page);
    return ok ? (now() - t0) * 1e9 / (double)n : -1;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    if (n == 0) {
        fprintf(stderr, "usage: bench_scale [count]\n");
        return 2;
    }
    green_t **g = calloc(n, sizeof *g);
    if (!g)
        return 1;
    /* The bare baseline runs before and after the greenlets, and each
       figure is compared with the mean of the two: a VM's first touch
       of memory its host has not backed (or took back) costs several
       times a later one, so whichever runs first would pay more. */
    size_t size = 256 * 1024; /* the greenlets' default stack size */
    if (getenv("GREEN_STACK_SIZE"))
        fprintf(stderr, "bench_scale: bare stacks stay 256 KiB\n");
    double bm0, bu0, tm0, tu0;
    if (bare(n, size, 0, &bm0, &bu0) != 0 ||
        bare(n, size, 1, &tm0, &tu0) != 0)
        return 1;
    green_yield(); /* the hub exists: its own stack is not counted */
    long rss0 = statm(1), maps0 = maps();

    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        g[i] = green_spawn(sleeper, NULL);
        if (!g[i]) {
            fprintf(stderr, "bench_scale: spawn %zu: %s\n", i,
                    strerror(errno));
            return 1;
        }
    }
    double t1 = now();
    green_yield(); /* every one runs on its fresh stack and parks */
    double t2 = now();
    long rss1 = statm(1), maps1 = maps();
    /* green_killall(g, n, -1) in its three steps, timed apart: cancel
       every one, let each run to its end (one yield: all are queued
       ahead of main), join them; then the releases. */
    double k0 = now();
    if (green_killall(g, n, 0) != 0) {
        perror("green_killall");
        return 1;
    }
    double k1 = now();
    green_yield();
    double k2 = now();
    if (green_joinall(g, n, -1) != 0) {
        perror("green_joinall");
        return 1;
    }
    double k3 = now();
    for (size_t i = 0; i < n; i++)
        green_release(g[i]);
    double t3 = now();
    long maps2 = maps();
    free(g);
    green_shutdown();

    double bm1, bu1, tm1, tu1;
    if (bare(n, size, 0, &bm1, &bu1) != 0 ||
        bare(n, size, 1, &tm1, &tu1) != 0)
        return 1;
    double bm = (bm0 + bm1) / 2, bu = (bu0 + bu1) / 2;
    double tm = (tm0 + tm1) / 2, tu = (tu0 + tu1) / 2;

    double spawn = (t1 - t0) * 1e9 / (double)n;
    double spawn_run = (t2 - t0) * 1e9 / (double)n;
    double kill = (t3 - k0) * 1e9 / (double)n;
    printf("scale_greenlets %zu count\n", n);
    printf("scale_spawn %.0f ns\n", spawn);
    printf("scale_spawn_until_parked %.0f ns\n", spawn_run);
    printf("scale_kill_join_release %.0f ns\n", kill);
    printf("scale_teardown_cancel %.0f ns\n", (k1 - k0) * 1e9 / (double)n);
    printf("scale_teardown_run_to_end %.0f ns\n", (k2 - k1) * 1e9 / (double)n);
    printf("scale_teardown_join %.0f ns\n", (k3 - k2) * 1e9 / (double)n);
    printf("scale_teardown_release %.0f ns\n", (t3 - k3) * 1e9 / (double)n);
    printf("scale_rss_per_greenlet %.0f bytes\n",
           (double)(rss1 - rss0) / (double)n);
    printf("scale_mappings_alive %ld count\n", maps1);
    printf("scale_mappings_added %ld count\n", maps1 - maps0);
    printf("scale_mappings_after_release %ld count\n", maps2);
    printf("bare_mmap_guard %.0f ns\n", bm);
    printf("bare_munmap %.0f ns\n", bu);
    printf("bare_mmap_guard_munmap %.0f ns\n", bm + bu);
    printf("bare_mmap_guard_touch_munmap %.0f ns\n", tm + tu);
    printf("bare_mmap_guard_munmap_before %.0f ns\n", bm0 + bu0);
    printf("bare_mmap_guard_munmap_after %.0f ns\n", bm1 + bu1);
    printf("bare_mmap_guard_touch_munmap_before %.0f ns\n", tm0 + tu0);
    printf("bare_mmap_guard_touch_munmap_after %.0f ns\n", tm1 + tu1);
    /* What the kernel alone charges for the one page every greenlet on
       a fresh stack touches: filled by a fault and freed (the touching
       baseline's extra), and at least (one batched fill, one munmap).
       No runtime can spawn and tear down a fresh stack below the
       latter. */
    double page = (tm + tu) - (bm + bu), floor = page_floor(n);
    printf("bare_page_fault_free %.0f ns\n", page);
    printf("kernel_page_fill_free_floor %.0f ns\n", floor);
    printf("kernel_floor_over_bare %.3f ratio\n", floor / (bm + bu));
    printf("spawn_until_parked_over_bare %.3f ratio\n",
           spawn_run / (bm + bu));
    printf("kill_join_over_bare %.3f ratio\n", kill / (bm + bu));
    printf("spawn_until_parked_over_bare_touch %.3f ratio\n",
           spawn_run / (tm + tu));
    printf("kill_join_over_bare_touch %.3f ratio\n", kill / (tm + tu));
    return 0;
}
