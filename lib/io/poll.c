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
#include <stdlib.h>
#include <sys/select.h>

#include "io.h"
#include "core/sys.h"

/* Waiters kept on the stack for small polls. */
#define POLL_STACK_WAITERS 16

/* Events that arm the read and the write watcher. */
#define POLL_READ_EVENTS (POLLIN | POLLRDNORM | POLLRDBAND)
#define POLL_WRITE_EVENTS (POLLOUT | POLLWRNORM | POLLWRBAND)

/* How often fds that no watcher can express are asked again: POLLPRI
   alone (an EV_READ watcher would fire on ordinary data too and spin),
   and the hub's own epoll fd (libev cannot watch it). */
#define POLL_RECHECK 0.01

static void disarm_all(struct green__hub *hub, struct green__io_waiter *iw,
                       size_t n)
{
    for (size_t i = 0; i < n; i++)
        green__io_disarm(hub, &iw[i]);
}

/* Arm the waiters for one round.  Returns the number armed (into iw),
   or -1 with errno (everything armed so far is disarmed).  *recheck is
   set when some fd must be polled periodically instead. */
static ssize_t arm_all(struct green__hub *hub, const struct pollfd *fds,
                       nfds_t n, struct green__io_waiter *iw, int *recheck)
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
            if (green__io_arm(hub, fds[i].fd, dir, &iw[k]) != 0) {
                int err = errno;
                if (err == EBADF) {
                    /* Closed meanwhile (the next round reports POLLNVAL)
                       or the hub's own epoll fd: poll it periodically. */
                    *recheck = 1;
                    continue;
                }
                disarm_all(hub, iw, k);
                errno = err;
                return -1;
            }
            k++;
        }
    }
    return (ssize_t)k;
}

/* poll(2) with a timeout in seconds (< 0 forever, 0 no wait). */
static int poll_wait(struct pollfd *fds, nfds_t n, double timeout)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    struct green__io_waiter stack_iw[POLL_STACK_WAITERS];
    struct green__io_waiter *iw = stack_iw;
    double deadline = timeout > 0 ? green__now() + timeout : 0;
    int rc;
    for (;;) {
        rc = green__sys_poll(fds, n, 0);
        if (rc != 0 || timeout == 0)
            break;
        double left = -1;
        if (timeout > 0) {
            left = deadline - green__now();
            if (left <= 0)
                break; /* timed out: rc is 0, as poll(2) returns */
        }
        int err = green__can_block(left);
        if (err) {
            rc = green__fail(err);
            break;
        }
        if (iw == stack_iw && 2 * (size_t)n > POLL_STACK_WAITERS) {
            iw = malloc(2 * (size_t)n * sizeof *iw);
            if (!iw) {
                iw = stack_iw;
                rc = green__fail(ENOMEM);
                break;
            }
        }
        int recheck;
        ssize_t armed = arm_all(hub, fds, n, iw, &recheck);
        if (armed < 0) {
            rc = -1;
            break;
        }
        double park = left;
        if (recheck && (park < 0 || park > POLL_RECHECK))
            park = POLL_RECHECK;
        hub->current->wait_fd = armed > 0 ? iw[0].fd : -1;
        err = green__park(park, "polling");
        hub->current->wait_fd = -1;
        disarm_all(hub, iw, (size_t)armed);
        /* Woken by readiness, or green_close (EBADF: the next poll(2)
           reports POLLNVAL), or our own deadline: ask the kernel again. */
        if (err == 0 || err == EBADF ||
            (err == ETIMEDOUT && !hub->current->timeouts_expired))
            continue;
        rc = green__fail(err);
        break;
    }
    if (iw != stack_iw)
        free(iw);
    return rc;
}

int green_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    if (n > 0 && !fds)
        return green__fail(EFAULT);
    return poll_wait(fds, n, timeout_ms < 0 ? -1 : timeout_ms / 1000.0);
}

int green_select(int nfds, fd_set *r, fd_set *w, fd_set *e,
                 struct timeval *tv)
{
    if (nfds < 0 || nfds > FD_SETSIZE)
        return green__fail(EINVAL);
    if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000))
        return green__fail(EINVAL);
    double timeout = tv ? (double)tv->tv_sec + tv->tv_usec * 1e-6 : -1;
    double start = green__now();

    /* One pollfd per fd present in any set. */
    struct pollfd stack_fds[64];
    struct pollfd *fds = stack_fds;
    nfds_t n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (r && FD_ISSET(fd, r) ? POLLIN : 0) |
                   (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                   (e && FD_ISSET(fd, e) ? POLLPRI : 0);
        if (!ev)
            continue;
        if (fds == stack_fds && n == 64) {
            fds = malloc((size_t)nfds * sizeof *fds);
            if (!fds)
                return green__fail(ENOMEM);
            for (nfds_t i = 0; i < n; i++)
                fds[i] = stack_fds[i];
        }
        fds[n].fd = fd;
        fds[n].events = ev;
        fds[n].revents = 0;
        n++;
    }

    int rc = poll_wait(fds, n, timeout);
    if (rc >= 0) {
        /* Map back as the kernel's select does: readable includes
           hang-up and error, writable includes error. */
        for (nfds_t i = 0; i < n; i++)
            if (fds[i].revents & POLLNVAL) {
                rc = green__fail(EBADF);
                break;
            }
    }
    if (rc >= 0) {
        if (r)
            FD_ZERO(r);
        if (w)
            FD_ZERO(w);
        if (e)
            FD_ZERO(e);
        rc = 0;
        for (nfds_t i = 0; i < n; i++) {
            int fd = fds[i].fd;
            short ev = fds[i].events, re = fds[i].revents;
            if ((ev & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
                FD_SET(fd, r);
                rc++;
            }
            if ((ev & POLLOUT) && (re & (POLLOUT | POLLERR))) {
                FD_SET(fd, w);
                rc++;
            }
            if ((ev & POLLPRI) && (re & POLLPRI)) {
                FD_SET(fd, e);
                rc++;
            }
        }
        /* Linux select updates the timeout to the time not slept. */
        if (tv) {
            double left = timeout - (green__now() - start);
            if (left < 0)
                left = 0;
            tv->tv_sec = (time_t)left;
            tv->tv_usec = (suseconds_t)((left - (double)tv->tv_sec) * 1e6);
        }
    }
    if (fds != stack_fds)
        free(fds);
    return rc;
}
