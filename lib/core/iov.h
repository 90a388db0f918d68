/* iovec helpers shared by the file module (lib/proc/file.c) and
   libgreen-patch (partial writes, MSG_WAITALL): header-only, so the
   patch library needs no symbol of libgreen's for them. */
#ifndef GREEN_IOV_H_INCLUDED
#define GREEN_IOV_H_INCLUDED

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define GREEN__IOV_SMALL 8

/* A private, advanceable copy of a caller's iovec array. */
struct green__iovcopy {
    struct iovec *iov;          /* first unfinished buffer */
    int cnt;                    /* buffers left from iov on */
    struct iovec *alloc;        /* malloc'd array, NULL if `small` */
    struct iovec small[GREEN__IOV_SMALL];
};

/* 0, or -1/ENOMEM (nothing to free then). */
static inline int green__iov_copy(struct green__iovcopy *c,
                                  const struct iovec *iov, int cnt)
{
    c->alloc = NULL;
    c->iov = c->small;
    if (cnt > GREEN__IOV_SMALL) {
        c->iov = c->alloc = malloc((size_t)cnt * sizeof *iov);
        if (!c->iov)
            return -1;
    }
    if (cnt > 0)
        memcpy(c->iov, iov, (size_t)cnt * sizeof *iov);
    c->cnt = cnt;
    return 0;
}

static inline void green__iov_free(struct green__iovcopy *c)
{
    free(c->alloc);
}

/* Drop the first k bytes. */
static inline void green__iov_skip(struct green__iovcopy *c, size_t k)
{
    while (c->cnt > 0 && k >= c->iov[0].iov_len) {
        k -= c->iov[0].iov_len;
        c->iov++;
        c->cnt--;
    }
    if (c->cnt > 0) {
        c->iov[0].iov_base = (char *)c->iov[0].iov_base + k;
        c->iov[0].iov_len -= k;
    }
}

static inline size_t green__iov_total(const struct iovec *iov, int cnt)
{
    size_t t = 0;
    for (int i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

#endif
