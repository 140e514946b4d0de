// The CPU hotplug register interface between the guest's AML (firmware/) and the device on node 0
// (devices/): one description both sides import, so they cannot disagree. It is QEMU's "modern" CPU
// hotplug interface (docs/specs/acpi_cpu_hotplug.rst) at PIIX4's addresses, chosen so the same AML
// runs on QEMU's own device, an independent reference for our tables (see README-hotplug.md).

/** Base of the 12-byte register block (SystemIO). */
export const CPU_HOTPLUG_BASE = 0xaf00;
export const CPU_HOTPLUG_LENGTH = 12;

/** Register offsets from CPU_HOTPLUG_BASE. */
export const CPU_HOTPLUG_REG = {
  /** dword. Write: CPU selector (CSEL). Read: command data 2 (0 here). While the selector names no
   *  possible CPU, every register reads 0 and writes to the others are ignored (QEMU's rule; the
   *  spec's enumeration loop ends on it). */
  selector: 0x0,
  /** byte. Read: bit 0 enabled (CPEN), bit 1 insert event (CINS), bit 2 remove event (CRMV).
   *  Write: bit 1 clears the insert event, bit 2 the remove event, bit 3 ejects the selected CPU. */
  flags: 0x4,
  /** byte. Write: command (see CPU_HOTPLUG_CMD). */
  command: 0x5,
  /** dword. Read: command data (after command 0, the selector of the CPU with an event).
   *  Write: command data (OST event, then OST status, for the selected CPU). */
  data: 0x8,
} as const;

export const CPU_HOTPLUG_FLAG = { enabled: 1 << 0, insert: 1 << 1, remove: 1 << 2, eject: 1 << 3 } as const;

export const CPU_HOTPLUG_CMD = {
  /** Select the next CPU (from the current selector, wrapping) with a pending insert or remove event;
   *  command data then reads as its selector. With none pending the selector stays. */
  selectNextEvent: 0,
  /** The next data write is the _OST event code for the selected CPU. */
  ostEvent: 1,
  /** The next data write is the _OST status code for the selected CPU. */
  ostStatus: 2,
  /** Command data reads as the selected CPU's APIC ID. */
  archId: 3,
} as const;

/** GPE0 block (FADT GPE0_BLK, 4 bytes: 2 status bytes, write 1 to clear, then 2 enable bytes). */
export const GPE0_BASE = 0xafe0;
export const GPE0_LENGTH = 4;
/** GPE0 status bit that announces a CPU hotplug event; the AML's handler is \_GPE._E02. */
export const CPU_HOTPLUG_GPE_BIT = 2;

/** At most this many possible CPUs (Debian's 686 kernel has NR_CPUS = 32). */
export const MAX_POSSIBLE_CPUS = 32;

/**
 * The ISA IRQ of the SCI when node 0's device serves the registers on v86 (FADT SCI_INT, with a
 * level/active-high override in the MADT). Not 9: v86's ACPI PM timer calls device_lower_irq(9)
 * about every 100 ms (libv86.mjs `timer`), which drops a pending level SCI. What v86 0.5.462 raises
 * in our configuration (our firmware, `acpi: true`, default devices): 0 PIT, 1 and 12 PS/2, 4 COM1,
 * 5 SB16, 6 floppy, 7 LPT1, 8 RTC, 9 ACPI timer, 14/15 IDE, and PCI INTx (the default ne2k at
 * 00:05) through the PIIX3 PIRQ route registers 0x60-0x63, which are 0 at reset and which our
 * firmware never programs (SeaBIOS does, to 10 and 11 in current versions, but the SeaBIOS guest
 * boots one CPU and never carries this device). 10 and 11 are free; 11 is taken because a guest may move the SB16 to 10
 * (mixer register 0x80 offers 2, 5, 7, 10) but never to 11. QEMU's PIIX4 keeps its SCI on 9.
 */
export const CPU_HOTPLUG_SCI_IRQ = 11;
