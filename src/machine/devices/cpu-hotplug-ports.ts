// Puts node 0's CpuHotplugDevice on a port table (v86's cpu.io through the engine's portTableOf)
// and its SCI on an ISA IRQ line. The device itself stays pure (cpu-hotplug.ts).

import type { PortTable } from "../../engine/ports.ts";
import type { CpuHotplugDevice } from "./cpu-hotplug.ts";
import { CPU_HOTPLUG_BASE, CPU_HOTPLUG_LENGTH, GPE0_BASE, GPE0_LENGTH } from "./cpu-hotplug-interface.ts";

/** Every port the device serves: the 12-byte hotplug block, then the 4-byte GPE0 block. */
export const CPU_HOTPLUG_PORTS: readonly number[] = [
  ...Array.from({ length: CPU_HOTPLUG_LENGTH }, (_, i) => CPU_HOTPLUG_BASE + i),
  ...Array.from({ length: GPE0_LENGTH }, (_, i) => GPE0_BASE + i),
];

/**
 * Installs the device at every port of both blocks, for 8-, 16- and 32-bit accesses (ACPICA uses
 * byte and dword accesses). On v86 this replaces its own GPE0 bytes at 0xAFE0-0xAFE3, whose
 * writes store instead of clearing (README-hotplug.md §3.1).
 */
export function installCpuHotplug(target: PortTable, device: CpuHotplugDevice): void {
  for (const port of CPU_HOTPLUG_PORTS) {
    target.install(port, {
      read8: () => device.read(port, 1),
      read16: () => device.read(port, 2),
      read32: () => device.read(port, 4),
      write8: (v) => device.write(port, 1, v),
      write16: (v) => device.write(port, 2, v),
      write32: (v) => device.write(port, 4, v),
    });
  }
}

/**
 * Drives ISA IRQ `irq` (CPU_HOTPLUG_SCI_IRQ on v86) from the device's SCI level: at once to the
 * current level, then at every change. Node 0 passes v86's `cpu.device_raise_irq` /
 * `device_lower_irq`; a change the platform causes (plug, requestUnplug) happens outside any guest
 * instruction, so wrap those calls in the engine's deviceAccess as IoServer does. Returns the
 * function that disconnects the line (it is left as it is).
 */
export function connectSci(device: CpuHotplugDevice, irq: number, raise: (irq: number) => void, lower: (irq: number) => void): () => void {
  if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`the SCI must be an ISA IRQ from 0 to 15, got ${irq}`);
  const drive = (level: boolean) => (level ? raise(irq) : lower(irq));
  drive(device.sciLevel());
  return device.onSciChange(drive);
}
