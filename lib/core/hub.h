/* The greenlet control block and the per-thread hub: the scheduler (run
   queue, rounds, the switch), the deadline heap and the module table.
   Blocking calls wait through wait.h's primitive, which lives here too
   (hub.c), because only it may change a greenlet's state. */
#ifndef GREEN_HUB_H_INCLUDED
#define GREEN_HUB_H_INCLUDED

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdint.h>

#include "green.h"
#include "context.h"
#include "list.h"
#include "stack.h"
#include "util.h"
#include "wait.h"

enum green__kind {
    GREEN__KIND_SPAWNED, /* green_new/green_spawn: its own stack */
    GREEN__KIND_MAIN,    /* the thread's own stack */
    GREEN__KIND_HUB      /* the hub greenlet (or the embedding loop) */
};

enum green__state {
    GREEN__NEW,      /* created, not started (maybe start_later pending) */
    GREEN__RUNNABLE, /* in the hub's run queue */
    GREEN__RUNNING,  /* the current greenlet */
    GREEN__WAITING,  /* parked in green__park */
    GREEN__DONE      /* finished; its stack (the block on top) goes
                        with the last reference */
};

struct green__link; /* a green_link callback, greenlet.c */
struct green;

struct green__hub;

/* A deadline in the hub's timer heap; equal deadlines fire in arming
   order (seq). */
struct green__heap_ent {
    double deadline;
    uint64_t seq;
    struct green *g;            /* NULL: cleared, dropped lazily */
};

struct green {
    struct green__ctx ctx;      /* registers while switched out */
    struct green__hub *hub;     /* owning hub: greenlets never migrate */
    struct green__list node;    /* in hub->runq while RUNNABLE */
    struct green__list all;     /* in hub->live while not DONE */
    int state;                  /* enum green__state */
    int refs;                   /* references (caller's + scheduler's) */
    int killed;                 /* sticky cancel: every park fails */
    int cancel_off;             /* green_setcancelstate(DISABLE): a kill
                                   is recorded, waits go on */
    int entered;                /* fn has started running */
    int scheduled;              /* green_start(_later) was called */
    int kind;                   /* enum green__kind */
    int saved_errno;            /* errno while switched out */
    int err;                    /* green_error */
    void *value;                /* green_value */
    green_fn fn;                /* what to run, and its argument */
    void *arg;
    struct green__stack stack;  /* NULL map for main and hub; a spawned
                                   greenlet's block lives at its top */
    uint64_t id;                /* process-wide unique */
    char name[32];              /* copied attr name, "" = default */
    struct green__waitq joiners;/* green_join waiters */
    struct green__link *links;  /* green_link callbacks, in order */
    struct green__link **links_tail;
    struct green__list timeouts;/* green_timeout_t of this greenlet */
    int timeouts_expired;       /* expired, not yet cancelled timeouts */
    /* Deadline of the current park (or of start_later): an entry of
       the hub's timer heap. */
    size_t heap_idx;            /* 0 = not in the heap */
    green_timeout_t *deadline_src; /* timeout that set it, NULL = own */
    struct green__wait *wait;   /* the current wait while WAITING (or
                                   woken and not resumed yet), else NULL */
    const char *wait_what;      /* for green_dump: "sleeping", ... */
    int wait_fd;                /* for green_dump, -1 if none */
    double wait_since;          /* when the wait began: the loop's cached
                                   ev_now (no clock read per wait) */
    uint64_t run_seq;           /* when it became runnable (rounds) */
    struct green__local *locals;/* green_setspecific values (local.c),
                                   NULL until the first set */
    unsigned nlocals;           /* entries of locals */
};

/* The module table.  A module (io, threadpool, signals, ...) describes
   itself with one static green__module and attaches its per-hub state on
   first use; the hub knows no module by name.  At teardown the hub runs
   the attached modules' term hooks newest first; green_fork runs every
   registered module's fork hook (green__modules_fork).  Up to
   GREEN__MODULES_MAX modules per process. */
#define GREEN__MODULES_MAX 16
struct green__module {
    const char *name;
    /* The hub is going away: release state (greenlets still parked are
       discarded by the hub afterwards). */
    void (*term)(struct green__hub *hub, void *state);
    /* Around fork(2) in green_fork: GREEN__FORK_PREPARE (take locks,
       newest module first), _PARENT, _CHILD (oldest first).  hub is the
       forking thread's hub, state this module's state there (NULL if it
       has none: process-wide locks are still the module's to handle). */
    void (*fork)(struct green__hub *hub, void *state, int phase);
    /* Optional: how many of the module's libev watchers are active for
       a caller (not idle internals), for green_hub_stats. */
    size_t (*watchers)(struct green__hub *hub, void *state);
    int slot;                   /* assigned on first attach, 1-based */
};
enum green__fork_phase {
    GREEN__FORK_PREPARE,
    GREEN__FORK_PARENT,
    GREEN__FORK_CHILD
};

struct green__hub {
    struct ev_loop *loop;       /* the libev loop */
    int own_loop;               /* 1 if we created loop (not attached) */
    int embedded;               /* green_hub_attach: the app runs ev_run */
    pthread_t thread;           /* owner thread */
    struct green *current;      /* running greenlet */
    struct green main;          /* the thread's own stack */
    struct green hubg;          /* the hub greenlet (standalone), or the
                                   thread stack inside libev callbacks
                                   (embedded) */
    struct green__list runq;    /* RUNNABLE greenlets, FIFO */
    struct green__list live;    /* every greenlet not DONE */
    struct green__list linkq;   /* DONE greenlets with links to run */
    struct green *zombie;       /* finished greenlet whose scheduler
                                   reference is dropped after the next
                                   switch (off its stack by then) */
    int budget;                 /* switches to greenlets made runnable
                                   during this round left before polling */
    uint64_t run_seq;           /* next green.run_seq */
    uint64_t round_end;         /* run_seq when this round began */
    size_t alive;               /* started and not DONE */
    int main_in_run;            /* main is parked in green_run */
    int in_link;                /* running link callbacks */
    int segv_ready;             /* this thread's overflow altstack is set */
    int shutdown_pending;       /* green_shutdown from a link callback */
    int exiting;                /* freed by exit() (atexit), not shutdown */
    /* Timer heap (1-based) of greenlets with a deadline, one ev_timer;
       heap_dead of its heap_len entries were cleared (g NULL). */
    struct green__heap_ent *heap;
    size_t heap_len, heap_cap, heap_dead;
    uint64_t heap_seq;
    ev_timer timer;
    ev_check check;             /* embedded: run the queue after a poll */
    ev_idle idle;               /* embedded: do not block while runnable */
    struct green__stack_cache stacks;
    struct green__stack spare;  /* the last released greenlet's stack
                                   (its block on top): the next green_new
                                   of that size takes it, not the cache */
    void *mod_state[GREEN__MODULES_MAX + 1]; /* by green__module.slot */
    struct green__module *mod_order[GREEN__MODULES_MAX]; /* attach order */
    int mod_count;
    uint64_t switches;          /* context switches (monitor, bench) */
    uint64_t id_next, id_end;   /* this hub's block of greenlet ids */
};

/* m's state in hub, NULL if m is not attached there. */
static inline void *green__module_state(const struct green__hub *hub,
                                        const struct green__module *m)
{
    return hub->mod_state[__atomic_load_n(&m->slot, __ATOMIC_ACQUIRE)];
}
/* Attach m with state to hub (state non-NULL).  0, or ENOSPC when the
   process has more than GREEN__MODULES_MAX modules. */
int green__module_attach(struct green__hub *hub, struct green__module *m,
                         void *state);
/* Create m's state in hub (m not attached there yet): size zeroed bytes,
   attached.  A module's state "created on first use" is
   green__module_state, else this and then the module's own set-up.
   NULL with errno (ENOMEM, ENOSPC). */
void *green__module_new(struct green__hub *hub, struct green__module *m,
                        size_t size);
/* Register m process-wide without per-hub state (a module that only
   has fork hooks).  0 or ENOSPC. */
int green__module_register(struct green__module *m);
/* Detach m from hub (its term hook will not run). */
void green__module_detach(struct green__hub *hub, struct green__module *m);
/* Run every registered module's fork hook for phase (see above). */
void green__modules_fork(struct green__hub *hub, int phase);

/* The calling thread's hub, created on first use; NULL/ENOMEM if that
   fails.  green__hub_peek never creates one.  Inline: every call of the
   API starts with one. */
extern __thread struct green__hub *green__tls_hub
    __attribute__((tls_model("initial-exec")));
struct green__hub *green__hub_create(void);
static inline struct green__hub *green__hub_peek(void)
{
    return green__tls_hub;
}
static inline struct green__hub *green__hub_get(void)
{
    struct green__hub *hub = green__tls_hub;
    if (GREEN_LIKELY(hub != NULL))
        return hub;
    return green__hub_create();
}

/* Like green__wait_begin's checks for a call that has work to do before
   it would wait (timeout 0 allowed): 0 if the current greenlet may block
   now, else the errno it would get. */
int green__can_block(double timeout);

/* End g's current wait with err (a kill, the hub).  Returns 1 if g was
   WAITING, 0 otherwise.  Callable from callbacks. */
int green__wake(struct green *g, int err);

/* A parked greenlet's green_timeouts changed (one was cancelled): arm
   its deadline again from its own timeout and the ones left. */
void green__wait_rearm(struct green *g);

/* Append a greenlet to the run queue (state RUNNABLE). */
void green__make_runnable(struct green__hub *hub, struct green *g);

/* Ensure the hub runs soon (embedded loops: start the idle watcher). */
void green__hub_kick(struct green__hub *hub);

/* 1 when the current context is the hub (or a libev callback). */
static inline int green__in_hub(const struct green__hub *hub)
{
    return hub->current == &hub->hubg;
}

/* Timer heap: arm g's deadline (absolute, green__now clock).  0 or
   ENOMEM (the heap could not grow). */
int green__deadline_set(struct green__hub *hub, struct green *g,
                        double deadline);
void green__deadline_clear(struct green__hub *hub, struct green *g);

/* Errno helper: set errno, return -1. */
static inline int green__fail(int err)
{
    errno = err;
    return -1;
}

/* 0 if obj (owned by the hub `owner`) may be used from this thread,
   EINVAL for NULL, EXDEV from another thread. */
static inline int green__owner_check(const void *obj,
                                     const struct green__hub *owner)
{
    if (!obj)
        return EINVAL;
    return green__hub_peek() == owner ? 0 : EXDEV;
}

/* Switching (hub.c), for greenlet.c's trampoline and finish. */
void green__after_switch(struct green__hub *hub);
_Noreturn void green__exit_current(struct green__hub *hub);

/* A process-wide unique greenlet id.  Each hub takes GREEN__ID_BLOCK ids
   at a time from one atomic counter, so a spawn makes no atomic
   operation; ids grow within a thread, not across threads. */
#define GREEN__ID_BLOCK 1024
uint64_t green__next_id_block(struct green__hub *hub);
static inline uint64_t green__next_id(struct green__hub *hub)
{
    if (GREEN_UNLIKELY(hub->id_next == hub->id_end))
        return green__next_id_block(hub);
    return hub->id_next++;
}

/* 1 if a kill of g fails its waits now (killed, cancellation enabled). */
static inline int green__cancelled(const struct green *g)
{
    return g->killed && !g->cancel_off;
}

/* Process-wide hooks run when a hub is created (diag: GREEN_MONITOR).
   Registered from a constructor; up to 4. */
void green__hub_on_create(void (*fn)(struct green__hub *hub));

#endif
