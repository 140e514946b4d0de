// Stock v86 in Node with the default Linux guest, driven through its serial console.
// Shared by the integration tests and `npm run bench` (the baseline every ratio is taken against).

import { createRequire } from "node:module";
import { createV86, type V86Emulator } from "../../src/engine/v86-loader.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { PROMPT_RE, serial0Console, type SerialConsole } from "../../src/guests/serial-console.ts";
import { readArrayBuffer } from "../../src/runtime/nodejs/linux-v86.ts";

export { PROMPT_RE };

const require = createRequire(import.meta.url);
export const STOCK_WASM = require.resolve("v86/build/v86.wasm");

export interface SerialVm extends SerialConsole {
  emulator: V86Emulator;
  destroy(): Promise<void>;
}

/** Boots through createV86, the loader the browser's VM worker uses, so the baseline is that path. */
export function startLinuxVm(options: { wasmPath?: string; memoryMiB?: number } = {}): SerialVm {
  const paths = ensureGuestImages();
  const emulator = createV86(
    {
      wasm: readArrayBuffer(options.wasmPath ?? STOCK_WASM),
      bios: readArrayBuffer(paths.bios),
      vgaBios: readArrayBuffer(paths.vgaBios),
      bzImage: readArrayBuffer(paths.bzImage),
      initrd: readArrayBuffer(paths.initramfs),
    },
    { cmdline: paths.cmdline, memoryMiB: options.memoryMiB ?? 128 },
  );
  return { emulator, ...serial0Console(emulator), destroy: () => emulator.destroy() };
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
