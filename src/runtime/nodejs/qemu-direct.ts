// The same firmware and plan on qemu-system-i386 (Node only): QEMU's generic loader device puts
// each planned block into guest memory before the CPUs start, and its -bios maps our image at
// 0xE0000 and below 4 GiB exactly as v86 does. QEMU really runs N CPUs, so this is where our
// tables prove they are enough for Linux to start every AP. QEMU wires the PIT to IOAPIC pin 2,
// so the plan must use the "pc" ISA wiring here.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureGuestImages } from "../../guests/images.ts";
import { startQemu } from "../../guests/qemu-process.ts";
import { createSerialConsole, type SerialConsole } from "../../guests/serial-console.ts";
import { buildFirmware } from "./firmware-build.ts";
import { planDirectBoot, type DirectBootInput, type DirectBootPlan } from "../../machine/firmware/direct-boot.ts";

export interface QemuDirectOptions {
  cpus: number;
  extraCmdline?: string;
  memoryMiB?: number;
  tables?: DirectBootInput["tables"];
}

export interface QemuDirectVm extends SerialConsole {
  plan: DirectBootPlan;
  destroy(): void;
}

export function startDirectLinuxQemu(opts: QemuDirectOptions): QemuDirectVm {
  const paths = ensureGuestImages();
  const memoryMiB = opts.memoryMiB ?? 128;
  const plan = planDirectBoot({
    bzImage: new Uint8Array(readFileSync(paths.bzImage)),
    initrd: new Uint8Array(readFileSync(paths.initramfs)),
    cmdline: [paths.cmdline, opts.extraCmdline].filter(Boolean).join(" "),
    memoryBytes: memoryMiB * 1024 * 1024,
    platform: { cpus: opts.cpus, isaWiring: "pc" },
    ...(opts.tables ? { tables: opts.tables } : {}),
  });
  const dir = mkdtempSync(join(tmpdir(), "gw-qemu-direct-"));
  const loaders: string[] = [];
  plan.writes.forEach((w, i) => {
    const file = join(dir, `block${i}.bin`);
    writeFileSync(file, w.bytes);
    loaders.push("-device", `loader,file=${file},addr=0x${w.address.toString(16)},force-raw=on`);
  });
  const serial = createSerialConsole({
    send: (text) => qemu.send(text),
    name: "QEMU's serial console",
    detail: () => `stderr: ${qemu.stderr()}`,
  });
  const qemu = startQemu({
    args: ["-accel", "tcg", "-machine", "pc", "-m", String(memoryMiB), "-smp", String(opts.cpus), "-bios", buildFirmware(), ...loaders,
           "-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults"],
    input: true,
    onOutput: (text) => serial.append(text),
  });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  qemu.child.on("exit", cleanup);
  return {
    plan,
    ...serial,
    destroy: () => {
      qemu.destroy();
      cleanup();
    },
  };
}
