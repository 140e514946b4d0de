// The engine's interrupt hooks, each shown by what the interrupts guest (guests/interrupts) sees.
import { afterEach, describe, expect, it } from "vitest";
import { HC, IOAPIC_IRQ, V } from "../../../guests/interrupts/layout.ts";
import { includes, isInitDeassert, type ApicAddressing, type ApicRegister, type OutgoingInterrupt } from "../../../src/engine/interrupts/index.ts";
import { bootPerTest, until, type GuestRun } from "../../../harness/nodejs/interrupts-guest.ts";

const boot = bootPerTest(afterEach);

describe("APIC ID", () => {
  it.each([3, 0x2a])("the guest reads APIC ID %i from the APIC, CPUID and sees the BSP flag", async (id) => {
    const g = await boot("apicid", { apicId: id, role: "bsp" });
    expect(await g.done).toBe(0);
    const hex = (v: number) => "0x" + v.toString(16).padStart(8, "0");
    expect(g.output()).toContain(`apic.id=${hex(id)}`);
    expect(g.output()).toContain(`cpuid.apic=${hex(id)}`);
    expect(g.output()).toContain("msr.bsp=0x00000001");
    expect(g.output()).toContain("msr.en=0x00000001");
    expect(g.vi.apicId).toBe(id);
  });

  it("the TSC can be set (to align nodes) and the guest's RDTSC continues from there", async () => {
    const g = await boot("apicid", { apicId: 1, role: "bsp", autostart: false });
    g.vi.tsc = 0x1234_5600_0000_0000n;
    expect(g.vi.tsc).toBeGreaterThanOrEqual(0x1234_5600_0000_0000n);
    await g.vi.vcpu.emulator.run();
    expect(await g.done).toBe(0);
    const hi = Number.parseInt(/tsc\.hi=0x([0-9a-f]+)/.exec(g.output())?.[1] ?? "0", 16);
    expect(hi).toBeGreaterThanOrEqual(0x12345600);
    expect(hi).toBeLessThan(0x12345700);
    expect(() => (g.vi.tsc = -1n)).toThrow(/bigint in 0..2\^64-1/);
  });

  it("a second TSC write lands where it says too (v86's own set_tsc adds its previous offset)", async () => {
    const g = await boot("apicid", { apicId: 1, role: "bsp", autostart: false });
    // 1 GHz: the counter may only have advanced by the wall time that passed between write and read.
    for (const value of [5_000_000_000_000n, 0x10_0000_0000n, 7n, 1n << 62n]) {
      const t0 = performance.now();
      g.vi.tsc = value;
      const read = g.vi.tsc;
      const elapsed = BigInt(Math.ceil((performance.now() - t0) * 1e6)) + 1000n;
      expect(read).toBeGreaterThanOrEqual(value);
      expect(read - value).toBeLessThanOrEqual(elapsed);
    }
  });

  it("rejects an APIC ID outside 0..254", async () => {
    await expect(boot("apicid", { apicId: 255, role: "bsp" })).rejects.toThrow(/APIC ID must be an integer in 0..254/);
  });
});

describe("the APIC timer's clock", () => {
  // The test plays DsmAgent: a "wait" is time hidden from the APIC timer while it lasts.
  function waits() {
    let waited = 0;
    let since: number | null = null;
    return {
      lag: () => waited + (since === null ? 0 : performance.now() - since),
      wait(ms: number): number {
        const start = (since = performance.now());
        while (performance.now() - start < ms);
        const w = performance.now() - start;
        waited += w;
        since = null;
        return w;
      },
    };
  }
  const TMICT = 0xfee00380;
  const TMCCT = 0xfee00390;
  const TICKS_PER_MS = 1e6; // v86's APIC timer: 1 GHz like its TSC, divide by 1 below

  it.each(["running", "wall"] as const)("on the %s clock: a wait is hidden from the APIC timer only when asked, never from the TSC", async (clock) => {
    const w = waits();
    const g = await boot("apicid", { apicId: 0, role: "bsp", autostart: false, ...(clock === "running" ? { apicTimerLag: w.lag } : {}) });
    const ex = g.vi.vcpu.wasm.exports as unknown as { write32(a: number, v: number): void; read32s(a: number): number };
    const cpu = (g.vi.vcpu.emulator as unknown as { v86: { cpu: { apic_timer(now: number): number } } }).v86.cpu;
    ex.write32(0xfee003e0, 0xb); // divide by 1
    const t0 = performance.now();
    ex.write32(TMICT, 4_000_000_000); // 4,000 ms of the timer's clock
    const t1 = performance.now();
    const tsc0 = g.vi.tsc;
    const waited = w.wait(40);
    const t2 = performance.now();
    const left = (ex.read32s(TMCCT) >>> 0) / TICKS_PER_MS;
    const t3 = performance.now();
    const hidden = clock === "running" ? waited : 0;
    // What the timer counted lies between the least and the most wall time between write and read, less what was hidden.
    expect(4000 - left).toBeGreaterThanOrEqual(t2 - t1 - hidden - 0.01);
    expect(4000 - left).toBeLessThanOrEqual(t3 - t0 - hidden + 0.01);
    // The tick's next deadline (what v86's timer loop is told) is on the same clock.
    const t4 = performance.now();
    const next = cpu.apic_timer(t4);
    expect(4000 - next).toBeGreaterThanOrEqual(t4 - t1 - hidden - 0.01);
    expect(4000 - next).toBeLessThanOrEqual(t4 - t0 - hidden + 0.01);
    // The TSC (the guest's clock) counts the wait either way.
    expect(Number(g.vi.tsc - tsc0) / 1e6).toBeGreaterThanOrEqual(waited);
  });
});

describe("outgoing IPIs", () => {
  it("reach the hook with every field, and only those that include this APIC are delivered here", async () => {
    const sent: OutgoingInterrupt[] = [];
    const regs: [ApicRegister, number][] = [];
    let self: () => ApicAddressing = () => ({ id: 0, ldr: 0, dfr: ~0 });
    const g = await boot("ipi", {
      apicId: 0,
      role: "bsp",
      hooks: {
        onSend: (msg) => (sent.push(msg), includes(msg, self())),
        onApicRegister: (reg, value) => void regs.push([reg, value >>> 0]),
      },
      autostart: false,
    });
    self = () => g.vi.addressing;
    await g.vi.vcpu.emulator.run();
    expect(await g.done, g.output()).toBe(0);
    const summary = sent.map((m) => ({
      vector: m.vector,
      mode: m.mode,
      trigger: m.trigger,
      dest: `${m.destination.mode}:${m.destination.value}:${m.destination.shorthand}`,
      deassert: isInitDeassert(m),
    }));
    expect(summary).toEqual([
      { vector: V.REMOTE, mode: "fixed", trigger: "edge", dest: "physical:1:none", deassert: false },
      { vector: V.SELF, mode: "fixed", trigger: "edge", dest: "physical:0:self", deassert: false },
      { vector: 0, mode: "nmi", trigger: "edge", dest: "physical:1:none", deassert: false },
      { vector: 0, mode: "init", trigger: "edge", dest: "physical:1:none", deassert: false },
      { vector: 0, mode: "init", trigger: "level", dest: "physical:1:none", deassert: true },
      { vector: 9, mode: "startup", trigger: "edge", dest: "physical:1:none", deassert: false },
      { vector: V.LOGICAL, mode: "fixed", trigger: "edge", dest: "logical:2:none", deassert: false },
      { vector: V.LOGICAL, mode: "fixed", trigger: "edge", dest: "logical:3:none", deassert: false },
      { vector: V.REMOTE, mode: "fixed", trigger: "edge", dest: "physical:0:all-but-self", deassert: false },
    ]);
    expect(sent.every((m) => m.source === "ipi" && m.from === 0)).toBe(true);
    expect(regs).toEqual([
      ["dfr", 0xffffffff],
      ["ldr", 0x01000000],
    ]);
    expect(g.vi.stats.sent).toBe(9);
    expect(g.vi.stats.sentLocal).toBe(2);
    // The guest checked the other half: 0x41 never ran, 0x42 and the logical 0x43 ran once.
    expect(g.output()).toContain("ipi.remote.here got=0x00000000 want=0x00000000 ok");
  });
});

describe("incoming interrupts", () => {
  it("injected edge and level vectors and an NMI run the guest's handlers; the level EOI reaches the hook", async () => {
    const eois: number[] = [];
    let injected = false;
    let g!: GuestRun;
    g = await boot("inject", {
      apicId: 0,
      role: "bsp",
      hooks: { onEoi: (v) => (eois.push(v), true) },
      hypercall: (cmd) => {
        if (cmd === HC.READY) {
          g.vi.inject({ kind: "fixed", vector: V.INJECT, trigger: "edge" });
          g.vi.inject({ kind: "fixed", vector: V.LEVEL, trigger: "level" });
          g.vi.inject({ kind: "nmi" });
          injected = true;
        }
        if (cmd === HC.POLL) return injected ? 1 : 0;
      },
    });
    expect(await g.done, g.output()).toBe(0);
    expect(eois).toEqual([V.LEVEL]);
    expect(g.vi.stats.injected).toMatchObject({ fixed: 2, nmi: 1 });
  });

  it("rejects malformed injections with a clear error", async () => {
    const g = await boot("apicid", { apicId: 0, role: "bsp", autostart: false });
    expect(() => g.vi.inject({ kind: "fixed", vector: 3, trigger: "edge" })).toThrow(/vector in 16..255/);
    expect(() => g.vi.inject({ kind: "startup", vector: 256 })).toThrow(/0..255/);
    expect(() => g.vi.inject({ kind: "bogus" } as never)).toThrow(/unknown incoming interrupt/);
  });
});

describe("IOAPIC deliveries", () => {
  it("reach the hook with the redirection entry; one for another APIC is not delivered here, a forwarded EOI re-arms the entry", async () => {
    const sent: OutgoingInterrupt[] = [];
    const eois: number[] = [];
    let self: () => ApicAddressing = () => ({ id: 0, ldr: 0, dfr: ~0 });
    let g!: GuestRun;
    const pulse = () => {
      const cpu = (g.vi.vcpu.emulator as unknown as { v86: { cpu: { device_raise_irq(i: number): void; device_lower_irq(i: number): void } } }).v86.cpu;
      cpu.device_raise_irq(IOAPIC_IRQ);
      cpu.device_lower_irq(IOAPIC_IRQ);
    };
    g = await boot("ioapic", {
      apicId: 0,
      role: "bsp",
      hooks: { onSend: (msg) => (sent.push(msg), includes(msg, self())), onEoi: (v) => (eois.push(v), true) },
      hypercall: (cmd, args) => {
        if (cmd !== HC.SENT) return;
        if (args[0] === 1) pulse(); // the entry -> APIC 1: sent, but not here; remote IRR stays set
        if (args[0] === 2) {
          pulse(); // remote IRR still set (APIC 1 never sent its EOI): a level entry must not send
          g.vi.ioapicEoi(V.IOAPIC); // APIC 1's EOI, forwarded to this node's IOAPIC
          pulse(); // now sent, to APIC 0 = here
        }
      },
      autostart: false,
    });
    self = () => g.vi.addressing;
    await g.vi.vcpu.emulator.run();
    expect(await g.done, g.output()).toBe(0);
    expect(g.output()).toContain("ioapic.remote.here got=0x00000000 want=0x00000000 ok");
    expect(g.output()).toContain("ioapic.local got=0x00000001 want=0x00000001 ok");
    const summary = sent.map((m) => (m.source === "ioapic" ? { irq: m.irq, vector: m.vector, mode: m.mode, trigger: m.trigger, dest: m.destination } : m.source));
    const entry = (value: number) => ({ irq: IOAPIC_IRQ, vector: V.IOAPIC, mode: "fixed", trigger: "level", dest: { mode: "physical", value, shorthand: "none" } });
    expect(summary).toEqual([entry(1), entry(0)]);
    // The guest's EOI of the local delivery reaches the hook (node 0 keeps it: returns true).
    expect(eois).toEqual([V.IOAPIC]);
  });
});
