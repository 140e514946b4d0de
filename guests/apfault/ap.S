/* The AP's start-up code: real mode at the SIPI vector's page, then protected mode with a GDT
 * whose entry 0x18 is all zeros, then `ltr` on that entry. On a PC that is a #GP; v86 0.5.x
 * panics in Rust instead ("ltr: invalid type"), which is the engine failure this guest provokes. */
#include "../common/protected-mode.h"

        .section .text
        .code16
        .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
        cli
        AP_TRAMPOLINE ap_tramp_start, ap_tramp_end, ap_gdt, ap_gdt_end, ap_entry32
        movw %cx, %ss
        movl $ap_stack_top, %esp
        call ap_main            /* says it got here */
        movw $0x18, %ax
        ltr %ax                 /* the zero descriptor */
1:      cli
        hlt
        jmp 1b

        .section .data
        .align 8
ap_gdt: FLAT_GDT_ENTRIES
        .quad 0                   /* 0x18: zero, loaded as the task register */
ap_gdt_end:

        .section .bss
        .align 16
        .space 4096
ap_stack_top:

        .section .note.GNU-stack, "", @progbits
