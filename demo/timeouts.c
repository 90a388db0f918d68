/* The tutorial's timeouts: a green_timeout bounds every blocking call
   a greenlet makes (gevent.Timeout), and every blocking call also takes
   its own timeout (join(timeout=...)).  Both fail with ETIMEDOUT. */
#include <errno.h>
#include <green.h>
#include <stdio.h>

/* tutorial:begin timeout */
static void *wait_long(void *arg)
{
    (void)arg;
    /* Every blocking call below fails once 0.2 s have passed. */
    green_timeout_t *t = green_timeout_start(0.2);
    if (green_sleep(10) != 0 && errno == ETIMEDOUT)
        printf("Could not complete\n");
    green_timeout_cancel(t);
    return NULL;
}
/* tutorial:end */

/* tutorial:begin join-timeout */
static void *sleep_10(void *arg)
{
    (void)arg;
    green_sleep(10);
    return NULL;
}

static int join_with_timeout(void)
{
    green_t *g = green_spawn(sleep_10, NULL);
    if (!g)
        return -1;
    if (green_join(g, 0.1) != 0 && errno == ETIMEDOUT)
        printf("Thing expired after 0.1 s\n");
    green_kill(g, -1); /* its green_sleep returns ECANCELED */
    printf("killed: error %s\n", green_error(g) == ECANCELED ? "ECANCELED"
                                                             : "?");
    green_release(g);
    return 0;
}
/* tutorial:end */

int main(void)
{
    green_t *g = green_spawn(wait_long, NULL);
    if (!g || green_join(g, -1) != 0 || join_with_timeout() != 0) {
        perror("timeouts");
        return 1;
    }
    green_release(g);
    return 0;
}
