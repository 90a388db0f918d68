/* The hub: per-thread scheduler state, the run queue, the switch, the
   wait primitive (wait.h), the deadline heap, the module table and
   green_run/sleep/yield.

   Scheduling in one paragraph: runnable greenlets sit in a FIFO.  A
   greenlet that yields or parks switches straight to the head of that
   FIFO (one swapcontext, no hub in between).  A round runs every
   greenlet that was runnable when it began (all that the last poll
   woke, however many) plus up to GREEN__BATCH made runnable during it;
   then, or when the FIFO is empty, the greenlet switches to the hub,
   which polls libev (without blocking if anything is runnable), turns
   fired watchers into runnable greenlets and starts the next round.  So
   a yield storm cannot starve timers or I/O, a quiet program sleeps in
   epoll_wait, and woken greenlets never wait behind a poll that would
   only report their still-unread fds again. */
#include "hub.h"
#include "greenlet.h"
#include "timeout.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Direct greenlet-to-greenlet switches between two polls of the loop. */
#define GREEN__BATCH 64

__thread struct green__hub *green__tls_hub
    __attribute__((tls_model("initial-exec")));

static pthread_key_t hub_key;
static pthread_once_t hub_key_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t next_id = 1;

uint64_t green__next_id_block(struct green__hub *hub)
{
    hub->id_next = atomic_fetch_add_explicit(&next_id, GREEN__ID_BLOCK,
                                             memory_order_relaxed);
    hub->id_end = hub->id_next + GREEN__ID_BLOCK;
    return hub->id_next++;
}

/******************************************************************************/
/*  Hub creation and teardown                                                 */
/******************************************************************************/

static void hub_free(struct green__hub *hub);

static void hub_key_destroy(void *p)
{
    /* A thread exits without green_shutdown: free its hub, unless it is
       exiting from inside a greenlet (its stack would be freed under it). */
    struct green__hub *hub = p;
    if (hub && green__tls_hub == hub && hub->current == &hub->main)
        hub_free(hub);
}

static void main_atexit(void)
{
    struct green__hub *hub = green__tls_hub;
    if (hub && hub->current == &hub->main && !hub->embedded) {
        hub->exiting = 1;
        hub_free(hub);
    }
}

static void hub_key_init(void)
{
    green__assert(pthread_key_create(&hub_key, hub_key_destroy) == 0);
    atexit(main_atexit);
}

static void init_special(struct green__hub *hub, struct green *g,
                         enum green__kind kind, const char *name)
{
    g->hub = hub;
    g->kind = kind;
    g->refs = 1;
    g->state = GREEN__RUNNING;
    g->entered = 1;
    g->scheduled = 1;
    g->id = green__next_id(hub);
    g->wait_fd = -1;
    strcpy(g->name, name);
    green__list_init(&g->node);
    green__list_init(&g->all);
    green__list_init(&g->timeouts);
    green__waitq_init(&g->joiners);
    g->links_tail = &g->links;
}

static void heap_fire(struct ev_loop *loop, ev_timer *w, int revents);
static void hub_main(void);
static void embed_check(struct ev_loop *loop, ev_check *w, int revents);
static void embed_idle(struct ev_loop *loop, ev_idle *w, int revents);


/* Hooks run on every new hub (green__hub_on_create).  Written by
   constructors before main, read afterwards: no lock. */
static void (*create_hooks[4])(struct green__hub *);
static int create_hook_count;

void green__hub_on_create(void (*fn)(struct green__hub *hub))
{
    if (create_hook_count < 4)
        create_hooks[create_hook_count++] = fn;
}

static void run_create_hooks(struct green__hub *hub)
{
    for (int i = 0; i < create_hook_count; i++)
        create_hooks[i](hub);
}

/* Create this thread's hub on `loop` (NULL: a loop of our own). */
static struct green__hub *hub_create(struct ev_loop *loop)
{
    pthread_once(&hub_key_once, hub_key_init);
    struct green__hub *hub = calloc(1, sizeof *hub);
    if (!hub) {
        errno = ENOMEM;
        return NULL;
    }
    hub->thread = pthread_self();
    green__list_init(&hub->runq);
    green__list_init(&hub->live);
    green__list_init(&hub->linkq);
    init_special(hub, &hub->main, GREEN__KIND_MAIN, "main");
    init_special(hub, &hub->hubg, GREEN__KIND_HUB, "hub");
    green__ctx_init_thread(&hub->main.ctx);
    if (loop) {
        /* Embedded: callbacks run on the thread's own stack, which is
           then the hub; there is no separate main greenlet. */
        hub->loop = loop;
        hub->embedded = 1;
        hub->hubg.ctx = hub->main.ctx;
        hub->current = &hub->hubg;
        hub->main.state = GREEN__DONE;
    } else {
        /* Never libev's default loop, on any thread: its built-in SIGCHLD
           watcher would reap every child of the process (a plain
           waitpid() elsewhere would get ECHILD), and the application may
           want that loop for itself (green_hub_attach). */
        loop = ev_loop_new(EVFLAG_AUTO);
        if (!loop) {
            free(hub);
            errno = ENOMEM;
            return NULL;
        }
        hub->loop = loop;
        hub->own_loop = 1;
        if (green__stack_get(&hub->stacks, green__stack_default(),
                             &hub->hubg.stack) != 0) {
            ev_loop_destroy(loop);
            free(hub);
            errno = ENOMEM;
            return NULL;
        }
        hub->hubg.state = GREEN__RUNNABLE;
        green__ctx_make(&hub->hubg.ctx, green__stack_lo(&hub->hubg.stack),
                        green__stack_size(&hub->hubg.stack), hub_main);
        hub->current = &hub->main;
    }
    ev_init(&hub->timer, heap_fire);
    hub->timer.data = hub;
    ev_check_init(&hub->check, embed_check);
    hub->check.data = hub;
    ev_set_priority(&hub->check, EV_MINPRI);
    ev_idle_init(&hub->idle, embed_idle);
    hub->idle.data = hub;
    if (hub->embedded) {
        /* The check watcher must not keep the application's loop alive. */
        ev_check_start(loop, &hub->check);
        ev_unref(loop);
    }
    green__tls_hub = hub;
    pthread_setspecific(hub_key, hub);
    run_create_hooks(hub);
    return hub;
}

struct green__hub *green__hub_create(void)
{
    return hub_create(NULL);
}

static void wait_undo(struct green__wait *w);

/* Greenlet-local destructors at shutdown run on the thread's stack as if
   in the hub, so a destructor that blocks fails with EDEADLK instead of
   parking the teardown. */
static void locals_release_in_hub(struct green__hub *hub, struct green *g)
{
    struct green *cur = hub->current;
    hub->current = &hub->hubg;
    green__locals_release(g);
    hub->current = cur;
}

/* Drop a greenlet that will never run again (shutdown). */
static void discard_greenlet(struct green__hub *hub, struct green *g)
{
    /* Its clauses live on its stack, which goes with its last reference:
       their undo takes them off whatever source (event, lock, fd...)
       points at them. */
    if (g->wait)
        wait_undo(g->wait);
    if (g->locals)
        locals_release_in_hub(hub, g);
    /* Before the stack goes: scoped timeouts may live on it. */
    green__timeouts_detach(g, 1);
    green__list_remove(&g->node);
    green__list_remove(&g->all);
    green__deadline_clear(hub, g);
    green__ctx_destroy(&g->ctx);
    g->state = GREEN__DONE;
    if (!g->err)
        g->err = ECANCELED;
    struct green__list *it;
    while ((it = green__list_pop(&g->joiners.head)) != NULL) {
        /* Joiners are being discarded too; nothing to wake. */
    }
    if (g->scheduled)
        green__unref(g);
}

static void hub_free(struct green__hub *hub)
{
    green__assert(hub == green__tls_hub);
    green__after_switch(hub); /* the last zombie */
    struct green__list *it;
    while ((it = green__list_pop(&hub->linkq)) != NULL) {
        struct green *g = green__container_of(it, struct green, node);
        green__unref(g);
    }
    while (!green__list_empty(&hub->live)) {
        struct green *g =
            green__container_of(hub->live.next, struct green, all);
        discard_greenlet(hub, g);
    }
    green__timeouts_detach(&hub->main, 0);
    if (hub->main.locals)
        locals_release_in_hub(hub, &hub->main);
    if (hub->hubg.locals)
        locals_release_in_hub(hub, &hub->hubg);
    /* Then the modules, newest first: no clause points into their state
       any more (the discarded greenlets' undos ran). */
    while (hub->mod_count > 0) {
        struct green__module *m = hub->mod_order[--hub->mod_count];
        void *state = hub->mod_state[m->slot];
        hub->mod_state[m->slot] = NULL;
        if (m->term)
            m->term(hub, state);
    }
    ev_timer_stop(hub->loop, &hub->timer);
    ev_idle_stop(hub->loop, &hub->idle);
    if (ev_is_active(&hub->check)) {
        ev_ref(hub->loop);
        ev_check_stop(hub->loop, &hub->check);
    }
    free(hub->heap);
    green__stack_put(&hub->stacks, &hub->hubg.stack);
    green__stack_put(&hub->stacks, &hub->spare);
    green__stack_cache_drain(&hub->stacks);
    /* Embedded, hubg's context is the thread's own (its TSan fiber too). */
    if (!hub->embedded)
        green__ctx_destroy(&hub->hubg.ctx);
    if (hub->own_loop)
        ev_loop_destroy(hub->loop);
    if (hub->segv_ready)
        green__segv_thread_term();
    green__tls_hub = NULL;
    green__locals_hub_gone();
    pthread_setspecific(hub_key, NULL);
    free(hub);
}

void green_shutdown(void)
{
    struct green__hub *hub = green__tls_hub;
    if (!hub)
        return;
    /* Only from outside every greenlet: the thread's own stack. */
    if (hub->embedded ? hub->current != &hub->hubg
                      : hub->current != &hub->main)
        return;
    /* From a link callback of an embedded hub: the link runner is still
       using the hub; detach once this round of the hub is over. */
    if (hub->in_link) {
        hub->shutdown_pending = 1;
        return;
    }
    hub_free(hub);
}

/******************************************************************************/
/*  Switching                                                                 */
/******************************************************************************/

/* Runs first thing after every switch, on the new stack: the greenlet
   that finished before it is off its stack now, so release it. */
void green__after_switch(struct green__hub *hub)
{
    struct green *z = hub->zombie;
    if (GREEN_UNLIKELY(z != NULL)) {
        hub->zombie = NULL;
        /* Its TSan fiber now (TSan allows 8128 at once, and done
           greenlets may stay referenced); its stack goes with its last
           reference. */
        green__ctx_destroy(&z->ctx);
        green__unref(z);
    }
}

/* Switch from the current context to `to`; returns when switched back.
   errno is saved and restored: each greenlet sees its own. */
static void switch_to(struct green__hub *hub, struct green *to)
{
    struct green *from = hub->current;
    if (from == to) {
        to->state = GREEN__RUNNING;
        return;
    }
    from->saved_errno = errno;
    /* Atomic stores (plain moves on x86): the blocked-loop monitor thread
       reads both fields; release publishes the greenlet's id and name. */
    __atomic_store_n(&hub->current, to, __ATOMIC_RELEASE);
    to->state = GREEN__RUNNING;
    __atomic_store_n(&hub->switches, hub->switches + 1, __ATOMIC_RELAXED);
    green__ctx_switch(&from->ctx, &to->ctx);
    /* Resumed: someone switched back to `from`. */
    green__after_switch(hub);
    errno = from->saved_errno;
}

/* Start loading the greenlets that run after the one being dispatched:
   each lives on its own stack page, and when a million of them wake at
   once (a kill, a broadcast) every visit misses the TLB and the cache.
   Two stages, so that no step waits for memory: the next greenlet's
   block was requested one dispatch ago, so its links and saved stack
   pointer are at hand; request its stack, and the block after it. */
#define PREFETCH_QUEUE 64
static __attribute__((noinline)) void prefetch_runq(struct green__hub *hub)
{
    struct green__list *n = hub->runq.next;
    if (n == &hub->runq)
        return;
    struct green *g = green__container_of(n, struct green, node);
    green__prefetch(n->next); /* the block after g: its node's line */
    for (size_t off = 0; off < sizeof *g; off += 64)
        green__prefetch((char *)g + off);
    green__ctx_prefetch(&g->ctx);
}

/* The next greenlet of this round, or NULL when the hub should poll:
   greenlets runnable when the round began always run; later ones use
   the round's budget of GREEN__BATCH. */
static inline __attribute__((always_inline)) struct green *
runq_next(struct green__hub *hub)
{
    struct green__list *n = hub->runq.next;
    if (n == &hub->runq)
        return NULL;
    struct green *g = green__container_of(n, struct green, node);
    if (g->run_seq >= hub->round_end) {
        if (hub->budget <= 0)
            return NULL;
        hub->budget--;
    }
    green__list_remove(n);
    /* More than PREFETCH_QUEUE were made runnable after g (an upper
       bound of the queue behind it): its next ones are likely cold.  A
       short queue (ping-pong) is hot, and would only pay for the hint. */
    if (hub->run_seq - g->run_seq > PREFETCH_QUEUE)
        prefetch_runq(hub);
    return g;
}

static void schedule(struct green__hub *hub)
{
    /* Link callbacks are due "at once, from the hub": go there first. */
    struct green *next =
        green__list_empty(&hub->linkq) ? runq_next(hub) : NULL;
    /* Empty queue or round over: the hub polls libev, then dispatches
       the queue again. */
    switch_to(hub, next ? next : &hub->hubg);
}

_Noreturn void green__exit_current(struct green__hub *hub)
{
    struct green *g = hub->current;
    struct green *next = NULL;
    /* Link callbacks run in the hub, so go there when some are due. */
    if (green__list_empty(&hub->linkq))
        next = runq_next(hub);
    if (!next)
        next = &hub->hubg;
    /* Whoever runs next drops the scheduler's reference (after_switch):
       we are off our stack then; it goes with the last reference. */
    hub->zombie = g;
    __atomic_store_n(&hub->current, next, __ATOMIC_RELEASE);
    next->state = GREEN__RUNNING;
    __atomic_store_n(&hub->switches, hub->switches + 1, __ATOMIC_RELAXED);
    green__ctx_switch_final(&g->ctx, &next->ctx);
}

void green__hub_kick(struct green__hub *hub)
{
    if (hub->embedded && !ev_is_active(&hub->idle))
        ev_idle_start(hub->loop, &hub->idle);
}

void green__make_runnable(struct green__hub *hub, struct green *g)
{
    g->state = GREEN__RUNNABLE;
    g->run_seq = hub->run_seq++;
    green__list_push(&hub->runq, &g->node);
    if (hub->embedded)
        green__hub_kick(hub);
}

int green__wake(struct green *g, int err)
{
    if (g->state != GREEN__WAITING)
        return 0;
    g->wait->err = err;
    green__make_runnable(g->hub, g);
    return 1;
}

/* Run link callbacks and one round of runnable greenlets (see the top
   comment).  Runs in the hub context only. */
static void dispatch(struct green__hub *hub)
{
    green__after_switch(hub);
    hub->round_end = hub->run_seq;
    hub->budget = GREEN__BATCH;
    for (;;) {
        if (!green__list_empty(&hub->linkq))
            green__run_links(hub);
        struct green *g = runq_next(hub);
        if (!g)
            break;
        switch_to(hub, g);
    }
}

static int hub_has_work(struct green__hub *hub)
{
    return !green__list_empty(&hub->runq) ||
           !green__list_empty(&hub->linkq);
}

/* The standalone hub greenlet. */
static void hub_main(void)
{
    struct green__hub *hub = green__tls_hub;
    green__ctx_entered(&hub->hubg.ctx);
    for (;;) {
        dispatch(hub);
        if (hub_has_work(hub)) {
            ev_run(hub->loop, EVRUN_NOWAIT);
            continue;
        }
        if (ev_run(hub->loop, EVRUN_ONCE) || hub_has_work(hub))
            continue;
        /* Nothing runnable and no active watcher: nothing can ever wake
           a parked greenlet again (gevent's LoopExit).  Hand control back
           to main: green_run succeeded if nothing is alive, any other
           wait of main fails with EDEADLK. */
        int ok = hub->main_in_run && hub->alive == 0;
        green__assert(hub->main.state == GREEN__WAITING);
        green__wake(&hub->main, ok ? 0 : EDEADLK);
    }
}

/* Embedded hub: after every poll of the application's loop, run what
   became runnable.  Lowest priority, so it runs after the callbacks that
   woke greenlets in this iteration. */
static void embed_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)revents;
    struct green__hub *hub = w->data;
    dispatch(hub);
    if (hub->shutdown_pending) {
        hub_free(hub);
        return;
    }
    if (hub_has_work(hub))
        green__hub_kick(hub);
    else if (ev_is_active(&hub->idle))
        ev_idle_stop(loop, &hub->idle);
}

/* Active only while something is runnable: keeps the poll from blocking. */
static void embed_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/******************************************************************************/
/*  Deadline heap: one ev_timer for every parked greenlet's deadline        */
/******************************************************************************/

/* Ordered by deadline, then by arming order, so equal deadlines fire
   first-armed-first and runs are reproducible.  The keys live in the
   entries: a sift compares within the array, never across greenlets'
   blocks (each on its own stack page: a TLB miss apiece with many). */
static int heap_less(const struct green__heap_ent *a,
                     const struct green__heap_ent *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

static void heap_place(struct green__hub *hub, size_t i,
                       struct green__heap_ent e)
{
    hub->heap[i] = e;
    if (e.g)
        e.g->heap_idx = i;
}

static void heap_up(struct green__hub *hub, size_t i)
{
    struct green__heap_ent e = hub->heap[i];
    while (i > 1 && heap_less(&e, &hub->heap[i / 2])) {
        heap_place(hub, i, hub->heap[i / 2]);
        i /= 2;
    }
    heap_place(hub, i, e);
}

static void heap_down(struct green__hub *hub, size_t i)
{
    struct green__heap_ent e = hub->heap[i];
    for (;;) {
        size_t c = 2 * i;
        if (c > hub->heap_len)
            break;
        if (c + 1 <= hub->heap_len &&
            heap_less(&hub->heap[c + 1], &hub->heap[c]))
            c++;
        if (!heap_less(&hub->heap[c], &e))
            break;
        heap_place(hub, i, hub->heap[c]);
        i = c;
    }
    heap_place(hub, i, e);
}

/* Pop the entries cleared while on top, so heap[1] is a live one (or
   the heap is empty). */
static void heap_trim(struct green__hub *hub)
{
    while (hub->heap_len > 0 && !hub->heap[1].g) {
        hub->heap_dead--;
        hub->heap[1] = hub->heap[hub->heap_len--];
        if (hub->heap_len > 0)
            heap_down(hub, 1);
    }
}

/* Drop every cleared entry and heapify the rest: O(n), when over half
   the entries are cleared, so each clear costs O(1) amortized. */
static void heap_rebuild(struct green__hub *hub)
{
    size_t n = 0;
    for (size_t i = 1; i <= hub->heap_len; i++)
        if (hub->heap[i].g)
            heap_place(hub, ++n, hub->heap[i]);
    hub->heap_len = n;
    hub->heap_dead = 0;
    for (size_t i = n / 2; i >= 1; i--)
        heap_down(hub, i);
}

static void heap_rearm(struct green__hub *hub)
{
    heap_trim(hub);
    if (hub->heap_len == 0) {
        ev_timer_stop(hub->loop, &hub->timer);
        return;
    }
    /* Refresh libev's cached time so the timer is never early. */
    ev_now_update(hub->loop);
    double after = hub->heap[1].deadline - green__now();
    ev_timer_stop(hub->loop, &hub->timer);
    ev_timer_set(&hub->timer, after > 0 ? after : 0, 0);
    ev_timer_start(hub->loop, &hub->timer);
}

int green__deadline_set(struct green__hub *hub, struct green *g,
                        double deadline)
{
    green__assert(g->heap_idx == 0);
    if (hub->heap_len + 1 >= hub->heap_cap) {
        size_t cap = hub->heap_cap ? hub->heap_cap * 2 : 64;
        struct green__heap_ent *h = realloc(hub->heap, cap * sizeof *h);
        if (!h)
            return ENOMEM;
        hub->heap = h;
        hub->heap_cap = cap;
    }
    hub->heap[++hub->heap_len] = (struct green__heap_ent){
        .deadline = deadline, .seq = hub->heap_seq++, .g = g};
    heap_up(hub, hub->heap_len);
    if (g->heap_idx == 1)
        heap_rearm(hub);
    return 0;
}

void green__deadline_clear(struct green__hub *hub, struct green *g)
{
    size_t i = g->heap_idx;
    if (i == 0)
        return;
    g->heap_idx = 0;
    /* Lazily: the entry stays, emptied, until it comes to the top or a
       rebuild drops it.  Removing it at once would sift through other
       greenlets' blocks, and a kill of many sleepers pays that each. */
    hub->heap[i].g = NULL;
    hub->heap_dead++;
    if (hub->heap_dead == hub->heap_len) {
        /* No deadline left: the timer must not keep the loop alive
           (green_run, an embedding application's ev_run). */
        hub->heap_len = hub->heap_dead = 0;
        ev_timer_stop(hub->loop, &hub->timer);
    } else if (hub->heap_dead > hub->heap_len / 2 && hub->heap_dead >= 64) {
        heap_rebuild(hub);
    }
    /* Otherwise the timer may fire early for nothing; heap_fire trims
       and re-arms. */
}


static void heap_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct green__hub *hub = w->data;
    double now = green__now();
    for (;;) {
        heap_trim(hub);
        if (hub->heap_len == 0 || hub->heap[1].deadline > now)
            break;
        struct green *g = hub->heap[1].g;
        green__deadline_clear(hub, g);
        if (g->state == GREEN__WAITING) {
            if (g->deadline_src)
                green__timeouts_fire(g, g->deadline_src);
            green__wake(g, ETIMEDOUT);
        } else if (g->state == GREEN__NEW) {
            green__make_runnable(hub, g); /* green_start_later's delay */
        }
    }
    heap_rearm(hub);
}

/******************************************************************************/
/*  The wait primitive (wait.h)                                               */
/******************************************************************************/

/* The checks after the argument ones, in the contract's order: a hub
   (ENOMEM), a context that can block (EDEADLK), then unless
   GREEN__WAIT_NOCANCEL a kill (ECANCELED) and an expired green_timeout
   (ETIMEDOUT).  0 with *gp = the current greenlet, or the errno. */
static int context_check(int flags, struct green **gp)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return ENOMEM;
    if (green__in_hub(hub))
        return EDEADLK;
    struct green *g = hub->current;
    if (!(flags & GREEN__WAIT_NOCANCEL)) {
        if (green__cancelled(g))
            return ECANCELED;
        if (g->timeouts_expired)
            return ETIMEDOUT;
    }
    *gp = g;
    return 0;
}

int green__can_block(double timeout)
{
    struct green *g;
    return timeout != timeout ? EINVAL : context_check(0, &g);
}

int green__wait_begin(struct green__wait *w, double timeout,
                      const char *what, int flags)
{
    if (timeout != timeout)
        return EINVAL;
    if (timeout == 0)
        return EAGAIN;
    struct green *g;
    int err = context_check(flags, &g);
    if (err)
        return err;
    w->g = g;
    w->first = NULL;
    w->winner = NULL;
    w->timeout = timeout;
    w->own_deadline = 0;
    w->nfired = 0;
    w->err = 0;
    w->flags = flags;
    w->fd = -1;
    w->what = what;
    return 0;
}

void green__wait_add(struct green__wait *w, struct green__clause *c,
                     void (*undo)(struct green__clause *), void *data)
{
    green__list_init(&c->node);
    c->g = w->g;
    c->w = w;
    c->next = w->first;
    c->undo = undo;
    c->data = data;
    c->err = 0;
    c->fired = 0;
    c->notify = 0;
    w->first = c;
}

/* Every clause leaves its source (whether it fired or not). */
static void wait_undo(struct green__wait *w)
{
    for (struct green__clause *c = w->first; c; c = c->next) {
        if (c->undo)
            c->undo(c);
        else if (green__list_linked(&c->node))
            green__list_remove(&c->node);
        c->w = NULL;
    }
}

/* The deadline of w: the earlier of its own timeout and g's pending
   green_timeouts (whose winner is left in g->deadline_src).  *expired is
   set when a green_timeout is already due. */
static double wait_deadline(struct green__wait *w, int *expired)
{
    struct green *g = w->g;
    g->deadline_src = NULL;
    *expired = 0;
    int scoped = !(w->flags & GREEN__WAIT_NOCANCEL) &&
                 !green__list_empty(&g->timeouts);
    if (w->timeout < 0 && !scoped)
        return GREEN__FOREVER; /* no clock read for an infinite wait */
    double now = green__now();
    if (w->own_deadline == 0)
        w->own_deadline = w->timeout > 0 ? now + w->timeout : GREEN__FOREVER;
    double deadline = w->own_deadline;
    if (scoped) {
        double t = green__timeouts_deadline(g);
        if (t <= deadline) {
            deadline = t;
            *expired = t <= now;
        } else {
            g->deadline_src = NULL;
        }
    }
    return deadline;
}

int green__wait_park(struct green__wait *w)
{
    struct green *g = w->g;
    struct green__hub *hub = g->hub;
    int expired;
    double deadline = wait_deadline(w, &expired);
    int err = 0;
    if (expired) {
        green__timeouts_fire(g, g->deadline_src);
        err = ETIMEDOUT;
    } else if (deadline < GREEN__FOREVER) {
        err = green__deadline_set(hub, g, deadline);
    }
    if (err) {
        wait_undo(w);
        return err;
    }
    g->wait = w;
    g->wait_what = w->what;
    g->wait_fd = w->fd;
    g->state = GREEN__WAITING;
    g->wait_since = ev_now(hub->loop);
    schedule(hub);
    /* Woken: by a clause, a kill (ECANCELED), the deadline (ETIMEDOUT)
       or the hub (EDEADLK). */
    green__deadline_clear(hub, g);
    wait_undo(w);
    g->wait = NULL;
    g->wait_what = NULL;
    g->wait_fd = -1;
    return w->winner ? w->winner->err : w->err;
}

void green__wait_cancel(struct green__wait *w)
{
    wait_undo(w);
}

int green__clause_fire(struct green__clause *c, int err)
{
    struct green__wait *w = c->w;
    if (!w)
        return 0;
    c->err = err;
    if (!c->fired)
        c->fired = ++w->nfired;
    struct green *g = c->g;
    if (g->state != GREEN__WAITING || g->wait != w || w->winner)
        return 0;
    w->winner = c;
    green__make_runnable(g->hub, g);
    return 1;
}

void green__wait_rearm(struct green *g)
{
    struct green__wait *w = g->wait;
    if (g->state != GREEN__WAITING || !w)
        return;
    struct green__hub *hub = g->hub;
    green__deadline_clear(hub, g);
    int expired;
    double deadline = wait_deadline(w, &expired);
    if (expired) {
        green__timeouts_fire(g, g->deadline_src);
        green__wake(g, ETIMEDOUT);
    } else if (deadline < GREEN__FOREVER &&
               green__deadline_set(hub, g, deadline) != 0) {
        green__wake(g, ENOMEM);
    }
}

/******************************************************************************/
/*  Waitq sources                                                             */
/******************************************************************************/

void green__waitq_add(struct green__wait *w, struct green__waitq *q,
                      struct green__clause *c, void *data)
{
    green__wait_add(w, c, NULL, data);
    green__list_push(&q->head, &c->node);
}

int green__waitq_wait(struct green__waitq *q, struct green__clause *c,
                      double timeout, const char *what)
{
    struct green__wait w;
    int err = green__wait_begin(&w, timeout, what, 0);
    if (!err) {
        green__waitq_add(&w, q, c, c->data);
        err = green__wait_park(&w);
    }
    return err ? green__fail(err) : 0;
}

struct green__clause *green__waitq_wake_one(struct green__waitq *q, int err)
{
    struct green__list *n = q->head.next;
    while (n != &q->head) {
        struct green__list *next = n->next;
        struct green__clause *c =
            green__container_of(n, struct green__clause, node);
        if (!c->notify) {
            green__list_remove(n);
            /* A clause whose wait already ended (a kill, its deadline) is
               skipped: the wake-up goes to the next one. */
            if (green__clause_fire(c, err))
                return c;
        }
        n = next;
    }
    return NULL;
}

size_t green__waitq_wake_all(struct green__waitq *q, int err)
{
    size_t n = 0;
    while (green__waitq_wake_one(q, err))
        n++;
    /* Watchers too: the object is set, closed or going away. */
    struct green__list *it;
    while ((it = green__list_pop(&q->head)) != NULL)
        green__clause_fire(green__container_of(it, struct green__clause, node),
                           err);
    return n;
}

void green__waitq_add_notify(struct green__wait *w, struct green__waitq *q,
                             struct green__clause *c)
{
    green__waitq_add(w, q, c, NULL);
    c->notify = 1;
}

void green__waitq_notify(struct green__waitq *q, int err)
{
    struct green__list *it;
    green__list_foreach(it, &q->head) {
        struct green__clause *c =
            green__container_of(it, struct green__clause, node);
        if (c->notify)
            green__clause_fire(c, err);
    }
}

int green__waitq_has_taker(const struct green__waitq *q)
{
    const struct green__list *it;
    green__list_foreach(it, &q->head) {
        const struct green__clause *c =
            green__container_of(it, struct green__clause, node);
        if (!c->notify && c->w && c->g->state == GREEN__WAITING &&
            c->g->wait == c->w && !c->w->winner)
            return 1;
    }
    return 0;
}

/******************************************************************************/
/*  The module table                                                          */
/******************************************************************************/

static struct green__module *modules[GREEN__MODULES_MAX + 1];
static int module_count;
static pthread_mutex_t module_mu = PTHREAD_MUTEX_INITIALIZER;

/* m's process-wide slot, assigned on first use: 0 or ENOSPC. */
int green__module_register(struct green__module *m)
{
    if (__atomic_load_n(&m->slot, __ATOMIC_ACQUIRE))
        return 0;
    int err = 0;
    pthread_mutex_lock(&module_mu);
    if (!m->slot) {
        if (module_count == GREEN__MODULES_MAX) {
            err = ENOSPC;
        } else {
            modules[++module_count] = m;
            __atomic_store_n(&m->slot, module_count, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&module_mu);
    return err;
}

int green__module_attach(struct green__hub *hub, struct green__module *m,
                         void *state)
{
    int err = green__module_register(m);
    if (err)
        return err;
    green__assert(hub->mod_state[m->slot] == NULL);
    hub->mod_state[m->slot] = state;
    hub->mod_order[hub->mod_count++] = m;
    return 0;
}

void *green__module_new(struct green__hub *hub, struct green__module *m,
                        size_t size)
{
    void *state = calloc(1, size);
    if (!state)
        return NULL;
    int err = green__module_attach(hub, m, state);
    if (err) {
        free(state);
        errno = err;
        return NULL;
    }
    return state;
}

void green__module_detach(struct green__hub *hub, struct green__module *m)
{
    if (!m->slot || !hub->mod_state[m->slot])
        return;
    hub->mod_state[m->slot] = NULL;
    for (int i = 0; i < hub->mod_count; i++) {
        if (hub->mod_order[i] == m) {
            memmove(&hub->mod_order[i], &hub->mod_order[i + 1],
                    (size_t)(hub->mod_count - i - 1) * sizeof m);
            hub->mod_count--;
            break;
        }
    }
}

void green__modules_fork(struct green__hub *hub, int phase)
{
    /* Prepare takes locks newest module first; parent and child release
       or rebuild them oldest first (pthread_atfork's order). */
    int n = __atomic_load_n(&module_count, __ATOMIC_ACQUIRE);
    for (int k = 1; k <= n; k++) {
        int i = phase == GREEN__FORK_PREPARE ? n + 1 - k : k;
        struct green__module *m = modules[i];
        if (m->fork)
            m->fork(hub, hub ? hub->mod_state[i] : NULL, phase);
    }
}

/******************************************************************************/
/*  Public: run, sleep, yield, embedding                                     */
/******************************************************************************/

/* An enclosing green_timeout of g is due by the hub's cached time (the
   loop's, refreshed every poll round): no syscall. */
static int scoped_timeout_due(struct green__hub *hub, struct green *g)
{
    if (GREEN_LIKELY(green__list_empty(&g->timeouts)))
        return 0;
    double t = green__timeouts_deadline(g);
    if (t > ev_now(hub->loop))
        return 0;
    green__timeouts_fire(g, g->deadline_src);
    return 1;
}

int green_yield(void)
{
    int err = green__can_block(-1);
    struct green__hub *hub = green__tls_hub;
    if (!err && scoped_timeout_due(hub, hub->current))
        err = ETIMEDOUT;
    if (err)
        return green__fail(err);
    /* Behind every greenlet runnable now. */
    green__make_runnable(hub, hub->current);
    schedule(hub);
    return 0;
}

int green_sleep(double seconds)
{
    if (seconds != seconds)
        return green__fail(EINVAL);
    if (seconds <= 0)
        return green_yield();
    struct green__wait w;
    int err = green__wait_begin(&w, seconds, "sleeping", 0);
    if (!err)
        err = green__wait_park(&w);
    if (err == ETIMEDOUT && !green__tls_hub->current->timeouts_expired)
        return 0; /* our own deadline: the sleep is over */
    return green__fail(err);
}

int green_run(void)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    if (hub->embedded || hub->current != &hub->main)
        return green__fail(EDEADLK);
    struct green__wait w;
    int err = green__wait_begin(&w, -1, "running the hub", 0);
    if (!err) {
        hub->main_in_run = 1;
        err = green__wait_park(&w);
        hub->main_in_run = 0;
    }
    return err ? green__fail(err) : 0;
}

int green_hub_stats(green_hub_stats_t *st)
{
    struct green__hub *hub = green__tls_hub;
    if (!st)
        return green__fail(EINVAL);
    if (!hub)
        return green__fail(ESRCH);
    memset(st, 0, sizeof *st);
    st->alive = hub->alive;
    struct green__list *it;
    green__list_foreach(it, &hub->live) {
        struct green *g = green__container_of(it, struct green, all);
        st->waiting += g->state == GREEN__WAITING;
    }
    st->watchers = ev_is_active(&hub->timer);
    for (int i = 0; i < hub->mod_count; i++) {
        struct green__module *m = hub->mod_order[i];
        if (m->watchers)
            st->watchers += m->watchers(hub, hub->mod_state[m->slot]);
    }
    st->switches = hub->switches;
    return 0;
}

/* green_run_timeout's limit: an unreferenced timer, so it does not keep
   the loop alive by itself (a park deadline would: the run could only
   end by timing out). */
struct run_limit {
    ev_timer timer;
    struct green__hub *hub;
    int fired;
};

static void run_limit_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct run_limit *rl = (struct run_limit *)t;
    ev_ref(loop); /* libev stopped it: balance the unref of the start */
    rl->fired = 1;
    green__wake(&rl->hub->main, ETIMEDOUT);
}

int green_run_timeout(double timeout)
{
    if (timeout != timeout)
        return green__fail(EINVAL);
    if (timeout < 0)
        return green_run();
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    if (hub->embedded || hub->current != &hub->main)
        return green__fail(EDEADLK);
    if (timeout == 0)
        return hub->alive ? green__fail(EAGAIN) : 0;
    struct green__wait w;
    int err = green__wait_begin(&w, -1, "running the hub", 0);
    if (err)
        return green__fail(err);
    struct run_limit rl = {.hub = hub, .fired = 0};
    ev_now_update(hub->loop); /* the timer counts from the loop's now */
    ev_timer_init(&rl.timer, run_limit_cb, timeout, 0);
    ev_timer_start(hub->loop, &rl.timer);
    ev_unref(hub->loop);
    hub->main_in_run = 1;
    err = green__wait_park(&w);
    hub->main_in_run = 0;
    if (!rl.fired) {
        ev_ref(hub->loop);
        ev_timer_stop(hub->loop, &rl.timer);
    }
    return err ? green__fail(err) : 0;
}

struct ev_loop *green_hub_loop(void)
{
    struct green__hub *hub = green__hub_get();
    return hub ? hub->loop : NULL;
}

int green_hub_attach(struct ev_loop *loop)
{
    if (!loop)
        return green__fail(EINVAL);
    struct green__hub *hub = green__tls_hub;
    if (hub) {
        if (hub->loop == loop && hub->embedded)
            return 0;
        /* An idle standalone hub may be replaced; a busy one may not. */
        if (hub->alive || hub->current != &hub->main)
            return green__fail(EBUSY);
        hub_free(hub);
    }
    return hub_create(loop) ? 0 : -1;
}
