/* The opt-in context backend (./configure --with-context=asm): the
   hand-written x86-64 switch in context_x86_64.S.  Only callee-saved
   registers, MXCSR and the x87 control word are saved; the signal mask
   belongs to the thread, so a switch makes no syscall. */
#include "context.h"

#include <stdint.h>
#include <stdlib.h>

#include "context_san.h"
#include "util.h"

void green__asm_switch(void **from_sp, void *to_sp);

const char *green__ctx_backend(void)
{
    return "asm";
}

void green__ctx_init_thread(struct green__ctx *ctx)
{
    green__san_init_thread(ctx);
}

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

void green__ctx_entered(struct green__ctx *self)
{
    (void)self;
    green__san_after_switch(NULL);
}

void green__ctx_destroy(struct green__ctx *ctx)
{
    green__san_destroy(ctx);
}

