/* The interrupts guest's assembly beside the shared entry (guests/common/start.S): an IDT stub per
 * vector that calls isr(vector) in main.c, and state_entry, where the host points EIP after
 * changing registers. */
#include "layout.h"

        .section .text
/* One stub per vector (16 bytes apart): push the vector, then the common path. None of the
 * vectors used here pushes an error code. */
        .align 16
        .globl isr_stubs
isr_stubs:
        .set v, 0
        .rept NVEC
        .align 16
        pushl $v
        jmp isr_common
        .set v, v + 1
        .endr
isr_common:
        pushal
        pushl 32(%esp)
        call isr
        addl $4, %esp
        popal
        addl $4, %esp
        iret

/* The host sets EIP here (and the registers it wants reported) with a state write. */
        .globl state_entry
state_entry:
        movl $stack_top, %esp
        pushl %edi
        pushl %esi
        pushl %edx
        pushl %ecx
        pushl %ebx
        pushl %eax
        call report_regs
3:      cli
        hlt
        jmp 3b

        .section .note.GNU-stack, "", @progbits
