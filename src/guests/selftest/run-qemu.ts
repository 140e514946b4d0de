// Boots the self-test guest on qemu-system-i386 (TCG) with N CPUs: SeaBIOS provides the MP
// table and the MADT, QEMU's multiboot loader loads the ELF (-kernel), the guest reports on
// COM1 (tailed from a file, see qemu-process.ts) and exits through isa-debug-exit when its command line says debugexit.

import { QEMU_BINARY, qemuVersion, startQemu } from "../qemu-process.ts";
import { SerialLineCollector, SelftestRunError, type SelftestRun } from "./run-common.ts";

export { QEMU_BINARY, qemuVersion };
export const QEMU_INSTALL_HINT = "install it with: apt-get install -y qemu-system-x86 (Debian package)";

export class QemuMissingError extends Error {
  override name = "QemuMissingError";
  constructor() {
    super(`${QEMU_BINARY} is not installed or not on PATH; ${QEMU_INSTALL_HINT}`);
  }
}

export interface QemuRunOptions {
  elf: string;
  cpus: number;
  /** Extra words for the guest's command line, e.g. "scale=2". */
  cmdline?: string;
  memoryMiB?: number;
  timeoutMs?: number;
  onLine?: (line: string) => void;
}

export async function runSelftestQemu(opts: QemuRunOptions): Promise<SelftestRun & { exitCode: number | null }> {
  if (!Number.isInteger(opts.cpus) || opts.cpus < 1 || opts.cpus > 16)
    throw new SelftestRunError(`QEMU cpus must be an integer from 1 to 16 (the guest's MAX_CPUS), got ${opts.cpus}`, "");
  const memoryMiB = opts.memoryMiB ?? 64;
  if (!qemuVersion()) throw new QemuMissingError();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const args = [
    "-machine", "pc", "-accel", "tcg",
    "-smp", String(opts.cpus),
    "-m", String(memoryMiB),
    "-display", "none", "-monitor", "none",
    "-no-reboot", "-nodefaults",
    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    "-kernel", opts.elf,
    "-append", `debugexit ${opts.cmdline ?? ""}`.trim(),
  ];
  const collector = new SerialLineCollector(opts.onLine);
  const start = performance.now();
  const qemu = startQemu({ args, onOutput: (s) => collector.pushText(s) });
  const child = qemu.child;
  let seconds = 0;
  collector.onSummary = () => (seconds = (performance.now() - start) / 1000);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      qemu.destroy();
      reject(new SelftestRunError(`QEMU -smp ${opts.cpus} did not finish within ${timeoutMs} ms`, collector.text()));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new SelftestRunError(`could not start ${QEMU_BINARY}: ${e.message}`, ""));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  // isa-debug-exit makes QEMU exit with (value << 1) | 1: 1 = no failure, 3 = failures
  if (!collector.finished)
    throw new SelftestRunError(
      `QEMU exited (code ${exitCode}) before the guest printed SUMMARY${qemu.stderr() ? `; stderr: ${qemu.stderr().trim()}` : ""}`,
      collector.text(),
    );
  if (exitCode !== 1 && exitCode !== 3)
    throw new SelftestRunError(`QEMU exited with unexpected code ${exitCode}${qemu.stderr() ? `; stderr: ${qemu.stderr().trim()}` : ""}`, collector.text());
  return { output: collector.text(), seconds, exitCode };
}
