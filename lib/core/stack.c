/* Stack allocation, after Boost.Context's protected_fixedsize_stack (the
   mapping) and libdill's stack.c (the cache). */
#include "stack.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#if defined(GREEN_VALGRIND) && defined(HAVE_VALGRIND_VALGRIND_H)
#include <valgrind/valgrind.h>
#define GREEN_USE_VALGRIND 1
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

/* Guard mechanism, decided on first use: 1 = MADV_GUARD_INSTALL (does
   not split the mapping, so stacks are not capped by vm.max_map_count),
   2 = mprotect(PROT_NONE) fallback (costs one extra VMA per stack). */
static int guard_mode;
static size_t page_size;
static size_t default_size;

/* These process-wide settings are computed on first use by whichever
   thread gets there; every thread computes the same value, so relaxed
   atomics (plain moves) make the race benign and TSan-clean. */
#define LOAD(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define STORE(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)

size_t green__page_size(void)
{
    size_t p = LOAD(page_size);
    if (GREEN_UNLIKELY(p == 0)) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        STORE(page_size, p);
    }
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

/* GREEN_STACK_SIZE: bytes, optionally with a k or m suffix.  An invalid
   or too small value is ignored (the default stays), as README says. */
static size_t parse_env_size(const char *s)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    if (*end == 'k' || *end == 'K') {
        v *= 1024;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        v *= 1024 * 1024;
        end++;
    }
    if (*end || v > (1ULL << 32))
        return 0;
    size_t r = green__stack_round((size_t)v);
    return r;
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

static int install_guard(void *lo)
{
    size_t page = green__page_size();
    if (current_guard_mode() == 1) {
        if (madvise(lo, page, MADV_GUARD_INSTALL) == 0)
            return 0;
        /* Older kernel: EINVAL.  Fall back for good. */
        STORE(guard_mode, 2);
    }
    return mprotect(lo, page, PROT_NONE);
}

static int stack_map(size_t size, struct green__stack *s)
{
    size_t total = size + green__page_size();
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE,
                     -1, 0);
    if (map == MAP_FAILED) {
        errno = ENOMEM;
        return -1;
    }
    if (install_guard(map) != 0) {
        /* mprotect fails with ENOMEM at vm.max_map_count. */
        munmap(map, total);
        errno = ENOMEM;
        return -1;
    }
    s->map = map;
    s->map_size = total;
    s->valgrind_id = 0;
    return 0;
}

static void stack_unmap(struct green__stack *s)
{
    munmap(s->map, s->map_size);
    s->map = NULL;
}

int green__stack_get(struct green__stack_cache *c, size_t size,
                     struct green__stack *s)
{
    if (c->count > 0 && size == green__stack_default()) {
        *s = c->items[--c->count];
    } else if (stack_map(size, s) != 0) {
        return -1;
    }
#ifdef GREEN_USE_VALGRIND
    char *lo = green__stack_lo(s);
    s->valgrind_id = VALGRIND_STACK_REGISTER(lo, lo + green__stack_size(s));
#endif
    return 0;
}

void green__stack_put(struct green__stack_cache *c, struct green__stack *s)
{
    if (!s->map)
        return;
#ifdef GREEN_USE_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
    s->valgrind_id = 0;
#endif
    if (green__stack_size(s) == green__stack_default() &&
        c->count < GREEN__STACK_CACHE_MAX) {
        if (!c->items) {
            c->items = malloc(GREEN__STACK_CACHE_MAX * sizeof *c->items);
            if (!c->items) {
                stack_unmap(s);
                return;
            }
        }
        c->items[c->count++] = *s;
        s->map = NULL;
        return;
    }
    stack_unmap(s);
}

void green__stack_cache_drain(struct green__stack_cache *c)
{
    while (c->count > 0)
        stack_unmap(&c->items[--c->count]);
    free(c->items);
    c->items = NULL;
}

int green__stack_in_guard(const struct green__stack *s, const void *addr)
{
    const char *g = s->map;
    return g && (const char *)addr >= g &&
           (const char *)addr < g + LOAD(page_size);
}
