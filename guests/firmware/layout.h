/* Fixed addresses shared by the firmware image and the host that fills it in.
 * src/machine/firmware/layout.ts holds the same numbers; a unit test checks they agree. */
#define FW_IMAGE_BASE     0x000E0000  /* 128 KiB image: mapped at the top of the first MiB */
#define FW_IMAGE_SIZE     0x00020000
#define FW_TABLES_BASE    0x000F0000  /* MP and ACPI tables, written by the host */
#define FW_TABLES_END     0x000FE000
#define FW_HANDOFF_ADDR   0x000FE000  /* struct fw_handoff, written by the host */
#define FW_CODE_BASE      0x000FF000  /* reset code; the reset vector is at 0xFFFF0 */
#define FW_HANDOFF_MAGIC  0x48425747  /* "GWBH" read as a little-endian u32 */
#define FW_HANDOFF_VERSION 1

/* struct fw_handoff (all u32, little-endian) */
#define HO_MAGIC        0
#define HO_VERSION      4
#define HO_ENTRY32      8   /* kernel 32-bit entry (code32_start) */
#define HO_BOOT_PARAMS 12   /* physical address of boot_params ("zero page") */
#define HO_IOAPIC_ID   16   /* ID the tables give the IOAPIC; written into its ID register */
#define HO_IOAPIC_ADDR 20
#define HO_SIZE        24

#define LAPIC_ID_REG    0xFEE00020
#define COM1            0x3F8
