/* The opt-in hand-written context switch (./configure --with-context=asm)
   for aarch64 (AAPCS64).  Saves the callee-saved registers x19-x28, the
   frame pointer x29, the link register x30, the low halves d8-d15 of
   v8-v15 and FPCR in a 176-byte frame on the current stack, stores the
   stack pointer, and resumes the other context the same way: its ret
   goes to the restored x30.  No signal-mask syscall: with this backend
   the signal mask belongs to the thread, not the greenlet.

   Frame (offsets from the saved sp), which green__ctx_make in
   context_asm.c builds for a new context:
     0 x19 x20   16 x21 x22   32 x23 x24   48 x25 x26   64 x27 x28
    80 x29 x30   96 d8 d9    112 d10 d11  128 d12 d13  144 d14 d15
   160 fpcr     168 (padding: sp stays 16-byte aligned)

   void green__asm_switch(void **from_sp, void *to_sp); */
    .text
    .globl green__asm_switch
    .hidden green__asm_switch
    .type green__asm_switch, %function
    .p2align 4
green__asm_switch:
    .cfi_startproc
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldr x9, [sp, #160]
    msr fpcr, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    ret
    .cfi_endproc
    .size green__asm_switch, .-green__asm_switch

    .section .note.GNU-stack,"",%progbits
