/* Internal helpers shared by every lib/ file: assertions, branch hints,
   container_of and the monotonic clock.  No libev, no ucontext here. */
#ifndef GREEN_UTIL_H_INCLUDED
#define GREEN_UTIL_H_INCLUDED

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define GREEN_LIKELY(x) __builtin_expect(!!(x), 1)
#define GREEN_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define green__container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* Start loading the cache line at p (and its TLB entry) for a write
   that comes soon.  Loops that visit many greenlets, each on its own
   stack page, use it: a million parked greenlets miss both the cache
   and the TLB on every visit, and a prefetch a few greenlets ahead
   overlaps those misses instead of paying them one after another. */
#define green__prefetch(p) __builtin_prefetch((p), 1, 3)

#define GREEN_CT_ASSERT(cond) _Static_assert(cond, #cond)

/* Internal invariant violations only, never a caller's mistake: those get
   -1/errno.  Always on, like libdill's dill_assert. */
#define green__assert(x)                                                   \
    do {                                                                   \
        if (GREEN_UNLIKELY(!(x))) {                                        \
            fprintf(stderr, "libgreen: assert failed: %s (%s:%d)\n", #x,   \
                    __FILE__, __LINE__);                                   \
            fflush(stderr);                                                \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* Monotonic time in seconds (vDSO clock_gettime: no syscall). */
static inline double green__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define GREEN__FOREVER 1e300

#endif
