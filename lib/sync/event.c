/* green_event_t (gevent.event.Event) and green_result_t (AsyncResult).

   Both are a flag plus a FIFO of parked greenlets.  Setting wakes every
   waiter in wait order (green__waitq_wake_all), so they resume in the
   order they started waiting.  A woken waiter never looks at the object
   again: AsyncResult hands the value and error over through the waiter
   that lives on the getter's stack, so freeing the object right after
   setting it is safe.

   Ownership: every object remembers the hub of the thread that created it
   and any other thread gets EXDEV.  Freeing an object with parked waiters
   wakes them with EBADF (they never touch it again). */
#include <errno.h>
#include <stdlib.h>

#include "core/hub.h"
#include "sync.h"

struct green_event {
    struct green__hub *hub;        /* owner thread's hub */
    int set;                       /* the flag */
    struct green__waitq waiters;   /* green_event_wait, FIFO */
};

struct green_result {
    struct green__hub *hub;        /* owner thread's hub */
    int ready;                     /* set or set_error was called */
    int err;                       /* the error given to set_error, or 0 */
    void *value;                   /* the value given to set */
    struct green__waitq waiters;   /* green_result_get, FIFO */
    void (*on_free)(void *ctx);    /* green__result_on_free (sync.h) */
    void *on_free_ctx;
};

/* A getter parked in green_result_get: the setter writes the outcome
   here before waking it. */
struct result_waiter {
    struct green__clause w;
    void *value;
    int err;
};

/******************************************************************************/
/*  Event                                                                     */
/******************************************************************************/

green_event_t *green_event_new(void)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    green_event_t *e = calloc(1, sizeof *e);
    if (!e) {
        errno = ENOMEM;
        return NULL;
    }
    e->hub = hub;
    green__waitq_init(&e->waiters);
    return e;
}

int green_event_set(green_event_t *e)
{
    int err = green__owner_check(e, e ? e->hub : NULL);
    if (err)
        return green__fail(err);
    if (!e->set) {
        e->set = 1;
        /* FIFO: they become runnable, and so resume, in wait order. */
        green__waitq_wake_all(&e->waiters, 0);
    }
    return 0;
}

int green_event_clear(green_event_t *e)
{
    int err = green__owner_check(e, e ? e->hub : NULL);
    if (err)
        return green__fail(err);
    /* Waiters already woken by a set still return 0. */
    e->set = 0;
    return 0;
}

int green_event_is_set(const green_event_t *e)
{
    return e ? e->set : 0;
}

int green_event_wait(green_event_t *e, double timeout)
{
    int err = green__owner_check(e, e ? e->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    if (e->set)
        return 0;
    struct green__clause w = {.data = NULL};
    /* 0 means green_event_set woke us; on EBADF e is already freed. */
    return green__waitq_wait(&e->waiters, &w, timeout, "waiting for an event");
}

void green_event_free(green_event_t *e)
{
    if (!e)
        return;
    /* Only the owner thread's waiters can be parked here (after
       green_shutdown there are none left to wake). */
    if (green__hub_peek() == e->hub)
        green__waitq_wake_all(&e->waiters, EBADF);
    free(e);
}

/******************************************************************************/
/*  AsyncResult                                                               */
/******************************************************************************/

green_result_t *green_result_new(void)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    green_result_t *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->hub = hub;
    green__waitq_init(&r->waiters);
    return r;
}

/* Store the outcome and hand it to every getter, in wait order. */
static int result_complete(green_result_t *r, void *value, int err)
{
    int e = green__owner_check(r, r ? r->hub : NULL);
    if (e)
        return green__fail(e);
    if (r->ready)
        return green__fail(EINVAL); /* set once */
    r->ready = 1;
    r->value = value;
    r->err = err;
    struct green__clause *w;
    while ((w = green__waitq_wake_one(&r->waiters, 0)) != NULL) {
        /* Woken and not yet running: its waiter is still on its stack. */
        struct result_waiter *rw =
            green__container_of(w, struct result_waiter, w);
        rw->value = value;
        rw->err = err;
    }
    /* green_wait_any watchers: the result stays for their get. */
    green__waitq_notify(&r->waiters, 0);
    return 0;
}

int green_result_set(green_result_t *r, void *value)
{
    return result_complete(r, value, 0);
}

int green_result_set_error(green_result_t *r, int err)
{
    if (r && err <= 0)
        return green__fail(EINVAL);
    return result_complete(r, NULL, err);
}

int green_result_ready(const green_result_t *r)
{
    return r ? r->ready : 0;
}

/* The stored outcome: 0 and *value, or -1 with errno = the error. */
static int result_deliver(void *value, int err, void **out)
{
    if (err) {
        if (out)
            *out = NULL;
        return green__fail(err);
    }
    if (out)
        *out = value;
    return 0;
}

int green_result_get(green_result_t *r, double timeout, void **value)
{
    int err = green__owner_check(r, r ? r->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    if (r->ready)
        return result_deliver(r->value, r->err, value);
    struct result_waiter rw = {.w = {.data = NULL}};
    if (green__waitq_wait(&r->waiters, &rw.w, timeout,
                          "waiting for a result") != 0)
        return -1;
    /* Handed over by result_complete: r may be gone already. */
    return result_deliver(rw.value, rw.err, value);
}

void green_result_free(green_result_t *r)
{
    if (!r)
        return;
    if (green__hub_peek() == r->hub)
        green__waitq_wake_all(&r->waiters, EBADF);
    if (r->on_free)
        r->on_free(r->on_free_ctx); /* its producer forgets it */
    free(r);
}

/******************************************************************************/
/*  green_wait_any hooks (sync.h)                                             */
/******************************************************************************/

struct green__hub *green__event_hub(const green_event_t *e)
{
    return e->hub;
}

struct green__hub *green__result_hub(const green_result_t *r)
{
    return r->hub;
}

int green__event_ready(const green_event_t *e)
{
    return e->set;
}

int green__result_ready(const green_result_t *r)
{
    return r->ready;
}

void green__event_watch(struct green__wait *w, green_event_t *e,
                        struct green__clause *c)
{
    green__waitq_add_notify(w, &e->waiters, c);
}

void green__result_watch(struct green__wait *w, green_result_t *r,
                         struct green__clause *c)
{
    green__waitq_add_notify(w, &r->waiters, c);
}

void green__result_on_free(green_result_t *r, void (*fn)(void *ctx),
                           void *ctx)
{
    r->on_free = fn;
    r->on_free_ctx = ctx;
}
