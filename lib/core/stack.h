/* Greenlet stacks: one mmap each, a guard page below the usable part
   (stacks grow down), lazily committed, recycled through a bounded
   per-hub cache. */
#ifndef GREEN_STACK_H_INCLUDED
#define GREEN_STACK_H_INCLUDED

#include <stddef.h>

struct green__stack {
    void *map;            /* start of the mapping: the guard page */
    size_t map_size;      /* guard + usable bytes */
    unsigned valgrind_id; /* VALGRIND_STACK_REGISTER id, 0 without it */
};

/* Usable bytes and lowest usable address of s. */
static inline size_t green__stack_size(const struct green__stack *s);
static inline void *green__stack_lo(const struct green__stack *s);

struct green__stack_cache {
    struct green__stack *items; /* LIFO of free default-size stacks */
    size_t count;               /* stacks in items */
};

/* Upper bound on cached stacks per hub (libdill caches 64). */
#define GREEN__STACK_CACHE_MAX 64
#define GREEN__STACK_MIN (16 * 1024)
#define GREEN__STACK_DEFAULT (256 * 1024)

size_t green__page_size(void);
/* The default usable size: GREEN_STACK_SIZE if valid, else 256 KiB. */
size_t green__stack_default(void);
/* Round a requested usable size to pages.  Returns 0 and sets errno
   (EINVAL below 16 KiB, ENOMEM when absurdly large) on failure. */
size_t green__stack_round(size_t size);

/* Get a stack of `size` usable bytes (already rounded), from the cache
   when possible.  Returns 0, or -1/ENOMEM (mmap refused, e.g. at
   vm.max_map_count). */
int green__stack_get(struct green__stack_cache *c, size_t size,
                     struct green__stack *s);
/* Return a stack that nobody runs on any more. */
void green__stack_put(struct green__stack_cache *c, struct green__stack *s);
/* Unmap every cached stack. */
void green__stack_cache_drain(struct green__stack_cache *c);

/* 1 if addr lies in s's guard page. Async-signal-safe. */
int green__stack_in_guard(const struct green__stack *s, const void *addr);

/* "madvise" or "mprotect": the guard mechanism in use. */
const char *green__stack_guard_kind(void);

static inline size_t green__stack_size(const struct green__stack *s)
{
    return s->map_size - green__page_size();
}

static inline void *green__stack_lo(const struct green__stack *s)
{
    return (char *)s->map + green__page_size();
}

/* segv.c: the stack-overflow reporter.  green__segv_init installs the
   process-wide SIGSEGV handler once and this thread's altstack; the
   greenlet layer calls it before the thread's first greenlet stack. */
void green__segv_init(void);
void green__segv_thread_term(void);

#endif
