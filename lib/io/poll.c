/* green_poll and green_select: poll(2) and select(2) that park only the
   calling greenlet.

   The kernel computes every result: each round asks poll(2) with a zero
   timeout, and only when nothing is ready does the greenlet arm one
   waiter per fd and direction on the per-fd watchers of io.c (the same
   watchers green_read uses, so polling costs no epoll_ctl either) and
   park until one fires, the timeout passes, a kill or green_close.  Then
   it asks the kernel again.  So revents, the fd_sets and the counts are
   exactly what libc returns. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "io.h"
#include "core/sys.h"

/* Clauses kept on the stack for small polls. */
#define POLL_STACK_CLAUSES 16

/* Events that arm the read and the write watcher. */
#define POLL_READ_EVENTS (POLLIN | POLLRDNORM | POLLRDBAND)
#define POLL_WRITE_EVENTS (POLLOUT | POLLWRNORM | POLLWRBAND)

/* How often fds that no watcher can express are asked again: POLLPRI
   alone (an EV_READ watcher would fire on ordinary data too and spin),
   and the hub's own epoll fd (libev cannot watch it). */
#define POLL_RECHECK 0.01

/* Add one clause per fd and direction to w.  Returns the number added
   (into ic), or -1 with errno.  *recheck is set when some fd must be
   polled periodically instead.  ic[k].fd's index in fds is kept in
   the clause's data. */
static ssize_t add_clauses(struct green__wait *w, const struct pollfd *fds,
                           nfds_t n, struct green__io_clause *ic,
                           int *recheck)
{
    size_t k = 0;
    *recheck = 0;
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd < 0)
            continue;
        short ev = fds[i].events;
        if ((ev & POLLPRI) && !(ev & POLL_READ_EVENTS))
            *recheck = 1;
        for (int dir = 0; dir < 2; dir++) {
            short want = dir == GREEN__IO_READ ? POLL_READ_EVENTS
                                               : POLL_WRITE_EVENTS;
            if (!(ev & want))
                continue;
            int err = green__io_clause(w, &ic[k], fds[i].fd, dir);
            if (err == EBADF) {
                /* Closed meanwhile (the next round reports POLLNVAL) or
                   the hub's own epoll fd: poll it periodically. */
                *recheck = 1;
                continue;
            }
            if (err) {
                errno = err;
                return -1;
            }
            ic[k].c.data = (void *)(uintptr_t)i;
            k++;
        }
    }
    return (ssize_t)k;
}

/* poll(2) now, except that the fds whose clause green_close fired
   (closed[i]) report POLLNVAL whatever their number means by now (a new
   fd may have taken it).  Returns the count, as poll(2). */
static int poll_now(struct pollfd *fds, nfds_t n, const unsigned char *closed)
{
    int rc = green__sys_poll(fds, n, 0);
    if (rc < 0 || !closed)
        return rc;
    rc = 0;
    for (nfds_t i = 0; i < n; i++) {
        if (closed[i])
            fds[i].revents = POLLNVAL;
        rc += fds[i].revents != 0;
    }
    return rc;
}

/* After a park: mark the fds whose clause fired with EBADF (closed by
   green_close while we waited). */
static void note_closed(const struct green__io_clause *ic, size_t k,
                        unsigned char *closed)
{
    for (size_t j = 0; j < k; j++)
        if (ic[j].c.fired && ic[j].c.err == EBADF)
            closed[(uintptr_t)ic[j].c.data] = 1;
}

/* One park of a poll round: 0 (ask the kernel again) or an errno. */
static int poll_park(const struct pollfd *fds, nfds_t n,
                     struct green__io_clause *ic, unsigned char *closed,
                     double left)
{
    struct green__wait w;
    int err = green__wait_begin(&w, left, "polling", 0);
    if (err)
        return err;
    int recheck;
    ssize_t k = add_clauses(&w, fds, n, ic, &recheck);
    if (k < 0) {
        err = errno;
        green__wait_cancel(&w);
        return err;
    }
    if (recheck && (w.timeout < 0 || w.timeout > POLL_RECHECK))
        w.timeout = POLL_RECHECK;
    err = green__wait_park(&w);
    note_closed(ic, (size_t)k, closed);
    /* Woken by readiness, or green_close (EBADF: that fd reports
       POLLNVAL), or our own deadline: ask the kernel again. */
    if (err == 0 || err == EBADF ||
        (err == ETIMEDOUT && !w.g->timeouts_expired))
        return 0;
    return err;
}

/* poll(2) with a timeout in seconds (< 0 forever, 0 no wait). */
static int poll_wait(struct pollfd *fds, nfds_t n, double timeout)
{
    struct green__io_clause stack_ic[POLL_STACK_CLAUSES];
    unsigned char stack_closed[POLL_STACK_CLAUSES / 2];
    struct green__io_clause *ic = stack_ic;
    unsigned char *closed = stack_closed;
    if (2 * (size_t)n > POLL_STACK_CLAUSES) {
        ic = malloc(2 * (size_t)n * sizeof *ic);
        closed = malloc((size_t)n);
        if (!ic || !closed) {
            free(ic);
            free(closed);
            return green__fail(ENOMEM);
        }
    }
    memset(closed, 0, (size_t)n);
    double deadline = timeout > 0 ? green__now() + timeout : 0;
    int rc, any_closed = 0;
    for (;;) {
        rc = poll_now(fds, n, any_closed ? closed : NULL);
        if (rc != 0 || timeout == 0)
            break;
        double left = -1;
        if (timeout > 0) {
            left = deadline - green__now();
            if (left <= 0)
                break; /* timed out: rc is 0, as poll(2) returns */
        }
        int err = poll_park(fds, n, ic, closed, left);
        if (err) {
            rc = green__fail(err);
            break;
        }
        any_closed = memchr(closed, 1, (size_t)n) != NULL;
    }
    if (ic != stack_ic) {
        free(ic);
        free(closed);
    }
    return rc;
}

int green_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    if (n > 0 && !fds)
        return green__fail(EFAULT);
    return poll_wait(fds, n, timeout_ms < 0 ? -1 : timeout_ms / 1000.0);
}

/* fd_set bits by hand: callers may pass sets larger than FD_SETSIZE
   (allocated for nfds bits, as libc's select allows), which FD_ISSET's
   fortified checks would reject. */
#define SEL_BITS (8 * sizeof(unsigned long))

static int sel_isset(const fd_set *s, int fd)
{
    const unsigned long *b = (const unsigned long *)(const void *)s;
    return s && (b[fd / SEL_BITS] >> (fd % SEL_BITS)) & 1;
}

static void sel_set(fd_set *s, int fd)
{
    unsigned long *b = (unsigned long *)(void *)s;
    b[fd / SEL_BITS] |= 1UL << (fd % SEL_BITS);
}

/* Clear the first nfds bits (the words the kernel would write). */
static void sel_zero(fd_set *s, int nfds)
{
    if (s)
        memset(s, 0, (((size_t)nfds + SEL_BITS - 1) / SEL_BITS) *
                         sizeof(unsigned long));
}

/* The pollfds for select's sets, into *fds (stack or malloc'd).
   Returns how many, or -1 with errno (ENOMEM). */
static ssize_t sel_to_poll(int nfds, const fd_set *r, const fd_set *w,
                           const fd_set *e, struct pollfd *stack_fds,
                           size_t stack_n, struct pollfd **fds)
{
    nfds_t n = 0;
    *fds = stack_fds;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (sel_isset(r, fd) ? POLLIN : 0) |
                   (sel_isset(w, fd) ? POLLOUT : 0) |
                   (sel_isset(e, fd) ? POLLPRI : 0);
        if (!ev)
            continue;
        if (*fds == stack_fds && n == stack_n) {
            struct pollfd *big = malloc((size_t)nfds * sizeof *big);
            if (!big)
                return green__fail(ENOMEM);
            memcpy(big, stack_fds, n * sizeof *big);
            *fds = big;
        }
        (*fds)[n++] = (struct pollfd){.fd = fd, .events = ev};
    }
    return (ssize_t)n;
}

/* Map poll's results back as the kernel's select does: readable
   includes hang-up and error, writable includes error.  Returns the
   number of bits set, or -1/EBADF if an fd was not open. */
static int poll_to_sel(const struct pollfd *fds, nfds_t n, int nfds,
                       fd_set *r, fd_set *w, fd_set *e)
{
    for (nfds_t i = 0; i < n; i++)
        if (fds[i].revents & POLLNVAL)
            return green__fail(EBADF);
    sel_zero(r, nfds);
    sel_zero(w, nfds);
    sel_zero(e, nfds);
    int rc = 0;
    for (nfds_t i = 0; i < n; i++) {
        int fd = fds[i].fd;
        short ev = fds[i].events, re = fds[i].revents;
        if ((ev & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
            sel_set(r, fd);
            rc++;
        }
        if ((ev & POLLOUT) && (re & (POLLOUT | POLLERR))) {
            sel_set(w, fd);
            rc++;
        }
        if ((ev & POLLPRI) && (re & POLLPRI)) {
            sel_set(e, fd);
            rc++;
        }
    }
    return rc;
}

int green_select(int nfds, fd_set *r, fd_set *w, fd_set *e,
                 struct timeval *tv)
{
    if (nfds < 0)
        return green__fail(EINVAL);
    if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000))
        return green__fail(EINVAL);
    double timeout = tv ? (double)tv->tv_sec + tv->tv_usec * 1e-6 : -1;
    double start = green__now();
    struct pollfd stack_fds[64], *fds;
    ssize_t n = sel_to_poll(nfds, r, w, e, stack_fds, 64, &fds);
    if (n < 0)
        return -1;
    int rc = poll_wait(fds, (nfds_t)n, timeout);
    if (rc >= 0)
        rc = poll_to_sel(fds, (nfds_t)n, nfds, r, w, e);
    /* Linux select updates the timeout to the time not slept. */
    if (rc >= 0 && tv) {
        double left = timeout - (green__now() - start);
        if (left < 0)
            left = 0;
        tv->tv_sec = (time_t)left;
        tv->tv_usec = (suseconds_t)((left - (double)tv->tv_sec) * 1e6);
    }
    if (fds != stack_fds)
        free(fds);
    return rc;
}
