// A scripted many-to-one "boot" for the lab page and the browser test: real protocol-core DsmNodes
// (DemoCluster) driven by a workload shaped like an SMP Linux boot, reported as the typed inputs
// the view consumes. Deterministic for a seed. The vCPU states, instruction counts, IPIs, I/O and
// link RTTs are modelled (there is no emulator here); the page states and DSM counters are real.

import type { ClusterConfig, LinkStat, StatCounters, VcpuStat } from "../../../protocol/messages.ts";
import type { IpiCount, IpiKind, PageMove, TraceEvent, ViewInput } from "../../../protocol/telemetry/inputs.ts";
import { DemoCluster } from "./demo-cluster.ts";

export interface ScenarioOptions {
  /** vcpuHome[v] = node of vCPU v. Default: node 0 hosts vCPUs 0 and 1, node 1 vCPU 2, node 2 vCPU 3. */
  vcpuHome?: number[];
  memoryPages?: number;
  seed?: number;
  /** Base link round trip in ms (the knob adds twice its one-way delay). */
  baseRttMs?: number;
}

/** Pages the script uses (guest-physical page numbers; Debian's 686 kernel sits at 16 MiB). */
export const LAB_PAGES = {
  kernelText: [0x1000, 0x191c] as const,
  // The timer tick's counters, written by CPU 0 and read by all: jiffies' page in Debian's
  // 6.1.0-50-686 build (0xc1c3dd40); on another build the hover names whatever lies there.
  jiffies: 0x1c3d,
  runqueueLock: 0x1d20, // a contended lock every CPU takes
  perCpu: (cpu: number) => 0x3000 + cpu * 0x40,
  userHeap: [0x4000, 0x7000] as const,
  /** The buffer `taskset -c <last CPU> dd ...` writes from 20 s on. */
  buffer: [0x7400, 0x7500] as const,
};

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

export class LabScenario {
  readonly config: ClusterConfig;
  private readonly cluster: DemoCluster;
  private readonly rand: () => number;
  private readonly vcpuHome: number[];
  private readonly instructions: number[];
  private readonly states: VcpuStat["state"][];
  private readonly other: Partial<StatCounters>[];
  private readonly ipis = new Map<string, IpiCount>();
  private lastMs = 0;
  private sipiSent = false;
  private movesSeq = 0;
  private bufferWritten = 0;
  delayMs = 0;
  /** Emit `events` inputs (only while the view records a trace). */
  tracing = false;
  private readonly baseRttMs: number;

  constructor(options: ScenarioOptions = {}) {
    this.vcpuHome = options.vcpuHome ?? [0, 0, 1, 2];
    const nodes = Math.max(...this.vcpuHome) + 1;
    const pages = options.memoryPages ?? 32768; // 128 MiB
    this.config = { type: "config", nodes, memoryPages: pages, vcpuHome: this.vcpuHome, readTakesOwnership: true, guest: "lab" };
    this.cluster = new DemoCluster(nodes, pages);
    this.rand = prng(options.seed ?? 7);
    this.instructions = this.vcpuHome.map(() => 0);
    this.states = this.vcpuHome.map((_, v) => (v === 0 ? "running" : "waiting-sipi"));
    this.other = Array.from({ length: nodes }, () => ({ ipisSent: 0, ipisReceived: 0, irqsForwarded: 0, ioForwarded: 0, bytesSent: 0, bytesReceived: 0 }));
    this.baseRttMs = options.baseRttMs ?? 1.0;
  }

  get nodes(): number {
    return this.config.nodes;
  }

  /** Runs the script from the last call up to `tMs` (lab time) and returns the inputs to feed. */
  step(tMs: number, receivedMs: number): ViewInput[] {
    const dt = Math.max(1, tMs - this.lastMs);
    const cpus = this.vcpuHome.length;
    const faults = this.vcpuHome.map(() => 0);
    const ipiEvents: TraceEvent[] = [];
    const ioEvents: TraceEvent[] = [];
    const faultMs = this.baseRttMs + 2 * this.delayMs;
    const touch = (cpu: number, page: number, access: "read" | "write", at: number) => {
      if (this.cluster.access(this.vcpuHome[cpu]!, cpu, page, access, at)) faults[cpu]!++;
    };
    const ipi = (src: number, dest: number, kind: IpiKind, at: number, vector?: number) => {
      const key = `${src}>${dest}>${kind}`;
      const c = this.ipis.get(key) ?? { src, dest, kind, count: 0 };
      c.count++;
      this.ipis.set(key, c);
      this.other[this.vcpuHome[src]!]!.ipisSent!++;
      this.other[this.vcpuHome[dest]!]!.ipisReceived!++;
      ipiEvents.push({ type: "ipi", node: this.vcpuHome[src]!, src, dest, kind, atMs: at, ...(vector === undefined ? {} : { vector }) });
    };
    const r = this.rand;
    const pick = ([a, b]: readonly [number, number]) => a + Math.floor(r() * (b - a));
    const at = (k: number) => receivedMs - dt + (dt * k) / 8;

    if (tMs >= 2500 && !this.sipiSent) {
      // CPU 0 wakes the APs the way Linux does: INIT, INIT de-assert, two SIPIs each.
      this.sipiSent = true;
      for (let ap = 1; ap < cpus; ap++) {
        ipi(0, ap, "init", at(0));
        ipi(0, ap, "init-deassert", at(0));
        ipi(0, ap, "startup", at(1), 0x9a);
        ipi(0, ap, "startup", at(1), 0x9a);
        this.states[ap] = "running";
      }
    }
    const apsUp = this.sipiSent;
    for (let k = 0; k < 8; k++) {
      // The timer tick: CPU 0 bumps jiffies; every CPU's tick handler reads it.
      touch(0, LAB_PAGES.jiffies, "write", at(k));
      if (apsUp) for (let c = 1; c < cpus; c++) touch(c, LAB_PAGES.jiffies, "read", at(k));
      for (let c = 0; c < cpus; c++) {
        if (c > 0 && !apsUp) continue;
        touch(c, LAB_PAGES.perCpu(c) + Math.floor(r() * 8), "write", at(k));
        // Kernel code and read-only data: copies spread, no owner changes after the first reads.
        const early = tMs < 9000 ? 6 : 1;
        for (let i = 0; i < early; i++) touch(c, pick(LAB_PAGES.kernelText), "read", at(k));
        if (r() < 0.35) touch(c, LAB_PAGES.runqueueLock, "write", at(k));
        if (tMs > 6000 && r() < 0.5) touch(c, pick(LAB_PAGES.userHeap), "write", at(k));
      }
      // From 20 s: `taskset -c <last> dd` fills a buffer from the last CPU over 5 s, a page at a time.
      if (tMs >= 20_000) {
        const [first, end] = LAB_PAGES.buffer;
        const done = Math.min(end - first, Math.ceil(((tMs - 20_000) / 5000) * (end - first)));
        for (; this.bufferWritten < done; this.bufferWritten++) touch(cpus - 1, first + this.bufferWritten, "write", at(k));
      }
      if (apsUp && r() < 0.6) {
        const src = Math.floor(r() * cpus);
        let dest = Math.floor(r() * (cpus - 1));
        if (dest >= src) dest++;
        ipi(src, dest, r() < 0.75 ? "fixed" : "lowest", at(k), r() < 0.7 ? 0xfd : 0xfb);
      }
      if (apsUp && r() < 0.3) {
        const dest = 1 + Math.floor(r() * (cpus - 1));
        if (this.vcpuHome[dest] !== 0) {
          this.other[0]!.irqsForwarded!++;
          ipiEvents.push({ type: "ipi", node: 0, src: 0, dest, kind: "irq", vector: 0x24, atMs: at(k) });
        }
      }
    }
    // Remote CPUs print to the serial console on node 0: forwarded port writes (and some reads).
    for (let c = 1; c < cpus && apsUp; c++) {
      const node = this.vcpuHome[c]!;
      if (node === 0) continue;
      const n = Math.floor(r() * 12);
      this.other[node]!.ioForwarded! += n;
      if (n) ioEvents.push({ type: "io", node, vcpu: c, op: "port-read", addr: 0x3fd, startMs: at(3), endMs: at(3) + faultMs });
    }

    // vCPU states and instruction counts: time spent waiting for pages is time not executing.
    for (let c = 0; c < cpus; c++) {
      if (this.states[c] === "waiting-sipi") continue;
      const waited = Math.min(0.95, (faults[c]! * faultMs) / dt);
      const busy = tMs > 30_000 && c > 0 && r() < 0.3 ? 0.1 : 1; // idle APs halt now and then
      this.instructions[c]! += Math.round(dt * 1000 * 45 * busy * (1 - waited) * (0.9 + 0.2 * r()));
      this.states[c] = busy < 1 ? "halted" : waited > 0.3 ? "waiting-page" : r() < 0.08 && this.vcpuHome[c] !== 0 ? "waiting-io" : "running";
    }

    const inputs: ViewInput[] = [];
    for (let n = 0; n < this.nodes; n++) {
      const vcpus: VcpuStat[] = this.vcpuHome.flatMap((h, v) => (h === n ? [{ vcpu: v, state: this.states[v]!, instructions: this.instructions[v]! }] : []));
      const links: LinkStat[] = [];
      for (let p = 0; p < this.nodes; p++)
        if (p !== n) links.push({ peer: p, rttUs: Math.round((this.baseRttMs + 2 * this.delayMs) * 1000 * (0.9 + 0.25 * r())) });
      const o = this.other[n]!;
      const dsm = this.cluster.dsm[n]!.counters;
      o.bytesSent = (dsm.pagesSentBytes + dsm.pagesSentZero) * 4106 + dsm.requestsSent * 8;
      // Each node's clock has its own origin (performance.now() of its tab): rates must not care.
      inputs.push({ kind: "stats", snapshot: this.cluster.snapshot(n, tMs + 1000 * n, { counters: { ...o }, vcpus, links }), receivedMs });
      inputs.push({ kind: "ipi-counts", node: n, counts: [...this.ipis.values()].filter((c) => this.vcpuHome[c.src] === n).map((c) => ({ ...c })) });
    }
    const dsmEvents = this.cluster.takeEvents().map((e) => (e.type === "fault" ? { ...e, endMs: e.startMs + faultMs } : e));
    // Exact page moves (what each node sent), the optional report that makes hot pages exact.
    for (let n = 0; n < this.nodes; n++) {
      const moves = new Map<string, PageMove>();
      for (const e of dsmEvents)
        if (e.type === "page-sent" && e.node === n) {
          const key = `${e.page}>${e.to}`;
          const m = moves.get(key) ?? { page: e.page, to: e.to, count: 0 };
          m.count++;
          moves.set(key, m);
        }
      inputs.push({ kind: "page-moves", node: n, seq: ++this.movesSeq, receivedMs, moves: [...moves.values()] });
    }
    if (this.tracing) inputs.push({ kind: "events", events: [...dsmEvents, ...ipiEvents, ...ioEvents] });
    this.lastMs = tMs;
    return inputs;
  }
}
