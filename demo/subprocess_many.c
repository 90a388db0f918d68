/* Twenty commands at once (gevent.subprocess): each greenlet spawns
   `sh -c 'sleep 0.5; echo job N'` and collects its output with
   green_proc_communicate; the outputs are printed in order.  The whole
   run takes about one command's time, not twenty. */
#include <green.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOBS 20

struct job {
    int n;
    char *out;
    int status;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    char script[64];
    snprintf(script, sizeof script, "sleep 0.5; echo job %d", j->n);
    char *const argv[] = {"sh", "-c", script, NULL};
    green_proc_attr_t attr = {.stdout_mode = GREEN_PROC_PIPE};
    green_proc_t *p = green_proc_spawn("sh", argv, &attr);
    if (!p) {
        perror("green_proc_spawn");
        return NULL;
    }
    if (green_proc_communicate(p, NULL, 0, &j->out, NULL, NULL, NULL, 10) != 0)
        perror("green_proc_communicate");
    j->status = green_proc_status(p);
    green_proc_free(p);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void)
{
    struct job jobs[JOBS];
    green_t *g[JOBS];
    double t0 = now();
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (struct job){.n = i + 1, .out = NULL, .status = -1};
        g[i] = green_spawn(run_job, &jobs[i]);
    }
    green_joinall(g, JOBS, -1);
    int failed = 0;
    for (int i = 0; i < JOBS; i++) {
        printf("%s", jobs[i].out ? jobs[i].out : "(no output)\n");
        failed |= jobs[i].status != 0;
        free(jobs[i].out);
        green_release(g[i]);
    }
    printf("%d commands in %.2f s\n", JOBS, now() - t0);
    green_shutdown();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
