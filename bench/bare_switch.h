/* The floor for a context switch, in the bench itself: a bare
   stack-switching routine saving exactly what libgreen's asm backend
   saves (the callee-saved registers plus MXCSR and the x87 control word
   on x86-64; x19-x30, d8-d15 and FPCR on aarch64), with nothing around
   it: no scheduler, no errno, no sanitizer hooks.  BARE_SWITCH is
   defined where such a switch exists. */
#ifndef GREEN_BENCH_BARE_SWITCH_H
#define GREEN_BENCH_BARE_SWITCH_H

#include <stdint.h>

#if defined(__x86_64__)
#define BARE_SWITCH 1
/* void bench_bare_switch(void **from_sp, void *to_sp); */
__asm__(".text\n"
        ".globl bench_bare_switch\n"
        ".type bench_bare_switch, @function\n"
        "bench_bare_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size bench_bare_switch, .-bench_bare_switch\n");

/* A stack pointer that bench_bare_switch resumes into entry(). */
static inline void *bench_bare_make(void *lo, size_t size, void (*entry)(void))
{
    uint64_t *sp = (uint64_t *)(((uintptr_t)lo + size) & ~(uintptr_t)15);
    *--sp = 0;                          /* entry's return address */
    *--sp = (uint64_t)(uintptr_t)entry; /* for the ret */
    for (int i = 0; i < 6; i++)
        *--sp = 0; /* rbp rbx r12-r15 */
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    *--sp = (uint64_t)mxcsr | ((uint64_t)cw << 32);
    return sp;
}
#elif defined(__aarch64__)
#define BARE_SWITCH 1
__asm__(".text\n"
        ".globl bench_bare_switch\n"
        ".type bench_bare_switch, %function\n"
        "bench_bare_switch:\n"
        "    sub sp, sp, #176\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mrs x9, fpcr\n"
        "    str x9, [sp, #160]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        "    mov sp, x1\n"
        "    ldr x9, [sp, #160]\n"
        "    msr fpcr, x9\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    add sp, sp, #176\n"
        "    ret\n"
        ".size bench_bare_switch, .-bench_bare_switch\n");

static inline void *bench_bare_make(void *lo, size_t size, void (*entry)(void))
{
    uint64_t *sp = (uint64_t *)(((uintptr_t)lo + size) & ~(uintptr_t)15);
    sp -= 22; /* 176 bytes */
    for (int i = 0; i < 22; i++)
        sp[i] = 0;
    sp[11] = (uint64_t)(uintptr_t)entry; /* x30: where ret goes */
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    sp[20] = fpcr;
    return sp;
}
#endif

#ifdef BARE_SWITCH
void bench_bare_switch(void **from_sp, void *to_sp);
#endif

#endif
