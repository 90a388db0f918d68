/* The tutorial's deterministic pool: imap_unordered of an echo function
   that sleeps 1 ms, over 0..9 on a pool of 10, four times.  Waiters and
   timers are served in FIFO order, so every run yields the same
   completion order and the program prints "true" (a process pool would
   print "false"). */
#include <errno.h>
#include <green.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define N 10
#define RUNS 4

static void *echo(void *arg)
{
    green_sleep(0.001);
    return arg;
}

/* One run: the results of imap_unordered, in the order they came. */
static int run(green_pool_t *pool, intptr_t out[N])
{
    void *args[N];
    for (intptr_t i = 0; i < N; i++)
        args[i] = (void *)i;
    green_imap_t *it = green_pool_imap_unordered(pool, echo, args, N);
    if (!it)
        return -1;
    size_t k = 0;
    void *v;
    while (green_imap_next(it, &v) == 0 && k < N)
        out[k++] = (intptr_t)v;
    int ok = errno == ENOENT && k == N;
    green_imap_free(it);
    return ok ? 0 : -1;
}

int main(void)
{
    green_pool_t *pool = green_pool_new(10);
    if (!pool) {
        perror("green_pool_new");
        return 1;
    }
    intptr_t runs[RUNS][N];
    for (int r = 0; r < RUNS; r++) {
        if (run(pool, runs[r]) != 0) {
            perror("imap_unordered");
            return 1;
        }
    }
    int same = 1;
    for (int r = 1; r < RUNS; r++)
        same &= memcmp(runs[0], runs[r], sizeof runs[0]) == 0;
    printf("%s\n", same ? "true" : "false");
    green_pool_free(pool);
    green_shutdown();
    return 0;
}
