// Boots stock v86 from our firmware instead of SeaBIOS: v86 maps the 128 KiB image at the top of
// the first MiB, we write the direct-boot plan into guest RAM while the CPU is still stopped, then
// start it. Works in Node and in a browser worker (bytes in, no file access).

import { V86 } from "v86";
import { planDirectBoot, type DirectBootInput, type DirectBootPlan } from "../../machine/firmware/direct-boot.ts";
import { check } from "../../machine/firmware/errors.ts";
import { checkFirmwareImage } from "../../machine/firmware/bios-build-check.ts";

export type V86Emulator = InstanceType<typeof V86>;

export interface DirectBootV86Options extends Omit<DirectBootInput, "memoryBytes"> {
  /** v86's wasm module (stock or instrumented). */
  wasm: ArrayBuffer | Uint8Array<ArrayBuffer>;
  /** guests/firmware/build/bios.bin. */
  firmware: Uint8Array;
  memoryMiB: number;
  /** Called once the plan is in RAM, before the CPU starts (e.g. to attach serial listeners). */
  beforeStart?: (emulator: V86Emulator, plan: DirectBootPlan) => void;
}

const copy = (b: Uint8Array): ArrayBuffer => b.slice().buffer as ArrayBuffer;

export async function startDirectBootV86(opts: DirectBootV86Options): Promise<{ emulator: V86Emulator; plan: DirectBootPlan }> {
  check(Number.isInteger(opts.memoryMiB) && opts.memoryMiB > 0, `memoryMiB must be a positive integer, got ${opts.memoryMiB}`);
  checkFirmwareImage(opts.firmware);
  // plan first: a bad kernel or configuration fails before an emulator exists
  const plan = planDirectBoot({ ...opts, memoryBytes: opts.memoryMiB * 1024 * 1024 });
  const wasmBytes = opts.wasm as BufferSource;
  const emulator = new V86({
    wasm_fn: async (env: WebAssembly.Imports) => (await WebAssembly.instantiate(wasmBytes, env)).instance.exports,
    bios: { buffer: copy(opts.firmware) },
    // no VGA BIOS: the console is the serial port, and Linux does not call video BIOS on a 32-bit entry
    memory_size: opts.memoryMiB * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    // v86 only emulates the local APIC and IOAPIC (and its ACPI PM registers) with `acpi` on
    acpi: true,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  } as ConstructorParameters<typeof V86>[0]);
  await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
  for (const w of plan.writes) emulator.write_memory(w.bytes, w.address);
  opts.beforeStart?.(emulator, plan);
  await emulator.run();
  return { emulator, plan };
}
