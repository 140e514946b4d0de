// The default Linux guest on stock v86 (one CPU) booted by our firmware, no SeaBIOS: it reaches the
// shell, and its kernel log and /sys show it read our tables: N CPUs from the ACPI MADT, or from
// the MP table when ACPI is off. v86 runs only CPU 0, so Linux gives up on the others after its
// wake-up timeout and goes on with one CPU; that is expected until APs run in other workers.

import { afterEach, describe, expect, it } from "vitest";
import { PROMPT_RE, startDirectLinux, type DirectLinuxVm } from "../../../src/runtime/nodejs/linux-boot.ts";

const BOOT_MS = 540_000;

async function run(vm: DirectLinuxVm, command: string, marker: string): Promise<string> {
  const from = vm.output().length;
  vm.send(`${command}; echo ${marker}-END\n`);
  await vm.waitFor(new RegExp(`\n${marker}-END`), 60_000, from);
  const text = vm.output().slice(from);
  return text.slice(0, text.lastIndexOf(`${marker}-END`));
}

describe("direct Linux boot on stock v86", () => {
  let vm: DirectLinuxVm | undefined;
  afterEach(async () => {
    await vm?.destroy();
    vm = undefined;
  });

  it("boots to the shell with ACPI tables for 2 CPUs; Linux takes the MADT and routes the UART through our IOAPIC", async () => {
    vm = await startDirectLinux({ cpus: 2 });
    const log = await vm.waitFor(PROMPT_RE, BOOT_MS);
    expect(log).toMatch(/ACPI: RSDP 0x00000000000F0[0-9A-F]{3} 000024 \(v02 GIANTW\)/);
    expect(log).toMatch(/ACPI: APIC 0x00000000000F0[0-9A-F]{3} /);
    expect(log).toContain("ACPI: Using ACPI (MADT) for SMP configuration information");
    expect(log).toContain("IOAPIC[0]: apic_id 2, version 17, address 0xfec00000, GSI 0-23");
    expect(log).toContain("smpboot: Allowing 2 CPUs, 0 hotplug CPUs");
    expect(log).toContain("ACPI: Interpreter enabled");
    expect(log).toContain("ACPI: PM-Timer IO Port: 0xb008");
    // v86 has one CPU: the AP does not answer INIT/SIPI
    expect(log).toMatch(/do_boot_cpu failed\(-1\) to wakeup CPU#1/);

    const out = await run(vm, "cat /sys/devices/system/cpu/possible; echo $((6*7)); grep ttyS0 /proc/interrupts", "A");
    expect(out).toMatch(/\n0-1\r?\n/);
    expect(out).toMatch(/\n42\r?\n/);
    // the serial port's IRQ 4 arrives through IOAPIC pin 4, as the (identity-wired) tables say
    const m = /^\s*4:\s+(\d+)\s+IO-APIC\s+4-edge\s+ttyS0/m.exec(out);
    expect(m, `ttyS0 line in /proc/interrupts:\n${out}`).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
  });

  it("boots to the shell from the MP table alone when ACPI is off, and Linux lists every processor entry", async () => {
    vm = await startDirectLinux({ cpus: 2, extraCmdline: "acpi=off" });
    const log = await vm.waitFor(PROMPT_RE, BOOT_MS);
    expect(log).toContain("found SMP MP-table at [mem 0x000f0000-0x000f000f]");
    expect(log).toContain("Intel MultiProcessor Specification v1.4");
    expect(log).toContain("MPTABLE: OEM ID: GIANTWEB");
    expect(log).toContain("Processor #0 (Bootup-CPU)");
    expect(log).toContain("Processor #1");
    expect(log).toContain("IOAPIC[0]: apic_id 2, version 17, address 0xfec00000, GSI 0-23");
    expect(log).toContain("smpboot: Allowing 2 CPUs, 0 hotplug CPUs");
    expect(log).not.toContain("ACPI: RSDP");
    const out = await run(vm, "cat /sys/devices/system/cpu/possible; echo $((7*6))", "B");
    expect(out).toMatch(/\n0-1\r?\n/);
    expect(out).toMatch(/\n42\r?\n/);
  });
});
