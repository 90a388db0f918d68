/* green_sem_t, green_lock_t and green_cond_t (gevent.lock and
   threading.Condition).

   Hand-off, not barging: a release that finds a parked waiter gives the
   unit (or the lock's ownership) straight to the oldest one instead of
   bumping the count, so the count stays 0 while greenlets wait and a
   newcomer cannot overtake them.  green__waitq_wake_one skips waiters that
   a kill or a deadline already woke, so such a waiter never swallows a
   unit: the next one gets it.  A woken waiter returns at once without
   looking at the object again, which keeps a free right after a release
   safe.

   Every object remembers its owner thread's hub (EXDEV from any other
   thread).  Freeing an object with parked waiters wakes them with EBADF. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/hub.h"
#include "sync.h"

struct green_sem {
    struct green__hub *hub;        /* owner thread's hub */
    unsigned count;                /* units available (0 while waited on) */
    unsigned bound;                /* 0 = unbounded, else the max count */
    struct green__waitq waiters;   /* green_sem_acquire, FIFO */
};

struct green_lock {
    struct green__hub *hub;        /* owner thread's hub */
    uint64_t owner;                /* green_id of the holder, 0 = free */
    unsigned depth;                /* acquisitions by the holder */
    int recursive;                 /* the holder may acquire again */
    /* Parked acquirers, FIFO.  w.data is the depth to grant (NULL = 1):
       green_cond_wait re-acquires with the depth it released. */
    struct green__waitq waiters;
    /* Condition waiters that released this lock and will take it back:
       green_lock_free fires them, so they never touch a freed lock. */
    struct green__waitq ends;
};

struct green_cond {
    struct green__hub *hub;        /* owner thread's hub */
    struct green__waitq waiters;   /* green_cond_wait, FIFO */
};

/******************************************************************************/
/*  Semaphore                                                                 */
/******************************************************************************/

green_sem_t *green_sem_new(unsigned value, unsigned bound)
{
    if (bound && value > bound) {
        errno = EINVAL;
        return NULL;
    }
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    green_sem_t *s = calloc(1, sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->hub = hub;
    s->count = value;
    s->bound = bound;
    green__waitq_init(&s->waiters);
    return s;
}

int green_sem_acquire(green_sem_t *s, double timeout)
{
    int err = green__owner_check(s, s ? s->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    /* A unit at hand is taken without blocking, even in the hub. */
    if (s->count > 0) {
        s->count--;
        return 0;
    }
    struct green__clause w = {.data = NULL};
    /* 0: green_sem_release handed us its unit (count untouched). */
    return green__waitq_wait(&s->waiters, &w, timeout,
                             "acquiring a semaphore");
}

int green_sem_release(green_sem_t *s)
{
    int err = green__owner_check(s, s ? s->hub : NULL);
    if (err)
        return green__fail(err);
    /* The oldest waiter still parked gets the unit directly. */
    if (green__waitq_wake_one(&s->waiters, 0))
        return 0;
    if ((s->bound && s->count >= s->bound) || s->count == UINT_MAX)
        return green__fail(EOVERFLOW);
    s->count++;
    green__waitq_notify(&s->waiters, 0); /* green_wait_any watchers */
    return 0;
}

struct green__hub *green__sem_hub(const green_sem_t *s)
{
    return s->hub;
}

int green__sem_ready(const green_sem_t *s)
{
    return s->count > 0;
}

void green__sem_watch(struct green__wait *w, green_sem_t *s,
                      struct green__clause *c)
{
    green__waitq_add_notify(w, &s->waiters, c);
}

void green_sem_free(green_sem_t *s)
{
    if (!s)
        return;
    if (green__hub_peek() == s->hub)
        green__waitq_wake_all(&s->waiters, EBADF);
    free(s);
}

/******************************************************************************/
/*  Lock                                                                      */
/******************************************************************************/

green_lock_t *green_lock_new(int recursive)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    green_lock_t *l = calloc(1, sizeof *l);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    l->hub = hub;
    l->recursive = recursive != 0;
    green__waitq_init(&l->waiters);
    green__waitq_init(&l->ends);
    return l;
}

/* The lock became free: give it to the oldest parked acquirer, if any. */
static void lock_handoff(green_lock_t *l)
{
    struct green__clause *w = green__waitq_wake_one(&l->waiters, 0);
    if (w) {
        l->owner = w->g->id;
        l->depth = w->data ? (unsigned)(uintptr_t)w->data : 1;
    } else {
        l->owner = 0;
        l->depth = 0;
    }
}

int green_lock_acquire(green_lock_t *l, double timeout)
{
    int err = green__owner_check(l, l ? l->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    uint64_t me = l->hub->current->id;
    if (l->owner == 0) {
        l->owner = me;
        l->depth = 1;
        return 0;
    }
    if (l->owner == me) {
        /* Like an error-checking pthread mutex, not a silent deadlock. */
        if (!l->recursive)
            return green__fail(EDEADLK);
        if (l->depth == UINT_MAX)
            return green__fail(EOVERFLOW);
        l->depth++;
        return 0;
    }
    struct green__clause w = {.data = NULL};
    /* 0: lock_handoff made us the owner before waking us. */
    return green__waitq_wait(&l->waiters, &w, timeout, "acquiring a lock");
}

int green_lock_release(green_lock_t *l)
{
    int err = green__owner_check(l, l ? l->hub : NULL);
    if (err)
        return green__fail(err);
    if (l->owner == 0 || l->owner != l->hub->current->id)
        return green__fail(EPERM);
    if (--l->depth == 0)
        lock_handoff(l);
    return 0;
}

void green_lock_free(green_lock_t *l)
{
    if (!l)
        return;
    if (green__hub_peek() == l->hub) {
        green__waitq_wake_all(&l->waiters, EBADF);
        green__waitq_wake_all(&l->ends, EBADF);
    }
    free(l);
}

/******************************************************************************/
/*  Condition variable                                                        */
/******************************************************************************/

green_cond_t *green_cond_new(void)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    green_cond_t *c = calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->hub = hub;
    green__waitq_init(&c->waiters);
    return c;
}

/* Take l back with `depth` after a condition wait, waiting as long as it
   takes: like pthread_cond_wait, the caller holds the lock again whatever
   the condition wait returned.  So this wait ignores kills and timeouts
   (GREEN__WAIT_NOCANCEL); a kill that arrives meanwhile fails the
   greenlet's next ordinary blocking call.  Returns 0 (held), EBADF (the
   lock was freed meanwhile: not held) or EDEADLK (nothing can ever
   release it: not held). */
static int lock_reacquire(green_lock_t *l, unsigned depth)
{
    struct green *g = l->hub->current;
    if (l->owner == 0) {
        l->owner = g->id;
        l->depth = depth;
        return 0;
    }
    struct green__wait w;
    int err = green__wait_begin(&w, -1, "re-acquiring a lock",
                                GREEN__WAIT_NOCANCEL);
    if (err)
        return err;
    struct green__clause c;
    /* lock_handoff makes us the owner with `depth` before firing c. */
    green__waitq_add(&w, &l->waiters, &c, (void *)(uintptr_t)depth);
    return green__wait_park(&w);
}

int green_cond_wait(green_cond_t *c, green_lock_t *l, double timeout)
{
    int err = green__owner_check(c, c ? c->hub : NULL);
    if (!err)
        err = green__owner_check(l, l ? l->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    if (l->owner == 0 || l->owner != c->hub->current->id)
        return green__fail(EPERM);
    /* The checks come before letting go of the lock: a call that cannot
       wait fails with the lock still held. */
    struct green__wait w;
    err = green__wait_begin(&w, timeout, "waiting on a condition", 0);
    if (err)
        return green__fail(err);
    unsigned depth = l->depth;
    l->depth = 0;
    lock_handoff(l);
    /* Nothing runs between the release above and parking here, so a
       signal cannot slip in between (no lost wake-up). */
    struct green__clause on_cond, on_lock_end;
    green__waitq_add(&w, &c->waiters, &on_cond, NULL);
    green__waitq_add(&w, &l->ends, &on_lock_end, NULL);
    err = green__wait_park(&w);
    /* c may be freed now (EIDRM); l too, if on_lock_end fired. */
    if (on_lock_end.fired)
        return green__fail(EBADF);
    int lerr = lock_reacquire(l, depth);
    if (lerr)
        err = lerr;
    return err ? green__fail(err) : 0;
}

int green_cond_signal(green_cond_t *c)
{
    int err = green__owner_check(c, c ? c->hub : NULL);
    if (err)
        return green__fail(err);
    green__waitq_wake_one(&c->waiters, 0);
    return 0;
}

int green_cond_broadcast(green_cond_t *c)
{
    int err = green__owner_check(c, c ? c->hub : NULL);
    if (err)
        return green__fail(err);
    green__waitq_wake_all(&c->waiters, 0);
    return 0;
}

void green_cond_free(green_cond_t *c)
{
    if (!c)
        return;
    if (green__hub_peek() == c->hub)
        green__waitq_wake_all(&c->waiters, EIDRM);
    free(c);
}
