/* green_timeout_*: deadlines that apply to every blocking call of the
   greenlet that started them.  They are not watchers of their own: the
   wait primitive folds the earliest one into each wait's deadline, and a
   cancel re-arms a parked owner's deadline without it, so a cancelled
   timeout can never fire later.

   Lifetime: a timeout lives until green_timeout_cancel, or until its
   greenlet ends and that greenlet's control block is freed (the timeout
   is then detached: it applies to nothing; the last green_release frees
   it).  The main greenlet's timeouts detach when the hub shuts down and
   stay until cancelled. */
#include <errno.h>
#include <stdlib.h>

#include "timeout.h"

struct green_timeout {
    struct green__list node; /* in owner->timeouts or holder->timeouts */
    struct green *owner;     /* NULL once the greenlet finished */
    struct green *holder;    /* finished greenlet whose control block
                                frees it; NULL when nobody will */
    double deadline;         /* absolute, green__now clock */
    int expired;             /* fired: calls fail with ETIMEDOUT */
    int scoped;              /* SCOPE_*: in a green_timeout_scope_t (never
                                freed here), or 0 (malloc'd) */
};

green_timeout_t *green_timeout_start(double seconds)
{
    int err = green__can_block(-1);
    /* An already expired or killed greenlet may still start one. */
    if (err == EINVAL || err == ENOMEM || err == EDEADLK || seconds != seconds) {
        errno = seconds != seconds ? EINVAL : err;
        return NULL;
    }
    green_timeout_t *t = malloc(sizeof *t);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    struct green__hub *hub = green__hub_peek();
    t->owner = hub->current;
    t->holder = NULL;
    t->deadline = seconds < 0 ? GREEN__FOREVER : green__now() + seconds;
    t->expired = 0;
    t->scoped = 0;
    green__list_push(&t->owner->timeouts, &t->node);
    return t;
}

int green_timeout_expired(const green_timeout_t *t)
{
    return t ? t->expired : 0;
}

void green_timeout_cancel(green_timeout_t *t)
{
    if (!t)
        return;
    struct green *g = t->owner;
    green__list_remove(&t->node); /* from owner's or holder's list */
    if (g) {
        if (t->expired)
            g->timeouts_expired--;
        if (g->deadline_src == t) {
            /* g is parked with t's deadline armed: arm the next one. */
            g->deadline_src = NULL;
            green__wait_rearm(g);
        }
    }
    free(t);
}

static void expire(struct green *g, green_timeout_t *t)
{
    if (!t->expired) {
        t->expired = 1;
        g->timeouts_expired++;
    }
}

/* The earliest pending deadline; its timeout is left in deadline_src. */
double green__timeouts_deadline(struct green *g)
{
    double best = GREEN__FOREVER;
    struct green__list *it;
    g->deadline_src = NULL;
    green__list_foreach(it, &g->timeouts) {
        green_timeout_t *t = green__container_of(it, green_timeout_t, node);
        if (!t->expired && t->deadline < best) {
            best = t->deadline;
            g->deadline_src = t;
        }
    }
    return best;
}

/* src's deadline passed: it and every timeout due no later expire. */
void green__timeouts_fire(struct green *g, green_timeout_t *src)
{
    struct green__list *it;
    green__list_foreach(it, &g->timeouts) {
        green_timeout_t *t = green__container_of(it, green_timeout_t, node);
        if (t->deadline <= src->deadline)
            expire(g, t);
    }
}

void green__timeouts_detach(struct green *g, int keep)
{
    struct green__list *it, *next;
    for (it = g->timeouts.next; it != &g->timeouts; it = next) {
        next = it->next;
        green_timeout_t *t = green__container_of(it, green_timeout_t, node);
        t->owner = NULL;
        /* A scoped one lives in the caller's storage (maybe on the stack
           that is ending): never kept.  Not kept: unlinked, so a later
           cancel or end does not touch g. */
        t->holder = keep && !t->scoped ? g : NULL;
        if (!t->holder)
            green__list_remove(it);
    }
    g->timeouts_expired = 0;
    g->deadline_src = NULL;
}

void green__timeouts_free(struct green *g)
{
    struct green__list *it;
    while ((it = green__list_pop(&g->timeouts)) != NULL)
        free(green__container_of(it, green_timeout_t, node));
}

/******************************************************************************/
/*  Scoped timeouts in caller storage                                         */
/******************************************************************************/

#define SCOPE_BEGUN 0x5c09e1
#define SCOPE_ENDED 0x5c09e2

GREEN_CT_ASSERT(sizeof(struct green_timeout) <= sizeof(green_timeout_scope_t));
GREEN_CT_ASSERT(_Alignof(struct green_timeout) <=
                _Alignof(green_timeout_scope_t));

int green_timeout_begin(green_timeout_scope_t *s, double seconds)
{
    if (!s || seconds != seconds)
        return green__fail(EINVAL);
    int err = green__can_block(-1);
    /* As green_timeout_start: an expired or killed greenlet may begin. */
    if (err == ENOMEM || err == EDEADLK)
        return green__fail(err);
    struct green_timeout *t = (struct green_timeout *)s;
    struct green__hub *hub = green__hub_peek();
    t->owner = hub->current;
    t->holder = NULL;
    t->deadline = seconds < 0 ? GREEN__FOREVER : green__now() + seconds;
    t->expired = 0;
    t->scoped = SCOPE_BEGUN;
    green__list_push(&t->owner->timeouts, &t->node);
    return 0;
}

int green_timeout_scope_expired(const green_timeout_scope_t *s)
{
    const struct green_timeout *t = (const struct green_timeout *)s;
    return t && (t->scoped == SCOPE_BEGUN || t->scoped == SCOPE_ENDED) &&
           t->expired;
}

int green_timeout_end(green_timeout_scope_t *s)
{
    struct green_timeout *t = (struct green_timeout *)s;
    if (!t || t->scoped != SCOPE_BEGUN)
        return green__fail(EINVAL);
    int expired = t->expired;
    if (t->owner) {
        struct green *g = t->owner;
        if (t->expired)
            g->timeouts_expired--;
        if (g->deadline_src == t)
            g->deadline_src = NULL;
        green__list_remove(&t->node);
    }
    t->owner = NULL;
    t->scoped = SCOPE_ENDED;
    return expired;
}
