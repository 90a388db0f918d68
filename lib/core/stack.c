/* Stack allocation, after Boost.Context's protected_fixedsize_stack (the
   guarded mapping) and libdill's stack.c (the cache), cut in batches.

   A pool serves one stack size.  It maps stacks a slab at a time: one
   mmap of many slots, each slot a guard page followed by the usable
   bytes.  Slabs grow with demand (16 slots, then as many as the pool
   already has, up to 4096 slots or 1 GiB), so a million greenlets need
   a few hundred mmaps, and adjacent slabs usually merge into one VMA:
   vm.max_map_count is never the limit with MADV_GUARD_INSTALL guards,
   which live in the page tables and do not split the mapping.

   Guards are installed ahead of use, GUARD_BATCH slots per call
   (process_madvise with a vector where the kernel takes it for the
   calling process, one madvise per slot otherwise, one mprotect per
   slot, lazily, with the fallback, which does split the mapping).  With
   the vector call, the same batch's top pages are populated in a second
   call (MADV_POPULATE_WRITE) instead of faulting in one by one.

   A freed stack goes on the pool's warm LIFO (its pages stay committed,
   so the next spawn touches nothing new).  When the LIFO reaches twice
   its high-water mark, its older half goes back to the slabs in one
   batch: slabs left without a stack in use are unmapped whole (but for
   one spare per pool), and the pages of the other stacks are dropped
   with one MADV_DONTNEED vector (neighbouring stacks merged into one
   range). */
#include "stack.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "config.h"
#include "list.h"
#include "util.h"

#if defined(GREEN_VALGRIND) && defined(HAVE_VALGRIND_VALGRIND_H)
#include <valgrind/valgrind.h>
#define GREEN_USE_VALGRIND 1
#endif

/* These process-wide settings are computed on first use by whichever
   thread gets there; every thread computes the same value, so relaxed
   atomics (plain moves) make the race benign and TSan-clean. */
#define LOAD(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)

#ifdef GREEN_USE_VALGRIND
/* 1 under Valgrind, 0 natively, -1 not asked yet.  A client request
   costs a dependent chain of a dozen cycles even natively, so the stack
   (de)registrations on every spawn ask only under Valgrind. */
static int on_valgrind = -1;

static int under_valgrind(void)
{
    int v = LOAD(on_valgrind);
    if (GREEN_UNLIKELY(v < 0)) {
        v = RUNNING_ON_VALGRIND ? 1 : 0;
        STORE(on_valgrind, v);
    }
    return v;
}
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440 /* same number on x86-64 and aarch64 */
#endif
/* The calling process, without opening a pidfd (Linux 6.15; a pidfd
   would also go stale across fork). */
#define PIDFD_SELF_GROUP (-10001)

/* Slots per slab: the first slab of a pool, the most, and the most
   bytes of address space one slab may take. */
#define SLAB_MIN_SLOTS 16u
#define SLAB_MAX_SLOTS 4096u
#define SLAB_MAX_BYTES ((size_t)1 << 30)
/* Guards installed per call, ahead of use (madvise guards only). */
#define GUARD_BATCH 64u

/* One mmap holding nslots stacks of its pool's size. */
struct green__slab {
    char *base;                     /* the mapping: nslots * slot bytes */
    size_t slot;                    /* guard + usable bytes per stack */
    struct green__stack_pool *pool; /* owner; NULL once drained (orphan) */
    struct green__list all;         /* in pool->slabs */
    struct green__list avail;       /* in pool->avail iff a slot is free */
    unsigned nslots;                /* slots in the mapping */
    unsigned fresh;                 /* slots [fresh, nslots) never used */
    unsigned guarded;               /* slots [0, guarded) have a guard */
    unsigned inuse;                 /* slots handed out or warm */
    unsigned nfree;                 /* entries in freelist */
    int dying;                      /* being unmapped by release_batch */
    uint32_t freelist[];            /* released slots (no pages), LIFO */
};

/* Every stack of one size that a hub has. */
struct green__stack_pool {
    struct green__stack_pool *next; /* in the cache, most recent first */
    size_t size;                    /* usable bytes per stack */
    size_t slot;                    /* guard + usable bytes */
    struct green__list slabs;       /* every slab of the pool */
    struct green__list avail;       /* slabs with a free or fresh slot */
    size_t mapped;                  /* slots in all slabs (growth) */
    struct green__slab *spare;      /* one empty slab kept mapped */
    unsigned hwm;                   /* warm stacks kept after a release */
    unsigned nwarm;                 /* stacks in warm */
    struct green__stack *warm;      /* LIFO of 2 * hwm stacks, pages kept */
};

/* Guard mechanism, decided on first use: 1 = MADV_GUARD_INSTALL (does
   not split the mapping, so stacks are not capped by vm.max_map_count),
   2 = mprotect(PROT_NONE) fallback (costs two VMAs per stack). */
static int guard_mode;
/* process_madvise on ourselves: 0 untried, 1 works, 2 unavailable. */
static int vector_mode;
/* Populating top pages ahead through process_madvise: 0 works, 1 not. */
static int no_populate;
size_t green__page_size_v;
static size_t default_size;

size_t green__page_size_slow(void)
{
    size_t p = (size_t)sysconf(_SC_PAGESIZE);
    STORE(green__page_size_v, p);
    return p;
}

size_t green__stack_round(size_t size)
{
    size_t page = green__page_size();
    if (size < GREEN__STACK_MIN) {
        errno = EINVAL;
        return 0;
    }
    /* Leave headroom so that rounding and the guard never wrap. */
    if (size > SIZE_MAX / 4) {
        errno = ENOMEM;
        return 0;
    }
    return (size + page - 1) & ~(page - 1);
}

/* GREEN_STACK_SIZE: bytes, optionally with a k or m suffix.  An invalid,
   too small or too large value (over 4 GiB, including one whose suffix
   would overflow) is ignored (the default stays), as README says. */
static size_t parse_env_size(const char *s)
{
    const unsigned long long max = 1ULL << 32;
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    unsigned long long unit = 1;
    if (*end == 'k' || *end == 'K')
        unit = 1024;
    else if (*end == 'm' || *end == 'M')
        unit = 1024 * 1024;
    if (unit != 1)
        end++;
    /* Compare before multiplying: 2^54 + 64 written in k must not wrap
       to 64 KiB. */
    if (*end || v > max / unit)
        return 0;
    return green__stack_round((size_t)(v * unit));
}

size_t green__stack_default(void)
{
    size_t d = LOAD(default_size);
    if (GREEN_UNLIKELY(d == 0)) {
        size_t env = parse_env_size(getenv("GREEN_STACK_SIZE"));
        d = env ? env : GREEN__STACK_DEFAULT;
        STORE(default_size, d);
    }
    return d;
}

static int current_guard_mode(void)
{
    int m = LOAD(guard_mode);
    if (!m) {
        const char *force = getenv("GREEN_STACK_GUARD");
        m = (force && strcmp(force, "mprotect") == 0) ? 2 : 1;
        STORE(guard_mode, m);
    }
    return m;
}

const char *green__stack_guard_kind(void)
{
    return current_guard_mode() == 1 ? "madvise" : "mprotect";
}

/* Apply advice to n ranges; returns how many of the first ranges got it
   (n on success, errno kept).  One process_madvise call where the kernel accepts
   the advice for the calling process, one madvise per range otherwise.
   Both are idempotent for the advice used here, so a partial vector
   call is simply redone range by range. */
static unsigned madvise_vec(struct iovec *iov, unsigned n, int advice)
{
    int saved = errno; /* a refused vector call is not the caller's error */
    int v = LOAD(vector_mode);
#ifdef GREEN_USE_VALGRIND
    /* Valgrind does not know process_madvise: keep it quiet. */
    if (v == 0 && under_valgrind())
        STORE(vector_mode, v = 2);
#endif
    if (n > 1 && v != 2) {
        size_t total = 0;
        for (unsigned i = 0; i < n; i++)
            total += iov[i].iov_len;
        long r = syscall(SYS_process_madvise, PIDFD_SELF_GROUP, iov,
                         (size_t)n, advice, 0u);
        if (r >= 0 && (size_t)r == total) {
            if (v == 0)
                STORE(vector_mode, 1);
            errno = saved;
            return n;
        }
        /* No process_madvise, no PIDFD_SELF, or this advice only
           through madvise (Linux before 6.13): per range for good. */
        if (r < 0 && v == 0)
            STORE(vector_mode, 2);
    }
    for (unsigned i = 0; i < n; i++)
        if (madvise(iov[i].iov_base, iov[i].iov_len, advice) != 0)
            return i;
    errno = saved;
    return n;
}

/* Fault in the top page of n fresh slots from `first` on, where a new
   greenlet's first frames go, in one call: cheaper than n page faults
   (about 1.25 against 1.7-2 us a page on the VM this was measured on).
   Only through the vector call: one madvise per page would cost what
   the faults cost.  Best effort, errno kept. */
static void populate_tops(struct green__slab *slab, unsigned first,
                          unsigned n)
{
    /* Not for a pool's first two slabs: a program with a handful of
       greenlets would only pay RSS for pages it never uses. */
    if (LOAD(vector_mode) != 1 || LOAD(no_populate) || n < 2 ||
        slab->pool->mapped <= 2 * SLAB_MIN_SLOTS)
        return;
    int saved = errno;
    size_t page = green__page_size();
    struct iovec iov[GUARD_BATCH];
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = slab->base + (size_t)(first + i + 1) * slab->slot -
                          page;
        iov[i].iov_len = page;
    }
    if (syscall(SYS_process_madvise, PIDFD_SELF_GROUP, iov, (size_t)n,
                MADV_POPULATE_WRITE, 0u) < 0)
        STORE(no_populate, 1);
    errno = saved;
}

/* Give the next slots of slab their guard page: a batch with madvise
   guards, one slot with mprotect (whose split VMAs hit vm.max_map_count,
   so they are added only as stacks are needed).  Returns 0, or -1 when
   not even one guard could be installed. */
static int guard_ahead(struct green__slab *slab)
{
    size_t page = green__page_size();
    size_t slot = slab->pool->slot;
    if (current_guard_mode() == 1) {
        struct iovec iov[GUARD_BATCH];
        unsigned n = 0;
        for (unsigned i = slab->guarded;
             i < slab->nslots && n < GUARD_BATCH; i++, n++) {
            iov[n].iov_base = slab->base + (size_t)i * slot;
            iov[n].iov_len = page;
        }
        unsigned done = madvise_vec(iov, n, MADV_GUARD_INSTALL);
        if (done > 0) {
            populate_tops(slab, slab->guarded, done);
            slab->guarded += done;
            return 0;
        }
        /* Older kernel: EINVAL.  Fall back for good. */
        STORE(guard_mode, 2);
    }
    char *g = slab->base + (size_t)slab->guarded * slot;
    if (mprotect(g, page, PROT_NONE) != 0)
        return -1; /* ENOMEM at vm.max_map_count */
    slab->guarded++;
    return 0;
}

/* Map a new slab for pool: as many slots as the pool has already (a
   doubling), within the bounds above. */
static struct green__slab *slab_new(struct green__stack_pool *pool)
{
    size_t n = pool->mapped;
    if (n < SLAB_MIN_SLOTS)
        n = SLAB_MIN_SLOTS;
    if (n > SLAB_MAX_SLOTS)
        n = SLAB_MAX_SLOTS;
    if (n > SLAB_MAX_BYTES / pool->slot)
        n = SLAB_MAX_BYTES / pool->slot;
    if (n == 0)
        n = 1; /* one stack larger than SLAB_MAX_BYTES */
#ifdef GREEN_USE_VALGRIND
    /* Under Valgrind, one stack per mapping, as before batches: Memcheck
       keeps growing mappings of its own for batched stacks (the stress
       test saw 70 more after 100 rounds), and speed does not matter
       there.  The batch code paths still run, with batches of one. */
    if (under_valgrind())
        n = 1;
#endif
    struct green__slab *slab =
        malloc(sizeof *slab + n * sizeof slab->freelist[0]);
    if (!slab)
        return NULL;
    void *map = mmap(NULL, n * pool->slot, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                     -1, 0);
    if (map == MAP_FAILED) {
        free(slab);
        return NULL;
    }
    slab->base = map;
    slab->slot = pool->slot;
    slab->pool = pool;
    slab->nslots = (unsigned)n;
    slab->fresh = 0;
    slab->guarded = 0;
    slab->inuse = 0;
    slab->nfree = 0;
    slab->dying = 0;
    green__list_push(&pool->slabs, &slab->all);
    /* Head of avail: new stacks come from the newest slab first. */
    green__list_push(pool->avail.next, &slab->avail);
    pool->mapped += n;
    return slab;
}

/* Take a slab with no stack in use off its pool's lists and free it
   (its mapping is gone already). */
static void slab_forget(struct green__slab *slab)
{
    if (slab->pool) {
        if (slab->pool->spare == slab)
            slab->pool->spare = NULL;
        green__list_remove(&slab->all);
        green__list_remove(&slab->avail);
        slab->pool->mapped -= slab->nslots;
    }
    free(slab);
}

/* Unmap a slab with no stack in use.  Returns -1 if the kernel refused
   (munmap may need a VMA split at vm.max_map_count): the slab stays. */
static int slab_unmap(struct green__slab *slab)
{
    return munmap(slab->base, (size_t)slab->nslots * slab->slot);
}

/* A slot of pool that is not warm: a released one (no pages, guard
   kept), else a fresh one (its guard installed ahead), else a new
   slab's. */
static int slab_take(struct green__stack_pool *pool, struct green__stack *s)
{
    struct green__slab *slab;
    if (!green__list_empty(&pool->avail))
        slab = green__container_of(pool->avail.next, struct green__slab,
                                   avail);
    else if (!(slab = slab_new(pool)))
        return -1;
    if (slab == pool->spare)
        pool->spare = NULL; /* in use again */
    unsigned i;
    if (slab->nfree > 0) {
        i = slab->freelist[--slab->nfree];
    } else {
        if (slab->fresh == slab->guarded && guard_ahead(slab) != 0) {
            if (slab->inuse == 0 && slab->fresh == 0 &&
                slab_unmap(slab) == 0)
                slab_forget(slab); /* a new slab that could not be used */
            return -1;
        }
        i = slab->fresh++;
    }
    slab->inuse++;
    if (slab->nfree == 0 && slab->fresh == slab->nslots)
        green__list_remove(&slab->avail);
    s->map = slab->base + (size_t)i * pool->slot;
    s->map_size = pool->slot;
    s->slab = slab;
    s->valgrind_id = 0;
    return 0;
}

/* Sort n ranges by address and merge those that only a guard page
   separates (neighbouring slots released together, as when many
   greenlets end at once): one zap and one TLB flush for the run instead
   of one per stack.  The guard markers in between survive MADV_DONTNEED.
   Returns the number of ranges left. */
static unsigned coalesce(struct iovec *iov, unsigned n, size_t page)
{
    for (unsigned i = 1; i < n; i++) { /* insertion: usually sorted */
        struct iovec v = iov[i];
        unsigned j = i;
        for (; j > 0 && iov[j - 1].iov_base > v.iov_base; j--)
            iov[j] = iov[j - 1];
        iov[j] = v;
    }
    unsigned m = 0;
    for (unsigned i = 1; i < n; i++) {
        char *end = (char *)iov[m].iov_base + iov[m].iov_len;
        if (end + page == (char *)iov[i].iov_base)
            iov[m].iov_len += page + iov[i].iov_len;
        else
            iov[++m] = iov[i];
    }
    return m + 1;
}

/* Give n stacks back to their slabs at once: unmap each slab left with
   no stack in use (the pool keeps one as its spare), and drop the pages
   of the others with one MADV_DONTNEED vector.  Keeps errno (this runs
   on the switch path). */
static void release_batch(struct green__stack *st, unsigned n)
{
    enum { MAXV = 2 * GREEN__STACK_CACHE_MAX };
    int saved = errno;
    size_t page = green__page_size();
    struct iovec iov[MAXV];
    struct green__slab *dead[MAXV + 1]; /* + a replaced spare */
    unsigned niov = 0, ndead = 0;
    green__assert(n <= MAXV);
    for (unsigned i = 0; i < n; i++)
        st[i].slab->inuse--;
    /* Slabs now unused are unmapped whole, without a useless madvise. */
    for (unsigned i = 0; i < n; i++) {
        struct green__slab *slab = st[i].slab;
        if (slab->inuse == 0) {
            struct green__stack_pool *pool = slab->pool;
            if (pool && (!pool->spare || pool->spare == slab ||
                         pool->spare->nslots < slab->nslots)) {
                /* The pool's largest empty slab stays as its spare
                   (pages dropped below, guards kept): a workload that
                   spawns and ends many greenlets in rounds reuses it
                   instead of mapping and guarding a new slab every
                   round.  A smaller spare it replaces is unmapped. */
                struct green__slab *old = pool->spare;
                if (old && old != slab) {
                    old->dying = 1;
                    dead[ndead++] = old;
                }
                pool->spare = slab;
            } else {
                if (!slab->dying) {
                    slab->dying = 1;
                    dead[ndead++] = slab;
                }
                continue;
            }
        }
        iov[niov].iov_base = (char *)st[i].map + page;
        iov[niov].iov_len = st[i].map_size - page;
        niov++;
    }
    /* Only madvise guards live inside one mapping: mprotect ones are
       VMAs of their own, left out of a merged range. */
    if (niov > 1 && current_guard_mode() == 1)
        niov = coalesce(iov, niov, page);
    if (niov > 0)
        madvise_vec(iov, niov, MADV_DONTNEED);
    for (unsigned i = 0; i < ndead; i++)
        if (slab_unmap(dead[i]) != 0)
            dead[i]->dying = 0; /* refused: kept, as if in use */
    /* The others' slots are free again (guard kept, no pages). */
    for (unsigned i = 0; i < n; i++) {
        struct green__slab *slab = st[i].slab;
        if (slab->dying)
            continue;
        unsigned idx = (unsigned)(((char *)st[i].map - slab->base) /
                                  slab->slot);
        slab->freelist[slab->nfree++] = idx;
        /* To the head: released slots are reused before fresh ones, so
           stacks keep to few addresses and fuller slabs. */
        if (slab->pool) {
            green__list_remove(&slab->avail);
            green__list_push(slab->pool->avail.next, &slab->avail);
        }
    }
    for (unsigned i = 0; i < ndead; i++)
        if (dead[i]->dying)
            slab_forget(dead[i]);
    errno = saved;
}

/* Pool of `size` stacks, created on first use and moved to the front
   (the default size is nearly always the first one). */
static struct green__stack_pool *pool_get(struct green__stack_cache *c,
                                          size_t size)
{
    struct green__stack_pool **pp = &c->pools, *p;
    while ((p = *pp) != NULL && p->size != size)
        pp = &p->next;
    if (p) {
        *pp = p->next;
    } else {
        p = calloc(1, sizeof *p);
        if (!p)
            return NULL;
        p->size = size;
        p->slot = size + green__page_size();
        /* Keep about as many warm bytes as 64 default stacks. */
        size_t hwm = (size_t)GREEN__STACK_CACHE_MAX * GREEN__STACK_DEFAULT /
                     size;
        p->hwm = hwm > GREEN__STACK_CACHE_MAX ? GREEN__STACK_CACHE_MAX
                 : hwm < 1                    ? 1
                                              : (unsigned)hwm;
        p->warm = malloc(2 * p->hwm * sizeof *p->warm);
        if (!p->warm) {
            free(p);
            return NULL;
        }
        green__list_init(&p->slabs);
        green__list_init(&p->avail);
    }
    p->next = c->pools;
    c->pools = p;
    return p;
}

int green__stack_get(struct green__stack_cache *c, size_t size,
                     struct green__stack *s)
{
    struct green__stack_pool *pool = c->pools;
    if (GREEN_UNLIKELY(!pool || pool->size != size) &&
        !(pool = pool_get(c, size))) {
        errno = ENOMEM;
        return -1;
    }
    if (GREEN_LIKELY(pool->nwarm > 0)) {
        *s = pool->warm[--pool->nwarm];
    } else if (slab_take(pool, s) != 0) {
        errno = ENOMEM;
        return -1;
    }
#ifdef GREEN_USE_VALGRIND
    if (GREEN_UNLIKELY(under_valgrind())) {
        char *lo = green__stack_lo(s);
        s->valgrind_id =
            VALGRIND_STACK_REGISTER(lo, lo + green__stack_size(s));
    }
#endif
    return 0;
}

void green__stack_put(struct green__stack_cache *c, struct green__stack *s)
{
    (void)c; /* the stack's slab knows its pool */
    if (!s->map)
        return;
#ifdef GREEN_USE_VALGRIND
    if (GREEN_UNLIKELY(under_valgrind())) {
        VALGRIND_STACK_DEREGISTER(s->valgrind_id);
        s->valgrind_id = 0;
    }
#endif
    struct green__stack_pool *pool = s->slab->pool;
    if (GREEN_UNLIKELY(!pool)) {
        /* Its hub drained the cache while this stack was out. */
        release_batch(s, 1);
        s->map = NULL;
        return;
    }
    if (GREEN_UNLIKELY(pool->nwarm == 2 * pool->hwm)) {
        /* High-water mark: the older half goes back in one batch. */
        release_batch(pool->warm, pool->hwm);
        memmove(pool->warm, pool->warm + pool->hwm,
                pool->hwm * sizeof *pool->warm);
        pool->nwarm = pool->hwm;
    }
    pool->warm[pool->nwarm++] = *s;
    s->map = NULL;
}

void green__stack_cache_drain(struct green__stack_cache *c)
{
    struct green__stack_pool *pool;
    while ((pool = c->pools) != NULL) {
        c->pools = pool->next;
        for (unsigned i = 0; i < pool->nwarm; i += 2 * GREEN__STACK_CACHE_MAX) {
            unsigned n = pool->nwarm - i;
            if (n > 2 * GREEN__STACK_CACHE_MAX)
                n = 2 * GREEN__STACK_CACHE_MAX;
            release_batch(pool->warm + i, n);
        }
        struct green__list *it;
        while ((it = green__list_pop(&pool->slabs)) != NULL) {
            struct green__slab *slab =
                green__container_of(it, struct green__slab, all);
            green__list_remove(&slab->avail);
            green__list_init(&slab->all);
            slab->pool = NULL;
            if (slab->inuse == 0 && slab_unmap(slab) == 0) {
                free(slab);
                continue;
            }
            /* A stack is still out (an orphan): the slab is unmapped when
               the last one comes back. */
        }
        free(pool->warm);
        free(pool);
    }
}

int green__stack_in_guard(const struct green__stack *s, const void *addr)
{
    const char *g = s->map;
    return g && (const char *)addr >= g &&
           (const char *)addr < g + LOAD(green__page_size_v);
}
