// vCPU control: an AP that waits for SIPI and starts at its vector, state read/write, and routing of
// the in-wasm IOAPIC and PIC to handlers. Each shown by what the interrupts guest does.
import { afterEach, describe, expect, it } from "vitest";
import { HC } from "../../../guests/interrupts/layout.ts";
import { MEM } from "../../../src/engine/interrupts/abi.ts";
import { includes, toIncoming, type ApicAddressing, type CpuState, type OutgoingInterrupt } from "../../../src/engine/interrupts/index.ts";
import { bootPerTest, until, type GuestRun } from "../../../harness/nodejs/interrupts-guest.ts";

const boot = bootPerTest(afterEach);

// Real-mode code the test plants at 0x9000: reports CS, the IP it started at and IA32_APIC_BASE.
//   call .+3 ; pop bx ; mov dx,0x524 ; mov ax,cs ; movzx eax,ax ; out dx,eax ;
//   mov ax,bx ; movzx eax,ax ; out dx,eax ; mov ecx,0x1b ; rdmsr ; mov dx,0x524 ; out dx,eax ;
//   mov dx,0x520 ; mov eax,HC.SIPI ; out dx,eax ; cli ; hlt ; jmp hlt
const AP_CODE = [
  0xe8, 0x00, 0x00, 0x5b, 0xba, 0x24, 0x05, 0x8c, 0xc8, 0x66, 0x0f, 0xb7, 0xc0, 0x66, 0xef,
  0x89, 0xd8, 0x66, 0x0f, 0xb7, 0xc0, 0x66, 0xef, 0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00, 0x0f, 0x32, 0xba, 0x24, 0x05, 0x66, 0xef,
  0xba, 0x20, 0x05, 0x66, 0xb8, HC.SIPI, 0x00, 0x00, 0x00, 0x66, 0xef,
  0xfa, 0xf4, 0xeb, 0xfd,
];
const APIC_BASE_EN = 0xfee00800; // IA32_APIC_BASE: APIC at 0xFEE00000, enabled; | 0x100 on the BSP
const SIPI_PAGE = 9; // the ipi scenario sends SIPI with start page 9

const tick = () => new Promise((r) => setTimeout(r, 20));
const instructionCounter = (g: GuestRun) => new DataView(g.vi.vcpu.wasm.memory.buffer).getUint32(664, true);

describe("application processors", () => {
  it("an AP waits for SIPI without executing; the BSP's INIT and SIPI (forwarded by the hook) start it in real mode at vector << 12", async () => {
    let sipiArgs: number[] | undefined;
    const ap = await boot("apicid", {
      apicId: 1,
      role: "ap",
      hypercall: (cmd, args) => {
        if (cmd === HC.SIPI) sipiArgs = args.slice(-3); // an INIT may have cut a hypercall short after its argument
      },
    });
    const page = new Uint8Array(4096);
    page.set(AP_CODE);
    ap.vi.vcpu.writePage(SIPI_PAGE, page);
    expect(ap.vi.runState).toBe("wait-for-sipi");
    const reset = ap.vi.getState();
    expect([reset.seg.cs.selector, reset.seg.cs.base, reset.eip, reset.protectedMode]).toEqual([0xf000, 0xf0000, 0xfff0, false]);
    const before = instructionCounter(ap);
    for (let i = 0; i < 5; i++) await tick();
    expect(instructionCounter(ap)).toBe(before);
    expect(sipiArgs).toBeUndefined();

    const forwarded: string[] = [];
    let bspAddressing: () => ApicAddressing = () => ({ id: 0, ldr: 0, dfr: ~0 });
    const bsp = await boot("ipi", {
      apicId: 0,
      role: "bsp",
      autostart: false,
      hooks: {
        onSend: (msg: OutgoingInterrupt) => {
          // A two-node platform in miniature: whatever includes APIC 1 goes to the AP.
          if (includes(msg, ap.vi.addressing)) {
            const incoming = toIncoming(msg);
            if (incoming) {
              forwarded.push(incoming.kind);
              ap.vi.inject(incoming);
            }
          }
          return includes(msg, bspAddressing());
        },
      },
    });
    bspAddressing = () => bsp.vi.addressing;
    await bsp.vi.vcpu.emulator.run();
    expect(await bsp.done, bsp.output()).toBe(0);
    await until(() => sipiArgs !== undefined, "the AP's report from real mode");
    expect(forwarded.slice(0, 5)).toEqual(["fixed", "nmi", "init", "init-deassert", "startup"]);
    expect(sipiArgs).toEqual([SIPI_PAGE << 8, 3, APIC_BASE_EN]); // CS = vector << 8; the call at IP 0 pushed 3; not the BSP
    expect(ap.vi.runState).toBe("running");
    expect(ap.vi.stats.dropped).toEqual(["fixed vector 0x41 sent to a CPU waiting for SIPI"]);
    const s = ap.vi.getState();
    expect(s.seg.cs.base).toBe(SIPI_PAGE << 12);
  });
});

describe("INIT on a running vCPU", () => {
  it("stops it at a boundary in wait-for-SIPI, keeps the TSC running, and a SIPI restarts it", async () => {
    let polls = 0;
    let sipiArgs: number[] | undefined;
    const g = await boot("state", {
      apicId: 2,
      role: "bsp",
      hypercall: (cmd, args) => {
        if (cmd === HC.POLL) polls++;
        if (cmd === HC.SIPI) sipiArgs = args.slice(-3); // an INIT may have cut a hypercall short after its argument
      },
    });
    await until(() => polls > 10, "the guest's polling loop", g.output);
    const tsc = () => (g.vi.vcpu.wasm.exports as unknown as { read_tsc(): bigint }).read_tsc();
    const tscBefore = tsc();
    g.vi.inject({ kind: "init" }); // from the event loop: at a boundary, so it acts at once
    expect(g.vi.runState).toBe("wait-for-sipi");
    expect(tsc()).toBeGreaterThanOrEqual(tscBefore); // reset_cpu alone restarts it at 0
    const frozen = polls;
    const counter = instructionCounter(g);
    for (let i = 0; i < 5; i++) await tick();
    expect([polls, instructionCounter(g)]).toEqual([frozen, counter]);
    expect(g.vi.apicId).toBe(2); // INIT keeps the APIC ID
    const page = new Uint8Array(4096);
    page.set(AP_CODE);
    g.vi.vcpu.writePage(SIPI_PAGE, page);
    g.vi.inject({ kind: "startup", vector: SIPI_PAGE });
    await until(() => sipiArgs !== undefined, "the real-mode report after SIPI", g.output);
    expect(sipiArgs).toEqual([SIPI_PAGE << 8, 3, (APIC_BASE_EN | 0x100) >>> 0]);
  });
});

describe("architectural state", () => {
  it("round-trips, and a write of registers and EIP makes the guest report those registers", async () => {
    let entry = 0;
    let regs: number[] | undefined;
    let readInside: unknown;
    let g!: GuestRun;
    g = await boot("state", {
      apicId: 0,
      role: "bsp",
      hypercall: (cmd, args) => {
        if (cmd === HC.READY) entry = args[0];
        if (cmd === HC.POLL && readInside === undefined) {
          try {
            g.vi.getState();
            readInside = "no error";
          } catch (err) {
            readInside = err;
          }
        }
        if (cmd === HC.REGS) regs = args.slice(-6); // the pause may have come between an argument and its command
      },
    });
    await until(() => entry !== 0 && readInside !== undefined, "the guest's READY", g.output);
    expect(String(readInside)).toMatch(/in the middle of an instruction/);
    await g.vi.pause();
    const s = g.vi.getState();
    expect(s.protectedMode).toBe(true);
    expect(s.cr0 & 1).toBe(1);
    expect(s.seg.cs.selector).toBe(0x08);
    expect(s.seg.ss.selector).toBe(0x10);
    expect(s.gdtr.limit).toBe(23);
    expect(s.eip).toBeGreaterThanOrEqual(0x100000);
    g.vi.setState(s);
    expect(g.vi.getState()).toEqual(s);

    const want = [0x11111111, 0x22222222, 0x33333333, 0x44444444, 0x55555555, 0x66666666];
    const next: CpuState = {
      ...s,
      eip: entry,
      gpr: { ...s.gpr, eax: want[0], ebx: want[1], ecx: want[2], edx: want[3], esi: want[4], edi: want[5] },
    };
    g.vi.setState(next);
    await g.vi.resume();
    await until(() => regs !== undefined, "the registers from state_entry", g.output);
    expect(regs).toEqual(want);
  });

  it("rejects an invalid state before writing anything", async () => {
    const g = await boot("apicid", { apicId: 0, role: "bsp", autostart: false });
    const s = g.vi.getState();
    expect(() => g.vi.setState({ ...s, gpr: { ...s.gpr, eax: 2 ** 33 } })).toThrow(/gpr.eax must be a 32-bit integer/);
    expect(() => g.vi.setState({ ...s, protectedMode: !s.protectedMode })).toThrow(/disagrees with CR0.PE/);
    expect(() => g.vi.setState({ ...s, seg: { ...s.seg, cs: { ...s.seg.cs, selector: 0x10000 } } })).toThrow(/exceeds 16 bits/);
    expect(g.vi.getState()).toEqual(s);
  });
});

describe("device routing", () => {
  it("sends the guest's IOAPIC and PIC accesses to handlers instead of v86's devices", async () => {
    const log: string[] = [];
    const g = await boot("route", { apicId: 0, role: "bsp", autostart: false });
    g.vi.routeIoapic({
      read: (addr, size) => (log.push(`r ${addr.toString(16)}/${size}`), 0xabcd0011),
      write: (addr, size, value) => void log.push(`w ${addr.toString(16)}/${size}=${value.toString(16)}`),
    });
    g.vi.routePic({
      read8: (port) => (log.push(`in ${port.toString(16)}`), 0x5a),
      write8: (port, value) => void log.push(`out ${port.toString(16)}=${value.toString(16)}`),
    });
    await g.vi.vcpu.emulator.run();
    expect(await g.done, g.output()).toBe(0);
    expect(g.output()).toContain("routed.ioapic.version=0xabcd0011");
    expect(g.output()).toContain("routed.pic.imr=0x0000005a");
    expect(log).toEqual(["w fec00000/4=1", "r fec00010/4", "w fec00000/4=1a", "w fec00010/4=1234", "in 21", "out a1=77"]);
    // v86's own IOAPIC never saw the guest's register select.
    expect(new DataView(g.vi.vcpu.wasm.memory.buffer).getUint32(MEM.ioapic + 192, true)).toBe(0);
  });

  it("another vCPU's in-wasm IOAPIC and PIC serve the routed accesses (node 0's role)", async () => {
    const node0 = await boot("apicid", { apicId: 0, role: "bsp", autostart: false });
    const g = await boot("route", { apicId: 1, role: "bsp", autostart: false });
    g.vi.routeIoapic(node0.vi.devices);
    g.vi.routePic(node0.vi.devices);
    await g.vi.vcpu.emulator.run();
    expect(await g.done, g.output()).toBe(0);
    expect(g.output()).toContain("routed.ioapic.version=0x00170011"); // 24 inputs, version 0x11
    expect(g.output()).toContain("routed.pic.imr=0x000000ff"); // node 0's PIC: all masked at reset
    const node0Ioapic = new DataView(node0.vi.vcpu.wasm.memory.buffer);
    expect(node0Ioapic.getUint32(MEM.ioapic + 5 * 4, true)).toBe(0x0234); // entry 5 low; bit 12 (delivery status) is read-only
    expect(node0.vi.devices.read8(0xa1)).toBe(0x77);
    expect(new DataView(g.vi.vcpu.wasm.memory.buffer).getUint32(MEM.ioapic + 5 * 4, true)).toBe(0x10000); // untouched (masked)
    expect(() => node0.vi.devices.read(0xfec00020, 4)).toThrow(/not in the IOAPIC window/);
    expect(() => node0.vi.devices.read8(0x60)).toThrow(/not one of the in-wasm PIC's ports/);
  });
});
