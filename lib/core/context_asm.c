/* The opt-in context backend (./configure --with-context=asm): the
   hand-written switch in context_x86_64.S (callee-saved registers, MXCSR
   and the x87 control word) or context_aarch64.S (x19-x30, d8-d15 and
   FPCR).  The signal mask belongs to the thread, so a switch makes no
   syscall.  Without sanitizers the hooks compile to nothing and
   green__ctx_switch is a single jump into the assembly. */
#include "context.h"

#include <stdint.h>
#include <stdlib.h>

#include "context_san.h"
#include "util.h"

void green__asm_switch(void **from_sp, void *to_sp);

/* Cache lines of a switched-out stack worth loading ahead. */
#define PREFETCH_LINES 8

const char *green__ctx_backend(void)
{
    return "asm";
}

void green__ctx_init_thread(struct green__ctx *ctx)
{
    green__san_init_thread(ctx);
}

#if defined(__x86_64__)
/* A new context's stack, from the top: a zero "return address" of
   entry (so entry sees the stack alignment of a normal call), entry
   itself for green__asm_switch's ret, six callee-saved registers, then
   the MXCSR and x87 control word the new greenlet starts with. */
void green__ctx_make(struct green__ctx *ctx, void *lo, size_t size,
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
    green__san_make(ctx, lo, size);
}
#elif defined(__aarch64__)
/* A new context's stack: one 176-byte frame of context_aarch64.S at the
   16-byte aligned top, all zero (x29 = 0 ends frame-pointer walks)
   except x30, where green__asm_switch's ret goes, and the FPCR the new
   greenlet starts with. */
void green__ctx_make(struct green__ctx *ctx, void *lo, size_t size,
                     void (*entry)(void))
{
    enum { WORDS = 176 / 8, X30 = 11, FPCR = 20 };
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top - WORDS;
    for (int i = 0; i < WORDS; i++)
        sp[i] = 0;
    sp[X30] = (uint64_t)(uintptr_t)entry;
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    sp[FPCR] = fpcr;
    ctx->sp = sp;
    green__san_make(ctx, lo, size);
}
#else
#error "--with-context=asm: no switch for this CPU (x86-64 and aarch64 only)"
#endif

void green__ctx_prefetch(const struct green__ctx *ctx)
{
    /* The saved registers, then the switch's and the wait's frames.
       The top of a greenlet's stack may be nearer than this: the lines
       past it are its control block, or a guard page, on which a
       prefetch is dropped without a fault. */
    const char *sp = ctx->sp;
    for (int i = 0; i < PREFETCH_LINES; i++)
        green__prefetch(sp + 64 * i);
}

void green__ctx_switch(struct green__ctx *from, struct green__ctx *to)
{
    green__san_before_switch(from, to);
    green__asm_switch(&from->sp, to->sp);
    green__san_after_switch(from);
}

_Noreturn void green__ctx_switch_final(struct green__ctx *from,
                                       struct green__ctx *to)
{
    green__san_before_switch(NULL, to);
    green__asm_switch(&from->sp, to->sp);
    abort(); /* never resumed */
}
