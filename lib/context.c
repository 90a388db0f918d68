/* The context switch plus the AddressSanitizer and ThreadSanitizer fiber
   annotations (modelled on Boost.Context's fiber_ucontext.hpp).  The
   default backend is ucontext; ./configure --with-context=asm picks the
   hand-written switch in context_x86_64.S.  This is the only file that
   calls swapcontext or green__asm_switch. */
#include "context.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
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

#ifdef GREEN_CONTEXT_ASM
void green__asm_switch(void **from_sp, void *to_sp);

const char *green__ctx_backend(void)
{
    return "asm";
}

/* A new context's stack, from the top: a zero "return address" of
   entry (so entry sees the stack alignment of a normal call), entry
   itself for green__asm_switch's ret, six callee-saved registers, then
   the MXCSR and x87 control word the new greenlet starts with. */
static void make_stack(struct green__ctx *ctx, void *lo, size_t size,
                       void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    *--sp = 0;
    *--sp = (uint64_t)(uintptr_t)entry;
    for (int i = 0; i < 6; i++)
        *--sp = 0;
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    *--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    ctx->sp = sp;
}

#define RAW_SWITCH(from, to) green__asm_switch(&(from)->sp, (to)->sp)
#else
const char *green__ctx_backend(void)
{
    return "ucontext";
}

/* getcontext() costs a rt_sigprocmask syscall; spawning copies this
   per-thread template instead (glibc makecontext only needs a context
   that getcontext filled once). */
static __thread ucontext_t ctx_template;
static __thread int ctx_template_ready;

static void make_stack(struct green__ctx *ctx, void *lo, size_t size,
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
}

#define RAW_SWITCH(from, to) swapcontext(&(from)->uc, &(to)->uc)
#endif

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
#ifndef GREEN_CONTEXT_ASM
    if (!ctx_template_ready) {
        green__assert(getcontext(&ctx_template) == 0);
        ctx_template_ready = 1;
    }
#endif
}

void green__ctx_make(struct green__ctx *ctx, void *lo, size_t size,
                     void (*entry)(void))
{
    make_stack(ctx, lo, size, entry);
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
    RAW_SWITCH(from, to);
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
#ifdef GREEN_CONTEXT_ASM
    RAW_SWITCH(from, to);
#else
    (void)from;
    setcontext(&to->uc);
#endif
    abort(); /* never resumed */
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
