/* The program test/gdb_greenlets.sh runs under gdb: greenlets parked in
   different waits (a sleep, an event, an fd read, a join, a queue get),
   then main calls gdb_greenlets_stop_here(), where gdb stops and lists
   them.  Without a debugger it just finishes: everything is woken,
   joined and freed, and it exits 0. */
#include <green.h>
#include <stdio.h>
#include <unistd.h>

static green_event_t *event;
static green_queue_t *queue;
static int pipefd[2];
static green_t *sleeper;

static void *sleeper_main(void *arg)
{
    (void)arg;
    green_sleep(3600); /* killed at the end */
    return NULL;
}

static void *event_waiter_main(void *arg)
{
    (void)arg;
    green_event_wait(event, -1);
    return NULL;
}

static void *reader_main(void *arg)
{
    (void)arg;
    char c;
    green_read(pipefd[0], &c, 1);
    return NULL;
}

static void *joiner_main(void *arg)
{
    (void)arg;
    green_join(sleeper, -1);
    return NULL;
}

static void *getter_main(void *arg)
{
    (void)arg;
    void *item;
    green_queue_get(queue, &item, -1);
    return NULL;
}

/* gdb breaks here; noinline and the asm keep it a real call. */
void gdb_greenlets_stop_here(void);
__attribute__((noinline)) void gdb_greenlets_stop_here(void)
{
    __asm__ volatile("" ::: "memory");
}

static green_t *spawn_named(green_fn fn, const char *name)
{
    green_attr_t attr = {.stack_size = 0, .name = name};
    green_t *g = green_new(fn, NULL, &attr);
    if (!g || green_start(g) != 0) {
        perror("green_new");
        _exit(1);
    }
    return g;
}

int main(void)
{
    event = green_event_new();
    queue = green_queue_new(0);
    if (!event || !queue || pipe(pipefd) != 0)
        return perror("setup"), 1;
    green_t *g[5];
    g[0] = sleeper = spawn_named(sleeper_main, "sleeper");
    g[1] = spawn_named(event_waiter_main, "event-waiter");
    g[2] = spawn_named(reader_main, "pipe-reader");
    g[3] = spawn_named(joiner_main, "joiner");
    g[4] = spawn_named(getter_main, "queue-getter");
    green_sleep(0.05); /* every one of them parks */
    gdb_greenlets_stop_here();
    green_event_set(event);
    green_write(pipefd[1], "x", 1);
    green_queue_put(queue, queue, -1);
    green_kill(sleeper, -1);
    if (green_joinall(g, 5, 5) != 0)
        return perror("green_joinall"), 1;
    for (int i = 0; i < 5; i++)
        green_release(g[i]);
    green_event_free(event);
    green_queue_free(queue);
    green_close(pipefd[0]);
    green_close(pipefd[1]);
    green_shutdown();
    return 0;
}
