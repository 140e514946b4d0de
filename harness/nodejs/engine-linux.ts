// The default Linux guest on the extended engine (a Vcpu), driven through its serial console,
// side by side with stock v86 (harness/nodejs/serial-vm.ts). Shared by the identity test and the bench.
import { readFileSync } from "node:fs";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { Vcpu, type FaultHandler } from "../../src/engine/vcpu.ts";
import { PROMPT_RE, serial0Console, type SerialConsole } from "../../src/guests/serial-console.ts";
import { linuxV86Options } from "../../src/runtime/nodejs/linux-v86.ts";

export interface EngineLinux extends SerialConsole {
  vcpu: Vcpu;
  destroy(): Promise<void>;
}

/** Creates the Vcpu; `setup` runs before the guest starts (e.g. to mark pages read-only). */
export async function startLinuxOnEngine(
  options: { memoryMiB?: number; onFault?: FaultHandler; setup?: (vcpu: Vcpu) => void } = {},
): Promise<EngineLinux> {
  const vcpu = await Vcpu.create({
    wasm: readFileSync(await ensureInstrumentedWasm()),
    onFault: options.onFault,
    v86: linuxV86Options({ memoryMiB: options.memoryMiB }),
  });
  const serial = serial0Console(vcpu.emulator, "the engine's serial console");
  options.setup?.(vcpu);
  await vcpu.emulator.run();
  return { vcpu, ...serial, destroy: () => vcpu.destroy() };
}

/** Seconds from creating the engine vCPU to the shell prompt. */
export async function measureEngineBootSeconds(options: Parameters<typeof startLinuxOnEngine>[0] = {}): Promise<{ seconds: number; vcpu: Vcpu }> {
  const start = performance.now();
  const vm = await startLinuxOnEngine(options);
  try {
    await vm.waitFor(PROMPT_RE, 600_000);
    return { seconds: (performance.now() - start) / 1000, vcpu: vm.vcpu };
  } finally {
    await vm.destroy();
  }
}

/**
 * Console output with what legitimately differs between two boots removed: printk timestamps
 * and figures measured against the host clock (calibration, BogoMIPS, MHz, timings).
 */
export function normalizeConsole(text: string): string[] {
  return text
    .replace(/\r/g, "")
    .split("\n")
    .map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ""))
    .filter((l) => !/BogoMIPS|MHz|calibrat|clocksource|tsc:|sched_clock|took \d|usecs|ms$|per second|lpj=|jiffies/i.test(l))
    .map((l) => l.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/g, "DATE").replace(/\(\d{9,}\)/g, "(EPOCH)").replace(/\d+\.\d+/g, "#"))
    // %p prints hashed pointers, different on every boot
    .map((l) => l.replace(/structure at 0x[0-9a-f]+/, "structure at PTR"))
    // input devices are numbered in probe order, which host timing decides (input0 vs input1)
    .map((l) => l.replace(/\/input\/input\d+/, "/input/inputN"));
}
