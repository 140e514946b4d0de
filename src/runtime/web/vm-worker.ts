// Web Worker entry: one v86 instance, one vCPU (issue 2). The page never runs the emulator itself.

import * as Comlink from "comlink";
import { createV86, type V86Emulator } from "../../engine/v86-loader.ts";
import type { VmBootOptions, VmEvent, VmImages, VmWorkerApi } from "./vm-api.ts";

let emulator: V86Emulator | null = null;

// Serial output is batched: one message per byte would flood the page during boot.
function serialBatcher(emit: (event: VmEvent) => void): (byte: number) => void {
  let pending: number[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const bytes = Uint8Array.from(pending);
    pending = [];
    emit({ kind: "serial", bytes });
  };
  return (byte) => {
    pending.push(byte);
    if (pending.length >= 4096) flush();
    else if (!scheduled) {
      scheduled = true;
      setTimeout(flush, 16);
    }
  };
}

const api: VmWorkerApi = {
  async ping() {
    return "pong";
  },
  async boot(images: VmImages, options: VmBootOptions, onEvent: (event: VmEvent) => void) {
    if (emulator) throw new Error("this worker already runs a VM; stop it first");
    const emit = (event: VmEvent) => {
      onEvent(event.kind === "serial" ? Comlink.transfer(event, [event.bytes.buffer]) : event);
    };
    try {
      emulator = createV86(images, options);
    } catch (err) {
      emit({ kind: "error", message: `v86 failed to start: ${(err as Error).message}` });
      return;
    }
    const onByte = serialBatcher(emit);
    emulator.add_listener("serial0-output-byte", onByte);
    emulator.add_listener("emulator-started", () => emit({ kind: "started" }));
    emulator.add_listener("emulator-stopped", () => emit({ kind: "stopped" }));
  },
  async serialInput(bytes: Uint8Array) {
    if (!emulator) throw new Error("no VM is running in this worker");
    // v86 takes serial input as a string of byte-valued characters.
    emulator.serial0_send(String.fromCharCode(...bytes));
  },
  async stop() {
    if (!emulator) return;
    await emulator.destroy();
    emulator = null;
  },
};

Comlink.expose(api);
