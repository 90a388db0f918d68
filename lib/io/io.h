/* The fd wait primitive and the retry loop (io.c), shared with poll.c,
   net.c, server.c and, through patchops, the patch library.

   What an fd *is* (O_NONBLOCK, the caller's view, its kind) lives in the
   process-wide table of fd.h.  What a hub does with it lives here, in
   the io module's state of each hub, indexed by the same number: per
   direction one ev_io watcher and the clauses parked on it.  The
   watcher is started when the first waiter arrives and stopped (before
   the next poll) once no waiter is left, and it is restarted without
   ev_io_set, so libev issues no epoll_ctl for a wait on an fd it
   already watches. */
#ifndef GREEN_IO_H_INCLUDED
#define GREEN_IO_H_INCLUDED

#include <sys/socket.h>

#include "core/hub.h"
#include "fd.h"


struct green__fd; /* one fd's state, opaque outside io.c */

/* A wait's clause on one direction of one fd (wait.h).  It lives on the
   waiting greenlet's stack. */
struct green__io_clause {
    struct green__clause c;  /* in the entry's waiters or woken list */
    struct green__fd *e;     /* entry armed on, NULL when not armed */
    unsigned gen;            /* e's generation when armed (see io.c) */
    int dir;                 /* GREEN__IO_READ or GREEN__IO_WRITE */
    int fd;                  /* the fd (for green_dump) */
};

/* Add a clause on fd/dir to the wait w (green_poll adds several, then
   parks once).  Returns 0, or an errno value: EBADF (fd < 0, not open,
   or any epoll fd while libev uses epoll: libev cannot tell its own
   from another one, and watching its own would abort it), ENOMEM.  A readiness event fires the
   clause with 0, green_close (or libev finding the fd gone) with EBADF,
   also after it fired for readiness and before the greenlet resumed.
   The clause's undo, run by green__wait_park, leaves the entry. */
int green__io_clause(struct green__wait *w, struct green__io_clause *ic,
                     int fd, int dir);

/* Park until fd is ready for dir.  Returns 0 or -1 with errno: EBADF
   (closed while waiting, or not an open fd), ETIMEDOUT, ECANCELED,
   EDEADLK, EAGAIN (timeout 0 and not ready), EINVAL (NaN), ENOMEM. */
int green__io_wait(int fd, int dir, double timeout);

/* The one retry loop of both libraries: try; on EAGAIN wait until fd is
   ready for op->dir (green__io_clause + green__wait_park), then try
   again.  A socket's SO_RCVTIMEO (reads, accept) or SO_SNDTIMEO (writes,
   connect) bounds the whole call, read with getsockopt at its first
   wait only: past it the call fails with EAGAIN, as the kernel's
   blocking socket does (ETIMEDOUT stays for an enclosing green_timeout).
   A call that succeeds after waiting leaves errno as it found it.
   Returns the attempt's result, or -1 with errno: the syscall's, or the
   wait's (EBADF, ECANCELED, ETIMEDOUT, EDEADLK, ENOMEM, EINTR: see
   GREEN__IO_THREAD). */
ssize_t green__io_retry(int fd, const struct green__io_op *op);

/* Which signal interrupted a thread-blocking wait (the patch library
   outside greenlets)?  probe(1) forgets the last signal this thread
   caught; probe(0) says whether it was caught by a handler with
   SA_RESTART (1), without (0), or is unknown (-1: a handler installed
   before patching).  Registered by libgreen-patch, which wraps the
   handlers the program installs. */
void green__io_signal_probe(int (*probe)(int reset));

/* connect(2) as a blocking call behaves, on a non-blocking socket: a
   full AF_UNIX backlog is retried with a back-off (the socket polls
   writable at once, so waiting on it would spin), EINPROGRESS waits for
   writability (bounded by SO_SNDTIMEO: then EINPROGRESS, as the kernel
   says) and SO_ERROR gives the outcome.  connect_fn is the connect to
   use (libc's for the patch library).  flags: GREEN__IO_THREAD. */
int green__io_connect(int fd, const struct sockaddr *addr, socklen_t len,
                      int (*connect_fn)(int, const struct sockaddr *,
                                        socklen_t),
                      int flags);

/* 1 when the caller may park: a greenlet of this thread's hub (main
   included), not the hub, a libev callback or a link callback.  Never
   creates a hub.  The one owner check of libgreen-patch and net.c. */
int green__io_coop(void);

/* The file hook: regular files (and block devices) never report EAGAIN,
   so the readiness path would block the hub on a cold disk.  The file
   module (lib/proc/file.c, above this layer) registers one function,
   from a constructor, that moves the transfer off the hub (io_uring or
   the threadpool): green_read/readv/write/writev/write_all and
   libgreen-patch's read/write family on a GREEN__FD_FILE fd call it
   instead of the syscall.  It has the syscall's result and errno, plus
   the blocking errors; off -1 means the file position (read/write).
   dir: GREEN__IO_READ, GREEN__IO_WRITE, or GREEN__IO_FSYNC /
   GREEN__IO_FDATASYNC (fd.h; iov, cnt and off unused). */
typedef ssize_t (*green__file_rw_fn)(int fd, const struct iovec *iov,
                                     int cnt, off_t off, int dir);
void green__io_set_file_rw(green__file_rw_fn fn);

/* The registered hook, or NULL (none: use the readiness path).  For a
   caller that already knows from the fd table that the fd is a
   GREEN__FD_FILE (libgreen-patch). */
green__file_rw_fn green__io_file_hook(void);

/* libgreen just created fd, already in O_NONBLOCK: record it
   (green__fd_adopt; is_socket selects send(MSG_NOSIGNAL) for writes).
   user_nonblock must be 0: the caller never asked for O_NONBLOCK. */
void green__io_adopt(int fd, int is_socket, int user_nonblock);

/* fd is about to be closed, or was closed behind libgreen's back: wake
   its waiters in this thread's hub with EBADF, stop its watchers and
   forget them, so a new fd with the same number starts fresh.  The
   per-hub half of green__fd_forget (fd.h), which also forgets the
   process-wide entry. */
void green__io_forget(int fd);

#endif
