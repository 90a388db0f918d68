/* green_t: creation, start, reference counting, join, kill, exit, links
   and the introspection calls. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "greenlet.h"
#include "timeout.h"

struct green__link {
    struct green__link *next;           /* next link, in link order */
    void (*cb)(green_t *g, void *arg);  /* the callback and its argument */
    void *arg;
};

/******************************************************************************/
/*  Creation and start                                                        */
/******************************************************************************/

/* First code on a new greenlet's stack. */
static void trampoline(void)
{
    struct green__hub *hub = green__hub_peek();
    struct green *g = hub->current;
    green__ctx_entered(&g->ctx);
    green__after_switch(hub);
    g->entered = 1;
    errno = 0;
    g->value = g->fn(g->arg);
    green__finish(g);
}

/* Where the control block of a greenlet on stack s lives: at the top of
   the stack itself (as in State Threads), 64-byte aligned, above the
   greenlet's first frame.  A spawn allocates nothing but the (usually
   cached) stack, and an idle greenlet's block shares the page its first
   frames touch anyway.  The price: the stack stays with its block until
   the last reference goes (green__unref), not only until the greenlet
   is done. */
static struct green *block_on(const struct green__stack *s)
{
    uintptr_t top =
        (uintptr_t)green__stack_lo(s) + green__stack_size(s);
    return (struct green *)((top - sizeof(struct green)) & ~(uintptr_t)63);
}

/* Fill a new block field by field: it sits on a recycled stack, and a
   memset of the whole block (rep stos) cost more than the rest of
   green_new.  Fields left out are written before they are read:
   wait_since by a park, run_seq when it becomes runnable.  A new field
   must be set here. */
static void block_init(struct green *g, struct green__hub *hub,
                       const struct green__stack *stack, green_fn fn,
                       void *arg)
{
    char *lo = green__stack_lo(stack);
    g->ctx.tsan_fiber = NULL;
    green__ctx_make(&g->ctx, lo, (size_t)((char *)g - lo), trampoline);
    g->hub = hub;
    green__list_init(&g->node);
    g->state = GREEN__NEW;
    g->refs = 1;
    g->killed = 0;
    g->cancel_off = 0;
    g->entered = 0;
    g->scheduled = 0;
    g->kind = GREEN__KIND_SPAWNED;
    g->saved_errno = 0;
    g->err = 0;
    g->value = NULL;
    g->fn = fn;
    g->arg = arg;
    g->stack = *stack;
    g->id = green__next_id(hub);
    g->name[0] = 0;
    green__waitq_init(&g->joiners);
    g->links = NULL;
    g->links_tail = &g->links;
    green__list_init(&g->timeouts);
    g->timeouts_expired = 0;
    g->heap_idx = 0;
    g->deadline_src = NULL;
    g->wait = NULL;
    g->wait_what = NULL;
    g->wait_fd = -1;
    g->locals = NULL;
    g->nlocals = 0;
}

/* A stack of size for a new greenlet: the hub's spare if it fits, else
   one from the stack cache.  0 or -1/ENOMEM. */
static int stack_take(struct green__hub *hub, size_t size,
                      struct green__stack *s)
{
    if (hub->spare.map && green__stack_size(&hub->spare) == size) {
        *s = hub->spare;
        hub->spare.map = NULL;
        return 0;
    }
    return green__stack_get(&hub->stacks, size, s);
}

/* Hand back the stack of g's block, last (from a copy: g lives on it).
   It becomes the hub's spare when released on the hub's own thread (a
   spawn+join+release loop then never touches the cache).  The hub may be
   gone only after shutdown, which drained the cache: the stack is then
   unmapped at once (green__stack_put knows its slab lost its pool), or,
   if a new hub took the old one's address, it becomes that hub's spare
   and is unmapped the same way when that hub puts it back. */
static void stack_give(struct green *g)
{
    struct green__stack s = g->stack;
    struct green__hub *hub = green__hub_peek();
    if (hub == g->hub && !hub->spare.map)
        hub->spare = s;
    else
        green__stack_put(&g->hub->stacks, &s);
}

green_t *green_new(green_fn fn, void *arg, const green_attr_t *attr)
{
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    size_t size = green__stack_default();
    if (attr && attr->stack_size) {
        size = green__stack_round(attr->stack_size);
        if (!size)
            return NULL; /* EINVAL or ENOMEM */
    }
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    if (GREEN_UNLIKELY(!hub->segv_ready)) {
        /* The overflow reporter: only once the program makes greenlets. */
        green__segv_init();
        hub->segv_ready = 1;
    }
    struct green__stack stack;
    if (stack_take(hub, size, &stack) != 0)
        return NULL; /* ENOMEM */
    struct green *g = block_on(&stack);
    block_init(g, hub, &stack, fn, arg);
    if (attr && attr->name) {
        strncpy(g->name, attr->name, sizeof g->name - 1);
        g->name[sizeof g->name - 1] = 0;
    }
    green__list_push(&hub->live, &g->all);
    return g;
}

/* Common checks of green_start/green_start_later. */
static struct green__hub *startable(green_t *g)
{
    if (!g || g->kind != GREEN__KIND_SPAWNED) {
        errno = EINVAL;
        return NULL;
    }
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return NULL;
    if (g->hub != hub) {
        errno = EXDEV;
        return NULL;
    }
    if (g->scheduled || g->state != GREEN__NEW) {
        errno = EINVAL;
        return NULL;
    }
    return hub;
}

/* The scheduler holds a reference from start until the greenlet is done
   and off its stack (green__after_switch); the stack itself goes with
   the last reference. */
static void mark_scheduled(struct green__hub *hub, green_t *g)
{
    g->scheduled = 1;
    g->refs++;
    hub->alive++;
}

int green_start(green_t *g)
{
    struct green__hub *hub = startable(g);
    if (!hub)
        return -1;
    mark_scheduled(hub, g);
    green__make_runnable(hub, g);
    return 0;
}

int green_start_later(green_t *g, double seconds)
{
    if (seconds != seconds)
        return green__fail(EINVAL);
    if (seconds <= 0)
        return green_start(g);
    struct green__hub *hub = startable(g);
    if (!hub)
        return -1;
    g->deadline_src = NULL;
    /* The hub's deadline heap makes it runnable when the delay is over. */
    int err = green__deadline_set(hub, g, green__now() + seconds);
    if (err)
        return green__fail(err);
    mark_scheduled(hub, g);
    return 0;
}

green_t *green_spawn(green_fn fn, void *arg)
{
    green_t *g = green_new(fn, arg, NULL);
    if (g)
        green_start(g);
    return g;
}

green_t *green_spawn_later(double seconds, green_fn fn, void *arg)
{
    if (seconds != seconds) {
        errno = EINVAL;
        return NULL;
    }
    green_t *g = green_new(fn, arg, NULL);
    if (g)
        green_start_later(g, seconds);
    return g;
}

/******************************************************************************/
/*  References                                                                */
/******************************************************************************/

green_t *green_retain(green_t *g)
{
    if (g && g->kind == GREEN__KIND_SPAWNED)
        g->refs++;
    return g;
}

void green__unref(struct green *g)
{
    if (g->kind != GREEN__KIND_SPAWNED || --g->refs > 0)
        return;
    /* Last reference: the greenlet is done (or never started) and off
       its stack, so only the control block and pending links remain. */
    struct green__link *l = g->links;
    while (l) {
        struct green__link *next = l->next;
        free(l);
        l = next;
    }
    green__list_remove(&g->all); /* never started: still listed */
    green__ctx_destroy(&g->ctx);
    if (!green__list_empty(&g->timeouts))
        green__timeouts_free(g);
    stack_give(g);
}

void green_release(green_t *g)
{
    if (g)
        green__unref(g);
}

/******************************************************************************/
/*  Finishing                                                                 */
/******************************************************************************/

/* Wake joiners and queue link callbacks of a greenlet that just became
   DONE.  The links hold a reference until they ran in the hub. */
static void announce_done(struct green__hub *hub, struct green *g)
{
    green__waitq_wake_all(&g->joiners, 0);
    if (g->links) {
        g->refs++;
        green__list_push(&hub->linkq, &g->node);
        green__hub_kick(hub);
    }
}


void green__finish(struct green *g)
{
    struct green__hub *hub = g->hub;
    /* Still RUNNING on its own stack: destructors may block (a killed
       greenlet's waits fail unless it disabled cancellation). */
    if (g->locals)
        green__locals_release(g);
    g->state = GREEN__DONE;
    if (g->killed && !g->err)
        g->err = ECANCELED;
    green__list_remove(&g->all);
    green__timeouts_detach(g, 1);
    hub->alive--;
    announce_done(hub, g);
    green__exit_current(hub);
}

/* A greenlet killed before it ever ran: it never will. */
static void finish_unstarted(struct green__hub *hub, struct green *g)
{
    green__list_remove(&g->node);
    green__deadline_clear(hub, g);
    green__list_remove(&g->all);
    g->state = GREEN__DONE;
    g->err = ECANCELED;
    if (g->scheduled)
        hub->alive--;
    announce_done(hub, g);
    if (g->scheduled)
        green__unref(g);
}

void green__run_links(struct green__hub *hub)
{
    struct green__list *n;
    hub->in_link++;
    while ((n = green__list_pop(&hub->linkq)) != NULL) {
        struct green *g = green__container_of(n, struct green, node);
        /* Callbacks may add links to g: run until none is left. */
        while (g->links) {
            struct green__link *l = g->links;
            g->links = l->next;
            if (!g->links)
                g->links_tail = &g->links;
            l->cb(g, l->arg);
            free(l);
        }
        green__unref(g);
    }
    hub->in_link--;
}

/* The current greenlet if green_exit/green_fail may end it; NULL after
   ending the thread (main greenlet, no hub) or, in the hub or a callback,
   with errno EPERM. */
static struct green *exit_target(void *value)
{
    struct green__hub *hub = green__hub_peek();
    if (!hub || hub->current->kind == GREEN__KIND_MAIN)
        pthread_exit(value);
    if (hub->current->kind != GREEN__KIND_SPAWNED) {
        errno = EPERM;
        return NULL;
    }
    return hub->current;
}

void green_exit(void *value)
{
    struct green *g = exit_target(value);
    if (!g)
        return;
    g->value = value;
    green__finish(g);
}

void green_fail(int err)
{
    struct green *g = exit_target(NULL);
    if (!g)
        return;
    g->value = NULL;
    g->err = err;
    green__finish(g);
}

/******************************************************************************/
/*  Join and kill                                                             */
/******************************************************************************/

/* Loops over an array of greenlets start loading the block 8 entries
   ahead of entry i (see green__prefetch). */
static inline void prefetch_ahead(green_t *const *gs, size_t n, size_t i)
{
    enum { AHEAD = 8 };
    if (i + AHEAD < n && gs[i + AHEAD])
        green__prefetch(gs[i + AHEAD]);
}

/* Checks shared by join and kill: 0 or an errno. */
static int check_target(struct green__hub **hubp, green_t *g, double t)
{
    if (!g || t != t)
        return EINVAL;
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return ENOMEM;
    if (g->hub != hub)
        return EXDEV;
    *hubp = hub;
    return 0;
}

int green_join(green_t *g, double timeout)
{
    struct green__hub *hub;
    int err = check_target(&hub, g, timeout);
    if (err)
        return green__fail(err);
    if (g->state == GREEN__DONE)
        return 0;
    if (g == hub->current)
        return green__fail(EDEADLK);
    struct green__clause c = {.data = NULL};
    return green__waitq_wait(&g->joiners, &c, timeout, "joining");
}

int green_joinall(green_t *const *gs, size_t n, double timeout)
{
    if (!gs && n)
        return green__fail(EINVAL);
    if (timeout != timeout)
        return green__fail(EINVAL);
    double deadline = timeout < 0 ? GREEN__FOREVER : green__now() + timeout;
    for (size_t i = 0; i < n; i++) {
        prefetch_ahead(gs, n, i);
        if (!gs[i] || gs[i]->state == GREEN__DONE)
            continue;
        double left = -1;
        if (timeout >= 0) {
            left = deadline - green__now();
            if (left <= 0)
                left = timeout == 0 ? 0 : 1e-9;
        }
        if (green_join(gs[i], left) != 0)
            return -1;
    }
    return 0;
}

/* Greenlets of gs done (NULL skipped); *alive gets the non-NULL count. */
static size_t count_done(green_t *const *gs, size_t n, size_t *alive)
{
    size_t done = 0;
    *alive = 0;
    for (size_t i = 0; i < n; i++) {
        if (!gs[i])
            continue;
        (*alive)++;
        done += gs[i]->state == GREEN__DONE;
    }
    return done;
}

/* One park on the joiners of every greenlet of gs not done yet (any one
   finishing ends it).  0 or an errno. */
static int join_round(green_t *const *gs, size_t n, double left)
{
    struct green__wait w;
    int err = green__wait_begin(&w, left, "joining", 0);
    if (err)
        return err;
    size_t pending = 0;
    for (size_t i = 0; i < n; i++)
        pending += gs[i] && gs[i]->state != GREEN__DONE;
    struct green__clause local[16], *cs = local;
    if (pending > 16 && !(cs = malloc(pending * sizeof *cs)))
        return ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (gs[i] && gs[i]->state != GREEN__DONE)
            green__waitq_add(&w, &gs[i]->joiners, &cs[k++], NULL);
    err = green__wait_park(&w);
    if (cs != local)
        free(cs);
    return err;
}

int green_joinall_count(green_t *const *gs, size_t n, size_t count,
                        double timeout)
{
    if ((!gs && n) || timeout != timeout)
        return green__fail(EINVAL);
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (gs[i] && gs[i]->hub != hub)
            return green__fail(EXDEV);
        if (gs[i] == hub->current && gs[i]->state != GREEN__DONE)
            return green__fail(EDEADLK);
    }
    double deadline = timeout < 0 ? -1 : green__now() + timeout;
    for (;;) {
        size_t alive;
        size_t done = count_done(gs, n, &alive);
        size_t want = count && count < alive ? count : alive;
        if (done >= want)
            return (int)done;
        double left = -1;
        if (timeout == 0)
            left = 0;
        else if (timeout > 0 && (left = deadline - green__now()) <= 0)
            return green__fail(ETIMEDOUT);
        int err = join_round(gs, n, left);
        if (err)
            return green__fail(err);
    }
}

/* Mark g cancelled and get it off whatever it waits on. */
static int cancel(struct green__hub *hub, green_t *g)
{
    if (g->kind != GREEN__KIND_SPAWNED)
        return EPERM; /* main (and the hub) run the program: not killable */
    if (g == hub->current)
        return EDEADLK;
    if (g->state == GREEN__DONE)
        return 0;
    g->killed = 1;
    if (g->kind == GREEN__KIND_SPAWNED && !g->entered) {
        finish_unstarted(hub, g);
        return 0;
    }
    /* Parked: its blocking call returns ECANCELED (unless that wait must
       complete, like a lock re-acquire, or g disabled cancellation: then
       the kill waits for green_setcancelstate(ENABLE)).  Runnable or the main greenlet:
       the sticky flag fails its next blocking call. */
    if (g->state == GREEN__WAITING && green__cancelled(g) &&
        !(g->wait->flags & GREEN__WAIT_NOCANCEL))
        green__wake(g, ECANCELED);
    return 0;
}

int green_kill(green_t *g, double timeout)
{
    struct green__hub *hub;
    int err = check_target(&hub, g, timeout);
    if (!err)
        err = cancel(hub, g);
    if (err)
        return green__fail(err);
    if (timeout == 0 || g->state == GREEN__DONE || g->kind != GREEN__KIND_SPAWNED)
        return 0;
    return green_join(g, timeout);
}

int green_killall(green_t *const *gs, size_t n, double timeout)
{
    if ((!gs && n) || timeout != timeout)
        return green__fail(EINVAL);
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    for (size_t i = 0; i < n; i++) {
        prefetch_ahead(gs, n, i);
        if (!gs[i])
            continue;
        if (gs[i]->hub != hub)
            return green__fail(EXDEV);
        int err = cancel(hub, gs[i]);
        if (err)
            return green__fail(err);
    }
    if (timeout == 0)
        return 0;
    return green_joinall(gs, n, timeout);
}

/******************************************************************************/
/*  Cancellation state                                                        */
/******************************************************************************/

int green_setcancelstate(int state, int *oldstate)
{
    if (state != GREEN_CANCEL_ENABLE && state != GREEN_CANCEL_DISABLE)
        return green__fail(EINVAL);
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    if (green__in_hub(hub))
        return green__fail(EPERM);
    struct green *g = hub->current;
    if (oldstate)
        *oldstate = g->cancel_off ? GREEN_CANCEL_DISABLE : GREEN_CANCEL_ENABLE;
    /* Re-enabling delivers nothing now: g is running, so the recorded
       kill fails its next blocking call (green__wait_begin). */
    g->cancel_off = state == GREEN_CANCEL_DISABLE;
    return 0;
}

int green_killed(void)
{
    struct green__hub *hub = green__hub_peek();
    return hub && !green__in_hub(hub) && hub->current->killed;
}

/******************************************************************************/
/*  Links                                                                     */
/******************************************************************************/

/* The argument checks of link and unlink: 0 or an errno value. */
static int check_link(struct green__hub **hubp, green_t *g,
                      void (*cb)(green_t *g, void *arg))
{
    int err = check_target(hubp, g, 0);
    return !err && !cb ? EINVAL : err;
}

int green_link(green_t *g, void (*cb)(green_t *g, void *arg), void *arg)
{
    struct green__hub *hub;
    int err = check_link(&hub, g, cb);
    if (err)
        return green__fail(err);
    struct green__link *l = malloc(sizeof *l);
    if (!l)
        return green__fail(ENOMEM);
    l->next = NULL;
    l->cb = cb;
    l->arg = arg;
    int was_empty = g->links == NULL;
    *g->links_tail = l;
    g->links_tail = &l->next;
    /* Already done and not queued for its links: run them soon. */
    if (g->state == GREEN__DONE && was_empty &&
        !green__list_linked(&g->node)) {
        g->refs++;
        green__list_push(&hub->linkq, &g->node);
        green__hub_kick(hub);
    }
    return 0;
}

int green_unlink(green_t *g, void (*cb)(green_t *g, void *arg), void *arg)
{
    struct green__hub *hub;
    int err = check_link(&hub, g, cb);
    if (err)
        return green__fail(err);
    /* The oldest matching link that has not run (a running callback is
       already off the list). */
    for (struct green__link **pl = &g->links; *pl; pl = &(*pl)->next) {
        struct green__link *l = *pl;
        if (l->cb != cb || l->arg != arg)
            continue;
        *pl = l->next;
        if (!*pl)
            g->links_tail = pl;
        free(l);
        return 0;
    }
    return green__fail(ENOENT);
}

/******************************************************************************/
/*  Introspection                                                             */
/******************************************************************************/

int green_done(const green_t *g)
{
    return g && g->state == GREEN__DONE;
}

void *green_value(const green_t *g)
{
    return g && g->state == GREEN__DONE ? g->value : NULL;
}

int green_error(const green_t *g)
{
    return g ? g->err : EINVAL;
}

green_t *green_current(void)
{
    struct green__hub *hub = green__hub_get();
    return hub ? hub->current : NULL;
}

const char *green_name(const green_t *g)
{
    if (!g)
        return NULL;
    if (!g->name[0]) {
        /* Formatted lazily: spawning should not pay for snprintf. */
        struct green *m = (struct green *)g;
        snprintf(m->name, sizeof m->name, "greenlet-%" PRIu64, g->id);
    }
    return g->name;
}

uint64_t green_id(const green_t *g)
{
    return g ? g->id : 0;
}

/* The columns of green_dump, shared with the gdb extension's `info
   greenlets` (lib/diag/libgreen-gdb.py): keep the two in step. */
static const char *state_name(const struct green *g)
{
    switch (g->state) {
    case GREEN__NEW:
        return g->scheduled ? "later" : "new";
    case GREEN__RUNNABLE:
        return "runnable";
    case GREEN__RUNNING:
        return "running";
    case GREEN__WAITING:
        return "waiting";
    default:
        return "done";
    }
}

/* Where a switched-out greenlet's stack pointer was saved, NULL when the
   backend or the architecture does not say. */
static const char *saved_sp(const struct green *g)
{
#if defined(GREEN_CONTEXT_ASM)
    return g->ctx.sp;
#elif defined(__x86_64__)
    return (const char *)g->ctx.uc.uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (const char *)g->ctx.uc.uc_mcontext.sp;
#else
    return NULL;
#endif
}

/* "sleeping", "waiting to read on fd 5", or "-". */
static void format_wait(char *buf, size_t n, const struct green *g)
{
    if (g->state != GREEN__WAITING)
        snprintf(buf, n, "-");
    else if (g->wait_fd >= 0)
        snprintf(buf, n, "%s on fd %d", g->wait_what ? g->wait_what : "?",
                 g->wait_fd);
    else
        snprintf(buf, n, "%s", g->wait_what ? g->wait_what : "?");
}

/* Stack size and the bytes in use below its top (the depth at the last
   switch; the running greenlet's is now's).  Main and the hub run on the
   thread's own stack: "-". */
static void format_stack(char *size, char *used, size_t n,
                         const struct green *g)
{
    if (!g->stack.map) {
        snprintf(size, n, "-");
        snprintf(used, n, "-");
        return;
    }
    const char *lo = green__stack_lo(&g->stack);
    const char *top = lo + green__stack_size(&g->stack);
    char here;
    const char *sp = g->state == GREEN__RUNNING ? &here : saved_sp(g);
    snprintf(size, n, "%zuK", green__stack_size(&g->stack) / 1024);
    if (sp && sp >= lo && sp <= top)
        snprintf(used, n, "%.1fK", (double)(top - sp) / 1024);
    else
        snprintf(used, n, "?");
}

static void dump_one(FILE *out, const struct green *g, double now)
{
    char what[64], waited[32], size[32], used[32];
    format_wait(what, sizeof what, g);
    if (g->state == GREEN__WAITING)
        snprintf(waited, sizeof waited, "%.3fs", now - g->wait_since);
    else
        snprintf(waited, sizeof waited, "-");
    format_stack(size, used, sizeof size, g);
    fprintf(out, "%6" PRIu64 " %-20s %-8s %-30s %9s %6s %7s\n", g->id,
            green_name(g), state_name(g), what, waited, size, used);
}

void green_dump(FILE *out)
{
    struct green__hub *hub = green__hub_peek();
    if (!out)
        out = stderr;
    if (!hub) {
        fprintf(out, "libgreen: no hub in this thread\n");
        return;
    }
    fprintf(out, "libgreen: %zu alive, current %" PRIu64 "\n", hub->alive,
            hub->current->id);
    fprintf(out, "%6s %-20s %-8s %-30s %9s %6s %7s\n", "id", "name",
            "state", "waiting on", "waited", "stack", "used");
    double now = ev_time(); /* the clock of wait_since (ev_now) */
    if (!hub->embedded)
        dump_one(out, &hub->main, now);
    struct green__list *it;
    green__list_foreach(it, &hub->live)
        dump_one(out, green__container_of(it, struct green, all), now);
}

#define GREEN__STR(x) #x
#define GREEN__XSTR(x) GREEN__STR(x)

const char *green_version_string(void)
{
    return GREEN__XSTR(GREEN_VERSION_MAJOR) "." GREEN__XSTR(
        GREEN_VERSION_MINOR) "." GREEN__XSTR(GREEN_VERSION_PATCH);
}
