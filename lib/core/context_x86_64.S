/* The opt-in hand-written context switch (./configure --with-context=asm):
   x86-64 System V.  Saves the callee-saved registers, MXCSR and the x87
   control word on the current stack, stores the stack pointer, and
   resumes the other context the same way.  No signal-mask syscall: with
   this backend the signal mask belongs to the thread, not the greenlet.

   void green__asm_switch(void **from_sp, void *to_sp); */
    .text
    .globl green__asm_switch
    .hidden green__asm_switch
    .type green__asm_switch, @function
green__asm_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size green__asm_switch, .-green__asm_switch

    .section .note.GNU-stack,"",@progbits
