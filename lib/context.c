/* ucontext switch plus the AddressSanitizer and ThreadSanitizer fiber
   annotations (modelled on Boost.Context's fiber_ucontext.hpp).  This is
   the only file that calls swapcontext. */
#include "context.h"

#include <pthread.h>
#include <string.h>

#include "util.h"

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

/* getcontext() costs a rt_sigprocmask syscall; spawning copies this
   per-thread template instead (glibc makecontext only needs a context
   that getcontext filled once). */
static __thread ucontext_t ctx_template;
static __thread int ctx_template_ready;

void green__ctx_init_thread(struct green__ctx *ctx)
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
    if (!ctx_template_ready) {
        green__assert(getcontext(&ctx_template) == 0);
        ctx_template_ready = 1;
    }
}

void green__ctx_make(struct green__ctx *ctx, void *lo, size_t size,
                     void (*entry)(void))
{
#if defined(__x86_64__) && defined(__GLIBC__)
    memcpy(&ctx->uc, &ctx_template, sizeof ctx->uc);
    /* The copy's FP-state pointer still points into the template. */
    ctx->uc.uc_mcontext.fpregs = &ctx->uc.__fpregs_mem;
#else
    green__assert(getcontext(&ctx->uc) == 0);
#endif
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, entry, 0);
    ctx->stack_lo = lo;
    ctx->stack_size = size;
    ctx->asan_fake_stack = NULL;
#ifdef GREEN_TSAN
    if (!ctx->tsan_fiber)
        ctx->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void green__ctx_switch(struct green__ctx *from, struct green__ctx *to)
{
#ifdef GREEN_ASAN
    __sanitizer_start_switch_fiber(&from->asan_fake_stack, to->stack_lo,
                                   to->stack_size);
#endif
#ifdef GREEN_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    swapcontext(&from->uc, &to->uc);
    /* Back on from's stack: someone switched to us. */
#ifdef GREEN_ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake_stack, NULL, NULL);
#endif
}

_Noreturn void green__ctx_switch_final(struct green__ctx *from,
                                       struct green__ctx *to)
{
#ifdef GREEN_ASAN
    /* NULL: this fiber is dying, so ASan may free its fake stack. */
    __sanitizer_start_switch_fiber(NULL, to->stack_lo, to->stack_size);
#endif
#ifdef GREEN_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)from;
    setcontext(&to->uc);
    abort(); /* setcontext only returns on error */
}

void green__ctx_entered(struct green__ctx *self)
{
    (void)self;
#ifdef GREEN_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

void green__ctx_destroy(struct green__ctx *ctx)
{
#ifdef GREEN_TSAN
    if (ctx->tsan_fiber)
        __tsan_destroy_fiber(ctx->tsan_fiber);
#endif
    ctx->tsan_fiber = NULL;
}
