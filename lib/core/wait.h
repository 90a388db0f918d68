/* The wait primitive: every blocking call in libgreen waits through it
   (model: libdill's clauses, cr.h/cr.c).

   How a blocking call works now, walking one green_read(fd, buf, n):
     1. green_read (lib/io/io.c) looks the fd up in the one process-wide
        fd table (lib/io/fd.c): an fd number the process cannot have is
        EBADF at once; on first sight O_NONBLOCK is set and the fd's kind
        recorded, afterwards this costs no syscall.  It hands a small
        "try" function (read(2) through syscall(2)) to the one retry
        loop, green__io_retry.
     2. The loop calls read(2).  Data, EOF or a real error: returned.
     3. EAGAIN: retry_wait reads the socket's SO_RCVTIMEO once (it bounds
        the wait, giving EAGAIN like the kernel) and waits once for the
        fd with park_fd:
        - green__wait_begin(&w, timeout, "waiting to read", 0) makes the
          checks, once, in the contract's order: NaN timeout (EINVAL),
          timeout 0 (EAGAIN), no hub (ENOMEM), the hub or a libev/link
          callback (EDEADLK), a kill (ECANCELED), an expired
          green_timeout (ETIMEDOUT);
        - green__io_clause adds one clause: a green__clause on the fd
          entry's read waiters, with its own undo (leave the waiters,
          let the watcher stop before the next poll if nobody else
          waits); the entry's ev_io is started if it was not;
        - green__wait_park(&w) arms the deadline (the earlier of the
          call's timeout and the greenlet's green_timeouts; none at all,
          and no clock read, for an infinite wait), sets the greenlet
          WAITING and switches to the next runnable greenlet, or to the
          hub, which polls libev.
     4. Whoever ends the wait goes through one path: the ev_io callback
        fires the clause (green__clause_fire(c, 0)); green_close, or the
        hub finding the fd closed before libev touched it, fires it with
        EBADF; a kill, the deadline or green_shutdown end the wait
        through green__wake.  The greenlet becomes runnable.
     5. Back in green__wait_park: the deadline is disarmed and the undo of
        every clause runs, inside the primitive, whether it fired or not.
        The result is the first fired clause's error (0), or the
        kill/deadline error.
     6. The loop calls read(2) again and returns the data (or the wait's
        error, with errno set).
   No caller removes its own waiter after a kill or timeout, and nothing
   outside hub.c writes a greenlet's state or its wait result.

   A wait may hold any number of clauses (green_poll holds one per fd,
   green_cond_wait one for the condition and one for the lock's end).
   A clause may fire more than once before the greenlet resumes (an fd
   first readable, then closed): each fire updates that clause's own
   result, which the caller reads after the park. */
#ifndef GREEN_WAIT_H_INCLUDED
#define GREEN_WAIT_H_INCLUDED

#include <errno.h>

#include "list.h"

struct green;
struct green__wait;

/* One thing a wait waits for.  Lives on the waiting greenlet's stack. */
struct green__clause {
    struct green__list node;     /* in the source's list while armed */
    struct green *g;             /* the waiting greenlet */
    struct green__wait *w;       /* the wait it belongs to */
    struct green__clause *next;  /* next clause of the same wait */
    /* Leaves the source; runs once when the wait ends, fired or not.
       NULL: unlink node if it is still linked. */
    void (*undo)(struct green__clause *c);
    void *data;                  /* the source's payload (item, count) */
    int err;                     /* this clause's result once fired */
    unsigned fired;              /* 0, or the order in which it fired */
    unsigned notify;             /* a readiness watcher (green_wait_any):
                                    told about a token, never given one */
};

/* A greenlet's view of a source of wake-ups: a FIFO of clauses. */
struct green__waitq {
    struct green__list head;
};

/* Flags of green__wait_begin. */
#define GREEN__WAIT_NOCANCEL 0x1 /* kills and green_timeouts neither fail
                                    nor end this wait (a lock re-acquire
                                    that must complete) */

struct green__wait {
    struct green *g;             /* the waiting greenlet */
    struct green__clause *first; /* clauses, newest first */
    struct green__clause *winner;/* first clause that fired, or NULL */
    double timeout;              /* the call's own timeout (< 0 forever) */
    double own_deadline;         /* now + timeout, computed once when
                                    needed (0: not yet) */
    unsigned nfired;             /* clauses fired so far */
    int err;                     /* kill/deadline/hub result if no winner */
    int flags;                   /* GREEN__WAIT_* */
    int fd;                      /* for green_dump and gdb, -1 if none */
    const char *what;            /* "reading", "joining", ... */
};

/* 0, or EINVAL for a NaN timeout (the first check of every call). */
static inline int green__timeout_valid(double t)
{
    return t == t ? 0 : EINVAL;
}

/* Start a wait of the current greenlet.  Checks, in this order: NaN
   timeout (EINVAL), timeout 0 (EAGAIN: the caller found the object not
   ready), no hub (ENOMEM), the hub or a libev/link callback (EDEADLK),
   then, unless GREEN__WAIT_NOCANCEL, a kill (ECANCELED) and an expired
   green_timeout (ETIMEDOUT).  Returns 0 or that errno value. */
int green__wait_begin(struct green__wait *w, double timeout,
                      const char *what, int flags);

/* Add clause c to w (c->node is left unlinked; the caller links it into
   its source, or uses green__waitq_add). */
void green__wait_add(struct green__wait *w, struct green__clause *c,
                     void (*undo)(struct green__clause *), void *data);

/* Park until a clause fires, a kill, the deadline or the hub ends the
   wait; then run every clause's undo.  Returns 0 when the first clause
   that fired did so with 0; else its error, or ECANCELED, ETIMEDOUT,
   EDEADLK (nothing can ever wake the wait: main only) or ENOMEM (the
   deadline heap could not grow).  The clauses' err/fired fields tell
   which ones fired.  Never touches errno. */
int green__wait_park(struct green__wait *w);

/* Give up a wait before parking (adding a clause failed): undo the
   clauses added so far. */
void green__wait_cancel(struct green__wait *w);

/* A source's event for c: record err as c's result and wake its greenlet
   if c's wait is still parked.  Returns 1 if this woke the greenlet, 0 if
   its wait had already ended (a kill, the deadline or another clause got
   there first): a source that hands out one token (a lock, an item)
   must then offer it to the next clause.  Callable from callbacks. */
int green__clause_fire(struct green__clause *c, int err);

/* Waitq sources. */
static inline void green__waitq_init(struct green__waitq *q)
{
    green__list_init(&q->head);
}
static inline int green__waitq_empty(const struct green__waitq *q)
{
    return green__list_empty(&q->head);
}
/* Add c to w and append it to q (undo: leave q). */
void green__waitq_add(struct green__wait *w, struct green__waitq *q,
                      struct green__clause *c, void *data);
/* One-clause wait on q: begin, add, park.  Returns 0 if a waker fired c
   with 0, else -1 with errno (the wake error, or a begin/park error). */
int green__waitq_wait(struct green__waitq *q, struct green__clause *c,
                      double timeout, const char *what);
/* Like green__waitq_add, for a clause that only watches q: sources
   hand their tokens (items, units, results) to ordinary clauses only,
   and tell notify clauses with green__waitq_notify when a token stays
   with the object.  Its undo leaves q. */
void green__waitq_add_notify(struct green__wait *w, struct green__waitq *q,
                             struct green__clause *c);
/* Fire every notify clause of q with err (they stay linked until their
   wait's undo).  A source calls it whenever a token became available and
   no ordinary clause took it. */
void green__waitq_notify(struct green__waitq *q, int err);
/* 1 if q holds an ordinary (token-taking) clause. */
int green__waitq_has_taker(const struct green__waitq *q);
/* Fire the oldest ordinary clause that still waits (unlinking it);
   clauses whose wait already ended are dropped and skipped, notify
   clauses are passed over.  Returns it or NULL. */
struct green__clause *green__waitq_wake_one(struct green__waitq *q,
                                            int err);
/* Fire every clause with err, notify clauses too (unlinking them all);
   returns how many ordinary clauses woke. */
size_t green__waitq_wake_all(struct green__waitq *q, int err);

#endif
