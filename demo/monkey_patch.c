/* The tutorial's "useful evil": three greenlets each call the plain libc
   select(0, NULL, NULL, NULL, 1 s), as a blocking library would.  Before
   green_patch_all() every call blocks the whole thread, so the phase
   takes about 3 s; after it the same unmodified calls wait
   cooperatively and the phase takes about 1 s.

   Build: cc monkey_patch.c $(pkg-config --cflags --libs libgreen-patch) */
#include <green.h>
#include <stdio.h>
#include <sys/select.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Knows nothing about greenlets: a blocking 1 s wait. */
static void *blocking_wait(void *arg)
{
    (void)arg;
    struct timeval tv = {1, 0};
    if (select(0, NULL, NULL, NULL, &tv) != 0)
        perror("select");
    return NULL;
}

/* Three greenlets, each waiting 1 s; returns the elapsed time. */
static double phase(void)
{
    green_t *g[3];
    double t0 = now();
    for (int i = 0; i < 3; i++)
        if (!(g[i] = green_spawn(blocking_wait, NULL))) {
            perror("green_spawn");
            return -1;
        }
    if (green_joinall(g, 3, -1) != 0) {
        perror("green_joinall");
        return -1;
    }
    for (int i = 0; i < 3; i++)
        green_release(g[i]);
    return now() - t0;
}

int main(void)
{
    printf("green_patch_active() = %d\n", green_patch_active());
    double before = phase();
    printf("before green_patch_all: 3 x select(1 s) took %.2f s\n", before);

    if (green_patch_all() != 0) {
        perror("green_patch_all");
        return 1;
    }
    printf("green_patch_active() = %d\n", green_patch_active());
    double after = phase();
    printf("after green_patch_all: 3 x select(1 s) took %.2f s\n", after);
    green_shutdown();
    return before < 0 || after < 0;
}
