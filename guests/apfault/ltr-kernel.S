/* The protected-mode part of a stand-in "bzImage" (build.ts adds the setup header): what our
 * firmware enters at 0x100000 on vCPU 0. It prints a line, then loads the task register from a
 * zero GDT entry, which panics v86 ("ltr: invalid type"): an engine failure on node 0 of the
 * one-tab multi-worker page (test/ui/page/node-failure-one-tab.e2e.test.ts). */
        .code32
        .text
        .globl _start
_start:
        cli
        lgdt gdt_desc
        movl $msg, %esi
1:      lodsb
        testb %al, %al
        jz 2f
        movw $0x3F8, %dx
        outb %al, %dx
        jmp 1b
2:      movw $0x18, %ax
        ltr %ax
3:      hlt
        jmp 3b

        .align 8
gdt:    .quad 0
        .quad 0x00CF9A000000FFFF
        .quad 0x00CF92000000FFFF
        .quad 0                   /* 0x18: zero */
gdt_end:
gdt_desc:
        .word gdt_end - gdt - 1
        .long gdt
msg:    .asciz "LTRKERNEL loading TR from a zero descriptor\n"

        .section .note.GNU-stack, "", @progbits
