/* The hub: per-thread scheduler state, the run queue, the switch, the
   park/wake primitive, the deadline heap and green_run/sleep/yield.

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
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
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

static __thread struct green__hub *tls_hub
    __attribute__((tls_model("initial-exec")));

static pthread_key_t hub_key;
static pthread_once_t hub_key_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t next_id = 1;

uint64_t green__next_id(void)
{
    return atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
}

/******************************************************************************/
/*  Hub creation and teardown                                                 */
/******************************************************************************/

static void hub_key_destroy(void *p)
{
    /* A thread exits without green_shutdown: free its hub, unless it is
       exiting from inside a greenlet (its stack would be freed under it). */
    struct green__hub *hub = p;
    if (hub && tls_hub == hub && hub->current == &hub->main)
        green__hub_free(hub);
}

static void main_atexit(void)
{
    struct green__hub *hub = tls_hub;
    if (hub && hub->current == &hub->main && !hub->embedded)
        green__hub_free(hub);
}

static void hub_key_init(void)
{
    green__assert(pthread_key_create(&hub_key, hub_key_destroy) == 0);
    atexit(main_atexit);
}

static void init_special(struct green__hub *hub, struct green *g, int kind,
                         const char *name)
{
    g->hub = hub;
    g->kind = kind;
    g->refs = 1;
    g->state = GREEN__RUNNING;
    g->entered = 1;
    g->scheduled = 1;
    g->id = green__next_id();
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

static int is_main_thread(void)
{
    return getpid() == (pid_t)syscall(SYS_gettid);
}

/* libev aborts (an assert in its epoll backend) when asked to watch its
   own epoll fd, which a user's stale fd number can name once the hub
   made it.  That fd takes the lowest free number when the loop is
   created: probe the number before, confirm it after (another thread may
   have taken it), and io.c refuses to touch it. */
static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        green__sys_close(fd);
    return fd;
}

static int epoll_fd_or_minus_one(int fd)
{
    char path[32], target[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = fd >= 0 ? readlink(path, target, sizeof target - 1) : -1;
    if (n <= 0)
        return -1;
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventpoll]") == 0 ? fd : -1;
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
    hub->backend_fd = -1;
    green__list_init(&hub->runq);
    green__list_init(&hub->live);
    green__list_init(&hub->linkq);
    init_special(hub, &hub->main, 1, "main");
    init_special(hub, &hub->hubg, 2, "hub");
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
        int probe = lowest_free_fd();
        loop = is_main_thread() ? ev_default_loop(EVFLAG_AUTO)
                                : ev_loop_new(EVFLAG_AUTO);
        hub->backend_fd = loop ? epoll_fd_or_minus_one(probe) : -1;
        if (!loop) {
            free(hub);
            errno = ENOMEM;
            return NULL;
        }
        hub->loop = loop;
        hub->own_loop = 1;
        if (green__stack_get(&hub->stacks, green__stack_default(),
                             &hub->hubg.stack) != 0) {
            if (loop != ev_default_loop(EVFLAG_AUTO))
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
    /* libev's default loop reaps every child: keep their statuses for
       green_waitpid from the start (process.c). */
    if (ev_is_default_loop(hub->loop))
        green__process_watch(hub);
    tls_hub = hub;
    pthread_setspecific(hub_key, hub);
    green__segv_init();
    green__monitor_from_env();
    return hub;
}

struct green__hub *green__hub_peek(void)
{
    return tls_hub;
}

struct green__hub *green__hub_get(void)
{
    struct green__hub *hub = tls_hub;
    if (GREEN_LIKELY(hub != NULL))
        return hub;
    return hub_create(NULL);
}

/* Drop a greenlet that will never run again (shutdown). */
static void discard_greenlet(struct green__hub *hub, struct green *g)
{
    /* Its waiter lives on the stack we are about to unmap: unlink it from
       whatever queue (event, lock, join...) still points at it. */
    if (g->parked_on)
        green__list_remove(g->parked_on);
    green__list_remove(&g->node);
    green__list_remove(&g->all);
    green__deadline_clear(hub, g);
    green__stack_put(&hub->stacks, &g->stack);
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

void green__hub_free(struct green__hub *hub)
{
    green__assert(hub == tls_hub);
    /* Modules first, in reverse order: they may own watchers and
       greenlets. */
    for (int i = GREEN__MOD_MAX - 1; i >= 0; i--)
        if (hub->mod[i].term)
            hub->mod[i].term(hub);
    if (hub->zombie) {
        struct green *z = hub->zombie;
        hub->zombie = NULL;
        green__stack_put(&hub->stacks, &z->stack);
        green__ctx_destroy(&z->ctx);
        green__unref(z);
    }
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
    ev_timer_stop(hub->loop, &hub->timer);
    ev_idle_stop(hub->loop, &hub->idle);
    if (ev_is_active(&hub->check)) {
        ev_ref(hub->loop);
        ev_check_stop(hub->loop, &hub->check);
    }
    free(hub->heap);
    green__stack_put(&hub->stacks, &hub->hubg.stack);
    green__stack_cache_drain(&hub->stacks);
    /* Embedded, hubg's context is the thread's own (its TSan fiber too). */
    if (!hub->embedded)
        green__ctx_destroy(&hub->hubg.ctx);
    if (hub->own_loop)
        ev_loop_destroy(hub->loop);
    green__segv_thread_term();
    tls_hub = NULL;
    pthread_setspecific(hub_key, NULL);
    free(hub);
}

void green_shutdown(void)
{
    struct green__hub *hub = tls_hub;
    if (!hub)
        return;
    /* Only from outside every greenlet: the thread's own stack. */
    if (hub->embedded ? hub->current != &hub->hubg
                      : hub->current != &hub->main)
        return;
    green__hub_free(hub);
}

/******************************************************************************/
/*  Switching                                                                 */
/******************************************************************************/

/* Runs first thing after every switch, on the new stack: the greenlet
   that finished before it is off its stack now, so release it. */
static void after_switch(struct green__hub *hub)
{
    struct green *z = hub->zombie;
    if (GREEN_UNLIKELY(z != NULL)) {
        hub->zombie = NULL;
        green__stack_put(&hub->stacks, &z->stack);
        green__ctx_destroy(&z->ctx);
        green__unref(z);
    }
}

void green__after_switch(struct green__hub *hub)
{
    after_switch(hub);
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
    after_switch(hub);
    errno = from->saved_errno;
}

/* The next greenlet of this round, or NULL when the hub should poll:
   greenlets runnable when the round began always run; later ones use
   the round's budget of GREEN__BATCH. */
static struct green *runq_next(struct green__hub *hub)
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
    return g;
}

void green__schedule(struct green__hub *hub)
{
    struct green *next = runq_next(hub);
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
    /* Our stack is released by whoever runs next (after_switch). */
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
    g->wake_err = err;
    green__make_runnable(g->hub, g);
    return 1;
}

/* Run link callbacks and one round of runnable greenlets (see the top
   comment).  Runs in the hub context only. */
static void dispatch(struct green__hub *hub)
{
    after_switch(hub);
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
    struct green__hub *hub = tls_hub;
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
   first-armed-first and runs are reproducible. */
static int heap_less(const struct green *a, const struct green *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->deadline_seq < b->deadline_seq;
}

static void heap_place(struct green__hub *hub, size_t i, struct green *g)
{
    hub->heap[i] = g;
    g->heap_idx = i;
}

static void heap_up(struct green__hub *hub, size_t i)
{
    struct green *g = hub->heap[i];
    while (i > 1 && heap_less(g, hub->heap[i / 2])) {
        heap_place(hub, i, hub->heap[i / 2]);
        i /= 2;
    }
    heap_place(hub, i, g);
}

static void heap_down(struct green__hub *hub, size_t i)
{
    struct green *g = hub->heap[i];
    for (;;) {
        size_t c = 2 * i;
        if (c > hub->heap_len)
            break;
        if (c + 1 <= hub->heap_len && heap_less(hub->heap[c + 1], hub->heap[c]))
            c++;
        if (!heap_less(hub->heap[c], g))
            break;
        heap_place(hub, i, hub->heap[c]);
        i = c;
    }
    heap_place(hub, i, g);
}

static void heap_rearm(struct green__hub *hub)
{
    if (hub->heap_len == 0) {
        ev_timer_stop(hub->loop, &hub->timer);
        return;
    }
    /* Refresh libev's cached time so the timer is never early. */
    ev_now_update(hub->loop);
    double after = hub->heap[1]->deadline - green__now();
    ev_timer_stop(hub->loop, &hub->timer);
    ev_timer_set(&hub->timer, after > 0 ? after : 0, 0);
    ev_timer_start(hub->loop, &hub->timer);
}

void green__deadline_set(struct green__hub *hub, struct green *g,
                         double deadline)
{
    green__assert(g->heap_idx == 0);
    if (hub->heap_len + 1 >= hub->heap_cap) {
        size_t cap = hub->heap_cap ? hub->heap_cap * 2 : 64;
        struct green **h = realloc(hub->heap, cap * sizeof *h);
        green__assert(h != NULL); /* 8 bytes per greenlet */
        hub->heap = h;
        hub->heap_cap = cap;
    }
    g->deadline = deadline;
    g->deadline_seq = hub->heap_seq++;
    hub->heap[++hub->heap_len] = g;
    heap_up(hub, hub->heap_len);
    if (g->heap_idx == 1)
        heap_rearm(hub);
}

void green__deadline_clear(struct green__hub *hub, struct green *g)
{
    size_t i = g->heap_idx;
    if (i == 0)
        return;
    g->heap_idx = 0;
    struct green *last = hub->heap[hub->heap_len--];
    if (i <= hub->heap_len) {
        heap_place(hub, i, last);
        heap_up(hub, i);
        heap_down(hub, last->heap_idx);
    }
    /* The timer may now fire early for nothing; heap_fire re-arms.  With
       no deadline left it must not keep the loop alive (green_run, an
       embedding application's ev_run). */
    if (hub->heap_len == 0)
        ev_timer_stop(hub->loop, &hub->timer);
}


static void heap_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct green__hub *hub = w->data;
    double now = green__now();
    while (hub->heap_len > 0 && hub->heap[1]->deadline <= now) {
        struct green *g = hub->heap[1];
        green__deadline_clear(hub, g);
        if (g->state == GREEN__WAITING) {
            if (g->deadline_src)
                green__timeouts_fire(g, g->deadline_src);
            green__wake(g, ETIMEDOUT);
        } else if (g->state == GREEN__NEW) {
            green__start_delayed(hub, g);
        }
    }
    heap_rearm(hub);
}

/******************************************************************************/
/*  Park and wake                                                             */
/******************************************************************************/

int green__can_block(double timeout)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return ENOMEM;
    if (timeout != timeout)
        return EINVAL;
    if (green__in_hub(hub))
        return EDEADLK;
    struct green *g = hub->current;
    if (g->killed)
        return ECANCELED;
    if (g->timeouts_expired)
        return ETIMEDOUT;
    return 0;
}

int green__park(double timeout, const char *what)
{
    int err = green__can_block(timeout);
    if (err)
        return err;
    if (timeout == 0)
        return EAGAIN;
    struct green__hub *hub = tls_hub;
    struct green *g = hub->current;
    double now = green__now();
    double deadline = timeout > 0 ? now + timeout : GREEN__FOREVER;
    g->deadline_src = NULL;
    if (!green__list_empty(&g->timeouts)) {
        double t = green__timeouts_deadline(g);
        if (t <= deadline) {
            deadline = t;
            /* green__timeouts_deadline left the winner in deadline_src. */
            if (t <= now) {
                green__timeouts_fire(g, g->deadline_src);
                return ETIMEDOUT;
            }
        } else {
            g->deadline_src = NULL;
        }
    }
    if (deadline < GREEN__FOREVER)
        green__deadline_set(hub, g, deadline);
    g->state = GREEN__WAITING;
    g->wake_err = 0;
    g->wait_what = what;
    g->wait_since = now;
    green__schedule(hub);
    /* Woken: by a waker, a kill (ECANCELED) or the deadline (ETIMEDOUT). */
    green__deadline_clear(hub, g);
    g->wait_what = NULL;
    g->wait_fd = -1;
    return g->wake_err;
}

int green__waitq_wait(struct green__waitq *q, struct green__waiter *w,
                      double timeout, const char *what)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return green__fail(ENOMEM);
    int err = green__can_block(timeout);
    if (err)
        return green__fail(err);
    if (timeout == 0)
        return green__fail(EAGAIN);
    w->g = hub->current;
    green__list_push(&q->head, &w->node);
    w->g->parked_on = &w->node;
    err = green__park(timeout, what);
    w->g->parked_on = NULL;
    if (err) {
        /* Timed out or killed: take ourselves off the queue so we never
           consume a wake-up meant for another waiter. */
        if (green__list_linked(&w->node))
            green__list_remove(&w->node);
        return green__fail(err);
    }
    return 0;
}

struct green__waiter *green__waitq_wake_one(struct green__waitq *q, int err)
{
    struct green__list *n;
    while ((n = green__list_pop(&q->head)) != NULL) {
        struct green__waiter *w =
            green__container_of(n, struct green__waiter, node);
        /* A waiter already woken by a kill or its deadline is skipped:
           the wake-up goes to the next one. */
        if (green__wake(w->g, err))
            return w;
    }
    return NULL;
}

size_t green__waitq_wake_all(struct green__waitq *q, int err)
{
    size_t n = 0;
    while (green__waitq_wake_one(q, err))
        n++;
    return n;
}

/******************************************************************************/
/*  Public: run, sleep, yield, embedding                                     */
/******************************************************************************/

int green_yield(void)
{
    int err = green__can_block(-1);
    if (err)
        return green__fail(err);
    struct green__hub *hub = tls_hub;
    /* Behind every greenlet runnable now. */
    green__make_runnable(hub, hub->current);
    green__schedule(hub);
    return 0;
}

int green_sleep(double seconds)
{
    if (seconds != seconds)
        return green__fail(EINVAL);
    if (seconds <= 0)
        return green_yield();
    int err = green__park(seconds, "sleeping");
    if (err == ETIMEDOUT && !tls_hub->current->timeouts_expired)
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
    hub->main_in_run = 1;
    int err = green__park(-1, "running the hub");
    hub->main_in_run = 0;
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
    struct green__hub *hub = tls_hub;
    if (hub) {
        if (hub->loop == loop && hub->embedded)
            return 0;
        /* An idle standalone hub may be replaced; a busy one may not. */
        if (hub->alive || hub->current != &hub->main)
            return green__fail(EBUSY);
        green__hub_free(hub);
    }
    return hub_create(loop) ? 0 : -1;
}
