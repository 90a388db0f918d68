/* The context switch, behind one small interface (like redis' ae_*.c
   backends): context_ucontext.c implements it with ucontext, the fixed
   default; context_asm.c (with context_x86_64.S) with a hand-written
   x86-64 switch, opt-in through ./configure --with-context=asm.  The
   build compiles exactly one of them; both share the sanitizer hooks of
   context_san.h. */
#ifndef GREEN_CONTEXT_H_INCLUDED
#define GREEN_CONTEXT_H_INCLUDED

#include <stddef.h>

#include "config.h"

#ifndef GREEN_CONTEXT_ASM
#include <ucontext.h>
#endif

struct green__ctx {
#ifdef GREEN_CONTEXT_ASM
    void *sp;                 /* saved stack pointer (registers above it) */
#else
    ucontext_t uc;            /* saved registers, signal mask, FP env */
#endif
    const void *stack_lo;     /* lowest usable byte (for ASan) */
    size_t stack_size;        /* usable bytes (for ASan) */
    void *asan_fake_stack;    /* ASan's fake stack while switched out */
    void *tsan_fiber;         /* TSan fiber, NULL without TSan */
};

/* Describe the calling thread's own stack (main greenlet, hub when
   embedded).  Call once per thread before the first switch. */
void green__ctx_init_thread(struct green__ctx *ctx);

/* Prepare ctx to run entry() on [lo, lo + size).  No syscall. */
void green__ctx_make(struct green__ctx *ctx, void *lo, size_t size,
                     void (*entry)(void));

/* Save the running context in from and resume to.  Returns when someone
   switches back to from. */
void green__ctx_switch(struct green__ctx *from, struct green__ctx *to);

/* Leave a finished context for good (ASan frees its fake stack). */
_Noreturn void green__ctx_switch_final(struct green__ctx *from,
                                       struct green__ctx *to);

/* First thing a new context does on entry (completes the ASan switch). */
void green__ctx_entered(struct green__ctx *self);

/* Start loading what resuming ctx reads first from its stack (the saved
   registers, asm, and the frames just above the saved stack pointer),
   for a switch that comes soon.  Only a hint; no fault. */
void green__ctx_prefetch(const struct green__ctx *ctx);

/* Release per-context sanitizer state (TSan fiber) of a dead context. */
void green__ctx_destroy(struct green__ctx *ctx);

/* "ucontext" or "asm". */
const char *green__ctx_backend(void);

#endif
