/* Multiboot (v1) entry shared by the small test guests (guests/enginetest, guests/interrupts):
 * load a flat GDT (the loader's descriptors are not ours to keep), the segment registers and a
 * 16 KiB stack, then main(magic, info). main returning halts the CPU for good.
 * Exports stack_top for guest code that restarts on a fresh stack (interrupts' state_entry). */
#include "protected-mode.h"

        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0
        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .section .text
        .globl _start
_start:
        cli
        movl %eax, %edi         /* multiboot magic; %ax is reused below */
        movl %ebx, %esi         /* multiboot info */
        lgdt gdt_desc
        ljmp $FLAT_CODE_SEL, $1f
1:      movw $FLAT_DATA_SEL, %ax
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

        .section .data
        .align 8
gdt:    FLAT_GDT_ENTRIES
gdt_desc:
        .word gdt_desc - gdt - 1
        .long gdt

        .section .bss
        .align 16
        .space 16384
        .globl stack_top
stack_top:

        .section .note.GNU-stack, "", @progbits
