/* The tutorial's non-deterministic task example: ten tasks each sleeping
   a random 0-20 ms, first one after another, then all at once.  The
   asynchronous phase takes about the longest single sleep, not the sum. */
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

static void *task(void *arg)
{
    int pid = (int)(intptr_t)arg;
    green_sleep((rand() % 3) * 0.01);
    printf("Task %d done\n", pid);
    return NULL;
}

int main(void)
{
    srand((unsigned)time(NULL));
    printf("Synchronous:\n");
    double t0 = now();
    for (int i = 1; i < 10; i++)
        task((void *)(intptr_t)i);
    double sync_s = now() - t0;

    printf("Asynchronous:\n");
    green_t *threads[10];
    t0 = now();
    for (int i = 0; i < 10; i++) {
        threads[i] = green_spawn(task, (void *)(intptr_t)i);
        if (!threads[i]) {
            perror("green_spawn");
            return 1;
        }
    }
    if (green_joinall(threads, 10, -1) != 0) {
        perror("green_joinall");
        return 1;
    }
    double async_s = now() - t0;
    for (int i = 0; i < 10; i++)
        green_release(threads[i]);
    printf("synchronous phase: %.3f s\n", sync_s);
    printf("asynchronous phase: %.3f s\n", async_s);
    return 0;
}
