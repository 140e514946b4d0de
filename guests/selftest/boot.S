/* Entry from a multiboot (v1) loader, the GDT, the interrupt stubs and the AP trampoline.
 * The loader leaves us in flat 32-bit protected mode with paging off, EAX = magic and
 * EBX = multiboot info; the segment descriptors it used are not ours to keep, so the
 * first thing done is loading our own GDT. */

#include "../common/protected-mode.h"

#define MB_MAGIC 0x1BADB002
/* bit 0: page-aligned modules, bit 1: memory map wanted (v86 accepts only these bits) */
#define MB_FLAGS 0x00000003

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

    .section .text
    .code32
    .globl _start
_start:
    cli
    cld
    movl $bsp_stack_top, %esp
    lgdt gdt_desc
    ljmp $FLAT_CODE_SEL, $1f
1:  movw $FLAT_DATA_SEL, %cx
    movw %cx, %ds
    movw %cx, %es
    movw %cx, %fs
    movw %cx, %gs
    movw %cx, %ss
    pushl %ebx
    pushl %eax
    call bsp_main
2:  cli
    hlt
    jmp 2b

/* ---- interrupt stubs: 16 bytes each, so stub n is at isr_stubs + 16 * n ---- */
    .align 16
    .globl isr_stubs
isr_stubs:
    .set vec, 0
    .rept 256
    .align 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    pushl $vec              /* the CPU pushed an error code */
    .else
    pushl $0
    pushl $vec
    .endif
    jmp isr_common
    .set vec, vec + 1
    .endr

isr_common:
    pushal
    cld
    pushl %esp              /* struct frame * */
    call isr_dispatch
    addl $4, %esp
    popal
    addl $8, %esp           /* vector and error code */
    iret

/* ---- GDT: null, flat code 0x08, flat data 0x10 ---- */
    .section .data
    .align 16
gdt:
    FLAT_GDT_ENTRIES
gdt_end:
    .align 4
    .word 0
    .globl gdt_desc
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

/* ---- AP trampoline: copied to a page below 1 MiB, where a SIPI starts it in real mode
 * (see AP_TRAMPOLINE in common/protected-mode.h) ---- */
    .section .text
    .code16
    .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
    cli
    cld
    AP_TRAMPOLINE ap_tramp_start, ap_tramp_end, gdt, gdt_end, ap_entry32
    movw %cx, %fs
    movw %cx, %gs
    movw %cx, %ss
    movl ap_stack_top, %esp   /* set by the BSP before each INIT/SIPI/SIPI */
    call ap_main
3:  cli
    hlt
    jmp 3b

    .section .note.GNU-stack, "", @progbits

    .section .bss
    .align 16
    .space 16384
bsp_stack_top:
