/* Assembler pieces the guests' .S files share (included through the C preprocessor, so only
 * C comments and #define here): the flat GDT and the AP start-up trampoline's way from real mode
 * into protected mode. Used by common/start.S, selftest/boot.S and apfault/ap.S. */
#ifndef GUESTS_COMMON_PROTECTED_MODE_H
#define GUESTS_COMMON_PROTECTED_MODE_H

#define FLAT_CODE_SEL 0x08      /* the flat GDT's code segment */
#define FLAT_DATA_SEL 0x10      /* the flat GDT's data segment */

/* The entries of a flat GDT: null, then code (FLAT_CODE_SEL) and data (FLAT_DATA_SEL) with base 0
 * and limit 4 GiB. A guest that wants more entries writes them after this. */
.macro FLAT_GDT_ENTRIES
        .quad 0
        .quad 0x00CF9A000000FFFF  /* 0x08: code, flat 4 GiB */
        .quad 0x00CF92000000FFFF  /* 0x10: data, flat 4 GiB */
.endm

/* An AP's start-up trampoline, after its start label `start` and whatever the guest does first
 * there (cli, ...), assembled under .code16. The part up to the label `end` is copied to a page
 * below 1 MiB; a SIPI with vector v starts the AP in real mode at v * 0x1000 with CS = v * 0x100,
 * IP = 0, so that part uses only offsets from `start` and runs wherever it is copied. It loads
 * the GDT [gdt, gdt_end) through a descriptor (ap_gdt_desc) kept inside the copy, sets CR0.PE
 * and far-jumps with FLAT_CODE_SEL to `entry32` (linked code after `end`, not copied), which
 * loads ds and es with FLAT_DATA_SEL. The macro leaves the assembler in .code32 and
 * FLAT_DATA_SEL in %cx: the guest goes on with ss and its stack (and any other segment
 * register). One trampoline a file, as it defines the label ap_gdt_desc. */
.macro AP_TRAMPOLINE start, end, gdt, gdt_end, entry32
        movw %cs, %ax
        movw %ax, %ds
        lgdtl (ap_gdt_desc - \start)
        movl %cr0, %eax
        orl $1, %eax
        movl %eax, %cr0
        ljmpl $FLAT_CODE_SEL, $\entry32
        .align 4
        .word 0                 /* so the descriptor's base (.long) is 4-byte aligned */
ap_gdt_desc:
        .word \gdt_end - \gdt - 1
        .long \gdt
\end:

        .code32
\entry32:
        movw $FLAT_DATA_SEL, %cx
        movw %cx, %ds
        movw %cx, %es
.endm

#endif
