// The control-plane interface of a single-vCPU VM worker (issue 2), called over Comlink.
// Bulk data (images) travels as transferred ArrayBuffers; serial output comes back in batches.

export interface VmImages {
  wasm: ArrayBuffer;
  bios: ArrayBuffer;
  vgaBios: ArrayBuffer;
  bzImage: ArrayBuffer;
  initrd: ArrayBuffer;
}

export interface VmBootOptions {
  cmdline: string;
  memoryMiB: number;
}

/** Events the worker reports to the page, in order. */
export type VmEvent =
  | { kind: "serial"; bytes: Uint8Array }
  | { kind: "started" }
  | { kind: "stopped" }
  | { kind: "error"; message: string };

export interface VmWorkerApi {
  /** Answers at once; the page uses it to tell that the worker started at all. */
  ping(): Promise<"pong">;
  /** Creates the emulator and starts it; events arrive through `onEvent` (a Comlink proxy). */
  boot(images: VmImages, options: VmBootOptions, onEvent: (event: VmEvent) => void): Promise<void>;
  /** Bytes typed by the user, for the guest's first UART. */
  serialInput(bytes: Uint8Array): Promise<void>;
  stop(): Promise<void>;
}
