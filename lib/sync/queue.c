/* green_queue_t: gevent.queue.Queue / JoinableQueue, plus the rendezvous
   channel (gevent.queue.Channel).

   Items are handed over, never re-checked for.  A put that finds a parked
   getter gives it the item through the getter's waiter (w.data) without
   queueing it; a get that frees a slot of a full queue moves the oldest
   parked putter's item into the ring and wakes that putter.  Since
   green__waitq_wake_one only picks greenlets that are still parked, an
   item never goes to a getter that timed out or was killed, and a putter
   that timed out keeps its item: nothing is lost or delivered twice, and
   both sides are served in FIFO order.  A woken waiter returns without
   touching the queue, so freeing it right after the hand-over is safe.

   Invariants: getters are parked only while the ring is empty; putters
   only while it is full (always, for a channel).

   Every queue remembers its owner thread's hub (EXDEV from any other
   thread).  Freeing a queue with parked greenlets wakes them with EBADF;
   items still queued are dropped (they are the caller's pointers). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "sync.h"

struct green_queue {
    struct green__hub *hub;        /* owner thread's hub */
    size_t capacity;               /* max queued items; 0 = unbounded */
    int channel;                   /* rendezvous: never queues an item */
    int closed;                    /* green_queue_close was called */
    void **ring;                   /* circular buffer of queued items */
    size_t ring_cap;               /* its allocated slots (grows) */
    size_t head;                   /* index of the oldest item */
    size_t count;                  /* items queued */
    size_t unfinished;             /* accepted items not yet task_done */
    int lifo;                      /* green_queue_new_lifo: pop the tail */
    /* green_queue_new_priority: ring is a binary heap (head stays 0) of
       items ordered by cmp, then by seqs[] (put order: ties are FIFO). */
    int (*cmp)(const void *a, const void *b);
    uint64_t *seqs;
    uint64_t next_seq;
    struct green__waitq getters;   /* w.data receives the item */
    struct green__waitq putters;   /* w.data is the item to deliver */
    struct green__waitq joiners;   /* green_queue_join */
};

static green_queue_t *queue_alloc(size_t capacity, int channel)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    green_queue_t *q = calloc(1, sizeof *q);
    if (!q) {
        errno = ENOMEM;
        return NULL;
    }
    q->hub = hub;
    q->capacity = capacity;
    q->channel = channel;
    green__waitq_init(&q->getters);
    green__waitq_init(&q->putters);
    green__waitq_init(&q->joiners);
    return q;
}

green_queue_t *green_queue_new(size_t capacity)
{
    return queue_alloc(capacity, 0);
}

green_queue_t *green_channel_new(void)
{
    return queue_alloc(0, 1);
}

green_queue_t *green_queue_new_lifo(size_t capacity)
{
    green_queue_t *q = queue_alloc(capacity, 0);
    if (q)
        q->lifo = 1;
    return q;
}

green_queue_t *green_queue_new_priority(size_t capacity,
                                        int (*cmp)(const void *a,
                                                   const void *b))
{
    if (!cmp) {
        errno = EINVAL;
        return NULL;
    }
    green_queue_t *q = queue_alloc(capacity, 0);
    if (q)
        q->cmp = cmp;
    return q;
}

/******************************************************************************/
/*  The ring                                                                  */
/******************************************************************************/

/* Room for one more item; 0 or ENOMEM.  Grows by doubling, never past a
   bounded queue's capacity. */
static int ring_reserve(green_queue_t *q)
{
    if (q->count < q->ring_cap)
        return 0;
    if (q->ring_cap > SIZE_MAX / 2 / sizeof(void *))
        return ENOMEM;
    size_t cap = q->ring_cap ? q->ring_cap * 2 : 16;
    if (q->capacity && cap > q->capacity)
        cap = q->capacity;
    void **ring = malloc(cap * sizeof *ring);
    if (!ring)
        return ENOMEM;
    /* Unwrap the old contents to the start of the new buffer. */
    size_t first = q->ring_cap - q->head;
    if (first > q->count)
        first = q->count;
    if (q->count) {
        memcpy(ring, q->ring + q->head, first * sizeof *ring);
        memcpy(ring + first, q->ring, (q->count - first) * sizeof *ring);
    }
    if (q->cmp) {
        uint64_t *seqs = realloc(q->seqs, cap * sizeof *seqs);
        if (!seqs) {
            free(ring);
            return ENOMEM;
        }
        q->seqs = seqs;
    }
    free(q->ring);
    q->ring = ring;
    q->ring_cap = cap;
    q->head = 0;
    return 0;
}

/* Heap order: a before b. */
static int heap_before(const green_queue_t *q, size_t a, size_t b)
{
    int c = q->cmp(q->ring[a], q->ring[b]);
    return c < 0 || (c == 0 && q->seqs[a] < q->seqs[b]);
}

static void heap_swap(green_queue_t *q, size_t a, size_t b)
{
    void *item = q->ring[a];
    uint64_t seq = q->seqs[a];
    q->ring[a] = q->ring[b];
    q->seqs[a] = q->seqs[b];
    q->ring[b] = item;
    q->seqs[b] = seq;
}

static void heap_push(green_queue_t *q, void *item)
{
    size_t i = q->count++;
    q->ring[i] = item;
    q->seqs[i] = q->next_seq++;
    while (i > 0 && heap_before(q, i, (i - 1) / 2)) {
        heap_swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void *heap_pop(green_queue_t *q)
{
    void *item = q->ring[0];
    if (--q->count > 0) {
        q->ring[0] = q->ring[q->count];
        q->seqs[0] = q->seqs[q->count];
        size_t i = 0;
        for (;;) {
            size_t l = 2 * i + 1, m = i;
            if (l < q->count && heap_before(q, l, m))
                m = l;
            if (l + 1 < q->count && heap_before(q, l + 1, m))
                m = l + 1;
            if (m == i)
                break;
            heap_swap(q, i, m);
            i = m;
        }
    }
    return item;
}

/* Index of the item the next get takes (count > 0). */
static size_t ring_next(const green_queue_t *q)
{
    if (q->cmp)
        return 0;
    size_t i = q->head;
    if (q->lifo) {
        i += q->count - 1;
        if (i >= q->ring_cap)
            i -= q->ring_cap;
    }
    return i;
}

/* Append; the caller made room with ring_reserve. */
static void ring_push(green_queue_t *q, void *item)
{
    green__assert(q->count < q->ring_cap);
    if (q->cmp) {
        heap_push(q, item);
        return;
    }
    size_t tail = q->head + q->count;
    if (tail >= q->ring_cap)
        tail -= q->ring_cap;
    q->ring[tail] = item;
    q->count++;
}

static void *ring_pop(green_queue_t *q)
{
    if (q->cmp)
        return heap_pop(q);
    if (q->lifo) {
        void *item = q->ring[ring_next(q)];
        q->count--;
        return item;
    }
    void *item = q->ring[q->head];
    if (++q->head == q->ring_cap)
        q->head = 0;
    q->count--;
    return item;
}

/******************************************************************************/
/*  Put and get                                                               */
/******************************************************************************/

int green_queue_put(green_queue_t *q, void *item, double timeout)
{
    int err = green__owner_check(q, q ? q->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    if (q->closed)
        return green__fail(EPIPE);
    /* A parked getter (only while the ring is empty) takes it directly. */
    struct green__clause *g = green__waitq_wake_one(&q->getters, 0);
    if (g) {
        g->data = item;
        q->unfinished++;
        return 0;
    }
    if (!q->channel && (q->capacity == 0 || q->count < q->capacity)) {
        err = ring_reserve(q);
        if (err)
            return green__fail(err);
        ring_push(q, item);
        q->unfinished++;
        green__waitq_notify(&q->getters, 0); /* green_wait_any watchers */
        return 0;
    }
    /* A channel's getter could take it now (watchers of a full queue
       see nothing new: the ring is not empty). */
    green__waitq_notify(&q->getters, 0);
    /* Full (or a channel with no getter): park with the item.  0 means a
       getter took it; EPIPE that the queue was closed meanwhile; EBADF
       that it was freed.  On any error the item was not delivered. */
    struct green__clause w = {.data = item};
    return green__waitq_wait(&q->putters, &w, timeout,
                             q->channel ? "putting to a channel"
                                        : "putting to a full queue");
}

/* The argument checks of get and peek: 0 or an errno value. */
static int take_args_check(const green_queue_t *q, void **item,
                           double timeout)
{
    int err = green__owner_check(q, q ? q->hub : NULL);
    if (!err && !item)
        err = EINVAL;
    if (!err)
        err = green__timeout_valid(timeout);
    return err;
}

int green_queue_get(green_queue_t *q, void **item, double timeout)
{
    int err = take_args_check(q, item, timeout);
    if (err)
        return green__fail(err);
    if (q->count > 0) {
        *item = ring_pop(q);
        /* A slot is free: the oldest parked putter's item fills it (the
           ring has room since we just popped, so no allocation). */
        struct green__clause *p = green__waitq_wake_one(&q->putters, 0);
        if (p) {
            ring_push(q, p->data);
            q->unfinished++;
        } else {
            green__waitq_notify(&q->putters, 0); /* room: tell watchers */
        }
        return 0;
    }
    /* Empty ring: a parked putter exists only for a channel. */
    struct green__clause *p = green__waitq_wake_one(&q->putters, 0);
    if (p) {
        *item = p->data;
        q->unfinished++;
        return 0;
    }
    if (q->closed)
        return green__fail(EPIPE);
    /* A put to a channel could complete now. */
    green__waitq_notify(&q->putters, 0);
    struct green__clause w = {.data = NULL};
    if (green__waitq_wait(&q->getters, &w, timeout,
                          q->channel ? "getting from a channel"
                                     : "getting from an empty queue") != 0)
        return -1;
    /* Handed over by a put: q may be gone already. */
    *item = w.data;
    return 0;
}

size_t green_queue_size(const green_queue_t *q)
{
    return q ? q->count : 0;
}

/* The item a get would take now: the ring's next, or (a channel) the
   oldest parked putter's.  1 and *item, or 0. */
static int peek_now(const green_queue_t *q, void **item)
{
    if (q->count > 0) {
        *item = q->ring[ring_next(q)];
        return 1;
    }
    const struct green__list *it;
    green__list_foreach(it, &q->putters.head) {
        const struct green__clause *c =
            green__container_of(it, struct green__clause, node);
        if (!c->notify && c->w && c->g->wait == c->w && !c->w->winner) {
            *item = c->data;
            return 1;
        }
    }
    return 0;
}

int green_queue_peek(green_queue_t *q, void **item, double timeout)
{
    int err = take_args_check(q, item, timeout);
    if (err)
        return green__fail(err);
    double deadline = timeout > 0 ? green__now() + timeout : timeout;
    for (;;) {
        if (peek_now(q, item))
            return 0;
        if (q->closed)
            return green__fail(EPIPE);
        double left = timeout;
        if (timeout > 0 && (left = deadline - green__now()) <= 0)
            return green__fail(ETIMEDOUT);
        /* A watcher, not a getter: a put still queues its item (or hands
           it to a real getter), then tells us. */
        struct green__wait w;
        struct green__clause c;
        err = green__wait_begin(&w, left, "peeking at a queue", 0);
        if (err)
            return green__fail(err);
        green__waitq_add_notify(&w, &q->getters, &c);
        err = green__wait_park(&w);
        if (err && err != EPIPE)
            return green__fail(err); /* EBADF: q is gone */
    }
}

int green_queue_empty(const green_queue_t *q)
{
    return !q || q->count == 0;
}

int green_queue_full(const green_queue_t *q)
{
    if (!q)
        return 0;
    return q->channel || (q->capacity && q->count >= q->capacity);
}

size_t green_queue_unfinished(const green_queue_t *q)
{
    return q ? q->unfinished : 0;
}

/******************************************************************************/
/*  JoinableQueue and close                                                   */
/******************************************************************************/

int green_queue_task_done(green_queue_t *q)
{
    int err = green__owner_check(q, q ? q->hub : NULL);
    if (err)
        return green__fail(err);
    if (q->unfinished == 0)
        return green__fail(EINVAL); /* more task_done than items */
    if (--q->unfinished == 0)
        green__waitq_wake_all(&q->joiners, 0);
    return 0;
}

int green_queue_join(green_queue_t *q, double timeout)
{
    int err = green__owner_check(q, q ? q->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    if (q->unfinished == 0)
        return 0;
    struct green__clause w = {.data = NULL};
    return green__waitq_wait(&q->joiners, &w, timeout,
                             "joining a queue");
}

int green_queue_close(green_queue_t *q)
{
    int err = green__owner_check(q, q ? q->hub : NULL);
    if (err)
        return green__fail(err);
    if (q->closed)
        return 0;
    q->closed = 1;
    /* Parked putters keep their items and fail; getters fail only once
       nothing is left to drain (they are parked only when it is empty). */
    green__waitq_wake_all(&q->putters, EPIPE);
    if (q->count == 0)
        green__waitq_wake_all(&q->getters, EPIPE);
    return 0;
}

void green_queue_free(green_queue_t *q)
{
    if (!q)
        return;
    if (green__hub_peek() == q->hub) {
        green__waitq_wake_all(&q->getters, EBADF);
        green__waitq_wake_all(&q->putters, EBADF);
        green__waitq_wake_all(&q->joiners, EBADF);
    }
    free(q->ring);
    free(q->seqs);
    free(q);
}

/******************************************************************************/
/*  green_wait_any hooks (sync.h)                                             */
/******************************************************************************/

struct green__hub *green__queue_hub(const green_queue_t *q)
{
    return q->hub;
}

int green__queue_ready(const green_queue_t *q, int put)
{
    if (q->closed)
        return 1; /* the call fails at once (EPIPE), or drains */
    if (!put)
        return q->count > 0 || green__waitq_has_taker(&q->putters);
    if (green__waitq_has_taker(&q->getters))
        return 1;
    return !q->channel && (q->capacity == 0 || q->count < q->capacity);
}

void green__queue_watch(struct green__wait *w, green_queue_t *q, int put,
                        struct green__clause *c)
{
    green__waitq_add_notify(w, put ? &q->putters : &q->getters, c);
}
