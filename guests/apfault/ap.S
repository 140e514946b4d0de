/* The AP's start-up code: real mode at the SIPI vector's page, then protected mode with a GDT
 * whose entry 0x18 is all zeros, then `ltr` on that entry. On a PC that is a #GP; v86 0.5.x
 * panics in Rust instead ("ltr: invalid type"), which is the engine failure this guest provokes. */
        .section .text
        .code16
        .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
        cli
        movw %cs, %ax
        movw %ax, %ds
        lgdtl (ap_gdt_desc - ap_tramp_start)
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        ljmpl $0x08, $ap_entry32
        .align 4
        .word 0
ap_gdt_desc:
        .word ap_gdt_end - ap_gdt - 1
        .long ap_gdt
ap_tramp_end:

        .code32
ap_entry32:
        movw $0x10, %cx
        movw %cx, %ds
        movw %cx, %es
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
ap_gdt: .quad 0
        .quad 0x00CF9A000000FFFF  /* 0x08: code, flat 4 GiB */
        .quad 0x00CF92000000FFFF  /* 0x10: data, flat 4 GiB */
        .quad 0                   /* 0x18: zero, loaded as the task register */
ap_gdt_end:

        .section .bss
        .align 16
        .space 4096
ap_stack_top:

        .section .note.GNU-stack, "", @progbits
