// Node helper: the default Linux guest booted on stock v86 through our firmware (direct boot),
// driven through its serial console. Used by the platform tests and `npm run bench`.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { ensureGuestImages } from "../../guests/images.ts";
import { GUEST_PROMPT } from "../../guests/initramfs.ts";
import { buildFirmware } from "./bios-build.ts";
import type { DirectBootInput, DirectBootPlan } from "./direct-boot.ts";
import { startDirectBootV86, type V86Emulator } from "./v86-direct.ts";

export const PROMPT_RE = new RegExp(`${GUEST_PROMPT}/root# `);

export interface DirectLinuxOptions {
  cpus: number;
  /** Appended to the default guest's command line (e.g. "acpi=off" to make Linux use the MP table). */
  extraCmdline?: string;
  memoryMiB?: number;
  tables?: DirectBootInput["tables"];
  isaWiring?: "pc" | "identity";
  wasmPath?: string;
}

export interface DirectLinuxVm {
  emulator: V86Emulator;
  plan: DirectBootPlan;
  output(): string;
  send(text: string): void;
  /** Resolves with the whole output once `pattern` matches the output past `from`. */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<string>;
  destroy(): Promise<void>;
}

const read = (path: string) => new Uint8Array(readFileSync(path));

export async function startDirectLinux(opts: DirectLinuxOptions): Promise<DirectLinuxVm> {
  const paths = ensureGuestImages();
  const require = createRequire(import.meta.url);
  let out = "";
  const waiters = new Set<() => void>();
  const { emulator, plan } = await startDirectBootV86({
    wasm: read(opts.wasmPath ?? require.resolve("v86/build/v86.wasm")),
    firmware: read(buildFirmware()),
    bzImage: read(paths.bzImage),
    initrd: read(paths.initramfs),
    cmdline: [paths.cmdline, opts.extraCmdline].filter(Boolean).join(" "),
    memoryMiB: opts.memoryMiB ?? 128,
    platform: { cpus: opts.cpus, ...(opts.isaWiring ? { isaWiring: opts.isaWiring } : {}) },
    ...(opts.tables ? { tables: opts.tables } : {}),
    beforeStart: (e) =>
      e.add_listener("serial0-output-byte", (b: number) => {
        out += String.fromCharCode(b);
        for (const w of waiters) w();
      }),
  });
  return {
    emulator,
    plan,
    output: () => out,
    send: (text) => emulator.serial0_send(text),
    waitFor(pattern, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(out.slice(from))) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(out);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} on the serial console within ${timeoutMs / 1000} s; last output:\n${out.slice(-1500)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    destroy: () => emulator.destroy(),
  };
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
