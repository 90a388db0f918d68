/* The tutorial's MyGreenlet: a greenlet with its own state and run
   function.  In C the "subclass" is a struct whose first member is the
   state the run function needs, created with green_new and started
   explicitly. */
#include <green.h>
#include <stdio.h>

struct my_greenlet {
    const char *message;
    double n;
    green_t *g;
};

static void *my_greenlet_run(void *self)
{
    struct my_greenlet *me = self;
    printf("%s\n", me->message);
    green_sleep(me->n);
    return NULL;
}

static int my_greenlet_init(struct my_greenlet *me, const char *message,
                            double n)
{
    me->message = message;
    me->n = n;
    green_attr_t attr = {.stack_size = 0, .name = "MyGreenlet"};
    me->g = green_new(my_greenlet_run, me, &attr);
    return me->g ? 0 : -1;
}

int main(void)
{
    struct my_greenlet g;
    if (my_greenlet_init(&g, "hi,there", 3) != 0 || green_start(g.g) != 0 ||
        green_join(g.g, -1) != 0) {
        perror("my_greenlet");
        return 1;
    }
    printf("%s finished\n", green_name(g.g));
    green_release(g.g);
    return 0;
}
