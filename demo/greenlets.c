/* Spawning with arguments: "hello" after 1 s, "I live" after 2 s, and a
   greenlet computing x + 1 whose value is read after joinall. */
#include <green.h>
#include <stdint.h>
#include <stdio.h>

struct message {
    const char *text;
    double seconds;
};

static void *foo(void *arg)
{
    struct message *m = arg;
    green_sleep(m->seconds);
    printf("%s\n", m->text);
    return NULL;
}

static void *plus_one(void *arg)
{
    return (void *)((intptr_t)arg + 1);
}

int main(void)
{
    struct message hello = {"hello", 1}, live = {"I live", 2};
    green_t *threads[3] = {
        green_spawn(foo, &hello),
        green_spawn(foo, &live),
        green_spawn(plus_one, (void *)(intptr_t)2),
    };
    if (!threads[0] || !threads[1] || !threads[2] ||
        green_joinall(threads, 3, -1) != 0) {
        perror("greenlets");
        return 1;
    }
    printf("x + 1 = %ld\n", (long)(intptr_t)green_value(threads[2]));
    for (int i = 0; i < 3; i++)
        green_release(threads[i]);
    return 0;
}
