/* Per-fd state and the fd wait primitive (io.c), shared with poll.c,
   net.c, server.c and the patch library.

   Every fd a hub has seen gets one entry in a table indexed by fd.  An
   entry remembers whether libgreen already put the fd in O_NONBLOCK (so
   later calls pay no fcntl) and holds, per direction, one ev_io watcher
   and the greenlets parked on it.  The watcher is started when the first
   waiter arrives and stopped (before the next poll) once no waiter is
   left, and it is restarted without ev_io_set, so libev issues no
   epoll_ctl for a wait on an fd it already watches. */
#ifndef GREEN_IO_H_INCLUDED
#define GREEN_IO_H_INCLUDED

#include "core/hub.h"

/* Directions: index into an entry's watchers. */
#define GREEN__IO_READ 0
#define GREEN__IO_WRITE 1

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
   or the hub's own epoll fd), ENOMEM.  A readiness event fires the
   clause with 0, green_close (or libev finding the fd gone) with EBADF,
   also after it fired for readiness and before the greenlet resumed.
   The clause's undo, run by green__wait_park, leaves the entry. */
int green__io_clause(struct green__wait *w, struct green__io_clause *ic,
                     int fd, int dir);

/* Park until fd is ready for dir.  Returns 0 or -1 with errno: EBADF
   (closed while waiting, or not an open fd), ETIMEDOUT, ECANCELED,
   EDEADLK, EAGAIN (timeout 0 and not ready), EINVAL (NaN), ENOMEM. */
int green__io_wait(int fd, int dir, double timeout);

/* Put fd in O_NONBLOCK unless libgreen already did (no syscall then).
   *user_nonblock (may be NULL) tells whether the fd was already
   non-blocking when libgreen first saw it (the patch library keeps
   EAGAIN for those).  Returns 0 or -1/EBADF (or ENOMEM). */
int green__io_nonblock(int fd, int *user_nonblock);

/* fd is about to be closed, or was closed behind libgreen's back: wake
   its waiters with EBADF, stop its watchers and forget everything, so a
   new fd with the same number starts fresh.  Does not close fd. */
void green__io_forget(int fd);

/* libgreen (or the patch library) just created fd, already in
   O_NONBLOCK: start a fresh entry that needs no fcntl.  is_socket
   selects send(MSG_NOSIGNAL) for writes. */
void green__io_adopt(int fd, int is_socket, int user_nonblock);

#endif
