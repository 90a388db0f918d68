/* The tutorial's select example: two greenlets each poll with
   select(0, NULL, NULL, NULL, 2 s) while a third does other work for
   1 s.  The waits overlap, so the whole run takes about 2 s, not 5 s. */
#include <green.h>
#include <stdio.h>
#include <sys/select.h>
#include <time.h>

static double start;

static double tic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 - start;
}

static void *poller(void *arg)
{
    (void)arg;
    printf("Started Polling: at %1.1f seconds\n", tic());
    struct timeval tv = {2, 0};
    if (green_select(0, NULL, NULL, NULL, &tv) < 0)
        perror("green_select");
    printf("Ended Polling: at %1.1f seconds\n", tic());
    return NULL;
}

static void *worker(void *arg)
{
    (void)arg;
    printf("Hey lets do some stuff while the greenlets poll, at %1.1f "
           "seconds\n", tic());
    green_sleep(1);
    return NULL;
}

int main(void)
{
    start = tic();
    green_t *gs[3] = {green_spawn(poller, NULL), green_spawn(poller, NULL),
                      green_spawn(worker, NULL)};
    for (int i = 0; i < 3; i++)
        if (!gs[i]) {
            perror("green_spawn");
            return 1;
        }
    if (green_joinall(gs, 3, -1) != 0) {
        perror("green_joinall");
        return 1;
    }
    for (int i = 0; i < 3; i++)
        green_release(gs[i]);
    green_shutdown();
    return 0;
}
