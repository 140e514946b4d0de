// Stock v86 in Node with the default Linux guest, driven through its serial console.
// Shared by the integration tests and `npm run bench` (the baseline every ratio is taken against).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createV86, type V86Emulator } from "../../src/engine/v86-loader.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { GUEST_PROMPT } from "../../src/guests/initramfs.ts";

const require = createRequire(import.meta.url);
export const STOCK_WASM = require.resolve("v86/build/v86.wasm");

const bytes = (path: string): ArrayBuffer => {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};

export interface SerialVm {
  emulator: V86Emulator;
  /** Everything the guest printed so far. */
  output(): string;
  send(text: string): void;
  /** Resolves with the output once it matches `pattern` past `from`; rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number, from?: number): Promise<string>;
  destroy(): Promise<void>;
}

// busybox's shell may follow its prompt with a cursor-position query (ESC [ 6 n); no anchor at the end.
export const PROMPT_RE = new RegExp(`${GUEST_PROMPT}/root# `);

export function startLinuxVm(options: { wasmPath?: string; memoryMiB?: number } = {}): SerialVm {
  const paths = ensureGuestImages();
  const emulator = createV86(
    {
      wasm: bytes(options.wasmPath ?? STOCK_WASM),
      bios: bytes(paths.bios),
      vgaBios: bytes(paths.vgaBios),
      bzImage: bytes(paths.bzImage),
      initrd: bytes(paths.initramfs),
    },
    { cmdline: paths.cmdline, memoryMiB: options.memoryMiB ?? 128 },
  );
  let out = "";
  const waiters = new Set<() => void>();
  emulator.add_listener("serial0-output-byte", (b: number) => {
    out += String.fromCharCode(b);
    for (const w of waiters) w();
  });
  return {
    emulator,
    output: () => out,
    send: (text) => emulator.serial0_send(text),
    waitFor(pattern, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(out.slice(from))) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(out);
          }
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

/** Seconds from creating the emulator to the shell prompt. */
export async function measureBootSeconds(options: { wasmPath?: string } = {}): Promise<number> {
  const start = performance.now();
  const vm = startLinuxVm(options);
  try {
    await vm.waitFor(PROMPT_RE, 600_000);
    return (performance.now() - start) / 1000;
  } finally {
    await vm.destroy();
  }
}
