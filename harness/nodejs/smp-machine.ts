// An SMP machine in one thread, for engine tests: N VcpuInterrupts whose RAM is kept coherent by
// moving pages between them in their fault handlers (single writer or many readers per page),
// whose interrupts go to each other through the send hooks, and whose devices all live on vCPU 0.
// One thread means one vCPU executes at a time, so a fault handler can always take a page from
// another vCPU, which is then between two instructions.
import { readFileSync } from "node:fs";
import { ensureInstrumentedWasm, readAuditReport } from "../../src/engine/instrument/ensure.ts";
import { routeInterrupt, VcpuInterrupts, PIC_PORTS, type OutgoingInterrupt } from "../../src/engine/interrupts/index.ts";
import { routePorts, type IoSize } from "../../src/engine/io-routing.ts";
import type { AuditViolation, PageFault, PageGrant, VcpuOptions } from "../../src/engine/vcpu.ts";
import { serial0Console, type SerialConsole } from "../../src/guests/serial-console.ts";

interface V86IoPorts {
  port_read8(p: number): number;
  port_read16(p: number): number;
  port_read32(p: number): number;
  port_write8(p: number, v: number): void;
  port_write16(p: number, v: number): void;
  port_write32(p: number, v: number): void;
}

/** The serial console is vCPU 0's (its devices are the machine's). */
export interface SmpMachine extends SerialConsole {
  cpus: VcpuInterrupts[];
  stats: { pageMoves: number; ipis: number; forwardedEois: number };
  /** Which vCPUs hold a copy of the page, and which holds it writable (-1: none). */
  holders(page: number): { copies: number[]; writer: number };
  destroy(): Promise<void>;
}

export interface SmpMachineOptions {
  /**
   * Run the coherence audit (the debug build that checks every guest-RAM access against the page
   * map; JIT off): each forbidden access goes here with the vCPU's index. Without a handler a
   * violation stops that vCPU with an AuditError.
   */
  audit?: true | ((cpu: number, violation: AuditViolation) => void);
  /** The vCPUs that run the audit build (default: all); the others run the normal build, JIT on. */
  auditCpus?: number[];
}

export async function startSmpMachine(n: number, v86: VcpuOptions["v86"], options: SmpMachineOptions = {}): Promise<SmpMachine> {
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`CPU count must be 1..8, got ${n}`);
  const wasm = readFileSync(await ensureInstrumentedWasm());
  const auditPath = options.audit ? await ensureInstrumentedWasm({ audit: true }) : undefined;
  const auditWasm = auditPath ? readFileSync(auditPath) : undefined;
  const auditReport = auditPath ? await readAuditReport(auditPath) : undefined;
  const audited = (i: number) => auditReport !== undefined && (options.auditCpus ?? [i]).includes(i);
  const onViolation = typeof options.audit === "function" ? options.audit : undefined;
  const cpus: VcpuInterrupts[] = [];
  const stats = { pageMoves: 0, ipis: 0, forwardedEois: 0 };
  // Per page: which CPUs hold a copy, and the one holding it writable (-1: none).
  const holders = new Map<number, Set<number>>();
  const writer = new Map<number, number>();
  const holdersOf = (p: number) => holders.get(p) ?? new Set([0]);
  const writerOf = (p: number) => writer.get(p) ?? 0;

  const fault = (me: number) => ({ page, access }: PageFault): PageGrant => {
    stats.pageMoves++;
    const h = holdersOf(page);
    const w = writerOf(page);
    if (access === "read") {
      let bytes: Uint8Array;
      if (w >= 0 && w !== me) {
        bytes = cpus[w].vcpu.revoke(page, "read");
        writer.set(page, -1);
      } else bytes = cpus[[...h][0]].vcpu.readPage(page);
      holders.set(page, new Set([...h, me]));
      return { access: "read", bytes };
    }
    let bytes: Uint8Array | undefined;
    for (const o of h) {
      if (o === me) continue;
      const b = cpus[o].vcpu.revoke(page, "none");
      if (!h.has(me)) bytes ??= b;
    }
    holders.set(page, new Set([me]));
    writer.set(page, me);
    return { access: "write", bytes };
  };

  const send = (me: number) => (msg: OutgoingInterrupt): boolean => {
    let local = false;
    for (const { cpu, incoming } of routeInterrupt(msg, cpus.map((c) => c.addressing))) {
      if (cpu === me) local = true;
      else {
        stats.ipis++;
        cpus[cpu].inject(incoming);
      }
    }
    return local;
  };

  for (let i = 0; i < n; i++) {
    const role = i === 0 ? "bsp" : "ap";
    cpus[i] = await VcpuInterrupts.create({
      wasm: audited(i) ? auditWasm! : wasm,
      apicId: i,
      role,
      onFault: fault(i),
      hooks: {
        onSend: send(i),
        // Level EOIs go to vCPU 0's IOAPIC.
        onEoi: i === 0 ? () => true : (vector) => (stats.forwardedEois++, cpus[0].ioapicEoi(vector), false),
      },
      v86: { ...v86, autostart: false },
      ...(audited(i) ? { audit: { report: auditReport!, ...(onViolation ? { onViolation: (v: AuditViolation) => onViolation(i, v) } : {}) } } : {}),
    });
  }
  const bsp = cpus[0];
  // SeaBIOS learns the CPU count from CMOS 0x5F (count - 1, as QEMU sets it) and waits for the APs.
  (bsp.vcpu.emulator as unknown as { v86: { cpu: { devices: { rtc: { cmos_write(i: number, v: number): void } } } } }).v86.cpu.devices.rtc.cmos_write(0x5f, cpus.length - 1);
  const bspIo = (bsp.vcpu.emulator as unknown as { v86: { cpu: { io: V86IoPorts } } }).v86.cpu.io;
  const toBsp = {
    read: (port: number, size: IoSize) => (size === 1 ? bspIo.port_read8(port) : size === 2 ? bspIo.port_read16(port) : bspIo.port_read32(port)),
    write: (port: number, size: IoSize, v: number) => (size === 1 ? bspIo.port_write8(port, v) : size === 2 ? bspIo.port_write16(port, v) : bspIo.port_write32(port, v)),
  };
  for (const ap of cpus.slice(1)) {
    ap.vcpu.setAllPages("none");
    ap.tsc = bsp.tsc;
    ap.routeIoapic(bsp.devices);
    ap.routePic(bsp.devices);
    // Every port but the in-wasm PIC's (routed above) goes to vCPU 0's devices.
    const pic = [...PIC_PORTS].sort((a, b) => a - b);
    let first = 0;
    for (const p of pic) {
      if (p > first) routePorts(ap.vcpu, first, p - 1, toBsp);
      first = p + 1;
    }
    routePorts(ap.vcpu, first, 0xffff, toBsp);
  }

  const serial = serial0Console(bsp.vcpu.emulator);
  for (const ap of cpus.slice(1)) await ap.vcpu.emulator.run();
  await bsp.vcpu.emulator.run();
  return {
    cpus,
    ...serial,
    stats,
    holders: (page) => ({ copies: [...holdersOf(page)], writer: writerOf(page) }),
    destroy: async () => {
      for (const c of cpus) await c.vcpu.destroy();
    },
  };
}
