/* The sanitizer side of a context switch, shared by both backends
   (context_ucontext.c, context_asm.c): the AddressSanitizer and
   ThreadSanitizer fiber annotations (modelled on Boost.Context's
   fiber_ucontext.hpp) and the calling thread's own stack bounds.  Every
   hook compiles to nothing without its sanitizer. */
#ifndef GREEN_CONTEXT_SAN_H_INCLUDED
#define GREEN_CONTEXT_SAN_H_INCLUDED

#include <pthread.h>
#include <string.h>

#include "context.h"

#if defined(__SANITIZE_ADDRESS__)
#define GREEN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GREEN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GREEN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GREEN_TSAN 1
#endif
#endif

#ifdef GREEN_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save,
                                    const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old,
                                     size_t *size_old);
#endif
#ifdef GREEN_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif


/* Always inlined: under TSan an instrumented function of its own would
   enter on one fiber's shadow stack and return on the other's (the
   switch happens in between), unbalancing both. */
#define GREEN__SAN_INLINE static inline __attribute__((always_inline))

/* Before switching from `from` to `to` (from == NULL: from is dying). */
GREEN__SAN_INLINE void green__san_before_switch(struct green__ctx *from,
                                            const struct green__ctx *to)
{
#ifdef GREEN_ASAN
    __sanitizer_start_switch_fiber(from ? &from->asan_fake_stack : NULL,
                                   to->stack_lo, to->stack_size);
#endif
#ifdef GREEN_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)from;
    (void)to;
}

/* Back on `self`'s stack after a switch (self == NULL: first entry). */
GREEN__SAN_INLINE void green__san_after_switch(struct green__ctx *self)
{
#ifdef GREEN_ASAN
    __sanitizer_finish_switch_fiber(self ? self->asan_fake_stack : NULL,
                                    NULL, NULL);
#endif
    (void)self;
}

/* Fill in the calling thread's own stack bounds and TSan fiber. */
static inline void green__san_init_thread(struct green__ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t size;
        if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
            ctx->stack_lo = lo;
            ctx->stack_size = size;
        }
        pthread_attr_destroy(&attr);
    }
#ifdef GREEN_TSAN
    ctx->tsan_fiber = __tsan_get_current_fiber();
#endif
}

/* Record a new context's stack for ASan and give it a TSan fiber. */
static inline void green__san_make(struct green__ctx *ctx, void *lo,
                                   size_t size)
{
    ctx->stack_lo = lo;
    ctx->stack_size = size;
    ctx->asan_fake_stack = NULL;
#ifdef GREEN_TSAN
    if (!ctx->tsan_fiber)
        ctx->tsan_fiber = __tsan_create_fiber(0);
#endif
}

/* A dead context's TSan fiber. */
static inline void green__san_destroy(struct green__ctx *ctx)
{
#ifdef GREEN_TSAN
    if (ctx->tsan_fiber)
        __tsan_destroy_fiber(ctx->tsan_fiber);
#endif
    ctx->tsan_fiber = NULL;
}

#endif
