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
  /** CPUs present at boot. */
  cpus: number;
  /**
   * CPUs the machine may have (QEMU `-smp cpus,maxcpus=possibleCpus`); above `cpus` our tables are
   * in hotplug mode (absent CPUs in the MADT, the CPU hotplug AML in the DSDT) and CPUs can be added
   * with QMP `device_add` (pass `qmp: true`).
   */
  possibleCpus?: number;
  /** Open a QMP socket (`-qmp unix:...,server=on,wait=off`); its path is `qmpPath`. */
  qmp?: boolean;
  extraCmdline?: string;
  memoryMiB?: number;
  tables?: DirectBootInput["tables"];
}

export interface QemuDirectVm extends SerialConsole {
  plan: DirectBootPlan;
  /** The QMP socket's path (with `qmp: true`); connect with `connectQmp` (guests/qemu-qmp.ts). */
  qmpPath?: string;
  /** What QEMU printed on stderr so far. */
  stderr(): string;
  /** QEMU's exit code or signal once it has exited, else undefined. */
  exit(): { code: number | null; signal: string | null } | undefined;
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
    platform: { cpus: opts.cpus, isaWiring: "pc", ...(opts.possibleCpus !== undefined ? { possibleCpus: opts.possibleCpus } : {}) },
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
  const smp = opts.possibleCpus !== undefined && opts.possibleCpus !== opts.cpus ? `${opts.cpus},maxcpus=${opts.possibleCpus}` : String(opts.cpus);
  const qmpPath = opts.qmp ? join(dir, "qmp.sock") : undefined;
  const qemu = startQemu({
    args: ["-accel", "tcg", "-machine", "pc", "-m", String(memoryMiB), "-smp", smp, "-bios", buildFirmware(), ...loaders,
           "-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
           ...(qmpPath ? ["-qmp", `unix:${qmpPath},server=on,wait=off`] : [])],
    input: true,
    onOutput: (text) => serial.append(text),
  });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  qemu.child.on("exit", cleanup);
  return {
    plan,
    ...(qmpPath ? { qmpPath } : {}),
    ...serial,
    stderr: () => qemu.stderr(),
    exit: () => (qemu.child.exitCode === null && qemu.child.signalCode === null ? undefined : { code: qemu.child.exitCode, signal: qemu.child.signalCode }),
    destroy: () => {
      qemu.destroy();
      cleanup();
    },
  };
}
