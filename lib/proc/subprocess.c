/* Subprocesses (gevent.subprocess): posix_spawnp with pipes, communicate,
   wait, kill.

   The child's exit is waited for with green_waitpid (process.c: the
   child's pidfd, else polling), so it works on every hub and reaps
   only this child.  It is claimed from green_waitpid(-1) only while
   a wait for it runs, not for p's lifetime: waitid reports the first
   child only, so an exited child that p's owner has not waited for yet
   would hide every later child from pid -1 waiters.  p also keeps a
   pidfd of its own from the spawn on: green_proc_kill signals through
   it (pidfd_send_signal), so a pid that was reaped behind our back and
   recycled is never signalled.

   communicate moves data with green_poll over the pipes still open
   (one poll(2) with timeout 0 per round, parking only when none is
   ready), then waits for the exit.  Whatever it read, and how much
   input it wrote, is kept in p, so a call that timed out or was killed
   loses nothing: the next call continues.

   A child still running when p is freed becomes an orphan of the hub of
   the freeing thread: a watcher on its pidfd (or, without pidfds, a
   100 ms timer) reaps it when it exits.  Those watchers are unref'd:
   they never keep green_run going, and they are not a caller's watchers
   (green_hub_stats does not count them). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/hub.h"
#include "io/io.h"
#include "proc.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define READ_CHUNK 65536      /* free space made before each read */
#define ORPHAN_POLL 0.1       /* reaping orphans without pidfds */

extern char **environ;

/* Output read so far from one pipe. */
struct outbuf {
    char *data;
    size_t len, cap;
};

struct green_proc {
    pid_t pid;
    int pidfd;              /* -1 without pidfds, or once reaped */
    int fds[3];             /* our ends of stdin, stdout, stderr, or -1 */
    int piped[3];           /* stream i was a pipe (it may be closed now) */
    int reaped;             /* status is valid */
    int status;
    int busy;               /* a communicate is running */
    size_t in_done;         /* input bytes written so far */
    struct outbuf out[2];   /* stdout, stderr read so far */
};

/******************************************************************************/
/*  Orphans: children freed while running, reaped by the hub                  */
/******************************************************************************/

struct orphan {
    ev_io io;               /* on the pidfd (unused without one) */
    struct orphan *next;
    pid_t pid;
    int pidfd;
};

struct orphans {
    struct orphan *list;
    ev_timer poll;          /* reaps the ones without a pidfd */
    struct ev_loop *loop;
};

static void orphans_term(struct green__hub *hub, void *state);
static void orphans_fork(struct green__hub *hub, void *state, int phase);
static struct green__module orphan_module = {
    .name = "subprocess", .term = orphans_term, .fork = orphans_fork};

static void orphan_free(struct orphans *os, struct orphan *o)
{
    if (o->pidfd >= 0) {
        /* Unref'd while active: take the reference back first. */
        ev_ref(os->loop);
        ev_io_stop(os->loop, &o->io);
        green_close(o->pidfd);
    }
    free(o);
}

/* Reap every orphan that exited (all of them when `all`, without
   reaping: the hub goes away or this is a forked child). */
static void orphans_sweep(struct orphans *os, int all)
{
    int polled = 0;
    for (struct orphan **pp = &os->list; *pp;) {
        struct orphan *o = *pp;
        int gone = all;
        if (!all) {
            pid_t r;
            do
                r = waitpid(o->pid, NULL, WNOHANG);
            while (r < 0 && errno == EINTR);
            gone = r != 0; /* reaped, or not our child any more */
        }
        if (gone) {
            *pp = o->next;
            orphan_free(os, o);
        } else {
            polled |= o->pidfd < 0;
            pp = &o->next;
        }
    }
    if (!polled && ev_is_active(&os->poll)) {
        ev_ref(os->loop);
        ev_timer_stop(os->loop, &os->poll);
    }
}

static void orphan_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    orphans_sweep(w->data, 0);
}

static void orphan_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    orphans_sweep(w->data, 0);
}

static void orphans_term(struct green__hub *hub, void *state)
{
    (void)hub;
    struct orphans *os = state;
    orphans_sweep(os, 0);
    orphans_sweep(os, 1);
    free(os);
}

/* In a green_fork child the orphans are the parent's children. */
static void orphans_fork(struct green__hub *hub, void *state, int phase)
{
    (void)hub;
    if (state && phase == GREEN__FORK_CHILD)
        orphans_sweep(state, 1);
}

static struct orphans *orphans_get(struct green__hub *hub)
{
    struct orphans *os = green__module_state(hub, &orphan_module);
    if (os || !(os = green__module_new(hub, &orphan_module, sizeof *os)))
        return os;
    os->loop = hub->loop;
    ev_timer_init(&os->poll, orphan_timer_cb, ORPHAN_POLL, ORPHAN_POLL);
    os->poll.data = os;
    return os;
}

/* Hand p's running child to this thread's hub.  Without memory it is
   left unreaped (a zombie once it exits). */
static void orphan_adopt(green_proc_t *p)
{
    struct green__hub *hub = green__hub_get();
    struct orphans *os = hub ? orphans_get(hub) : NULL;
    struct orphan *o = os ? malloc(sizeof *o) : NULL;
    if (!o) {
        if (p->pidfd >= 0)
            green_close(p->pidfd);
        return;
    }
    o->pid = p->pid;
    o->pidfd = p->pidfd;
    o->next = os->list;
    os->list = o;
    if (o->pidfd >= 0) {
        ev_io_init(&o->io, orphan_io_cb, o->pidfd, EV_READ);
        o->io.data = os;
        ev_io_start(os->loop, &o->io);
        ev_unref(os->loop);
    } else if (!ev_is_active(&os->poll)) {
        ev_timer_start(os->loop, &os->poll);
        ev_unref(os->loop);
    }
    /* It may have exited already: the pidfd is readable then and the
       watcher fires at the next poll; the timer finds it too. */
}

/******************************************************************************/
/*  Spawning                                                                  */
/******************************************************************************/

/* The child's ends of its three streams, closed after the spawn. */
struct child_ends {
    int fd[3];
    int devnull;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        green_close(*fd);
    *fd = -1;
}

/* Move fd above 2, so that dup2 onto 0..2 in the child cannot clobber
   another stream's end (the parent may have closed its stdio). */
static int above_stdio(int *fd)
{
    if (*fd > 2)
        return 0;
    int nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (nfd < 0)
        return -1;
    green_close(*fd);
    *fd = nfd;
    return 0;
}

/* A pipe for stream i: our end (non-blocking, known to the fd table as
   a FIFO) in p->fds[i], the child's in ce->fd[i]; both close-on-exec. */
static int make_pipe(green_proc_t *p, struct child_ends *ce, int i)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    int ours = i == 0 ? pfd[1] : pfd[0];
    ce->fd[i] = i == 0 ? pfd[0] : pfd[1];
    p->fds[i] = ours;
    if (above_stdio(&ce->fd[i]) != 0 ||
        fcntl(ours, F_SETFL, fcntl(ours, F_GETFL) | O_NONBLOCK) != 0)
        return -1;
    green__fd_adopt(ours, GREEN__FD_FIFO);
    return 0;
}

static int open_devnull(struct child_ends *ce)
{
    if (ce->devnull < 0) {
        ce->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (ce->devnull < 0 || above_stdio(&ce->devnull) != 0)
            return -1;
    }
    return ce->devnull;
}

/* Create the streams of `modes` and the file actions that install them
   as the child's 0, 1 and 2.  Returns 0, or an errno value. */
static int setup_streams(green_proc_t *p, const int modes[3],
                         struct child_ends *ce,
                         posix_spawn_file_actions_t *fa)
{
    for (int i = 0; i < 3; i++) {
        if (modes[i] == GREEN_PROC_PIPE && make_pipe(p, ce, i) != 0)
            return errno;
        if (modes[i] == GREEN_PROC_DEVNULL) {
            if (open_devnull(ce) < 0)
                return errno;
            ce->fd[i] = ce->devnull;
        }
        int err = 0;
        if (ce->fd[i] >= 0)
            err = posix_spawn_file_actions_adddup2(fa, ce->fd[i], i);
        else if (modes[i] == GREEN_PROC_STDOUT)
            err = posix_spawn_file_actions_adddup2(fa, 1, 2);
        if (err)
            return err;
    }
    return 0;
}

/* Empty signal mask, SIGPIPE at its default action. */
static int setup_attr(posix_spawnattr_t *sa)
{
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    int err = posix_spawnattr_setsigmask(sa, &none);
    if (!err)
        err = posix_spawnattr_setsigdefault(sa, &dfl);
    if (!err)
        err = posix_spawnattr_setflags(sa, POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF);
    return err;
}

static int modes_valid(const int modes[3])
{
    for (int i = 0; i < 3; i++)
        if (modes[i] < GREEN_PROC_INHERIT || modes[i] > GREEN_PROC_STDOUT ||
            (modes[i] == GREEN_PROC_STDOUT && i != 2))
            return 0;
    return 1;
}

/* Whether file can be run, as posix_spawnp will look it up.  glibc's
   posix_spawn reports a failed exec itself, but not where the clone
   cannot share memory with the child (Valgrind, some sandboxes): the
   child then only exits 127.  So the usual mistakes, a program that is
   not there or a bad cwd, are caught here first.  A path relative to a
   new cwd is left to the spawn.  0 or an errno value. */
static int check_runnable(const char *file, const char *cwd)
{
    struct stat st;
    if (cwd && (stat(cwd, &st) != 0 || access(cwd, X_OK) != 0))
        return errno;
    if (cwd && !S_ISDIR(st.st_mode))
        return ENOTDIR;
    if (!*file)
        return ENOENT;
    if (strchr(file, '/'))
        return cwd && *file != '/' ? 0 : access(file, X_OK) ? errno : 0;
    const char *path = getenv("PATH");
    int err = ENOENT;
    for (const char *dir = path ? path : "/bin:/usr/bin"; dir;) {
        const char *end = strchr(dir, ':');
        int len = end ? (int)(end - dir) : (int)strlen(dir);
        if (cwd && (len == 0 || dir[0] != '/'))
            return 0; /* relative to the new cwd: the spawn will say */
        char full[PATH_MAX];
        int n = snprintf(full, sizeof full, "%.*s%s%s", len, dir,
                         len ? "/" : "", file);
        if (n < (int)sizeof full && access(full, X_OK) == 0)
            return 0;
        if (n < (int)sizeof full && errno == EACCES)
            err = EACCES;
        dir = end ? end + 1 : NULL;
    }
    return err;
}

/* posix_spawnp with the streams of modes (the ones of attr), the cwd
   and the signal state.  0 or an errno value. */
static int spawn(green_proc_t *p, const char *file, char *const argv[],
                 const green_proc_attr_t *attr, const int modes[3],
                 struct child_ends *ce)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t sa;
    int err = check_runnable(file, attr->cwd);
    if (!err)
        err = posix_spawn_file_actions_init(&fa);
    if (err)
        return err;
    err = posix_spawnattr_init(&sa);
    if (err) {
        posix_spawn_file_actions_destroy(&fa);
        return err;
    }
    err = setup_streams(p, modes, ce, &fa);
    if (!err && attr->cwd)
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCHDIR_NP
        err = posix_spawn_file_actions_addchdir_np(&fa, attr->cwd);
#else
        err = ENOSYS;
#endif
    if (!err)
        err = setup_attr(&sa);
    if (!err)
        err = posix_spawnp(&p->pid, file, &fa, &sa, argv,
                           attr->envp ? attr->envp : environ);
    posix_spawnattr_destroy(&sa);
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 3; i++)
        p->piped[i] = modes[i] == GREEN_PROC_PIPE;
    return err;
}

green_proc_t *green_proc_spawn(const char *file, char *const argv[],
                               const green_proc_attr_t *attr)
{
    static const green_proc_attr_t defaults;
    if (!attr)
        attr = &defaults;
    const int modes[3] = {attr->stdin_mode, attr->stdout_mode,
                          attr->stderr_mode};
    if (!file || !argv || !modes_valid(modes)) {
        errno = EINVAL;
        return NULL;
    }
    green_proc_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->fds[0] = p->fds[1] = p->fds[2] = -1;
    struct child_ends ce = {{-1, -1, -1}, -1};
    int err = spawn(p, file, argv, attr, modes, &ce);
    for (int i = 0; i < 3; i++)
        if (ce.fd[i] != ce.devnull)
            close_fd(&ce.fd[i]);
    close_fd(&ce.devnull);
    if (err) {
        for (int i = 0; i < 3; i++)
            close_fd(&p->fds[i]);
        free(p);
        errno = err;
        return NULL;
    }
    /* -1 without pidfds: kill then uses the pid, checked first. */
    p->pidfd = green__pidfd_open(p->pid);
    return p;
}

pid_t green_proc_pid(const green_proc_t *p)
{
    return p ? p->pid : green__fail(EINVAL);
}

static int stream_fd(const green_proc_t *p, int i)
{
    return p ? p->fds[i] : -1;
}

int green_proc_stdin_fd(const green_proc_t *p)
{
    return stream_fd(p, 0);
}

int green_proc_stdout_fd(const green_proc_t *p)
{
    return stream_fd(p, 1);
}

int green_proc_stderr_fd(const green_proc_t *p)
{
    return stream_fd(p, 2);
}

int green_proc_close_stdin(green_proc_t *p)
{
    if (!p)
        return green__fail(EINVAL);
    if (p->fds[0] < 0)
        return green__fail(EBADF);
    close_fd(&p->fds[0]);
    return 0;
}

/******************************************************************************/
/*  Waiting and signalling                                                    */
/******************************************************************************/

/* green_waitpid(pid, 0) bounded by timeout (> 0, or < 0 forever). */
static pid_t waitpid_for(pid_t pid, int *status, double timeout)
{
    if (timeout < 0)
        return green_waitpid(pid, status, 0);
    green_timeout_scope_t s;
    if (green_timeout_begin(&s, timeout) != 0)
        return -1;
    pid_t r = green_waitpid(pid, status, 0);
    int err = errno;
    green_timeout_end(&s);
    errno = err;
    return r;
}

/* Reap the child within timeout.  0 or an errno value. */
static int reap(green_proc_t *p, double timeout)
{
    if (p->reaped)
        return 0;
    int st = 0;
    pid_t r = green_waitpid(p->pid, &st, WNOHANG);
    if (r == 0 && timeout == 0)
        return EAGAIN;
    if (r == 0)
        r = waitpid_for(p->pid, &st, timeout);
    if (p->reaped) /* by another greenlet meanwhile (we got ECHILD) */
        return 0;
    if (r < 0)
        return errno;
    p->reaped = 1;
    p->status = st;
    close_fd(&p->pidfd);
    return 0;
}

int green_proc_wait(green_proc_t *p, int *status, double timeout)
{
    if (!p || green__timeout_valid(timeout))
        return green__fail(EINVAL);
    int err = reap(p, timeout);
    if (err)
        return green__fail(err);
    if (status)
        *status = p->status;
    return 0;
}

int green_proc_status(const green_proc_t *p)
{
    if (!p)
        return green__fail(EINVAL);
    return p->reaped ? p->status : green__fail(EAGAIN);
}

/* Without a pidfd: 1 if pid is still our unreaped child. */
static int still_our_child(pid_t pid)
{
    siginfo_t si;
    si.si_pid = 0;
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

int green_proc_kill(green_proc_t *p, int sig)
{
    if (!p)
        return green__fail(EINVAL);
    if (p->reaped)
        return green__fail(ESRCH);
    if (p->pidfd >= 0)
        return (int)syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
    if (!still_our_child(p->pid))
        return green__fail(ESRCH);
    return kill(p->pid, sig);
}

/******************************************************************************/
/*  communicate                                                               */
/******************************************************************************/

/* Room for READ_CHUNK more bytes and a NUL.  0 or ENOMEM. */
static int outbuf_reserve(struct outbuf *b)
{
    if (b->cap - b->len > READ_CHUNK)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 2 * READ_CHUNK;
    char *d = realloc(b->data, cap);
    if (!d)
        return ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

/* Give b's bytes to the caller (NULL: drop them), NUL-terminated. */
static void outbuf_hand(struct outbuf *b, int piped, char **dst,
                        size_t *len)
{
    if (piped && !b->data)
        b->data = calloc(1, 1);
    if (b->data)
        b->data[b->len] = '\0';
    if (len)
        *len = b->data ? b->len : 0;
    if (dst)
        *dst = b->data;
    else
        free(b->data);
    memset(b, 0, sizeof *b);
}

/* One step on stream i, which poll reported ready.  0 or an errno. */
static int pump_one(green_proc_t *p, int i, const char *input, size_t inlen)
{
    if (i == 0) {
        ssize_t n = green_write(p->fds[0], input + p->in_done,
                                inlen - p->in_done);
        if (n >= 0) {
            p->in_done += (size_t)n;
            return 0;
        }
        if (errno != EPIPE)
            return errno;
        close_fd(&p->fds[0]); /* the child stopped reading: fine */
        return 0;
    }
    struct outbuf *b = &p->out[i - 1];
    int err = outbuf_reserve(b);
    if (err)
        return err;
    ssize_t n = green_read(p->fds[i], b->data + b->len,
                           b->cap - b->len - 1);
    if (n < 0)
        return errno;
    if (n == 0)
        close_fd(&p->fds[i]);
    b->len += (size_t)n;
    return 0;
}

/* poll's timeout for the time left: ms rounded up, -1 forever. */
static int poll_ms(double timeout, double deadline)
{
    if (timeout <= 0)
        return timeout < 0 ? -1 : 0;
    double left = ceil((deadline - green__now()) * 1000);
    return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Write the input and read both outputs until every pipe is closed.
   0 or an errno value. */
static int pump(green_proc_t *p, const char *input, size_t inlen,
                double timeout, double deadline)
{
    for (;;) {
        if (p->fds[0] >= 0 && p->in_done >= inlen)
            close_fd(&p->fds[0]);
        struct pollfd pf[3];
        int idx[3];
        nfds_t n = 0;
        for (int i = 0; i < 3; i++)
            if (p->fds[i] >= 0) {
                pf[n] = (struct pollfd){p->fds[i], i ? POLLIN : POLLOUT, 0};
                idx[n++] = i;
            }
        if (n == 0)
            return 0;
        int ms = poll_ms(timeout, deadline);
        int r = green_poll(pf, n, ms);
        if (r < 0)
            return errno;
        if (r == 0 && ms == 0)
            return timeout == 0 ? EAGAIN : ETIMEDOUT;
        for (nfds_t k = 0; k < n; k++) {
            if (pf[k].revents & POLLNVAL)
                return EBADF;
            int err = pf[k].revents ? pump_one(p, idx[k], input, inlen) : 0;
            if (err)
                return err;
        }
    }
}

int green_proc_communicate(green_proc_t *p, const void *input, size_t inlen,
                           char **out, size_t *outlen, char **err,
                           size_t *errlen, double timeout)
{
    if (out)
        *out = NULL;
    if (err)
        *err = NULL;
    if (!p || (inlen && !input) || (inlen && !p->piped[0]) ||
        green__timeout_valid(timeout))
        return green__fail(EINVAL);
    if (p->busy)
        return green__fail(EBUSY);
    p->busy = 1;
    double deadline = timeout > 0 ? green__now() + timeout : 0;
    int e = pump(p, input, inlen, timeout, deadline);
    if (!e) {
        double left = timeout > 0 ? deadline - green__now() : timeout;
        /* Past the deadline: let the wait itself say ETIMEDOUT. */
        e = reap(p, timeout > 0 && left <= 0 ? 1e-9 : left);
    }
    p->busy = 0;
    if (e)
        return green__fail(e);
    outbuf_hand(&p->out[0], p->piped[1], out, outlen);
    outbuf_hand(&p->out[1], p->piped[2], err, errlen);
    p->in_done = 0;
    return 0;
}

void green_proc_free(green_proc_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < 3; i++)
        close_fd(&p->fds[i]);
    free(p->out[0].data);
    free(p->out[1].data);
    if (!p->reaped && reap(p, 0) != 0)
        orphan_adopt(p);
    else
        close_fd(&p->pidfd);
    free(p);
}
