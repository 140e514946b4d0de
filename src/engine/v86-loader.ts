// Creating a v86 emulator from bytes we already hold, in a browser worker or in Node.
// The wasm is instantiated by us (v86's `wasm_fn` seam), so the engine can later hand v86 an
// instrumented module instead of the stock one without touching v86's own loader.

import { V86 } from "v86";

export interface V86Images {
  wasm: ArrayBuffer | Uint8Array<ArrayBuffer>;
  bios: ArrayBuffer;
  vgaBios: ArrayBuffer;
  bzImage: ArrayBuffer;
  initrd: ArrayBuffer;
}

export interface V86BootOptions {
  cmdline: string;
  memoryMiB: number;
}

export type V86Emulator = InstanceType<typeof V86>;

export function createV86(images: V86Images, options: V86BootOptions): V86Emulator {
  const wasmBytes = images.wasm as BufferSource;
  return new V86({
    wasm_fn: async (env: WebAssembly.Imports) => {
      const { instance } = await WebAssembly.instantiate(wasmBytes, env);
      return instance.exports;
    },
    bios: { buffer: images.bios },
    vga_bios: { buffer: images.vgaBios },
    bzimage: { buffer: images.bzImage },
    initrd: { buffer: images.initrd },
    cmdline: options.cmdline,
    memory_size: options.memoryMiB * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  } as ConstructorParameters<typeof V86>[0]);
}
