/* green_pool_t (gevent.pool.Pool / Group) and the map iterators.

   A pool tracks its running greenlets with green_link: each member has a
   small record whose link callback (run in the hub once the greenlet is
   done) frees its slot.  A spawner that finds the pool full parks on
   `slots`; the callback hands the freed slot to the oldest parked spawner
   (counted in `reserved` until it has spawned), so spawners are served
   in FIFO order and a spawner that timed out or was killed never takes a
   slot from the next one.  green_pool_join waits until no member runs
   and no slot is reserved.

   Lifetime: the pool is reference counted (the owner, every member, every
   iterator and every call parked inside it).  green_pool_free wakes
   parked spawners and joiners with EBADF and drops the owner's reference;
   members keep running and the memory goes when the last one is done.

   Iterators: an imap starts a feeder greenlet that takes arguments (from
   the caller's array, or on demand from a source callback) and spawns
   one worker per argument through the pool (so it waits while the pool
   is full: at most `size` in flight), and, with a maxsize, while that
   many finished results wait to be consumed.  A link on each worker
   records its outcome: imap keeps results in a window ring indexed by
   input index (from the next one to hand out to the last one fed),
   imap_unordered in a FIFO ring in completion order, so memory stays
   bounded by the pool size plus maxsize whatever the input length.
   Results are handed to parked consumers through their waiter.  The
   iterator is reference counted too (owner, feeder, running workers),
   so a link callback never touches freed memory. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"

struct green_pool {
    struct green__hub *hub;        /* owner thread's hub */
    size_t size;                   /* max members; 0 = unlimited (group) */
    size_t running;                /* members whose link has not run yet */
    size_t reserved;               /* freed slots handed to parked spawners
                                      that have not spawned yet */
    int dead;                      /* green_pool_free was called */
    int refs;                      /* owner + members + iterators + calls
                                      parked in spawn */
    struct green__list members;    /* struct pool_member, spawn order */
    struct green__waitq slots;     /* spawners waiting while full */
    struct green__waitq idle;      /* green_pool_join */
};

/* One running greenlet of a pool; freed by its link callback. */
struct pool_member {
    struct green__list node;       /* in pool->members */
    green_pool_t *pool;            /* holds a pool reference */
    green_t *g;                    /* alive while linked here: the
                                      scheduler, then the pending link,
                                      hold a reference */
    int retained;                  /* green_pool_add took a reference */
};

/******************************************************************************/
/*  Pool bookkeeping                                                          */
/******************************************************************************/

green_pool_t *green_pool_new(size_t size)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    green_pool_t *p = calloc(1, sizeof *p);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    p->hub = hub;
    p->size = size;
    p->refs = 1;
    green__list_init(&p->members);
    green__waitq_init(&p->slots);
    green__waitq_init(&p->idle);
    return p;
}

static void pool_unref(green_pool_t *p)
{
    green__assert(p->refs > 0);
    if (--p->refs == 0)
        free(p);
}

static int pool_full(const green_pool_t *p)
{
    return p->size && p->running + p->reserved >= p->size;
}

/* Hand free slots to parked spawners (oldest first), then wake joiners if
   nothing runs or is about to. */
static void pool_settle(green_pool_t *p)
{
    while (!pool_full(p) && green__waitq_wake_one(&p->slots, 0))
        p->reserved++;
    if (!pool_full(p))
        green__waitq_notify(&p->slots, 0); /* green_pool_wait_available */
    if (p->running + p->reserved == 0)
        green__waitq_wake_all(&p->idle, 0);
}

/* Link callback (in the hub): a member is done, its slot is free. */
static void member_done(green_t *g, void *arg)
{
    (void)g;
    struct pool_member *m = arg;
    green_pool_t *p = m->pool;
    green__list_remove(&m->node);
    if (m->retained)
        green_release(g);
    free(m);
    p->running--;
    if (!p->dead)
        pool_settle(p);
    pool_unref(p);
}

/* Create, link and start a member; the caller checked there is a slot. */
static green_t *pool_start(green_pool_t *p, green_fn fn, void *arg)
{
    struct pool_member *m = malloc(sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    green_t *g = green_new(fn, arg, NULL);
    if (!g) {
        free(m);
        return NULL;
    }
    m->pool = p;
    m->g = g;
    m->retained = 0;
    /* Linked before it is started, so its end cannot be missed. */
    if (green_link(g, member_done, m) != 0) {
        green_release(g); /* never started: this frees it */
        free(m);
        errno = ENOMEM;
        return NULL;
    }
    green_start(g);
    green__list_push(&p->members, &m->node);
    p->running++;
    p->refs++;
    return g;
}

/* 1 if the current greenlet is a member of p (joining would deadlock). */
static int pool_has_current(const green_pool_t *p)
{
    const struct green *cur = p->hub->current;
    const struct green__list *it;
    green__list_foreach(it, &p->members) {
        const struct pool_member *m =
            green__container_of(it, struct pool_member, node);
        if (m->g == cur)
            return 1;
    }
    return 0;
}

/******************************************************************************/
/*  Public pool calls                                                         */
/******************************************************************************/

/* Wait (FIFO, no timeout of its own) until p has a slot for us; 0 or an
   errno.  On 0 the slot is ours (counted nowhere yet). */
static int pool_wait_slot(green_pool_t *p)
{
    if (!pool_full(p))
        return 0;
    struct green__clause w = {.data = NULL};
    p->refs++; /* p stays readable even if freed while we wait */
    int err = green__waitq_wait(&p->slots, &w, -1,
                                "waiting for a pool slot") ? errno : 0;
    if (!err) {
        /* pool_settle reserved a slot for us: it is ours now. */
        p->reserved--;
        if (p->dead)
            err = EBADF;
    }
    pool_unref(p);
    /* Not granted (timed out, killed, EBADF): nothing to pass on,
       green__waitq_wake_one skipped us. */
    return err;
}

green_t *green_pool_spawn(green_pool_t *p, green_fn fn, void *arg)
{
    int err = green__owner_check(p, p ? p->hub : NULL);
    if (!err && !fn)
        err = EINVAL;
    if (!err && p->dead)
        err = EBADF; /* only reachable through an iterator's feeder */
    if (!err)
        err = pool_wait_slot(p);
    if (err) {
        errno = err;
        return NULL;
    }
    green_t *g = pool_start(p, fn, arg);
    if (!g) {
        err = errno;
        pool_settle(p); /* the slot we might have been granted */
        errno = err;
    }
    return g;
}

int green_pool_join(green_pool_t *p, double timeout)
{
    int err = green__owner_check(p, p ? p->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    if (p->running + p->reserved == 0)
        return 0;
    if (pool_has_current(p))
        return green__fail(EDEADLK);
    struct green__clause w = {.data = NULL};
    /* 0: pool_settle saw it idle; p may be freed by then (EBADF). */
    return green__waitq_wait(&p->idle, &w, timeout, "joining a pool");
}

int green_pool_kill(green_pool_t *p, double timeout)
{
    int err = green__owner_check(p, p ? p->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    if (pool_has_current(p))
        return green__fail(EDEADLK);
    /* Cancelling never runs a link callback synchronously (they are
       queued for the hub), so the member list is stable here. */
    struct green__list *it;
    green__list_foreach(it, &p->members) {
        struct pool_member *m =
            green__container_of(it, struct pool_member, node);
        green_kill(m->g, 0);
    }
    if (timeout == 0)
        return 0;
    return green_pool_join(p, timeout);
}

size_t green_pool_running(const green_pool_t *p)
{
    return p ? p->running : 0;
}

size_t green_pool_free_count(const green_pool_t *p)
{
    if (!p)
        return 0;
    if (!p->size)
        return SIZE_MAX;
    return pool_full(p) ? 0 : p->size - p->running - p->reserved;
}

int green_pool_wait_available(green_pool_t *p, double timeout)
{
    int err = green__owner_check(p, p ? p->hub : NULL);
    if (!err)
        err = green__timeout_valid(timeout);
    if (err)
        return green__fail(err);
    if (p->dead)
        return green__fail(EBADF); /* nothing frees its slots any more */
    double deadline = timeout > 0 ? green__now() + timeout : timeout;
    /* A watcher on the spawners' queue: a freed slot still goes to a
       parked spawner first, and only what is left wakes us. */
    while (pool_full(p)) {
        double left = timeout;
        if (timeout > 0 && (left = deadline - green__now()) <= 0)
            return green__fail(ETIMEDOUT);
        struct green__wait w;
        struct green__clause c;
        err = green__wait_begin(&w, left, "waiting for a pool slot", 0);
        if (err)
            return green__fail(err);
        green__waitq_add_notify(&w, &p->slots, &c);
        err = green__wait_park(&w);
        if (err)
            return green__fail(err); /* EBADF: p was freed */
    }
    return 0;
}

/* 1 if g is a member of p already. */
static int pool_has(const green_pool_t *p, const green_t *g)
{
    const struct green__list *it;
    green__list_foreach(it, &p->members) {
        if (green__container_of(it, struct pool_member, node)->g == g)
            return 1;
    }
    return 0;
}

int green_pool_add(green_pool_t *p, green_t *g)
{
    int err = green__owner_check(p, p ? p->hub : NULL);
    if (!err && !g)
        err = EINVAL;
    if (!err && green__owner_check(g, g->hub))
        err = EXDEV;
    if (!err && p->dead)
        err = EBADF;
    if (err)
        return green__fail(err);
    if (pool_has(p, g))
        return 0;
    err = pool_wait_slot(p);
    if (!err && pool_has(p, g))
        err = -1; /* added by someone else while we waited */
    struct pool_member *m = err ? NULL : malloc(sizeof *m);
    if (!err && !m)
        err = ENOMEM;
    if (!err) {
        m->pool = p;
        m->g = green_retain(g);
        m->retained = 1;
        if (green_link(g, member_done, m) != 0) {
            green_release(g);
            free(m);
            err = ENOMEM;
        }
    }
    if (err) {
        pool_settle(p); /* pass on the slot we may hold */
        return err < 0 ? 0 : green__fail(err);
    }
    green__list_push(&p->members, &m->node);
    p->running++;
    p->refs++;
    return 0;
}

int green_pool_apply(green_pool_t *p, green_fn fn, void *arg, void **result)
{
    int err = green__owner_check(p, p ? p->hub : NULL);
    if (!err && !fn)
        err = EINVAL;
    if (err)
        return green__fail(err);
    if (pool_has_current(p)) {
        /* Inline, like gevent: waiting for a slot held by ourselves
           could deadlock. */
        void *v = fn(arg);
        if (result)
            *result = v;
        return 0;
    }
    err = green__can_block(-1);
    if (err)
        return green__fail(err);
    green_t *g = green_pool_spawn(p, fn, arg);
    if (!g)
        return -1;
    if (green_join(g, -1) != 0) {
        err = errno; /* our own wait: the worker keeps running */
        green_release(g);
        return green__fail(err);
    }
    err = green_error(g);
    if (result)
        *result = err ? NULL : green_value(g);
    green_release(g);
    return err ? green__fail(err) : 0;
}

void green_pool_free(green_pool_t *p)
{
    if (!p)
        return;
    p->dead = 1;
    if (green__hub_peek() == p->hub) {
        green__waitq_wake_all(&p->slots, EBADF);
        green__waitq_wake_all(&p->idle, EBADF);
    }
    pool_unref(p);
}

/******************************************************************************/
/*  Map iterators                                                             */
/******************************************************************************/

/* One outcome. */
struct imap_res {
    void *value;
    int err;
    int done;                      /* ordered window: outcome recorded */
    size_t index;                  /* input index */
};

/* A running worker; freed by its link callback. */
struct imap_job {
    struct green__list node;       /* in it->running */
    struct green_imap *it;
    size_t index;
    green_t *g;                    /* the reference green_pool_spawn gave */
};

struct green_imap {
    struct green__hub *hub;        /* owner thread's hub */
    green_pool_t *pool;            /* holds a pool reference */
    green_fn fn;                   /* what each worker runs */
    void **args;                   /* array mode: copy of the arguments */
    size_t n;                      /* array mode: their number */
    int (*source)(void *ctx, void **arg); /* source mode, else NULL */
    void *ctx;
    size_t maxsize;                /* 0, or the bound on finished results
                                      not consumed yet */
    int ordered;                   /* imap (1) or imap_unordered (0) */
    int dead;                      /* green_imap_free was called */
    int stopping;                  /* green_imap_stop was called */
    int fed_all;                   /* the feeder is done: fed is final */
    int feed_err;                  /* ENOMEM: the end is reported as that
                                      instead of ENOENT */
    int refs;                      /* owner + feeder link + running
                                      workers' links */
    struct imap_res *ring;         /* ordered: index % cap, for indexes in
                                      [out, fed); unordered: a FIFO */
    size_t cap;
    size_t head, count;            /* unordered FIFO */
    size_t completed;              /* outcomes recorded */
    size_t out;                    /* results handed out */
    size_t fed;                    /* arguments taken (indexes given) */
    green_t *feeder;               /* spawns the workers (our reference) */
    struct green__list running;    /* struct imap_job */
    struct green__waitq consumers; /* green_imap_next, FIFO */
    struct green__waitq room;      /* the feeder, while maxsize results
                                      wait */
};

/* A consumer parked in green_imap_next: the result is written here. */
struct imap_waiter {
    struct green__clause w;
    struct imap_res res;
};

static void imap_unref(struct green_imap *it)
{
    green__assert(it->refs > 0);
    if (--it->refs > 0)
        return;
    green_release(it->feeder);
    free(it->ring);
    free(it->args);
    pool_unref(it->pool);
    free(it);
}

/* Room for one more outcome: the ordered window [out, fed] or the FIFO
   (count + running + 1).  0 or ENOMEM. */
static int imap_reserve(struct green_imap *it, size_t running)
{
    size_t need = it->ordered ? it->fed - it->out + 1
                              : it->count + running + 1;
    if (need <= it->cap)
        return 0;
    size_t cap = it->cap ? it->cap : 8;
    while (cap < need)
        cap *= 2;
    struct imap_res *ring = calloc(cap, sizeof *ring);
    if (!ring)
        return ENOMEM;
    if (it->ordered) {
        for (size_t i = it->out; i < it->fed; i++)
            ring[i % cap] = it->ring[i % it->cap];
    } else {
        for (size_t k = 0; k < it->count; k++)
            ring[k] = it->ring[(it->head + k) % it->cap];
        it->head = 0;
    }
    free(it->ring);
    it->ring = ring;
    it->cap = cap;
    return 0;
}

static int imap_available(const struct green_imap *it)
{
    if (!it->ordered)
        return it->count > 0;
    return it->out < it->fed && it->ring[it->out % it->cap].done;
}

static int imap_exhausted(const struct green_imap *it)
{
    return it->fed_all && it->out == it->fed;
}

/* Hand out the next result; the caller checked imap_available. */
static void imap_take(struct green_imap *it, struct imap_res *res)
{
    if (it->ordered) {
        *res = it->ring[it->out % it->cap];
    } else {
        *res = it->ring[it->head];
        it->head = (it->head + 1) % it->cap;
        it->count--;
    }
    it->out++;
    green__waitq_wake_one(&it->room, 0); /* the feeder may go on */
}

/* Give every result that became available to parked consumers, oldest
   first; once all are handed out, the remaining ones get ENOENT. */
static void imap_deliver(struct green_imap *it)
{
    struct green__clause *w;
    while (imap_available(it) &&
           (w = green__waitq_wake_one(&it->consumers, 0)) != NULL) {
        struct imap_waiter *iw = green__container_of(w, struct imap_waiter, w);
        imap_take(it, &iw->res);
    }
    if (imap_exhausted(it))
        green__waitq_wake_all(&it->consumers,
                              it->feed_err ? it->feed_err : ENOENT);
}

/* Record input i's outcome (room was reserved when i was fed). */
static void imap_complete(struct green_imap *it, size_t i, void *value,
                          int err)
{
    struct imap_res r = {value, err, 1, i};
    if (it->ordered) {
        it->ring[i % it->cap] = r;
    } else {
        it->ring[(it->head + it->count) % it->cap] = r;
        it->count++;
    }
    it->completed++;
    if (!it->dead)
        imap_deliver(it);
}

/* Link callback (in the hub): a worker finished. */
static void worker_done(green_t *g, void *arg)
{
    struct imap_job *job = arg;
    struct green_imap *it = job->it;
    green__list_remove(&job->node);
    imap_complete(it, job->index, green_value(g), green_error(g));
    free(job);
    green_release(g); /* the reference green_pool_spawn gave the feeder */
    imap_unref(it);
}

/* Link callback (in the hub): the feeder is done, nothing more comes. */
static void feeder_done(green_t *g, void *arg)
{
    (void)g;
    struct green_imap *it = arg;
    it->fed_all = 1;
    if (!it->dead)
        imap_deliver(it);
    imap_unref(it);
}

static size_t imap_running(const struct green_imap *it)
{
    size_t k = 0;
    const struct green__list *n;
    green__list_foreach(n, &it->running)
        k++;
    return k;
}

/* The next argument: 1 and *arg, or 0 when the input is exhausted. */
static int imap_next_arg(struct green_imap *it, void **arg)
{
    if (!it->source) {
        if (it->fed >= it->n)
            return 0;
        *arg = it->args[it->fed];
        return 1;
    }
    return it->source(it->ctx, arg) > 0;
}

/* With a maxsize, wait while size + maxsize results are fed and not
   consumed (size: the pool's, 0 for a group): at most maxsize finished
   results wait for the reader, and an endless source never runs ahead.
   0 or ECANCELED (stopped or freed). */
static int imap_wait_room(struct green_imap *it)
{
    while (it->maxsize &&
           it->fed - it->out >= it->maxsize + it->pool->size) {
        struct green__clause c = {.data = NULL};
        if (green__waitq_wait(&it->room, &c, -1, "waiting for imap room"))
            return errno;
    }
    return 0;
}

/* Spawn input i's worker through the pool; 0 or an errno (the outcome
   of that input then). */
static int imap_spawn(struct green_imap *it, size_t i, void *arg)
{
    struct imap_job *job = malloc(sizeof *job);
    if (!job)
        return ENOMEM;
    green_t *g = green_pool_spawn(it->pool, it->fn, arg);
    if (!g) {
        free(job);
        return errno;
    }
    job->it = it;
    job->index = i;
    job->g = g;
    if (green_link(g, worker_done, job) != 0) {
        /* It has not run yet (spawning never switches): drop it. */
        green_kill(g, 0);
        green_release(g);
        free(job);
        return ENOMEM;
    }
    green__list_push(&it->running, &job->node);
    it->refs++;
    /* Granted a slot after green_imap_free began: stop it at once. */
    if (it->dead)
        green_kill(g, 0);
    return 0;
}

/* The feeder greenlet. */
static void *imap_feed(void *arg)
{
    struct green_imap *it = arg;
    while (!it->dead && !it->stopping) {
        void *a;
        /* A slot first, so the source is asked only when its argument
           can start at once (and a stop then takes nothing from it). */
        if (imap_wait_room(it) != 0)
            break;
        /* EBADF (pool freed): go on, the spawn fails with it below. */
        if (green_pool_wait_available(it->pool, -1) != 0 && errno != EBADF)
            break;
        if (it->stopping || !imap_next_arg(it, &a))
            break;
        if (imap_reserve(it, imap_running(it)) != 0) {
            /* That argument cannot even be recorded: end the iteration
               with ENOMEM instead of ENOENT. */
            it->feed_err = ENOMEM;
            break;
        }
        size_t i = it->fed++;
        if (it->ordered)
            it->ring[i % it->cap].done = 0;
        int err = imap_spawn(it, i, a);
        if (!err || it->dead)
            continue;
        if (it->stopping) {
            it->fed--; /* stopped while it waited for a slot: not fed */
            break;
        }
        /* ENOMEM, EBADF (pool freed): the consumer sees it as this
           argument's outcome instead of waiting forever. */
        imap_complete(it, i, NULL, err);
    }
    return NULL;
}

static struct green_imap *imap_alloc(green_pool_t *p, green_fn fn)
{
    int err = green__owner_check(p, p ? p->hub : NULL);
    if (!err && !fn)
        err = EINVAL;
    if (!err && p->dead)
        err = EBADF;
    if (err) {
        errno = err;
        return NULL;
    }
    struct green_imap *it = calloc(1, sizeof *it);
    if (!it) {
        errno = ENOMEM;
        return NULL;
    }
    it->hub = p->hub;
    it->pool = p;
    it->fn = fn;
    it->refs = 1;
    green__list_init(&it->running);
    green__waitq_init(&it->consumers);
    green__waitq_init(&it->room);
    return it;
}

/* Start the feeder; on failure free it (ENOMEM). */
static green_imap_t *imap_start(struct green_imap *it)
{
    green_attr_t attr = {.stack_size = 0, .name = "imap-feeder"};
    it->feeder = green_new(imap_feed, it, &attr);
    if (!it->feeder || green_link(it->feeder, feeder_done, it) != 0) {
        green_release(it->feeder); /* never started: freed */
        free(it->args);
        free(it);
        errno = ENOMEM;
        return NULL;
    }
    green_start(it->feeder);
    it->refs++;
    it->pool->refs++;
    return it;
}

static green_imap_t *imap_new(green_pool_t *p, green_fn fn,
                              void *const *args, size_t n, int ordered)
{
    if (!args && n) {
        errno = EINVAL;
        return NULL;
    }
    if (n > SIZE_MAX / sizeof(void *)) {
        errno = ENOMEM;
        return NULL;
    }
    struct green_imap *it = imap_alloc(p, fn);
    if (!it)
        return NULL;
    it->ordered = ordered;
    it->n = n;
    if (n) {
        it->args = malloc(n * sizeof *it->args);
        if (!it->args) {
            free(it);
            errno = ENOMEM;
            return NULL;
        }
        memcpy(it->args, args, n * sizeof *it->args);
    }
    return imap_start(it);
}

green_imap_t *green_pool_imap(green_pool_t *p, green_fn fn,
                              void *const *args, size_t n)
{
    return imap_new(p, fn, args, n, 1);
}

green_imap_t *green_pool_imap_unordered(green_pool_t *p, green_fn fn,
                                        void *const *args, size_t n)
{
    return imap_new(p, fn, args, n, 0);
}

green_imap_t *green_pool_imap_source(green_pool_t *p, green_fn fn,
                                     int (*source)(void *ctx, void **arg),
                                     void *ctx, size_t maxsize, int flags)
{
    if (!source || (flags & ~GREEN_IMAP_UNORDERED)) {
        errno = EINVAL;
        return NULL;
    }
    struct green_imap *it = imap_alloc(p, fn);
    if (!it)
        return NULL;
    it->ordered = !(flags & GREEN_IMAP_UNORDERED);
    it->source = source;
    it->ctx = ctx;
    it->maxsize = maxsize;
    return imap_start(it);
}

int green_imap_next_ex(green_imap_t *it, void **result, size_t *index,
                       int *worker_err)
{
    int err = green__owner_check(it, it ? it->hub : NULL);
    if (err)
        return green__fail(err);
    struct imap_res res;
    if (imap_available(it)) {
        imap_take(it, &res);
    } else {
        if (imap_exhausted(it))
            return green__fail(it->feed_err ? it->feed_err : ENOENT);
        struct imap_waiter iw = {.w = {.data = NULL}};
        if (green__waitq_wait(&it->consumers, &iw.w, -1,
                              "waiting for a map result") != 0)
            return -1; /* our own wait failed, or ENOENT/EBADF */
        /* Handed over by imap_deliver: it may be gone already. */
        res = iw.res;
    }
    if (result)
        *result = res.err ? NULL : res.value;
    if (index)
        *index = res.index;
    if (worker_err)
        *worker_err = res.err;
    return 0;
}

int green_imap_next(green_imap_t *it, void **result)
{
    int werr;
    if (green_imap_next_ex(it, result, NULL, &werr) != 0)
        return -1;
    return werr ? green__fail(werr) : 0;
}

int green_imap_stop(green_imap_t *it)
{
    int err = green__owner_check(it, it ? it->hub : NULL);
    if (err)
        return green__fail(err);
    if (it->stopping)
        return 0;
    it->stopping = 1;
    /* Only the feeder: a wait for a slot, for room or inside the source
       ends; running workers finish and their results still come. */
    green_t *self = it->hub->current;
    if (it->feeder != self && !green_done(it->feeder))
        green_kill(it->feeder, 0);
    return 0;
}

/* A running worker of it that is not done (and not self), or NULL. */
static green_t *imap_live_worker(struct green_imap *it, green_t *self)
{
    struct green__list *n;
    green__list_foreach(n, &it->running) {
        green_t *g = green__container_of(n, struct imap_job, node)->g;
        if (g != self && !green_done(g))
            return g;
    }
    return NULL;
}

void green_imap_free(green_imap_t *it)
{
    if (!it)
        return;
    int saved = errno;
    it->dead = 1;
    struct green__hub *hub = green__hub_peek();
    if (hub != it->hub) {
        /* After green_shutdown: nothing runs any more. */
        imap_unref(it);
        errno = saved;
        return;
    }
    green__waitq_wake_all(&it->consumers, EBADF);
    green__waitq_wake_all(&it->room, ECANCELED);
    green_t *self = hub->current;
    /* Stop the feeder first so no new worker appears, then every worker
       still running; wait for them unless blocking is impossible here
       (the hub, or a killed caller): then they finish on their own and
       their links drop the last references. */
    int can_block = green__can_block(-1) == 0;
    green_t *feeder = it->feeder;
    if (feeder != self && !green_done(feeder)) {
        green_kill(feeder, 0);
        if (can_block)
            green_join(feeder, -1);
    }
    struct green__list *n;
    green__list_foreach(n, &it->running) {
        green_t *g = green__container_of(n, struct imap_job, node)->g;
        if (g != self)
            green_kill(g, 0);
    }
    green_t *g;
    while (can_block && (g = imap_live_worker(it, self)) != NULL) {
        green_retain(g);
        if (green_join(g, -1) != 0)
            can_block = 0; /* we were killed meanwhile */
        green_release(g);
    }
    imap_unref(it);
    errno = saved;
}

int green_pool_map(green_pool_t *p, green_fn fn, void *const *args,
                   void **results, size_t n)
{
    int err = green__owner_check(p, p ? p->hub : NULL);
    if (!err && (!fn || ((!args || !results) && n)))
        err = EINVAL;
    if (err)
        return green__fail(err);
    if (n == 0)
        return 0;
    err = green__can_block(-1);
    if (err)
        return green__fail(err);
    green_imap_t *it = green_pool_imap(p, fn, args, n);
    if (!it)
        return -1;
    int first_err = 0;
    for (size_t i = 0; i < n; i++) {
        void *v;
        int werr;
        if (green_imap_next_ex(it, &v, NULL, &werr) != 0) {
            /* Our own wait failed (killed, timed out): stop everything. */
            err = errno;
            green_imap_free(it);
            return green__fail(err);
        }
        results[i] = v;
        if (werr && !first_err)
            first_err = werr;
    }
    green_imap_free(it);
    return first_err ? green__fail(first_err) : 0;
}
