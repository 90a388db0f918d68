/* The tutorial's events: five waiters block on an Event until a setter
   sets it, then an AsyncResult carries a value from one greenlet to
   another. */
#include <green.h>
#include <stdint.h>
#include <stdio.h>

/* tutorial:begin event */
static green_event_t *evt;

static void *setter(void *arg)
{
    (void)arg;
    printf("A: Hey wait for me, I have to do something\n");
    green_sleep(0.1);
    printf("Ok, I'm done\n");
    green_event_set(evt); /* wakes every waiter */
    return NULL;
}

static void *waiter(void *arg)
{
    printf("%d: I'll wait for you\n", (int)(intptr_t)arg);
    green_event_wait(evt, -1);
    printf("%d: It's about time\n", (int)(intptr_t)arg);
    return NULL;
}
/* tutorial:end */

/* tutorial:begin async-result */
static green_result_t *a;

static void *result_setter(void *arg)
{
    (void)arg;
    green_sleep(0.1);
    green_result_set(a, "Hello!");
    return NULL;
}

static void *result_waiter(void *arg)
{
    (void)arg;
    void *value;
    if (green_result_get(a, -1, &value) == 0)
        printf("%s\n", (char *)value);
    return NULL;
}
/* tutorial:end */

/* Spawn n greenlets, join and release them. */
static int run_all(green_t **gs, int n)
{
    for (int i = 0; i < n; i++)
        if (!gs[i])
            return -1;
    int rc = green_joinall(gs, (size_t)n, -1);
    for (int i = 0; i < n; i++)
        green_release(gs[i]);
    return rc;
}

int main(void)
{
    evt = green_event_new();
    a = green_result_new();
    if (!evt || !a)
        return perror("new"), 1;
    green_t *gs[6] = {green_spawn(setter, NULL)};
    for (int i = 1; i < 6; i++)
        gs[i] = green_spawn(waiter, (void *)(intptr_t)i);
    green_t *rs[2] = {green_spawn(result_setter, NULL),
                      green_spawn(result_waiter, NULL)};
    if (run_all(gs, 6) != 0 || run_all(rs, 2) != 0)
        return perror("events"), 1;
    green_event_free(evt);
    green_result_free(a);
    return 0;
}
