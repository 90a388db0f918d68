/* Greenlet-local storage (gevent.local, pthread_key_*).

   Keys are process-wide, like pthread keys: a slot in a table of
   GREEN_KEYS_MAX destructors.  A key's value carries its slot in the
   low bits and the slot's generation above them, so a deleted key's
   stale values never show through a new key that reuses the slot, and
   deleting needs no walk over the greenlets.

   Values live in the greenlet: an array indexed by slot, allocated on
   the first green_setspecific, so a greenlet that never sets a key pays
   one NULL pointer.  green_getspecific is an index and a compare. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "greenlet.h"

#define SLOT_BITS 10
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define DESTRUCTOR_ROUNDS 4 /* PTHREAD_DESTRUCTOR_ITERATIONS */

GREEN_CT_ASSERT(GREEN_KEYS_MAX <= (1u << SLOT_BITS));

struct green__local {
    green_key_t key;   /* the key the value was set for (0: none) */
    void *value;
};

struct key_slot {
    void (*destructor)(void *);
    unsigned gen;      /* bumped at every create: >= 1 while used */
    int used;
};

static struct key_slot keys[GREEN_KEYS_MAX];
static pthread_mutex_t keys_mu = PTHREAD_MUTEX_INITIALIZER;

int green_key_create(green_key_t *key, void (*destructor)(void *))
{
    if (!key)
        return green__fail(EINVAL);
    pthread_mutex_lock(&keys_mu);
    for (unsigned i = 0; i < GREEN_KEYS_MAX; i++) {
        struct key_slot *k = &keys[i];
        if (k->used)
            continue;
        k->used = 1;
        k->destructor = destructor;
        /* Generations wrap within the bits left above the slot. */
        if (++k->gen >= (1u << (32 - SLOT_BITS)))
            k->gen = 1;
        *key = k->gen << SLOT_BITS | i;
        pthread_mutex_unlock(&keys_mu);
        return 0;
    }
    pthread_mutex_unlock(&keys_mu);
    return green__fail(EAGAIN);
}

static int key_live(green_key_t key)
{
    const struct key_slot *k = &keys[key & SLOT_MASK];
    return k->used && (key >> SLOT_BITS) == k->gen;
}

int green_key_delete(green_key_t key)
{
    pthread_mutex_lock(&keys_mu);
    int ok = key_live(key);
    if (ok)
        keys[key & SLOT_MASK].used = 0;
    pthread_mutex_unlock(&keys_mu);
    return ok ? 0 : green__fail(EINVAL);
}

/* This thread's hub, cached in initial-exec TLS (one fs-relative load;
   the hub's own TLS variable is general-dynamic, a __tls_get_addr call
   in a shared library).  Set on first use, cleared by the hub's
   teardown (green__locals_hub_gone), so it never outlives the hub. */
static __thread struct green__hub *cached_hub
    __attribute__((tls_model("initial-exec")));

void green__locals_hub_gone(void)
{
    cached_hub = NULL;
}

void *green_getspecific(green_key_t key)
{
    struct green__hub *hub = cached_hub;
    if (GREEN_UNLIKELY(!hub)) {
        hub = green__hub_peek();
        if (!hub)
            return NULL;
        cached_hub = hub;
    }
    const struct green *g = hub->current;
    unsigned i = key & SLOT_MASK;
    if (i < g->nlocals && g->locals[i].key == key)
        return g->locals[i].value;
    return NULL;
}

/* Make room for slot i in g's array: 0 or ENOMEM. */
static int locals_grow(struct green *g, unsigned i)
{
    if (i < g->nlocals)
        return 0;
    unsigned n = g->nlocals ? g->nlocals : 4;
    while (n <= i)
        n *= 2;
    struct green__local *l = realloc(g->locals, n * sizeof *l);
    if (!l)
        return ENOMEM;
    for (unsigned k = g->nlocals; k < n; k++)
        l[k] = (struct green__local){0, NULL};
    g->locals = l;
    g->nlocals = n;
    return 0;
}

int green_setspecific(green_key_t key, const void *value)
{
    pthread_mutex_lock(&keys_mu);
    int live = key_live(key);
    pthread_mutex_unlock(&keys_mu);
    if (!live)
        return green__fail(EINVAL);
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    struct green *g = hub->current;
    unsigned i = key & SLOT_MASK;
    if (!value && i >= g->nlocals)
        return 0; /* nothing to clear: no allocation */
    int err = locals_grow(g, i);
    if (err)
        return green__fail(err);
    g->locals[i].key = value ? key : 0;
    g->locals[i].value = (void *)value;
    return 0;
}

/* Run one round of destructors; 1 if any ran. */
static int destructor_round(struct green *g)
{
    int ran = 0;
    for (unsigned i = 0; i < g->nlocals; i++) {
        struct green__local *l = &g->locals[i];
        if (!l->key)
            continue;
        green_key_t key = l->key;
        void *value = l->value;
        /* Cleared before the call, as pthread does: a destructor that
           sets it again asks for another round. */
        l->key = 0;
        l->value = NULL;
        pthread_mutex_lock(&keys_mu);
        void (*d)(void *) = key_live(key) ? keys[i].destructor : NULL;
        pthread_mutex_unlock(&keys_mu);
        if (d && value) {
            d(value);
            ran = 1;
        }
    }
    return ran;
}

void green__locals_release(struct green *g)
{
    for (int r = 0; r < DESTRUCTOR_ROUNDS && g->locals; r++)
        if (!destructor_round(g))
            break;
    free(g->locals);
    g->locals = NULL;
    g->nlocals = 0;
}
