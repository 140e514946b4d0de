// Boots the interrupts guest (guests/interrupts) on a VcpuInterrupts and routes its hypercalls.
import fs from "node:fs";
import { buildInterruptsGuest } from "../../guests/interrupts/build.ts";
import { HC, HC_ARG_PORT, HC_CMD_PORT } from "../../guests/interrupts/layout.ts";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { VcpuInterrupts, type InterruptHooks } from "../../src/engine/interrupts/index.ts";

/** Handles one hypercall: (command, arguments) -> value the guest reads back. */
export type Hypercall = (cmd: number, args: number[]) => number | void;

export interface GuestRun {
  vi: VcpuInterrupts;
  output(): string;
  /** Resolves with the guest's failure count once it reports HC.DONE. */
  done: Promise<number>;
}

interface V86Io {
  register_read(port: number, dev: object, r8: () => number, r16: () => number, r32: () => number): void;
  register_write(port: number, dev: object, w8: (v: number) => void, w16: (v: number) => void, w32: (v: number) => void): void;
}

let wasmBytes: Uint8Array | undefined;
let elfBytes: Buffer | undefined;

export async function bootInterruptsGuest(
  scenario: string,
  opts: { apicId: number; role: "bsp" | "ap"; hooks?: InterruptHooks; hypercall?: Hypercall; autostart?: boolean; apicTimerLag?: () => number },
): Promise<GuestRun> {
  elfBytes ??= fs.readFileSync(buildInterruptsGuest());
  wasmBytes ??= fs.readFileSync(await ensureInstrumentedWasm());
  let out = "";
  let resolveDone!: (n: number) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<number>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
  const elf = elfBytes;
  const vi = await VcpuInterrupts.create({
    wasm: wasmBytes,
    apicId: opts.apicId,
    role: opts.role,
    hooks: opts.hooks,
    ...(opts.apicTimerLag ? { apicTimerLag: opts.apicTimerLag } : {}),
    v86: {
      multiboot: { buffer: elf.buffer.slice(elf.byteOffset, elf.byteOffset + elf.length) as ArrayBuffer },
      cmdline: scenario,
      acpi: true,
      memory_size: 16 * 1024 * 1024,
      vga_memory_size: 1024 * 1024,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    },
  });
  vi.vcpu.emulator.add_listener("serial0-output-byte", (b: number) => (out += String.fromCharCode(b)));
  const io = (vi.vcpu.emulator as unknown as { v86: { cpu: { io: V86Io } } }).v86.cpu.io;
  let args: number[] = [];
  let result = 0;
  const dev = {};
  const none = () => 0;
  io.register_write(HC_ARG_PORT, dev, () => {}, () => {}, (v) => void args.push(v >>> 0));
  io.register_write(HC_CMD_PORT, dev, () => {}, () => {}, (cmd) => {
    const a = args;
    args = [];
    try {
      if (cmd === HC.DONE) {
        resolveDone(a[0]);
        void vi.vcpu.emulator.stop();
        return;
      }
      result = (opts.hypercall?.(cmd, a) ?? 0) >>> 0;
    } catch (err) {
      rejectDone(err);
      void vi.vcpu.emulator.stop();
    }
  });
  io.register_read(HC_CMD_PORT, dev, none, none, () => result);
  if (opts.autostart !== false) await vi.vcpu.emulator.run();
  return { vi, output: () => out, done };
}

/**
 * bootInterruptsGuest for a test file: every vCPU it boots is destroyed after the test that booted
 * it. Takes vitest's afterEach so this module stays importable outside vitest (the bench uses it).
 */
export function bootPerTest(afterEachTest: (fn: () => Promise<void>) => void): typeof bootInterruptsGuest {
  const runs: GuestRun[] = [];
  afterEachTest(async () => {
    for (const r of runs.splice(0)) await r.vi.vcpu.destroy();
  });
  return async (...args) => {
    const r = await bootInterruptsGuest(...args);
    runs.push(r);
    return r;
  };
}

/** Waits (without a time limit of its own: vitest's timeout applies) until `cond` holds. */
export async function until(cond: () => boolean, what: string, output?: () => string): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 20000) throw new Error(`gave up waiting for ${what}${output ? `; guest said:\n${output()}` : ""}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
