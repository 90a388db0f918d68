/* green_wait_any and green_iwait (gevent.wait / gevent.iwait): wait
   until `count` of several objects are ready, without consuming them.

   One round: check every object not yet reported (a readiness test that
   takes nothing); if fewer than count are ready, arm one notify clause
   per remaining object in a single wait (wait.h) and park.  The clauses
   that fired before the greenlet resumed are reported in firing order:
   greenlets, events and results latch (once fired they count, like
   green_event_wait returning 0 after a set), queues, semaphores and fds
   are checked again, since another greenlet may have taken the item or
   the data meanwhile.  Then the next round, with the time left.

   Lives in lib/io because it waits on fds too (green__io_clause); it
   reaches the sync objects through lib/sync/sync.h. */
#include <errno.h>
#include <stdlib.h>

#include "io.h"
#include "core/sys.h"
#include "sync/sync.h"

/* One entry's clause; io clauses embed a plain clause first. */
struct wa_slot {
    struct green__io_clause ic;
    int reported;
};

#define WA_STACK_SLOTS 8

static int kind_valid(const green_waitable_t *o, struct green__hub *hub)
{
    const struct green__hub *owner;
    switch (o->kind) {
    case GREEN_WAIT_NONE:
        return 0;
    case GREEN_WAIT_READ:
    case GREEN_WAIT_WRITE:
        return o->fd < 0 ? EINVAL : 0;
    case GREEN_WAIT_GREENLET:
        owner = o->obj ? ((const struct green *)o->obj)->hub : NULL;
        break;
    case GREEN_WAIT_EVENT:
        owner = o->obj ? green__event_hub(o->obj) : NULL;
        break;
    case GREEN_WAIT_RESULT:
        owner = o->obj ? green__result_hub(o->obj) : NULL;
        break;
    case GREEN_WAIT_QUEUE_GET:
    case GREEN_WAIT_QUEUE_PUT:
        owner = o->obj ? green__queue_hub(o->obj) : NULL;
        break;
    case GREEN_WAIT_SEM:
        owner = o->obj ? green__sem_hub(o->obj) : NULL;
        break;
    default:
        return EINVAL;
    }
    if (!o->obj)
        return EINVAL;
    return owner == hub ? 0 : EXDEV;
}

/* Every entry valid and owned here: 0 or an errno. */
static int check_all(const green_waitable_t *objs, size_t n,
                     struct green__hub **hubp)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int err = kind_valid(&objs[i], hub);
        if (err)
            return err;
    }
    *hubp = hub;
    return 0;
}

static int fd_ready(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    /* POLLNVAL (not open) counts: the call on it fails at once. */
    return green__sys_poll(&p, 1, 0) > 0;
}

static int ready_now(const green_waitable_t *o)
{
    switch (o->kind) {
    case GREEN_WAIT_GREENLET:
        return ((const struct green *)o->obj)->state == GREEN__DONE;
    case GREEN_WAIT_EVENT:
        return green__event_ready(o->obj);
    case GREEN_WAIT_RESULT:
        return green__result_ready(o->obj);
    case GREEN_WAIT_QUEUE_GET:
        return green__queue_ready(o->obj, 0);
    case GREEN_WAIT_QUEUE_PUT:
        return green__queue_ready(o->obj, 1);
    case GREEN_WAIT_SEM:
        return green__sem_ready(o->obj);
    case GREEN_WAIT_READ:
        return fd_ready(o->fd, POLLIN);
    case GREEN_WAIT_WRITE:
        return fd_ready(o->fd, POLLOUT);
    default:
        return 0;
    }
}

/* Kinds whose readiness, once seen, stays true. */
static int latches(int kind)
{
    return kind == GREEN_WAIT_GREENLET || kind == GREEN_WAIT_EVENT ||
           kind == GREEN_WAIT_RESULT;
}

/* Add o's clause to w: 0 or an errno (fds: EBADF, ENOMEM). */
static int watch(struct green__wait *w, const green_waitable_t *o,
                 struct wa_slot *s)
{
    struct green__clause *c = &s->ic.c;
    switch (o->kind) {
    case GREEN_WAIT_GREENLET:
        green__waitq_add_notify(w, &((struct green *)o->obj)->joiners, c);
        return 0;
    case GREEN_WAIT_EVENT:
        green__event_watch(w, o->obj, c);
        return 0;
    case GREEN_WAIT_RESULT:
        green__result_watch(w, o->obj, c);
        return 0;
    case GREEN_WAIT_QUEUE_GET:
    case GREEN_WAIT_QUEUE_PUT:
        green__queue_watch(w, o->obj, o->kind == GREEN_WAIT_QUEUE_PUT, c);
        return 0;
    case GREEN_WAIT_SEM:
        green__sem_watch(w, o->obj, c);
        return 0;
    default:
        return green__io_clause(w, &s->ic, o->fd, o->kind == GREEN_WAIT_READ
                                                      ? GREEN__IO_READ
                                                      : GREEN__IO_WRITE);
    }
}

/* The state of one call (or of one green_iwait_next). */
struct wa {
    const green_waitable_t *objs;
    size_t n;
    struct wa_slot *slots;
    size_t *ready;    /* indexes reported, in order */
    size_t nready;
    size_t want;
};

static void report(struct wa *a, size_t i)
{
    a->slots[i].reported = 1;
    a->ready[a->nready++] = i;
}

/* Report every unreported entry that is ready now, in array order. */
static void scan(struct wa *a)
{
    for (size_t i = 0; i < a->n && a->nready < a->want; i++)
        if (!a->slots[i].reported && a->objs[i].kind != GREEN_WAIT_NONE &&
            ready_now(&a->objs[i]))
            report(a, i);
}

/* After a park: report the fired entries in firing order.  EBADF if an
   object was freed (or an fd green_close()d) meanwhile. */
static int collect(struct wa *a, unsigned nfired)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->slots[i].ic.c.fired && a->slots[i].ic.c.err == EBADF)
            return EBADF;
    for (unsigned k = 1; k <= nfired && a->nready < a->want; k++) {
        for (size_t i = 0; i < a->n; i++) {
            struct wa_slot *s = &a->slots[i];
            if (s->ic.c.fired != k || s->reported)
                continue;
            if (latches(a->objs[i].kind) || ready_now(&a->objs[i]))
                report(a, i);
            break;
        }
    }
    return 0;
}

/* One park on every unreported entry, with `left` seconds.  0, or an
   errno: the own deadline gives ETIMEDOUT with *own set. */
static int wait_round(struct wa *a, double left, int *own)
{
    struct green__wait w;
    int err = green__wait_begin(&w, left, "waiting on several objects", 0);
    if (err)
        return err;
    for (size_t i = 0; i < a->n; i++) {
        a->slots[i].ic.c.fired = 0;
        if (a->slots[i].reported || a->objs[i].kind == GREEN_WAIT_NONE)
            continue;
        err = watch(&w, &a->objs[i], &a->slots[i]);
        if (err) {
            green__wait_cancel(&w);
            return err;
        }
    }
    err = green__wait_park(&w);
    int cerr = collect(a, w.nfired);
    if (cerr)
        return cerr;
    if (err == ETIMEDOUT && !w.g->timeouts_expired)
        *own = 1;
    return err == EPIPE ? 0 : err; /* a closed queue is ready */
}

/* The rounds until want entries are reported or the deadline (absolute,
   < 0: none) passes.  0 or an errno. */
static int wa_run(struct wa *a, double deadline, int zero)
{
    for (;;) {
        scan(a);
        if (a->nready >= a->want || zero)
            return 0;
        double left = -1;
        if (deadline >= 0) {
            left = deadline - green__now();
            if (left <= 0)
                return 0;
        }
        int own = 0;
        int err = wait_round(a, left, &own);
        if (own)
            return 0;
        if (err)
            return err;
    }
}

static size_t count_active(const green_waitable_t *objs, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += objs[i].kind != GREEN_WAIT_NONE;
    return k;
}

int green_wait_any(const green_waitable_t *objs, size_t n, size_t count,
                   double timeout, size_t *ready)
{
    struct green__hub *hub;
    if ((n && (!objs || !ready)) || timeout != timeout)
        return green__fail(EINVAL);
    int err = check_all(objs, n, &hub);
    if (err)
        return green__fail(err);
    struct wa_slot local[WA_STACK_SLOTS];
    struct wa a = {objs, n, local, ready, 0, count_active(objs, n)};
    if (count && count < a.want)
        a.want = count;
    if (n > WA_STACK_SLOTS) {
        a.slots = calloc(n, sizeof *a.slots);
        if (!a.slots)
            return green__fail(ENOMEM);
    } else {
        for (size_t i = 0; i < n; i++)
            local[i].reported = 0;
    }
    err = wa_run(&a, timeout < 0 ? -1 : green__now() + timeout, timeout == 0);
    if (a.slots != local)
        free(a.slots);
    return err ? green__fail(err) : (int)a.nready;
}

/******************************************************************************/
/*  The iterator                                                              */
/******************************************************************************/

struct green_iwait {
    struct green__hub *hub;
    green_waitable_t *objs;  /* copy of the caller's array */
    size_t n;
    struct wa_slot *slots;
    size_t *order;           /* reported indexes, in order */
    size_t nready;
    size_t active;           /* entries that are not GREEN_WAIT_NONE */
    double deadline;         /* absolute, < 0: none */
    int zero;                /* timeout 0: never waits */
};

green_iwait_t *green_iwait_new(const green_waitable_t *objs, size_t n,
                               double timeout)
{
    struct green__hub *hub;
    int err = (n && !objs) || timeout != timeout ? EINVAL : 0;
    if (!err)
        err = check_all(objs, n, &hub);
    if (err) {
        errno = err;
        return NULL;
    }
    green_iwait_t *it = calloc(1, sizeof *it);
    if (it && n) {
        it->objs = malloc(n * sizeof *it->objs);
        it->slots = calloc(n, sizeof *it->slots);
        it->order = malloc(n * sizeof *it->order);
    }
    if (!it || (n && (!it->objs || !it->slots || !it->order))) {
        green_iwait_free(it);
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        it->objs[i] = objs[i];
    it->hub = hub;
    it->n = n;
    it->active = count_active(objs, n);
    it->deadline = timeout < 0 ? -1 : green__now() + timeout;
    it->zero = timeout == 0;
    return it;
}

int green_iwait_next(green_iwait_t *it, size_t *index)
{
    int err = green__owner_check(it, it ? it->hub : NULL);
    if (!err && !index)
        err = EINVAL;
    if (err)
        return green__fail(err);
    if (it->nready == it->active)
        return green__fail(ENOENT);
    struct wa a = {it->objs, it->n, it->slots, it->order, it->nready,
                   it->nready + 1};
    err = wa_run(&a, it->deadline, it->zero);
    it->nready = a.nready;
    if (err)
        return green__fail(err);
    if (a.nready < a.want)
        return green__fail(it->zero ? EAGAIN : ETIMEDOUT);
    *index = it->order[it->nready - 1];
    return 0;
}

void green_iwait_free(green_iwait_t *it)
{
    if (!it)
        return;
    free(it->objs);
    free(it->slots);
    free(it->order);
    free(it);
}
