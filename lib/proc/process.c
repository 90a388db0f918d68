/* green_waitpid (a pidfd per waited child) and green_fork (the module
   table's fork hooks + ev_loop_fork).

   Children: libgreen reaps only the children it is asked to wait for.
   No hub runs on libev's default loop (whose built-in SIGCHLD watcher
   reaps every child of the process), and no ev_child watcher exists, so
   a plain waitpid(), system() or pclose() elsewhere in the program keeps
   working.

   green_waitpid(pid, status, options):
   - pid > 0: waitpid(pid, WNOHANG) first; if the child has not changed
     state, wait for its pidfd (pidfd_open, Linux 5.3) to become readable,
     which happens when it exits, then waitpid again.  This works on every
     hub.  With WUNTRACED/WCONTINUED (stops are not visible on a pidfd)
     or without pidfds, the wait is a poll: waitpid(WNOHANG) 1 ms apart,
     doubling to 50 ms (other greenlets run meanwhile);
   - pid == -1: any child, by the same poll, except the children a
     blocking green_waitpid(pid > 0) is waiting for (they are "claimed"):
     the poll peeks with waitid(WNOWAIT) and leaves a claimed child to its
     own waiter, so a specific waiter never loses its child to a pid -1
     waiter that happened to poll first;
   - the process-group forms (0, < -1) are -1/EINVAL;
   - options: WNOHANG, WUNTRACED, WCONTINUED (anything else EINVAL);
     WNOHANG never waits, so it works from the hub or a callback too;
   - results and errno as waitpid(2) (ECHILD when no such child), plus
     the blocking errors (ECANCELED, ETIMEDOUT, EDEADLK).

   green_fork() (gevent's policy): the child keeps
   every greenlet; the forking greenlet continues and the others run only
   when it yields to the hub.  Around fork(2) every registered module's
   fork hook runs (take locks; release them in the parent; rebuild them
   in the child).  In the child the loop gets ev_loop_fork (new epoll set
   and wakeup pipe, so no event is delivered through the parent's kernel
   objects).  Only the calling thread survives fork(2): hubs of other
   threads are gone in the child (their memory is not freed there). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/hub.h"
#include "io/io.h"
#include "proc.h"

#define POLL_FIRST 0.001
#define POLL_MAX 0.05

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* waitpid(WNOHANG), retried on EINTR. */
static pid_t try_wait(pid_t pid, int *status, int options)
{
    pid_t r;
    do
        r = waitpid(pid, status, options | WNOHANG);
    while (r < 0 && errno == EINTR);
    return r;
}

/* The claimed children, process-wide (waiters may sit on any thread's
   hub): one entry per blocking green_waitpid(pid > 0) in progress. */
static pthread_mutex_t claims_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t *claims;
static size_t nclaims, capclaims;

static void claims_fork(struct green__hub *hub, void *state, int phase)
{
    (void)hub;
    (void)state;
    if (phase == GREEN__FORK_PREPARE) {
        pthread_mutex_lock(&claims_mu);
    } else if (phase == GREEN__FORK_PARENT) {
        pthread_mutex_unlock(&claims_mu);
    } else {
        /* The parent's waits are not the child's children. */
        pthread_mutex_init(&claims_mu, NULL);
        nclaims = 0;
    }
}

static struct green__module claims_module = {.name = "waitpid",
                                             .fork = claims_fork};

/* 0, or an errno value (ENOMEM, ENOSPC: the module table is full). */
static int claim(pid_t pid)
{
    if (green__module_register(&claims_module) != 0)
        return ENOSPC;
    int err = 0;
    pthread_mutex_lock(&claims_mu);
    if (nclaims == capclaims) {
        size_t cap = capclaims ? capclaims * 2 : 8;
        pid_t *c = realloc(claims, cap * sizeof *c);
        if (c) {
            claims = c;
            capclaims = cap;
        } else {
            err = ENOMEM;
        }
    }
    if (!err)
        claims[nclaims++] = pid;
    pthread_mutex_unlock(&claims_mu);
    return err;
}

static void unclaim(pid_t pid)
{
    pthread_mutex_lock(&claims_mu);
    for (size_t i = 0; i < nclaims; i++) {
        if (claims[i] == pid) {
            claims[i] = claims[--nclaims];
            break;
        }
    }
    pthread_mutex_unlock(&claims_mu);
}

static int claimed(pid_t pid)
{
    int found = 0;
    pthread_mutex_lock(&claims_mu);
    for (size_t i = 0; i < nclaims && !found; i++)
        found = claims[i] == pid;
    pthread_mutex_unlock(&claims_mu);
    return found;
}

/* try_wait(-1): the first child waitid reports that nobody claimed.  A
   claimed child first in the kernel's list hides the others until its
   waiter reaps it (soon: its waiter wakes for that exit too). */
static pid_t try_wait_any(int *status, int options)
{
    int flags = WEXITED | WNOHANG | WNOWAIT |
                (options & WUNTRACED ? WSTOPPED : 0) |
                (options & WCONTINUED ? WCONTINUED : 0);
    /* A child reaped elsewhere between the peek and the wait: peek
       again (a few times; then report nothing, the poll comes back). */
    for (int tries = 0; tries < 8; tries++) {
        siginfo_t si = {0};
        if (waitid(P_ALL, 0, &si, flags) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (si.si_pid == 0 || claimed(si.si_pid))
            return 0;
        pid_t r = try_wait(si.si_pid, status, options);
        if (r != 0 && !(r < 0 && errno == ECHILD))
            return r;
    }
    return 0;
}

/* try_wait, leaving claimed children to their waiters for pid -1. */
static pid_t try_wait_for(pid_t pid, int *status, int options)
{
    return pid == -1 ? try_wait_any(status, options)
                     : try_wait(pid, status, options);
}

int green__pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* A pidfd for pid, or -1 when the kernel has none to give (ENOSYS,
   EPERM in some sandboxes): the caller polls instead. */
static int pidfd_for(pid_t pid, int options)
{
    if (pid <= 0 || (options & (WUNTRACED | WCONTINUED)))
        return -1;
    return green__pidfd_open(pid);
}

/* One wait for the child to change state: on its pidfd, or a nap of
   *nap seconds (doubled for the next time).  0 or an errno value. */
static int wait_child(int pidfd, double *nap)
{
    if (pidfd >= 0)
        return green__io_wait(pidfd, GREEN__IO_READ, -1) ? errno : 0;
    int err = green_sleep(*nap) ? errno : 0;
    *nap = *nap * 2 > POLL_MAX ? POLL_MAX : *nap * 2;
    return err;
}

/* The blocking part of green_waitpid, once a first try found nothing:
   the pid, or -1 with errno. */
static pid_t wait_blocking(pid_t pid, int *stv, int options)
{
    int err = green__can_block(-1);
    if (err)
        return green__fail(err);
    int pidfd = pidfd_for(pid, options);
    double nap = POLL_FIRST;
    pid_t r;
    /* The pidfd exists before the second waitpid: an exit between
       the two makes it readable, so it cannot slip past. */
    while ((r = try_wait_for(pid, stv, options)) == 0) {
        err = wait_child(pidfd, &nap);
        if (err)
            break;
    }
    if (pidfd >= 0)
        green_close(pidfd);
    return err ? green__fail(err) : r;
}

pid_t green_waitpid(pid_t pid, int *status, int options)
{
    if ((options & ~(WNOHANG | WUNTRACED | WCONTINUED)) || pid == 0 ||
        pid < -1)
        return green__fail(EINVAL);
    /* Claimed before the first look: a pid -1 waiter on another thread
       cannot take the child between that look and the wait. */
    int claiming = pid > 0 && !(options & WNOHANG);
    int err = claiming ? claim(pid) : 0;
    if (err)
        return green__fail(err);
    int stv = 0;
    pid_t r = try_wait_for(pid, &stv, options);
    if (r == 0 && !(options & WNOHANG))
        r = wait_blocking(pid, &stv, options);
    if (claiming) {
        err = errno;
        unclaim(pid);
        errno = err;
    }
    if (r > 0 && status)
        *status = stv;
    return r;
}

pid_t green_fork(void)
{
    struct green__hub *hub = green__hub_get();
    if (!hub)
        return -1;
    green__modules_fork(hub, GREEN__FORK_PREPARE);
    pid_t pid = fork();
    if (pid != 0) {
        int err = errno;
        green__modules_fork(hub, GREEN__FORK_PARENT);
        errno = err;
        return pid;
    }
    /* The child: one thread, this greenlet. */
    green__modules_fork(hub, GREEN__FORK_CHILD);
    ev_loop_fork(hub->loop);
    return 0;
}
