// The CPU hotplug register interface between the guest's AML (firmware/) and the device on node 0
// (devices/): one description both sides import, so they cannot disagree. It is QEMU's "modern" CPU
// hotplug interface (docs/specs/acpi_cpu_hotplug.rst) at PIIX4's addresses, chosen so the same AML
// runs on QEMU's own device, an independent reference for our tables (see README-hotplug.md).

/** Base of the 12-byte register block (SystemIO). */
export const CPU_HOTPLUG_BASE = 0xaf00;
export const CPU_HOTPLUG_LENGTH = 12;

/** Register offsets from CPU_HOTPLUG_BASE. */
export const CPU_HOTPLUG_REG = {
  /** dword. Write: CPU selector (CSEL). Read: command data 2 (0 here). */
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
