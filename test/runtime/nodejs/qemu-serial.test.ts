// QEMU's COM1 output must reach us whole even when this process is too busy to read for a while:
// every kernel line the console showed during boot must equal the same line in the guest's dmesg.
// (With `-serial stdio` into a pipe, a busy reader made QEMU drop bytes; see qemu-process.ts.)

import { afterEach, describe, expect, it } from "vitest";
import { qemuVersion } from "../../../src/guests/qemu-process.ts";
import { PROMPT_RE } from "../../../src/guests/serial-console.ts";
import { startDirectLinuxQemu, type QemuDirectVm } from "../../../src/runtime/nodejs/qemu-direct.ts";

const hasQemu = qemuVersion() !== undefined;
const KERNEL_LINE = /^\[\s*\d+\.\d{6}\] .*$/gm;

describe.skipIf(!hasQemu)("QEMU serial output", () => {
  let vm: QemuDirectVm | undefined;
  afterEach(() => vm?.destroy());

  it("loses no byte while the reader is blocked", async () => {
    vm = startDirectLinuxQemu({ cpus: 4 });
    // Block this thread for 8 × 1 s while the kernel prints its boot log (with the old pipe this
    // lost bytes in 2 of 2 runs on an idle machine; with the file, none).
    await vm.waitFor(/Linux version/, 120_000);
    for (let i = 0; i < 8; i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    const boot = await vm.waitFor(PROMPT_RE, 300_000);
    const consoleLines = (boot.replace(/\r/g, "").match(KERNEL_LINE) ?? []).map((l) => l.trimEnd());
    expect(consoleLines.length).toBeGreaterThan(100);
    const from = vm.output().length;
    vm.send("dmesg; echo DMESG-END\n");
    const all = await vm.waitFor(/\nDMESG-END/, 120_000, from);
    const dmesg = new Set((all.slice(from).replace(/\r/g, "").match(KERNEL_LINE) ?? []).map((l) => l.trimEnd()));
    const missing = consoleLines.filter((l) => !dmesg.has(l));
    expect(missing).toEqual([]);
  });
});
