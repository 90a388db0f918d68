/* Producers and consumers on a bounded JoinableQueue: two producers put
   ten items each into a queue of capacity 4 (waiting while it is full),
   three consumers take them, "work" (yield) and call task_done.  Main
   joins the queue (every item processed), closes it, and the consumers
   stop when their get fails with EPIPE.  Scheduling is FIFO, so who
   handles what is the same on every run and the summary is checked
   verbatim by make check. */
#include <errno.h>
#include <green.h>
#include <stdint.h>
#include <stdio.h>

#define PRODUCERS 2
#define CONSUMERS 3
#define ITEMS 10
#define CAPACITY 4

struct producer {
    green_queue_t *q;
    int id;
    int put;        /* items put */
    int full_waits; /* puts that found the queue full */
};

struct consumer {
    green_queue_t *q;
    int id;
    int handled;    /* items processed */
    long sum;       /* of their values */
    int last_err;   /* why get stopped (EPIPE once closed) */
    char seen[64];  /* the first items it handled, for the summary */
};

/* tutorial:begin workers */
static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int n = 1; n <= ITEMS; n++) {
        void *item = (void *)(intptr_t)(p->id * 100 + n);
        if (green_queue_put(p->q, item, 0) != 0) {
            if (errno != EAGAIN)
                return NULL;
            p->full_waits++;
            if (green_queue_put(p->q, item, -1) != 0)
                return NULL;
        }
        p->put++;
    }
    return NULL;
}

static void *consume(void *arg)
{
    struct consumer *c = arg;
    size_t len = 0;
    for (;;) {
        void *item;
        if (green_queue_get(c->q, &item, -1) != 0) {
            c->last_err = errno;
            return NULL;
        }
        int v = (int)(intptr_t)item;
        if (c->handled < 4)
            len += (size_t)snprintf(c->seen + len, sizeof c->seen - len,
                                    " %d", v);
        c->handled++;
        c->sum += v;
        green_yield(); /* the work */
        green_queue_task_done(c->q);
    }
}
/* tutorial:end */

int main(void)
{
    green_queue_t *q = green_queue_new(CAPACITY);
    if (!q) {
        perror("green_queue_new");
        return 1;
    }
    struct producer prod[PRODUCERS];
    struct consumer cons[CONSUMERS];
    green_t *gp[PRODUCERS], *gc[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        cons[i] = (struct consumer){.q = q, .id = i + 1};
        gc[i] = green_spawn(consume, &cons[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct producer){.q = q, .id = i + 1};
        gp[i] = green_spawn(produce, &prod[i]);
    }
    for (int i = 0; i < CONSUMERS; i++)
        if (!gc[i])
            return perror("green_spawn"), 1;
    for (int i = 0; i < PRODUCERS; i++)
        if (!gp[i])
            return perror("green_spawn"), 1;
    if (green_joinall(gp, PRODUCERS, -1) != 0 ||
        green_queue_join(q, -1) != 0) {
        perror("join");
        return 1;
    }
    printf("queue joined: size %zu, every item processed\n",
           green_queue_size(q));
    green_queue_close(q);
    if (green_joinall(gc, CONSUMERS, -1) != 0) {
        perror("green_joinall");
        return 1;
    }
    int total = 0;
    long sum = 0;
    for (int i = 0; i < PRODUCERS; i++)
        printf("producer %d: put %d items, %d found the queue full\n",
               prod[i].id, prod[i].put, prod[i].full_waits);
    for (int i = 0; i < CONSUMERS; i++) {
        printf("consumer %d: handled %d items (first:%s), stopped: %s\n",
               cons[i].id, cons[i].handled, cons[i].seen,
               cons[i].last_err == EPIPE ? "queue closed" : "error");
        total += cons[i].handled;
        sum += cons[i].sum;
    }
    printf("total: %d items, checksum %ld\n", total, sum);
    for (int i = 0; i < PRODUCERS; i++)
        green_release(gp[i]);
    for (int i = 0; i < CONSUMERS; i++)
        green_release(gc[i]);
    green_queue_free(q);
    green_shutdown();
    return 0;
}
