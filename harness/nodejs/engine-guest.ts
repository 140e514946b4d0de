// Boots the engine test guest (guests/enginetest) in a Vcpu and routes its hypercalls to the test.
import fs from "node:fs";
import { buildEngineTestGuest } from "../../guests/enginetest/build.ts";
import { HC, HC_ARG_PORT, HC_CMD_PORT } from "../../guests/enginetest/layout.ts";
import { ensureInstrumentedWasm, readAuditReport, type EnsureOptions } from "../../src/engine/instrument/ensure.ts";
import { Vcpu, type AuditViolation, type FaultHandler } from "../../src/engine/vcpu.ts";

export type Hypercall = (cmd: number, arg: number) => number;

export interface GuestRun {
  vcpu: Vcpu;
  output(): string;
  /** Resolves with the guest's failure count once it reports HC.DONE. */
  done: Promise<number>;
}

interface V86Io {
  register_read(port: number, dev: object, r8: () => number, r16: () => number, r32: () => number): void;
  register_write(port: number, dev: object, w8: (v: number) => void, w16: (v: number) => void, w32: (v: number) => void): void;
}

export async function bootEngineTest(
  scenario: string,
  hypercall: Hypercall,
  onFault?: FaultHandler,
  /** Runs after the Vcpu exists and before the guest starts. */
  setup?: (vcpu: Vcpu) => void,
  wasmOptions: EnsureOptions = {},
  /** With `wasmOptions.audit`: where the coherence audit reports (default: the vCPU stops with an AuditError). */
  onViolation?: (v: AuditViolation) => void,
): Promise<GuestRun> {
  const elf = fs.readFileSync(buildEngineTestGuest());
  const wasmPath = await ensureInstrumentedWasm(wasmOptions);
  const wasm = fs.readFileSync(wasmPath);
  const audit = wasmOptions.audit ? { report: await readAuditReport(wasmPath), ...(onViolation ? { onViolation } : {}) } : undefined;
  let out = "";
  let resolveDone!: (n: number) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<number>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
  const vcpu = await Vcpu.create({
    wasm,
    onFault,
    ...(audit ? { audit } : {}),
    v86: {
      multiboot: { buffer: elf.buffer.slice(elf.byteOffset, elf.byteOffset + elf.length) as ArrayBuffer },
      cmdline: scenario,
      memory_size: 32 * 1024 * 1024,
      vga_memory_size: 1024 * 1024,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    },
  });
  vcpu.emulator.add_listener("serial0-output-byte", (b: number) => (out += String.fromCharCode(b)));
  vcpu.onError = (e) => rejectDone(e);
  const io = (vcpu.emulator as unknown as { v86: { cpu: { io: V86Io } } }).v86.cpu.io;
  let arg = 0;
  let result = 0;
  const dev = {};
  const none = () => 0;
  io.register_write(HC_ARG_PORT, dev, () => {}, () => {}, (v) => (arg = v >>> 0));
  io.register_write(HC_CMD_PORT, dev, () => {}, () => {}, (cmd) => {
    try {
      if (cmd === HC.DONE) {
        result = 0;
        resolveDone(arg);
        void vcpu.emulator.stop();
        return;
      }
      result = hypercall(cmd, arg) >>> 0;
    } catch (err) {
      rejectDone(err);
      void vcpu.emulator.stop();
    }
  });
  io.register_read(HC_CMD_PORT, dev, none, none, () => result);
  setup?.(vcpu);
  await vcpu.emulator.run();
  return { vcpu, output: () => out, done };
}

/**
 * A simulated remote owner: pages it took are kept here (and may be changed "remotely");
 * when the vCPU faults, it hands them back.
 */
export class SimulatedRemote {
  readonly away = new Map<number, Uint8Array>();
  readonly faultLog: { page: number; access: string; cause: string }[] = [];
  constructor(private readonly vcpu: () => Vcpu) {}

  take(page: number, to: "read" | "none"): Uint8Array {
    const bytes = this.vcpu().revoke(page, to);
    if (to === "none") this.away.set(page, bytes);
    return bytes;
  }

  readonly handler: FaultHandler = (f) => {
    this.faultLog.push(f);
    const bytes = this.away.get(f.page);
    this.away.delete(f.page);
    return { access: f.access === "write" ? "write" : "read", bytes };
  };

  faults(page: number, access?: string): number {
    return this.faultLog.filter((f) => f.page === page && (!access || f.access === access)).length;
  }
}
