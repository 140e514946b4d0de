/* giantweb's firmware: the reset code of a 128 KiB BIOS image for direct Linux boot.
 *
 * It does what the Linux 32-bit boot protocol asks and nothing else: flat 4 GiB code and data
 * segments at selectors 0x10/0x18, protected mode without paging, interrupts off (and both 8259s
 * masked, so nothing fires before Linux sets up its own IDT), ESI = boot_params, EBX = EBP = EDI = 0.
 * The kernel, initramfs, boot_params, e820 map and the MP/ACPI tables are written into RAM by the
 * host before the CPU starts; the host leaves a handoff block at FW_HANDOFF_ADDR naming the entry
 * point. Without a valid block we say so on COM1 and halt instead of jumping into garbage.
 *
 * Only the bootstrap processor boots: a CPU whose local APIC ID is not 0 waits halted, as an
 * application processor does on a PC, until INIT/SIPI sends it to the kernel's trampoline. */

#include "layout.h"

#define CODE_SEL 0x10
#define DATA_SEL 0x18

	.section .text16, "ax"
	.code16
	.globl start16
start16:
	cli
	cld
	/* real mode, CS = 0xF000: address our data relative to the segment */
	lgdtl %cs:(GDT_DESC_OFF)   /* gdt_desc - 0xF0000, from bios.ld */
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $CODE_SEL, $start32

	.code32
start32:
	movw $DATA_SEL, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $0x7000, %esp

	/* mask both 8259 PICs; Linux reprograms them itself */
	movb $0xFF, %al
	outb %al, $0xA1
	outb %al, $0x21

	/* application processors wait for INIT/SIPI */
	movl LAPIC_ID_REG, %eax
	shrl $24, %eax
	jnz park

	movl $FW_HANDOFF_ADDR, %ebx
	cmpl $FW_HANDOFF_MAGIC, HO_MAGIC(%ebx)
	jne no_handoff
	cmpl $FW_HANDOFF_VERSION, HO_VERSION(%ebx)
	jne bad_version

	/* give the IOAPIC the ID the MP/ACPI tables announce */
	movl HO_IOAPIC_ADDR(%ebx), %edx
	testl %edx, %edx
	jz 1f
	movl $0, (%edx)                 /* IOREGSEL = 0: the ID register */
	movl HO_IOAPIC_ID(%ebx), %eax
	shll $24, %eax
	movl %eax, 0x10(%edx)           /* IOWIN */
1:
	movl HO_ENTRY32(%ebx), %eax
	movl HO_BOOT_PARAMS(%ebx), %esi
	xorl %ebx, %ebx
	xorl %ebp, %ebp
	xorl %edi, %edi
	jmp *%eax

no_handoff:
	movl $msg_no_handoff, %esi
	jmp fail
bad_version:
	movl $msg_bad_version, %esi
fail:
	/* print the NUL-terminated string at ESI on COM1, then halt forever */
	movw $COM1 + 5, %dx
2:	inb %dx, %al
	testb $0x20, %al                /* transmitter holding register empty */
	jz 2b
	lodsb
	testb %al, %al
	jz park
	movw $COM1, %dx
	outb %al, %dx
	movw $COM1 + 5, %dx
	jmp 2b
park:
	cli
3:	hlt
	jmp 3b

	.section .rodata, "a"
	.balign 8
gdt:
	.quad 0
	.quad 0
	.quad 0x00CF9A000000FFFF        /* 0x10: code, base 0, limit 4 GiB, 32-bit */
	.quad 0x00CF92000000FFFF        /* 0x18: data, base 0, limit 4 GiB */
gdt_end:
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
msg_no_handoff:
	.asciz "giantweb firmware: no boot handoff at 0xFE000 (the host must write the kernel and tables before starting the CPU)\r\n"
msg_bad_version:
	.asciz "giantweb firmware: boot handoff version mismatch (firmware image and host code are out of date)\r\n"

	/* the reset vector: the CPU starts here, CS = 0xF000, IP = 0xFFF0 */
	.section .reset, "ax"
	.code16
	.globl reset_vector
reset_vector:
	ljmpw $0xF000, $START16_OFF  /* start16 - 0xF0000 */
	.balign 16, 0xF4
