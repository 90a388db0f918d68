/* The private interface between libgreen and libgreen-patch.

   libgreen-patch is a second shared library (so that it can be dropped
   in with LD_PRELOAD); libgreen is built with -fvisibility=hidden, so the
   patch library cannot call green__hub_peek or green__io_nonblock
   directly.  Instead libgreen exports exactly one internal symbol,
   green__patch_ops(), which returns this table.  Both libraries come from
   the same build; `version` and `size` catch a mismatched pair, in which
   case green_patch_all fails with ENOTSUP instead of calling into a
   table it does not understand. */
#ifndef GREEN_PATCH_H_INCLUDED
#define GREEN_PATCH_H_INCLUDED

#include <stddef.h>

#include "green.h"

#define GREEN__PATCH_OPS_VERSION 1

struct green__patch_ops {
    unsigned version;           /* GREEN__PATCH_OPS_VERSION */
    size_t size;                /* sizeof(struct green__patch_ops) */
    /* 1 when the caller is a greenlet of this thread's hub (the main
       greenlet included) that may park: the thread has a hub and the
       call is not made by the hub, a libev callback or a link callback.
       Never creates a hub. */
    int (*coop)(void);
    /* 1 when an enclosing green_timeout of the current greenlet has
       expired (its blocking calls fail with ETIMEDOUT); tells an own
       SO_RCVTIMEO-style deadline (EAGAIN) from the caller's. */
    int (*timeout_expired)(void);
    /* green__io_nonblock: O_NONBLOCK on, and whether the fd was already
       non-blocking when libgreen first saw it (0 for fds libgreen
       created itself, such as green_accept's).  Only with a hub. */
    int (*io_nonblock)(int fd, int *user_nonblock);
    /* green__io_forget: wake fd's waiters with EBADF and forget the fd
       (it is about to be replaced, as by dup2).  No-op without a hub. */
    void (*io_forget)(int fd);
};

/* The table above.  Exported from libgreen.so for libgreen-patch only;
   not part of the public API. */
GREEN_EXPORT const struct green__patch_ops *green__patch_ops(void);

#endif
