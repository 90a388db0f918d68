/* Greenlet stacks, cut from batches: one mmap ("slab") holds many stacks
   of one size, each a guard page below its usable bytes (stacks grow
   down), lazily committed.  A bounded per-hub LIFO keeps recently freed
   stacks warm; past its high-water mark, freed stacks hand their memory
   back in batches, and a slab whose stacks are all free is unmapped. */
#ifndef GREEN_STACK_H_INCLUDED
#define GREEN_STACK_H_INCLUDED

#include <stddef.h>

struct green__slab;
struct green__stack_pool;

struct green__stack {
    void *map;                /* this stack's guard page; NULL: no stack */
    size_t map_size;          /* guard + usable bytes */
    struct green__slab *slab; /* the batch it was cut from */
    unsigned valgrind_id;     /* VALGRIND_STACK_REGISTER id, 0 without it */
};

/* Usable bytes and lowest usable address of s. */
static inline size_t green__stack_size(const struct green__stack *s);
static inline void *green__stack_lo(const struct green__stack *s);

/* One per hub, zero-initialized.  Only the hub's thread uses it. */
struct green__stack_cache {
    struct green__stack_pool *pools; /* one per stack size, most recent first */
};

/* Warm stacks kept per pool of default-size stacks: between
   GREEN__STACK_CACHE_MAX and twice that (libdill caches 64). */
#define GREEN__STACK_CACHE_MAX 64
#define GREEN__STACK_MIN (16 * 1024)
#define GREEN__STACK_DEFAULT (256 * 1024)

/* The page size, read once (green__page_size_slow) and then inline:
   stack bounds are computed on every spawn. */
extern size_t green__page_size_v;
size_t green__page_size_slow(void);
static inline size_t green__page_size(void)
{
    size_t p = __atomic_load_n(&green__page_size_v, __ATOMIC_RELAXED);
    return __builtin_expect(p != 0, 1) ? p : green__page_size_slow();
}
/* The default usable size: GREEN_STACK_SIZE if valid, else 256 KiB. */
size_t green__stack_default(void);
/* Round a requested usable size to pages.  Returns 0 and sets errno
   (EINVAL below 16 KiB, ENOMEM when absurdly large) on failure. */
size_t green__stack_round(size_t size);

/* Get a stack of `size` usable bytes (already rounded), from the cache
   when possible.  Returns 0, or -1/ENOMEM (mmap or the guard refused,
   e.g. at vm.max_map_count with mprotect guards). */
int green__stack_get(struct green__stack_cache *c, size_t size,
                     struct green__stack *s);
/* Return a stack that nobody runs on any more.  Never fails. */
void green__stack_put(struct green__stack_cache *c, struct green__stack *s);
/* Release every cached stack and unmap every slab with no stack in use.
   A slab still in use is unmapped when its last stack comes back. */
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
