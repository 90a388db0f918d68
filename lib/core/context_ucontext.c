/* The default context backend: glibc's getcontext/makecontext/
   swapcontext (the fixed default).  Each switch saves and
   restores the signal mask, which costs glibc one rt_sigprocmask
   syscall; the opt-in context_asm.c avoids it. */
#include "context.h"

#include <stdlib.h>
#include <string.h>

#include "context_san.h"
#include "util.h"

const char *green__ctx_backend(void)
{
    return "ucontext";
}

/* getcontext() costs a rt_sigprocmask syscall; spawning copies this
   per-thread template instead (glibc makecontext only needs a context
   that getcontext filled once). */
static __thread ucontext_t ctx_template;
static __thread int ctx_template_ready;

void green__ctx_init_thread(struct green__ctx *ctx)
{
    green__san_init_thread(ctx);
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
    green__san_make(ctx, lo, size);
}

void green__ctx_prefetch(const struct green__ctx *ctx)
{
#if defined(__x86_64__) && defined(__GLIBC__)
    /* The frames just above the saved stack pointer; the registers
       themselves are in ctx, in the control block. */
    const char *sp = (const char *)ctx->uc.uc_mcontext.gregs[REG_RSP];
    for (int i = 0; i < 4; i++)
        green__prefetch(sp + 64 * i);
#else
    (void)ctx;
#endif
}

void green__ctx_switch(struct green__ctx *from, struct green__ctx *to)
{
    green__san_before_switch(from, to);
    swapcontext(&from->uc, &to->uc);
    /* Back on from's stack: someone switched to us. */
    green__san_after_switch(from);
}

_Noreturn void green__ctx_switch_final(struct green__ctx *from,
                                       struct green__ctx *to)
{
    (void)from;
    /* NULL: this fiber is dying, so ASan may free its fake stack. */
    green__san_before_switch(NULL, to);
    setcontext(&to->uc);
    abort(); /* never resumed */
}
