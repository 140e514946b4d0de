// Node helper: the default Linux guest booted on stock v86 through our firmware (direct boot),
// driven through its serial console. Used by the machine and runtime tests and `npm run bench`.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { ensureGuestImages } from "../../guests/images.ts";
import { PROMPT_RE, serial0Console, type SerialConsole } from "../../guests/serial-console.ts";
import { buildFirmware } from "./firmware-build.ts";
import type { DirectBootInput, DirectBootPlan } from "../../machine/firmware/direct-boot.ts";
import { startDirectBootV86, type V86Emulator } from "../node/v86-direct.ts";

export { PROMPT_RE };

export interface DirectLinuxOptions {
  cpus: number;
  /** Appended to the default guest's command line (e.g. "acpi=off" to make Linux use the MP table). */
  extraCmdline?: string;
  memoryMiB?: number;
  tables?: DirectBootInput["tables"];
  isaWiring?: "pc" | "identity";
  wasmPath?: string;
}

export interface DirectLinuxVm extends SerialConsole {
  emulator: V86Emulator;
  plan: DirectBootPlan;
  destroy(): Promise<void>;
}

const read = (path: string) => new Uint8Array(readFileSync(path));

export async function startDirectLinux(opts: DirectLinuxOptions): Promise<DirectLinuxVm> {
  const paths = ensureGuestImages();
  const require = createRequire(import.meta.url);
  let serial: SerialConsole | undefined;
  const { emulator, plan } = await startDirectBootV86({
    wasm: read(opts.wasmPath ?? require.resolve("v86/build/v86.wasm")),
    firmware: read(buildFirmware()),
    bzImage: read(paths.bzImage),
    initrd: read(paths.initramfs),
    cmdline: [paths.cmdline, opts.extraCmdline].filter(Boolean).join(" "),
    memoryMiB: opts.memoryMiB ?? 128,
    platform: { cpus: opts.cpus, ...(opts.isaWiring ? { isaWiring: opts.isaWiring } : {}) },
    ...(opts.tables ? { tables: opts.tables } : {}),
    // attached before the CPU starts, so the console holds everything the guest printed
    beforeStart: (e) => (serial = serial0Console(e)),
  });
  if (!serial) throw new Error("startDirectBootV86 returned without calling beforeStart");
  return { emulator, plan, ...serial, destroy: () => emulator.destroy() };
}

/** Kernel log timestamps: seconds the kernel spent between the first line matching `from` and the first matching `to`. */
export function kernelSecondsBetween(log: string, from: RegExp, to: RegExp): number | null {
  const stamp = (re: RegExp) => {
    for (const line of log.split("\n")) {
      const m = /^\[\s*(\d+\.\d+)\]/.exec(line);
      if (m && re.test(line)) return Number(m[1]);
    }
    return null;
  };
  const a = stamp(from);
  const b = stamp(to);
  return a === null || b === null ? null : b - a;
}
