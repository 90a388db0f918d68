/* The tutorial's first example: two greenlets hand control to each
   other explicitly with green_sleep(0). */
#include <green.h>
#include <stdio.h>

static void *foo(void *arg)
{
    (void)arg;
    printf("Running in foo\n");
    green_sleep(0);
    printf("Explicit context switch to foo again\n");
    return NULL;
}

static void *bar(void *arg)
{
    (void)arg;
    printf("Explicit context to bar\n");
    green_sleep(0);
    printf("Implicit context switch back to bar\n");
    return NULL;
}

int main(void)
{
    green_t *gs[2] = {green_spawn(foo, NULL), green_spawn(bar, NULL)};
    if (!gs[0] || !gs[1] || green_joinall(gs, 2, -1) != 0) {
        perror("context_switch");
        return 1;
    }
    green_release(gs[0]);
    green_release(gs[1]);
    return 0;
}
