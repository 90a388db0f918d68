/* The tutorial's groups and pools: a group (a pool of size 0) tracks
   greenlets that take turns, and a pool of 2 bounds how many run at
   once. */
#include <green.h>
#include <stdint.h>
#include <stdio.h>

/* tutorial:begin group */
static void *talk(void *msg)
{
    for (int i = 0; i < 3; i++) {
        printf("%s\n", (char *)msg);
        green_yield(); /* the others talk too */
    }
    return NULL;
}

static int group_demo(void)
{
    green_pool_t *group = green_pool_new(0); /* 0: a group, no limit */
    const char *msgs[3] = {"bar", "foo", "fizz"};
    for (int i = 0; i < 3; i++) {
        green_t *g = green_pool_spawn(group, talk, (void *)msgs[i]);
        if (!g)
            return -1;
        green_release(g); /* the group keeps track of it */
    }
    int rc = green_pool_join(group, -1);
    green_pool_free(group);
    return rc;
}
/* tutorial:end */

/* tutorial:begin pool */
static green_pool_t *pool;

static void *hello_from(void *n)
{
    printf("%d: size of pool %zu\n", (int)(intptr_t)n,
           green_pool_running(pool));
    green_sleep(0.01);
    return n;
}

static int pool_demo(void)
{
    pool = green_pool_new(2); /* at most 2 at once */
    void *args[3] = {(void *)0, (void *)1, (void *)2};
    void *results[3];
    int rc = green_pool_map(pool, hello_from, args, results, 3);
    green_pool_free(pool);
    return rc;
}
/* tutorial:end */

int main(void)
{
    if (group_demo() != 0 || pool_demo() != 0) {
        perror("groups_pools");
        return 1;
    }
    return 0;
}
