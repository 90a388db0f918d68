/* The greenlet control block, the per-thread hub, and the park/wake
   primitive every blocking call is built on (like libdill's cr.h).

   How a blocking call works:
     1. try the operation; if it would block,
     2. register a waiter where the waker will find it (a green__waitq, an
        ev_io watcher, ...),
     3. call green__park(timeout, what): it checks kill/timeout/context,
        arms the deadline and switches away,
     4. a waker calls green__wake(g, 0) (or an error) after removing the
        waiter; a kill wakes with ECANCELED and the deadline with
        ETIMEDOUT, in which case the caller removes its own waiter.
   green__park returns 0 or an errno value; it never touches errno. */
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

enum green__state {
    GREEN__NEW,      /* created, not started (maybe start_later pending) */
    GREEN__RUNNABLE, /* in the hub's run queue */
    GREEN__RUNNING,  /* the current greenlet */
    GREEN__WAITING,  /* parked in green__park */
    GREEN__DONE      /* finished; stack released or about to be */
};

struct green__link; /* a green_link callback, greenlet.c */
struct green;

/* A FIFO of parked greenlets (joiners, event waiters, queue waiters).
   The waiter lives on the parked greenlet's stack. */
struct green__waiter {
    struct green__list node;
    struct green *g;           /* the parked greenlet */
    void *data;                 /* primitive-specific (item, count...) */
};
struct green__waitq {
    struct green__list head;
};
static inline void green__waitq_init(struct green__waitq *q)
{
    green__list_init(&q->head);
}
static inline int green__waitq_empty(const struct green__waitq *q)
{
    return green__list_empty(&q->head);
}

struct green__hub;

struct green {
    struct green__ctx ctx;      /* registers while switched out */
    struct green__hub *hub;     /* owning hub: greenlets never migrate */
    struct green__list node;    /* in hub->runq while RUNNABLE */
    struct green__list all;     /* in hub->live while not DONE */
    int state;                  /* enum green__state */
    int refs;                   /* references (caller's + scheduler's) */
    int killed;                 /* sticky cancel: every park fails */
    int entered;                /* fn has started running */
    int scheduled;              /* green_start(_later) was called */
    int kind;                   /* 0 spawned, 1 main, 2 hub */
    int wake_err;               /* result of the current park */
    int saved_errno;            /* errno while switched out */
    int err;                    /* green_error */
    void *value;                /* green_value */
    green_fn fn;                /* what to run, and its argument */
    void *arg;
    struct green__stack stack;  /* NULL map for main and hub */
    uint64_t id;                /* process-wide unique */
    char name[32];              /* copied attr name, "" = default */
    struct green__waitq joiners;/* green_join waiters */
    struct green__link *links;  /* green_link callbacks, in order */
    struct green__link **links_tail;
    struct green__list timeouts;/* green_timeout_t of this greenlet */
    int timeouts_expired;       /* expired, not yet cancelled timeouts */
    /* Deadline of the current park (or of start_later), kept in the
       hub's timer heap so equal deadlines fire in arming order. */
    double deadline;
    uint64_t deadline_seq;
    size_t heap_idx;            /* 0 = not in the heap */
    green_timeout_t *deadline_src; /* timeout that set it, NULL = own */
    struct green__list *parked_on; /* waiter node while in a waitq, so
                                   shutdown can unlink it */
    const char *wait_what;      /* for green_dump: "sleeping", ... */
    int wait_fd;                /* for green_dump, -1 if none */
    double wait_since;          /* green__now() when this park began */
    uint64_t run_seq;           /* when it became runnable (rounds) */
};

/* Per-module state that later features hang off the hub; each module's
   term runs at shutdown and fork_child after green_fork in the child. */
enum {
    GREEN__MOD_IO,
    GREEN__MOD_THREADPOOL,
    GREEN__MOD_SIGNAL,
    GREEN__MOD_PROCESS,
    GREEN__MOD_THREAD,
    GREEN__MOD_MONITOR,
    GREEN__MOD_PATCH,
    GREEN__MOD_MAX
};
struct green__module {
    void *state;
    void (*term)(struct green__hub *hub);
    void (*fork_child)(struct green__hub *hub);
};

struct green__hub;
/* Register (or, with NULLs, clear) a module's state and hooks. */
static inline void green__module_set(struct green__hub *hub, int id,
                                     void *state,
                                     void (*term)(struct green__hub *),
                                     void (*fork_child)(struct green__hub *));

struct green__hub {
    struct ev_loop *loop;       /* the libev loop */
    int own_loop;               /* 1 if we created loop (not attached) */
    int backend_fd;             /* libev's epoll fd, -1 if unknown: io.c
                                   never watches or reads it */
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
    struct green *zombie;       /* finished greenlet whose stack is
                                   released after the next switch */
    int budget;                 /* switches to greenlets made runnable
                                   during this round left before polling */
    uint64_t run_seq;           /* next green.run_seq */
    uint64_t round_end;         /* run_seq when this round began */
    size_t alive;               /* started and not DONE */
    int main_in_run;            /* main is parked in green_run */
    int in_link;                /* running link callbacks */
    /* Timer heap (1-based) of greenlets with a deadline, one ev_timer. */
    struct green **heap;
    size_t heap_len, heap_cap;
    uint64_t heap_seq;
    ev_timer timer;
    ev_check check;             /* embedded: run the queue after a poll */
    ev_idle idle;               /* embedded: do not block while runnable */
    struct green__stack_cache stacks;
    struct green__module mod[GREEN__MOD_MAX];
    uint64_t switches;          /* context switches (monitor, bench) */
};

static inline void green__module_set(struct green__hub *hub, int id,
                                     void *state,
                                     void (*term)(struct green__hub *),
                                     void (*fork_child)(struct green__hub *))
{
    hub->mod[id].state = state;
    hub->mod[id].term = term;
    hub->mod[id].fork_child = fork_child;
}

/* The calling thread's hub, created on first use; NULL/ENOMEM if that
   fails.  green__hub_peek never creates one. */
struct green__hub *green__hub_get(void);
struct green__hub *green__hub_peek(void);

/* Park the current greenlet until green__wake or its deadline.  timeout:
   < 0 forever, 0 fails with EAGAIN at once, NaN EINVAL.  Returns 0 (woken)
   or an errno value: ETIMEDOUT, ECANCELED, EDEADLK (hub/callback),
   EAGAIN, EINVAL or whatever the waker passed.  `what` shows in
   green_dump. */
int green__park(double timeout, const char *what);

/* Like green__park's checks without parking: 0 if the current greenlet
   may block now, else the errno it would get (timeout 0 is allowed). */
int green__can_block(double timeout);

/* Make a WAITING greenlet runnable; green__park then returns err.
   Returns 1 if g was waiting, 0 otherwise.  Callable from callbacks. */
int green__wake(struct green *g, int err);

/* Append a greenlet to the run queue (state RUNNABLE). */
void green__make_runnable(struct green__hub *hub, struct green *g);

/* Give up the CPU; the caller already queued itself or set WAITING. */
void green__schedule(struct green__hub *hub);

/* Ensure the hub runs soon (embedded loops: start the idle watcher). */
void green__hub_kick(struct green__hub *hub);

/* 1 when the current context is the hub (or a libev callback). */
static inline int green__in_hub(const struct green__hub *hub)
{
    return hub->current == &hub->hubg;
}

/* Timer heap: arm g's deadline (absolute, green__now clock). */
void green__deadline_set(struct green__hub *hub, struct green *g,
                         double deadline);
void green__deadline_clear(struct green__hub *hub, struct green *g);

/* Enqueue w (data may be NULL), park, dequeue on failure.  Returns 0 if a
   waker took w off the queue, else -1 with errno set. */
int green__waitq_wait(struct green__waitq *q, struct green__waiter *w,
                      double timeout, const char *what);
/* Wake the oldest waiter with err; returns its waiter (already unlinked)
   or NULL if there was none. */
struct green__waiter *green__waitq_wake_one(struct green__waitq *q, int err);
/* Wake every waiter with err; returns how many. */
size_t green__waitq_wake_all(struct green__waitq *q, int err);

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

/* Validate a timeout argument: 0 or EINVAL for NaN. */
static inline int green__timeout_valid(double t)
{
    return t == t ? 0 : EINVAL;
}

/* Greenlet internals used by hub.c (greenlet.c). */
void green__finish(struct green *g) __attribute__((noreturn));
void green__run_links(struct green__hub *hub);
void green__unref(struct green *g);
void green__timeouts_fire(struct green *g, green_timeout_t *src);
double green__timeouts_deadline(struct green *g);
void green__hub_free(struct green__hub *hub);
void green__timeouts_detach(struct green *g);
uint64_t green__next_id(void);
void green__after_switch(struct green__hub *hub);
_Noreturn void green__exit_current(struct green__hub *hub);
void green__start_delayed(struct green__hub *hub, struct green *g);

/* monitor.c: start the blocked-loop monitor if GREEN_MONITOR is set. */
void green__monitor_from_env(void);

/* process.c: on libev's default loop, record children's statuses for
   green_waitpid (best effort: retried on first use if out of memory). */
void green__process_watch(struct green__hub *hub);

/* segv.c: install the overflow handler and this thread's altstack. */
void green__segv_init(void);
void green__segv_thread_term(void);

#endif
