/* Hub handles and cross-thread spawning: green_hub_current and
   green_hub_spawn.

   Handles: green_hub_current() returns the calling thread's hub itself
   (created if needed) and registers it, the first time, in a process-wide
   registry of live hubs.  Registering sets up, in the hub's own thread,
   what other threads need to reach it: a mutex-protected FIFO of spawn
   requests and an ev_async watcher on the hub's loop (ev_unref'd: it
   never keeps the loop alive by itself).

   green_hub_spawn(hub, fn, arg) looks the handle up in the registry
   under a read lock, appends the request and ev_async_sends the hub; the
   hub's async callback turns each request into green_spawn (dropping the
   reference at once) in FIFO order, each exactly once.  Called from the
   hub's own thread it is simply green_spawn + green_release.

   Lifetime: a hub's handle is valid from green_hub_current() until that
   hub shuts down (green_shutdown, or its thread exits).  Shutdown takes
   the handle out of the registry first (under the write lock, so no
   spawner is still inside the hub) and drops the requests that have not
   started (their fn never runs).  A spawn to a hub that shut down fails
   with -1/ESRCH and never touches freed memory; the one caveat is that a
   new hub may later be allocated at the same address and would then
   receive it, so a program should keep its hubs alive while other threads
   may still spawn into them (as libuv requires of uv_async_send). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/hub.h"
#include "proc.h"

#define RETRY_AFTER 0.01

/* One green_hub_spawn request. */
struct spawn_req {
    struct spawn_req *next;
    green_fn fn;
    void *arg;
};

/* Per-hub state: what other threads use to reach the hub. */
struct hubq {
    struct green__list reg;     /* in `registry` (under reg_lock) */
    struct green__hub *hub;     /* the hub this handle reaches */
    pthread_mutex_t mu;         /* guards head/tail */
    struct spawn_req *head;     /* FIFO of requests not yet spawned */
    struct spawn_req **tail;
    ev_async async;             /* spawners -> hub; unref'd */
    ev_timer retry;             /* a spawn failed (ENOMEM): try again */
};

static pthread_rwlock_t reg_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct green__list registry = {&registry, &registry};

/* Spawn every queued request, in order.  Hub thread. */
static void drain(struct hubq *q)
{
    pthread_mutex_lock(&q->mu);
    struct spawn_req *r = q->head;
    q->head = NULL;
    q->tail = &q->head;
    pthread_mutex_unlock(&q->mu);
    while (r) {
        green_t *g = green_spawn(r->fn, r->arg);
        if (!g) {
            /* Out of memory or stacks: put the rest back in front of
               whatever arrived meanwhile, and retry soon (the timer keeps
               the loop alive: these greenlets are owed). */
            struct spawn_req *last = r;
            while (last->next)
                last = last->next;
            pthread_mutex_lock(&q->mu);
            last->next = q->head;
            if (!q->head)
                q->tail = &last->next;
            q->head = r;
            pthread_mutex_unlock(&q->mu);
            if (!ev_is_active(&q->retry)) {
                ev_timer_set(&q->retry, RETRY_AFTER, 0);
                ev_timer_start(q->hub->loop, &q->retry);
            }
            return;
        }
        green_release(g); /* it runs on; nobody joins it */
        struct spawn_req *next = r->next;
        free(r);
        r = next;
    }
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    drain(w->data);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    drain(w->data);
}

static void free_requests(struct spawn_req *r)
{
    while (r) {
        struct spawn_req *next = r->next;
        free(r);
        r = next;
    }
}

static void hubq_term(struct green__hub *hub, void *state);
static void hubq_fork(struct green__hub *hub, void *state, int phase);
static struct green__module thread_module = {
    .name = "thread", .term = hubq_term, .fork = hubq_fork};

static void hubq_term(struct green__hub *hub, void *state)
{
    struct hubq *q = state;
    /* Unreachable from other threads once out of the registry; the write
       lock waits for spawners still inside. */
    pthread_rwlock_wrlock(&reg_lock);
    green__list_remove(&q->reg);
    pthread_rwlock_unlock(&reg_lock);
    free_requests(q->head);
    ev_timer_stop(hub->loop, &q->retry);
    ev_ref(hub->loop);
    ev_async_stop(hub->loop, &q->async);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* The registry lock is process-wide: taken even when the forking hub has
   no queue of its own. */
static void hubq_fork(struct green__hub *hub, void *state, int phase)
{
    (void)hub;
    struct hubq *q = state;
    switch (phase) {
    case GREEN__FORK_PREPARE:
        pthread_rwlock_wrlock(&reg_lock);
        if (q)
            pthread_mutex_lock(&q->mu);
        break;
    case GREEN__FORK_PARENT:
        if (q)
            pthread_mutex_unlock(&q->mu);
        pthread_rwlock_unlock(&reg_lock);
        break;
    default:
        /* Only this thread exists in the child: the other hubs are gone
           (their memory stays, unreachable), so only ours stays
           registered.  Requests queued for us still run. */
        pthread_rwlock_init(&reg_lock, NULL);
        green__list_init(&registry);
        if (q) {
            pthread_mutex_init(&q->mu, NULL);
            green__list_init(&q->reg);
            green__list_push(&registry, &q->reg);
        }
        break;
    }
}

/* Register hub, once, in its own thread; 0 or ENOMEM. */
static int hubq_register(struct green__hub *hub)
{
    if (green__module_state(hub, &thread_module))
        return 0;
    struct hubq *q = calloc(1, sizeof *q);
    if (!q || pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q);
        return ENOMEM;
    }
    int err = green__module_attach(hub, &thread_module, q);
    if (err) {
        pthread_mutex_destroy(&q->mu);
        free(q);
        return err;
    }
    q->hub = hub;
    q->tail = &q->head;
    ev_async_init(&q->async, async_cb);
    q->async.data = q;
    ev_async_start(hub->loop, &q->async);
    ev_unref(hub->loop);
    ev_init(&q->retry, retry_cb);
    q->retry.data = q;
    pthread_rwlock_wrlock(&reg_lock);
    green__list_push(&registry, &q->reg);
    pthread_rwlock_unlock(&reg_lock);
    return 0;
}

green_hub_t *green_hub_current(void)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    int err = hubq_register(hub);
    if (err) {
        errno = err;
        return NULL;
    }
    return (green_hub_t *)hub;
}

int green_hub_spawn(green_hub_t *handle, green_fn fn, void *arg)
{
    if (!handle || !fn)
        return green__fail(EINVAL);
    struct green__hub *hub = (struct green__hub *)handle;
    if (hub == green__hub_peek()) {
        /* Our own hub: no queue, no wakeup. */
        green_t *g = green_spawn(fn, arg);
        if (!g)
            return -1;
        green_release(g);
        return 0;
    }
    /* Never creates a hub in the calling thread: plain threads may spawn
       into hubs too.  Registered, so green_fork takes the registry lock
       this thread may hold. */
    if (green__module_register(&thread_module) != 0)
        return green__fail(ENOSPC);
    struct spawn_req *r = malloc(sizeof *r);
    if (!r)
        return green__fail(ENOMEM);
    r->next = NULL;
    r->fn = fn;
    r->arg = arg;
    pthread_rwlock_rdlock(&reg_lock);
    struct hubq *q = NULL;
    struct green__list *it;
    green__list_foreach(it, &registry) {
        struct hubq *c = green__container_of(it, struct hubq, reg);
        if (c->hub == hub) {
            q = c;
            break;
        }
    }
    if (!q) {
        pthread_rwlock_unlock(&reg_lock);
        free(r);
        return green__fail(ESRCH);
    }
    pthread_mutex_lock(&q->mu);
    *q->tail = r;
    q->tail = &r->next;
    pthread_mutex_unlock(&q->mu);
    /* Still under the read lock: the hub cannot stop the watcher or free
       its loop before this returns. */
    ev_async_send(hub->loop, &q->async);
    pthread_rwlock_unlock(&reg_lock);
    return 0;
}
