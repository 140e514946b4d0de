// Cost of the interrupt hooks: a guest loop of self IPIs (ICR write -> hook -> local delivery ->
// handler -> EOI) on the extended engine against the same loop on stock v86, same run.
import fs from "node:fs";
import { V86 } from "v86";
import { buildInterruptsGuest } from "../../guests/interrupts/build.ts";
import { HC, HC_ARG_PORT, HC_CMD_PORT, IPI_BENCH } from "../../guests/interrupts/layout.ts";
import { STOCK_WASM } from "../../src/engine/instrument/ensure.ts";
import { PROMPT_RE } from "../../src/guests/serial-console.ts";
import { linuxV86Options } from "../../src/runtime/nodejs/linux-v86.ts";
import { bootInterruptsGuest } from "../../harness/nodejs/interrupts-guest.ts";
import { startSmpMachine } from "../../harness/nodejs/smp-machine.ts";
import type { BenchModule, Metrics } from "../types.ts";

interface V86Io {
  register_write(port: number, dev: object, w8: (v: number) => void, w16: (v: number) => void, w32: (v: number) => void): void;
}

/** Seconds between the guest's start and stop hypercalls on stock v86 (no instrumentation). */
async function stockLoop(): Promise<number> {
  const elf = fs.readFileSync(buildInterruptsGuest());
  const wasm = fs.readFileSync(STOCK_WASM);
  let start = 0;
  let seconds = -1;
  let failures = -1;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  const emulator = new V86({
    wasm_fn: async (env: WebAssembly.Imports) => (await WebAssembly.instantiate(wasm, env)).instance.exports,
    multiboot: { buffer: elf.buffer.slice(elf.byteOffset, elf.byteOffset + elf.length) as ArrayBuffer },
    cmdline: "ipibench",
    acpi: true,
    memory_size: 16 << 20,
    vga_memory_size: 1 << 20,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  } as ConstructorParameters<typeof V86>[0]);
  await new Promise<void>((r) => emulator.add_listener("emulator-loaded", () => r()));
  const io = (emulator as unknown as { v86: { cpu: { io: V86Io } } }).v86.cpu.io;
  let arg = 0;
  io.register_write(HC_ARG_PORT, {}, () => {}, () => {}, (v) => (arg = v));
  io.register_write(HC_CMD_PORT, {}, () => {}, () => {}, (cmd) => {
    if (cmd === HC.SENT && arg === 0) start = performance.now();
    if (cmd === HC.SENT && arg === 1) seconds = (performance.now() - start) / 1000;
    if (cmd === HC.DONE) {
      failures = arg;
      finished();
    }
  });
  await emulator.run();
  await done;
  await emulator.destroy();
  if (failures !== 0 || seconds < 0) throw new Error(`stock ipibench run failed (failures ${failures})`);
  return seconds;
}

async function engineLoop(): Promise<number> {
  let start = 0;
  let seconds = -1;
  const g = await bootInterruptsGuest("ipibench", {
    apicId: 0,
    role: "bsp",
    hypercall: (cmd, args) => {
      if (cmd === HC.SENT && args[0] === 0) start = performance.now();
      if (cmd === HC.SENT && args[0] === 1) seconds = (performance.now() - start) / 1000;
    },
  });
  try {
    const failures = await g.done;
    if (failures !== 0 || seconds < 0) throw new Error(`ipibench guest reported ${failures} failure(s):\n${g.output()}`);
    if (g.vi.stats.sentLocal !== IPI_BENCH) throw new Error(`the hook saw ${g.vi.stats.sentLocal} local IPIs, expected ${IPI_BENCH}`);
  } finally {
    await g.vi.vcpu.destroy();
  }
  return seconds;
}

/** Seconds from creating two VcpuInterrupts (one thread, pages moved on faults) to Linux's shell. */
async function smp2Boot(): Promise<{ seconds: number; pageMoves: number }> {
  const options = linuxV86Options({ acpi: true, log: () => {} });
  const start = performance.now();
  const m = await startSmpMachine(2, options);
  try {
    await m.waitFor(PROMPT_RE, 600_000);
    if (!/2 CPU\(s\) online/.test(m.output())) throw new Error("2-CPU Linux came up without its second CPU");
    return { seconds: (performance.now() - start) / 1000, pageMoves: m.stats.pageMoves };
  } finally {
    await m.destroy();
  }
}

const interrupts: BenchModule = {
  prefixes: ["engine.ipi", "engine.smp2"],
  async run(ctx) {
    const metrics: Metrics = {};
    if (ctx.wants("engine.smp2_onethread_boot_ratio")) {
      const stock = await ctx.stockBootSeconds();
      ctx.log("engine: Linux on two VcpuInterrupts in one thread (pages moved between them on faults)");
      const { seconds, pageMoves } = await smp2Boot();
      metrics["engine.smp2_onethread_boot_ratio"] = {
        value: seconds / stock,
        unit: "ratio",
        note: `2 vCPUs in one thread ${seconds.toFixed(1)} s (${pageMoves} page moves) / stock 1 CPU ${stock.toFixed(1)} s`,
      };
    }
    if (!ctx.wants("engine.ipi_self_us") && !ctx.wants("engine.ipi_hook_ratio")) return metrics;
    ctx.log(`engine: ${IPI_BENCH} self IPIs through the hook, and on stock v86`);
    const hooked = await engineLoop();
    const stock = await stockLoop();
    metrics["engine.ipi_self_us"] = { value: (hooked / IPI_BENCH) * 1e6, unit: "µs", note: "one self IPI through the ICR hook: send, hook, delivery, handler, EOI" };
    metrics["engine.ipi_hook_ratio"] = { value: hooked / stock, unit: "ratio", note: `hooked ${(hooked * 1e3).toFixed(1)} ms / stock ${(stock * 1e3).toFixed(1)} ms for ${IPI_BENCH} IPIs` };
    return metrics;
  },
};

export default interrupts;
