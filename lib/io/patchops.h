/* The private interface between libgreen and libgreen-patch.

   libgreen-patch is a second shared library (so that it can be dropped
   in with LD_PRELOAD); libgreen is built with -fvisibility=hidden, so the
   patch library cannot call green__fd_see or green__io_retry directly
   (and it intercepts none of libgreen's own green_* functions).  Instead libgreen exports exactly one internal symbol,
   green__patch_ops(), which returns this table.  Both libraries come from
   the same build; `version` and `size` catch a mismatched pair, in which
   case green_patch_all fails with ENOTSUP instead of calling into a
   table it does not understand. */
#ifndef GREEN_PATCH_H_INCLUDED
#define GREEN_PATCH_H_INCLUDED

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "green.h"

#define GREEN__PATCH_OPS_VERSION 5

struct green__fdinfo;
struct green__io_op;
struct iovec;
struct msghdr;

/* The arguments of one read/write-family call, for the attempt
   functions both libraries hand to green__io_retry. */
struct green__io_args {
    void *buf;
    size_t n;
    int flags;
    struct sockaddr *addr;
    socklen_t *len;
    const struct iovec *iov;
    int cnt;
    struct msghdr *msg;
};

struct green__patch_ops {
    unsigned version;           /* GREEN__PATCH_OPS_VERSION */
    size_t size;                /* sizeof(struct green__patch_ops) */
    /* green__io_coop: 1 when the caller is a greenlet of this thread's
       hub (the main greenlet included) that may park.  Never creates a
       hub. */
    int (*coop)(void);
    /* The one fd table (fd.h): peek, first sight (GREEN__FD_PATCHED),
       forget (before close, and on a fresh number), copy (dup). */
    struct green__fdinfo *(*fd_peek)(int fd);
    int (*fd_see)(int fd, int policy, struct green__fdinfo **ep);
    void (*fd_forget)(int fd);
    void (*fd_copy)(int oldfd, int newfd);
    void (*fd_pass)(int fd);    /* behind a FILE* we do not control */
    /* The one retry loop and connect (io.h). */
    ssize_t (*io_retry)(int fd, const struct green__io_op *op);
    int (*io_connect)(int fd, const struct sockaddr *addr, socklen_t len,
                      int (*connect_fn)(int, const struct sockaddr *,
                                        socklen_t),
                      int flags);
    /* green__numeric_host (net.h). */
    int (*numeric_host)(const char *host);
    /* Give libgreen the patch library's signal probe (io.h,
       green__io_signal_probe). */
    void (*set_signal_probe)(int (*probe)(int reset));
    /* green__io_file_hook (io.h): the file hook (for an fd the table
       records as GREEN__FD_FILE), or NULL. */
    ssize_t (*(*file_hook)(void))(int fd, const struct iovec *iov, int cnt,
                                   off_t off, int dir);
};

/* The table above.  Exported from libgreen.so for libgreen-patch only;
   not part of the public API. */
GREEN_EXPORT const struct green__patch_ops *green__patch_ops(void);

#endif
