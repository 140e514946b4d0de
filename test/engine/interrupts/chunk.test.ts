// hooks.onChunk: the engine's call between v86's instruction chunks inside a run slice, where a
// platform serves other nodes' messages without waiting for the slice (>= 1 ms) to end.
import { afterEach, describe, expect, it } from "vitest";
import { V } from "../../../guests/interrupts/layout.ts";
import { APIC, MEM } from "../../../src/engine/interrupts/abi.ts";
import { SPIN_READS, SPIN_WAIT_MS } from "../../../src/engine/interrupts/vcpu-interrupts.ts";
import { bootPerTest, type GuestRun } from "../../../harness/nodejs/interrupts-guest.ts";
import { JIT_LOOP_BOUND } from "../../../src/engine/instrument/jit-loop-pass.ts";

const boot = bootPerTest(afterEach);

interface V86Cpu {
  main_loop(): number;
}

/** Calls `start` before and `end` after each of v86's run slices (its main_loop). */
function aroundSlices(cpu: V86Cpu, start: () => void, end: () => void): void {
  const mainLoop = cpu.main_loop;
  cpu.main_loop = () => {
    start();
    try {
      return mainLoop();
    } finally {
      end();
    }
  };
}

it("runs at instruction boundaries inside a slice: an injected fixed interrupt is taken before the slice ends, a revocation needs no restart", async () => {
  let slice = 0;
  let inSlice = false;
  const calls: { slice: number; inFault: boolean; halted: boolean }[] = [];
  let injectedIn = -1;
  let takenIn = -1;
  let revoked = false;
  // A page the guest never touches (16 MiB of RAM; the guest lives in the first 2).
  const untouched = 0xf00;
  let g!: GuestRun;
  const inService = (dv: DataView) => [0, 1, 2, 3, 4, 5, 6, 7].some((i) => dv.getUint32(MEM.apic + APIC.isr + 4 * i, true) !== 0);
  const irrHas = (vector: number) => (new DataView(g.vi.vcpu.wasm.memory.buffer).getUint32(MEM.apic + APIC.irr + 4 * (vector >> 5), true) >>> (vector & 31)) & 1;
  g = await boot("ipi", {
    apicId: 0,
    role: "bsp",
    autostart: false,
    hooks: {
      onChunk() {
        const dv = new DataView(g.vi.vcpu.wasm.memory.buffer);
        calls.push({ slice, inFault: g.vi.vcpu.inFault, halted: dv.getUint8(MEM.inHlt) !== 0 });
        if (!inSlice) throw new Error("onChunk called outside a run slice");
        // The guest spins with IF set between its self IPIs (the ipi scenario's delay loops): inject once where it can
        // be taken (IF set, nothing in service), then see v86 take it (IRR bit cleared) before
        // the slice ends, not at the next one.
        if (injectedIn < 0 && dv.getUint8(MEM.flags + 1) & 2 && !inService(dv)) {
          g.vi.inject({ kind: "fixed", vector: V.INJECT, trigger: "edge" });
          expect(irrHas(V.INJECT)).toBe(1);
          injectedIn = slice;
        }
        if (!revoked) {
          g.vi.vcpu.setPageAccess(untouched, "read");
          revoked = true;
        }
      },
    },
  });
  const cpu = (g.vi.vcpu.emulator as unknown as { v86: { cpu: V86Cpu } }).v86.cpu;
  aroundSlices(
    cpu,
    () => {
      slice++;
      inSlice = true;
    },
    () => {
      inSlice = false;
      if (injectedIn === slice && !irrHas(V.INJECT)) takenIn = slice;
    },
  );
  await g.vi.vcpu.emulator.run();
  expect(await g.done, g.output()).toBe(0);
  expect(calls.length).toBeGreaterThan(1);
  expect(calls.every((c) => !c.inFault && !c.halted)).toBe(true);
  expect(injectedIn).toBeGreaterThan(0);
  expect(takenIn).toBe(injectedIn);
  expect(g.vi.stats.injected.fixed).toBe(1);
  // Downgraded between instructions: no instruction was in progress, so nothing restarts.
  expect(revoked).toBe(true);
  expect(g.vi.vcpu.pageAccess(untouched)).toBe("read");
  expect(g.vi.vcpu.stats.restartRequests).toBe(0);
});

it("hooks.pending, asked at each clock read inside a chunk, ends the slice right after the block that read the TSC when it says true", async () => {
  // The guest reads the TSC in a tight loop: without the hook a 100k-instruction chunk holds about
  // 25k clock reads; with it, the slice that heard "true" ends within the JIT's loop bound (a
  // compiled loop looks at the kick only every JIT_LOOP_BOUND instructions: jit-loop-pass.ts).
  const SAY = 6;
  let slice = 0;
  let inSlice = false;
  const asked: number[] = [];
  let saidTrueIn = -1;
  let g!: GuestRun;
  g = await boot("tscspin", {
    apicId: 0,
    role: "bsp",
    autostart: false,
    hooks: {
      pending() {
        if (!inSlice) throw new Error("pending asked outside a run slice");
        asked.push(slice);
        // Once, in slice SAY (the loop is compiled by then), after its hundredth clock read.
        if (saidTrueIn < 0 && slice === SAY && asked.filter((s) => s === SAY).length === 100) {
          saidTrueIn = slice;
          return true;
        }
        return false;
      },
    },
  });
  const cpu = (g.vi.vcpu.emulator as unknown as { v86: { cpu: V86Cpu & { codegen_finalize(...a: unknown[]): unknown } } }).v86.cpu;
  aroundSlices(
    cpu,
    () => {
      slice++;
      inSlice = true;
    },
    () => void (inSlice = false),
  );
  // v86 hands each module it compiled to this JS method (its import calls it on the cpu object).
  let compiled = 0;
  const finalize = cpu.codegen_finalize;
  cpu.codegen_finalize = (...a: unknown[]) => {
    compiled++;
    return finalize.apply(cpu, a);
  };
  const jitCompiled = () => compiled;
  await g.vi.vcpu.emulator.run();
  expect(await g.done, g.output()).toBe(0);
  expect(g.output()).toContain("tscspin.done=0x00000001");
  expect(saidTrueIn).toBe(SAY);
  const inSliceOf = (s: number) => asked.filter((x) => x === s).length;
  console.log(`clock reads per slice: ${[1, 2, 3, 4, 5, 6, 7].map(inSliceOf).join(", ")}; JIT compiled ${jitCompiled()} modules`);
  // The loop ran compiled before the kick (else this test would not see the JIT's bound).
  expect(jitCompiled()).toBeGreaterThan(0);
  // Slices that heard only "false" ran on through many clock reads; the one that heard "true"
  // stopped within the JIT's bound (each iteration is a handful of instructions and one read).
  expect(inSliceOf(SAY - 1)).toBeGreaterThan(10_000);
  expect(inSliceOf(SAY)).toBeLessThanOrEqual(100 + JIT_LOOP_BOUND / 4);
  expect(inSliceOf(SAY + 1)).toBeGreaterThan(10_000);
});

describe("hooks.spinWait", () => {
  /** Boots `scenario`; its spinWait only counts (a node's blocks on its doorbell; blocking here would stretch the guest's 200,000-iteration loop). */
  async function run(scenario: "tscspin" | "tscwork", pending: (read: number) => boolean = () => false) {
    const asked: number[] = [];
    let inSlice = false;
    let outside = 0;
    let slices = 0;
    const slicesAsking = new Set<number>();
    let reads = 0;
    let lastPending = false;
    let askedAfterTrue = 0;
    const g = await boot(scenario, {
      apicId: 0,
      role: "bsp",
      autostart: false,
      hooks: {
        pending: () => (lastPending = pending(++reads)),
        spinWait(ms) {
          if (!inSlice) outside++;
          if (lastPending) askedAfterTrue++;
          if (slicesAsking.has(slices)) throw new Error(`spinWait asked twice in slice ${slices}: a block must end its slice`);
          slicesAsking.add(slices);
          asked.push(ms);
        },
      },
    });
    aroundSlices(
      (g.vi.vcpu.emulator as unknown as { v86: { cpu: V86Cpu } }).v86.cpu,
      () => {
        slices++;
        inSlice = true;
      },
      () => void (inSlice = false),
    );
    await g.vi.vcpu.emulator.run();
    expect(await g.done, g.output()).toBe(0);
    return { asked, outside, askedAfterTrue, output: g.output(), spinWaits: g.vi.stats.spinWaits };
  }

  it("is asked, inside slices, to block for SPIN_WAIT_MS while the guest reads the TSC in a tight loop, and each block ends its slice", async () => {
    const r = await run("tscspin");
    expect(r.output).toContain("tscspin.done=0x00000001");
    // 200,000 clock reads: a block ends its slice, and each slice spins SPIN_READS reads in a row
    // before it may block (80 blocks in a run here).
    expect(r.asked.length).toBeGreaterThan(20);
    expect(r.asked.every((ms) => ms === SPIN_WAIT_MS)).toBe(true);
    expect(r.outside).toBe(0);
    expect(r.spinWaits).toBe(r.asked.length);
  });

  it("is never asked when the guest works between its clock reads", async () => {
    const r = await run("tscwork");
    expect(r.output).toContain("tscwork.done=0x00000001");
    expect(r.asked).toEqual([]);
    expect(r.spinWaits).toBe(0);
  });

  it("is not asked at a read where something waits to be served: pending ends the slice instead", async () => {
    // Something waits at every 500th clock read (each such read ends its slice; the next slice spins SPIN_READS reads again first).
    const r = await run("tscspin", (read) => read % 500 === 0);
    expect(r.output).toContain("tscspin.done=0x00000001");
    expect(r.asked.length).toBeGreaterThan(20);
    expect(r.askedAfterTrue).toBe(0);
  });
});
