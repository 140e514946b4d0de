/* Multiboot entry of the interrupts guest: flat GDT, a stack, an IDT whose every vector calls
 * isr(vector) in main.c, and state_entry, where the host points EIP after changing registers. */
#include "layout.h"
        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0
        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .section .text
        .globl _start
_start:
        cli
        movl %eax, %edi
        movl %ebx, %esi
        lgdt gdt_desc
        ljmp $0x08, $1f
1:      movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movw %ax, %fs
        movw %ax, %gs
        movl $stack_top, %esp
        pushl %esi
        pushl %edi
        call main
2:      cli
        hlt
        jmp 2b

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

        .section .data
        .align 8
gdt:    .quad 0
        .quad 0x00CF9A000000FFFF
        .quad 0x00CF92000000FFFF
gdt_desc:
        .word gdt_desc - gdt - 1
        .long gdt

        .section .bss
        .align 16
        .space 16384
stack_top:
