// Our firmware and tables on qemu-system-i386, which really runs N CPUs: Linux must start every
// AP from what the tables say (MADT, or the MP table with acpi=off). Skipped when QEMU is absent
// (`npm run setup` installs it).

import { afterEach, describe, expect, it } from "vitest";
import { qemuVersion } from "../../../src/guests/qemu-process.ts";
import { PROMPT_RE } from "../../../src/runtime/nodejs/linux-boot.ts";
import { startDirectLinuxQemu, type QemuDirectVm } from "../../../src/runtime/nodejs/qemu-direct.ts";

const hasQemu = qemuVersion() !== undefined;

async function nproc(vm: QemuDirectVm): Promise<number> {
  const from = vm.output().length;
  vm.send("echo NPROC=$(nproc)\n");
  await vm.waitFor(/\nNPROC=\d+/, 60_000, from);
  return Number(/\nNPROC=(\d+)/.exec(vm.output().slice(from))![1]);
}

describe.skipIf(!hasQemu)("direct Linux boot on QEMU -smp N (real APs)", () => {
  let vm: QemuDirectVm | undefined;
  afterEach(() => {
    vm?.destroy();
    vm = undefined;
  });

  it("starts all 4 CPUs from the ACPI MADT", async () => {
    vm = startDirectLinuxQemu({ cpus: 4 });
    const log = await vm.waitFor(PROMPT_RE, 300_000);
    expect(log).toContain("ACPI: Using ACPI (MADT) for SMP configuration information");
    expect(log).toContain("smp: Brought up 1 node, 4 CPUs");
    expect(log).toContain("4 CPU(s) online");
    expect(await nproc(vm)).toBe(4);
  });

  it("starts both CPUs from the MP table when ACPI is off", async () => {
    vm = startDirectLinuxQemu({ cpus: 2, extraCmdline: "acpi=off" });
    const log = await vm.waitFor(PROMPT_RE, 300_000);
    expect(log).toContain("MPTABLE: OEM ID: GIANTWEB");
    expect(log).toContain("Processor #1");
    expect(log).toContain("smp: Brought up 1 node, 2 CPUs");
    expect(await nproc(vm)).toBe(2);
  });
});
