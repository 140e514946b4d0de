// The fault census (issue 16, "Measure first"): Linux with 2 vCPUs in 2 Node worker threads (the
// default guest, 128 MiB, as smp.ts boots it), for (a) the boot, (b) an idle minute at the shell
// prompt, (c) a parallel CPU-bound job (busybox gzip of generated data, two processes pinned to
// the two vCPUs with taskset): DSM faults per second split by page (named with the kernel's
// symbols, as the live view names them), by access, by outcome, and by vCPU, with the guest's own
// interrupt, softirq and CPU-time counters around each window as the nearest thing to its context.
// Prints the top 20 pages and causes of each window; no thresholds.
//
// The census is built from what the nodes record for the live view's trace (view-recorder.ts:
// fault, page-sent, invalidate and ipi events), summed by src/protocol/telemetry/census.ts. The
// Node cluster (startCluster) does not attach that recorder, so this module starts the two nodes
// itself: this file is also their worker entry, which does what cluster-worker.ts does and attaches
// the recorder as the browser's node-worker.ts does (observer, router observer, timed faults),
// tracing all the time, and posts each report to the main thread every 250 ms. Nothing else is
// added to the nodes: no field of the events is new.

import { readFileSync } from "node:fs";
import { isMainThread, parentPort, workerData, type Worker } from "node:worker_threads";
import type { ReportEvent } from "../../src/protocol/messages.ts";
import type { BenchModule, Metrics } from "../types.ts";

const WORKER_TAG = "giantweb-census-node";
const PROMPT = /giantweb:\/root# /;
const TICK_HZ = 250; // Debian's i386 kernel: CONFIG_HZ_250, periodic tick
const IDLE_S = Number(process.env.GIANTWEB_CENSUS_IDLE_S ?? 60);
/** Lines of generated text per gzip input (busybox seq: 1..N, one number a line). */
const JOB_LINES = Number(process.env.GIANTWEB_CENSUS_JOB_LINES ?? 150_000);
const TOP = 20;

// ------------------------------------------------------------------ the node worker

interface NodeData {
  tag: typeof WORKER_TAG;
  plan: import("../../src/runtime/links/local-links.ts").LocalLinksPlan;
  wasmPath: string;
  guest: import("../../src/runtime/nodejs/guest-files.ts").GuestFiles;
  vcpu: number;
  vcpuNodes: number[];
  deviceNode: number;
}

async function nodeWorker(d: NodeData): Promise<void> {
  const { guestSetup } = await import("../../src/machine/guest-setup.ts");
  const { startVcpuNode } = await import("../../src/runtime/node/vcpu-node.ts");
  const { readGuestFiles } = await import("../../src/runtime/nodejs/guest-files.ts");
  const { NodeViewRecorder } = await import("../../src/runtime/node/view-recorder.ts");
  const { wallClockMs } = await import("../../src/runtime/node/wall-clock.ts");
  const { v86, bootWrites } = guestSetup(readGuestFiles(d.guest), { first: d.plan.self === 0, cpus: d.vcpuNodes.length });
  const node = await startVcpuNode({
    plan: d.plan,
    wasm: new Uint8Array(readFileSync(d.wasmPath)),
    v86,
    vcpu: d.vcpu,
    vcpuNodes: d.vcpuNodes,
    deviceNode: d.deviceNode,
    bootWrites,
    onSerial: (bytes) => parentPort!.postMessage({ kind: "serial", bytes }),
    onFailure: (failure) => parentPort!.postMessage({ kind: "failed", failure }),
  });
  // As node-worker.ts's observe() and timeFaults(), with the trace always recording.
  const recorder = new NodeViewRecorder(d.plan.self, () => true, wallClockMs);
  node.agent.observer = recorder;
  if (node.router) node.router.observer = recorder.interrupt;
  const agent = node.agent;
  const fault = agent.fault.bind(agent);
  agent.fault = (page, access) => {
    const start = performance.now();
    try {
      return fault(page, access);
    } finally {
      recorder.fault(d.vcpu, page, access, performance.timeOrigin + start, performance.timeOrigin + performance.now());
    }
  };
  const report = () => {
    const r = recorder.take();
    parentPort!.postMessage({ kind: "events", events: r.events, dropped: r.droppedEvents });
  };
  setInterval(report, 250);
  parentPort!.on("message", (m) => {
    if (m.kind === "send") node.vcpu.sendSerial(m.text);
    if (m.kind === "stats") {
      report();
      parentPort!.postMessage({ kind: "stats", engine: node.vcpu.stats, agent: node.agent.counters, dsm: node.dsm.counters, atMs: wallClockMs() });
    }
  });
  parentPort!.postMessage({ kind: "ready" });
}

if (!isMainThread && (workerData as { data?: { tag?: string } } | null)?.data?.tag === WORKER_TAG) await nodeWorker((workerData as { data: NodeData }).data);

// ------------------------------------------------------------------ the main thread's cluster

interface NodeStats {
  engine: { faults: number; faultsByCause: Record<"tlb" | "physical" | "dma", number> };
  agent: { faults: number; blockedMs: number };
  dsm: Record<string, number>;
  atMs: number;
}

class CensusCluster {
  private out = "";
  private readonly events: ReportEvent[] = [];
  dropped = 0;
  private readonly workers: Worker[] = [];
  private failure: string | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly startTsWorker: typeof import("../../src/runtime/nodejs/ts-worker.ts").startTsWorker,
    plan: Omit<NodeData["plan"], "self">,
    wasmPath: string,
    guest: NodeData["guest"],
  ) {
    for (const self of [0, 1]) {
      const data: NodeData = { tag: WORKER_TAG, plan: { ...plan, self }, wasmPath, guest, vcpu: self, vcpuNodes: [0, 1], deviceNode: 0 };
      const w = this.startTsWorker(new URL(import.meta.url), data);
      w.on("error", (e) => this.fail(`node ${self}'s worker: ${(e as Error).stack ?? e}`));
      w.on("message", (m) => {
        if (m.kind === "serial") this.out += Buffer.from(m.bytes).toString("latin1");
        else if (m.kind === "events") {
          for (const e of m.events as ReportEvent[]) this.events.push(e);
          this.dropped += m.dropped as number;
        } else if (m.kind === "failed") this.fail(`node ${self} failed: ${JSON.stringify(m.failure)}`);
        this.listeners.forEach((l) => l());
      });
      this.workers.push(w);
    }
  }

  private fail(why: string): void {
    this.failure ??= why;
    this.listeners.forEach((l) => l());
  }

  output(): string {
    return this.out;
  }

  allEvents(): readonly ReportEvent[] {
    return this.events;
  }

  waitFor(re: RegExp, ms: number, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const done = (f: () => void) => (clearTimeout(t), this.listeners.delete(check), f());
      const t = setTimeout(() => done(() => reject(new Error(`no ${re} within ${ms / 1000} s; output:\n${this.out.slice(-2500)}`))), ms);
      const check = () => {
        if (this.failure) done(() => reject(new Error(this.failure!)));
        else if (re.test(this.out.slice(from))) done(() => resolve(this.out));
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Runs a shell command on the console; resolves with what it printed before its end marker. */
  async run(command: string, ms = 600_000): Promise<string> {
    const mark = this.out.length;
    this.workers[0]!.postMessage({ kind: "send", text: `${command}; echo '==''done'\n` });
    await this.waitFor(/==done\r?\n/, ms, mark);
    const text = this.out.slice(mark);
    return text.slice(text.indexOf("\n") + 1, text.lastIndexOf("==done"));
  }

  stats(node: number): Promise<NodeStats> {
    const w = this.workers[node]!;
    return new Promise((resolve) => {
      const on = (m: { kind: string }) => m.kind === "stats" && (w.off("message", on), resolve(m as unknown as NodeStats));
      w.on("message", on);
      w.postMessage({ kind: "stats" });
    });
  }

  /** Terminates both workers (as startCluster's stop does for vCPU nodes). */
  async end(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

// ------------------------------------------------------------------ the guest's own counters

/** /proc/interrupts, /proc/softirqs and the cpu lines of /proc/stat, in one command. */
// The markers are quoted apart so that the command's echo never holds them.
const GUEST_COUNTERS = "cat /proc/interrupts; echo '--soft''irqs'; cat /proc/softirqs; echo '--st''at'; grep ^cpu /proc/stat";

interface GuestCounters {
  /** name -> per-CPU counts (interrupts: LOC, RES, CAL, TLB, numbered IRQs; softirqs: TIMER, SCHED, RCU, ...). */
  irqs: Map<string, number[]>;
  softirqs: Map<string, number[]>;
  /** cpuN -> [user, nice, system, idle, iowait, irq, softirq] in USER_HZ ticks. */
  time: Map<string, number[]>;
}

function parseGuestCounters(text: string, cpus: number): GuestCounters {
  const [irqText = "", rest = ""] = text.split(/^--softirqs\r?$/m);
  const [softText = "", statText = ""] = rest.split(/^--stat\r?$/m);
  const table = (t: string) => {
    const m = new Map<string, number[]>();
    for (const line of t.split(/\r?\n/)) {
      const match = /^\s*([A-Za-z0-9_]+):\s+(.*)$/.exec(line);
      if (!match) continue;
      const nums = match[2]!.trim().split(/\s+/).slice(0, cpus).map(Number);
      if (nums.length === cpus && nums.every(Number.isFinite)) m.set(match[1]!, nums);
    }
    return m;
  };
  const time = new Map<string, number[]>();
  for (const line of statText.split(/\r?\n/)) {
    const match = /^(cpu\d*)\s+(.*)$/.exec(line.trim());
    if (match) time.set(match[1]!, match[2]!.split(/\s+/).slice(0, 7).map(Number));
  }
  return { irqs: table(irqText), softirqs: table(softText), time };
}

const IRQ_NAMES: Record<string, string> = { LOC: "local timer", RES: "rescheduling IPI", CAL: "function call IPI", TLB: "TLB shootdown", IWI: "IRQ work" };
const TIME_FIELDS = ["user", "nice", "system", "idle", "iowait", "irq", "softirq"];

function guestContext(before: GuestCounters, after: GuestCounters, seconds: number, cpus: number): { text: string; loc: number } {
  const lines: string[] = [];
  const delta = (a: number[] | undefined, b: number[] | undefined) => Array.from({ length: cpus }, (_, i) => (b?.[i] ?? 0) - (a?.[i] ?? 0));
  const rateRow = (label: string, d: number[]) => `     ${label.padEnd(26)} ${d.map((n) => `${(n / seconds).toFixed(1).padStart(9)}/s`).join(" ")}`;
  lines.push(`   guest context (the guest's own counters around the window, per CPU):`);
  for (const [name, b] of after.irqs) {
    const d = delta(before.irqs.get(name), b);
    if (d.some((n) => n > 0)) lines.push(rateRow(`${name}${IRQ_NAMES[name] ? ` (${IRQ_NAMES[name]})` : ""}`, d));
  }
  for (const [name, b] of after.softirqs) {
    const d = delta(before.softirqs.get(name), b);
    if (d.some((n) => n > 0)) lines.push(rateRow(`softirq ${name}`, d));
  }
  for (let c = 0; c < cpus; c++) {
    const a = before.time.get(`cpu${c}`);
    const b = after.time.get(`cpu${c}`);
    if (!a || !b) continue;
    const d = b.map((n, i) => n - a[i]!);
    const total = d.reduce((x, y) => x + y, 0);
    lines.push(`     cpu${c} time: ${d.map((n, i) => `${TIME_FIELDS[i]} ${total ? ((100 * n) / total).toFixed(1) : "-"}%`).join(", ")}`);
  }
  const loc = delta(before.irqs.get("LOC"), after.irqs.get("LOC")).reduce((x, y) => x + y, 0);
  return { text: lines.join("\n"), loc };
}

// ------------------------------------------------------------------ page names

type SymbolTable = import("../../src/guests/symbols/system-map.ts").SymbolTable;

function pageNamer(symbols: SymbolTable | null): { name: (p: number) => string; group: (p: number) => string } {
  const image = symbols?.imagePages() ?? null;
  const region = (p: number) =>
    p < 0x100 ? "first MiB (firmware tables, real-mode trampoline)" : "outside the kernel image (page allocator: per-CPU areas, slab, page tables, page cache, user pages)";
  const symbolsOn = (p: number): string | null => {
    if (!symbols || !image || p < image.first || p > image.last) return null;
    const { symbols: on, more } = symbols.symbolsOnPage(p, 8);
    const real = on.filter((s) => !s.name.startsWith("section:"));
    if (real.length === 0) return on.length ? `in ${on[on.length - 1]!.name.slice("section:".length)}` : null;
    const shown = real.slice(0, 3);
    const rest = more + real.length - shown.length;
    return shown.map((s) => s.name).join(", ") + (rest ? ` +${rest} more` : "");
  };
  return {
    name: (p) => symbolsOn(p) ?? `(${region(p).split(" (")[0]})`,
    group: (p) => {
      const s = symbolsOn(p);
      return s ? `${s} [0x${p.toString(16)}]` : region(p);
    },
  };
}

// ------------------------------------------------------------------ the run

type Phase = "boot" | "idle" | "job";

const census: BenchModule = {
  prefixes: ["census."],
  async run(ctx) {
    const { ensureInstrumentedWasm } = await import("../../src/engine/instrument/ensure.ts");
    const { ensureGuestImages } = await import("../../src/guests/images.ts");
    const { buildFirmware } = await import("../../src/runtime/nodejs/firmware-build.ts");
    const { planLocalLinks } = await import("../../src/runtime/links/local-links.ts");
    const { startTsWorker } = await import("../../src/runtime/nodejs/ts-worker.ts");
    const { SymbolTable } = await import("../../src/guests/symbols/system-map.ts");
    const { faultCensus, formatCensus } = await import("../../src/protocol/telemetry/census.ts");
    const { wallClockMs } = await import("../../src/runtime/node/wall-clock.ts");

    const g = ensureGuestImages();
    const wasmPath = await ensureInstrumentedWasm();
    let symbols: SymbolTable | null = null;
    try {
      symbols = SymbolTable.fromSystemMap(readFileSync(g.systemMap, "utf8"));
    } catch (err) {
      ctx.log(`census: no kernel symbols (${(err as Error).message}); pages are named by number`);
    }
    const namer = pageNamer(symbols);
    const metrics: Metrics = {};
    const cpus = 2;

    ctx.log("census: Linux with 2 vCPUs in 2 workers, tracing every fault");
    const t0 = wallClockMs();
    const c = new CensusCluster(startTsWorker, planLocalLinks(2), wasmPath, {
      kind: "linux-smp",
      firmware: buildFirmware(),
      bzImage: g.bzImage,
      initramfs: g.initramfs,
      cmdline: g.cmdline,
      memoryMiB: 128,
    });
    try {
      const windows: Partial<Record<Phase, { startMs: number; endMs: number; stats: [NodeStats[], NodeStats[]]; guest?: { text: string; loc: number } }>> = {};
      const zero = (): NodeStats => ({ engine: { faults: 0, faultsByCause: { tlb: 0, physical: 0, dma: 0 } }, agent: { faults: 0, blockedMs: 0 }, dsm: {}, atMs: t0 });
      const allStats = () => Promise.all([0, 1].map((n) => c.stats(n)));
      await c.waitFor(PROMPT, 1_800_000);
      const prompt = wallClockMs();
      windows.boot = { startMs: t0, endMs: prompt, stats: [[zero(), zero()], await allStats()] };
      if (!/2 CPU\(s\) online/.test(c.output())) throw new Error(`the guest did not bring up 2 CPUs:\n${c.output().slice(-1500)}`);
      ctx.log(`census: prompt after ${((prompt - t0) / 1000).toFixed(1)} s`);

      // The job's input, made before the idle minute so that the minute is idle.
      await c.run(`seq 1 ${JOB_LINES} > /root/a; cp /root/a /root/b; sync`);

      // (b) an idle minute: the guest's counters before and after, nothing typed in between.
      ctx.log(`census: idle for ${IDLE_S} s at the prompt`);
      const idleBefore = parseGuestCounters(await c.run(GUEST_COUNTERS), cpus);
      await new Promise((r) => setTimeout(r, 1000));
      const idleStats0 = await allStats();
      const idleStart = wallClockMs();
      await new Promise((r) => setTimeout(r, IDLE_S * 1000));
      const idleEnd = wallClockMs();
      const idleStats1 = await allStats();
      const idleAfter = parseGuestCounters(await c.run(GUEST_COUNTERS), cpus);
      windows.idle = { startMs: idleStart, endMs: idleEnd, stats: [idleStats0, idleStats1], guest: guestContext(idleBefore, idleAfter, (idleEnd - idleStart) / 1000, cpus) };

      // (c) the parallel job: gzip of each file, one process pinned to each vCPU.
      ctx.log(`census: two gzip jobs pinned to vCPU 0 and 1 (${JOB_LINES} lines each)`);
      const jobBefore = parseGuestCounters(await c.run(GUEST_COUNTERS), cpus);
      const jobStats0 = await allStats();
      const jobStart = wallClockMs();
      const job = await c.run(`taskset 1 sh -c 'gzip -c /root/a | wc -c' & taskset 2 sh -c 'gzip -c /root/b | wc -c' & wait`, 1_200_000);
      const jobEnd = wallClockMs();
      const jobStats1 = await allStats();
      const jobAfter = parseGuestCounters(await c.run(GUEST_COUNTERS), cpus);
      const sizes = job.split(/\r?\n/).map((l) => l.trim()).filter((l) => /^\d+$/.test(l));
      if (sizes.length !== 2 || sizes[0] !== sizes[1] || Number(sizes[0]) < 1000) throw new Error(`the two gzip jobs did not print one equal size each: ${JSON.stringify(job)}`);
      windows.job = { startMs: jobStart, endMs: jobEnd, stats: [jobStats0, jobStats1], guest: guestContext(jobBefore, jobAfter, (jobEnd - jobStart) / 1000, cpus) };

      // The last reports (every 250 ms) must be in before the census is taken.
      await allStats();
      await new Promise((r) => setTimeout(r, 600));
      const events = c.allEvents();
      if (c.dropped) ctx.log(`census: the nodes dropped ${c.dropped} events over their per-report limit`);

      // The raw events and windows, for reading the census again without a run (.cache is not in git).
      const { mkdirSync, writeFileSync } = await import("node:fs");
      const { REPO_ROOT } = await import("../../src/guests/images.ts");
      const saved = `${REPO_ROOT}/.cache/census/last-run.json`;
      mkdirSync(`${REPO_ROOT}/.cache/census`, { recursive: true });
      writeFileSync(saved, JSON.stringify({ windows: Object.fromEntries(Object.entries(windows).map(([k, w]) => [k, { startMs: w.startMs, endMs: w.endMs }])), events }));
      ctx.log(`census: ${events.length} events saved in ${saved}`);

      const out: string[] = [];
      for (const phase of ["boot", "idle", "job"] as const) {
        const w = windows[phase]!;
        const cs = faultCensus(events, { startMs: w.startMs, endMs: w.endMs, name: namer.name, group: namer.group });
        const [s0, s1] = w.stats;
        const d = (f: (s: NodeStats) => number) => s1.reduce((a, s) => a + f(s), 0) - s0.reduce((a, s) => a + f(s), 0);
        const cause = { tlb: d((s) => s.engine.faultsByCause.tlb), physical: d((s) => s.engine.faultsByCause.physical), dma: d((s) => s.engine.faultsByCause.dma) };
        const engineFaults = cause.tlb + cause.physical + cause.dma;
        const dsm = (k: string) => d((s) => s.dsm[k] ?? 0);
        const title = { boot: "(a) boot, start to shell prompt", idle: `(b) idle at the prompt, ${IDLE_S} s`, job: "(c) two gzip processes pinned to vCPU 0 and vCPU 1" }[phase];
        out.push(formatCensus(title, cs, TOP));
        // Arithmetic, not a measurement: each remote fault waits for at least two one-way hops.
        out.push(`   at 10 ms one way these remote faults would wait at least ${((cs.remotePerSecond * 2 * 10) / 1000).toFixed(1)} s per second of this window (2 hops each)`);
        out.push(
          `   engine faults by cause (counters, whole window): tlb ${cause.tlb} (a data access or instruction fetch through the TLB: not told apart), ` +
            `physical ${cause.physical} (page walk: page-directory/table reads and A/D writes, and v86's own physical accesses), dma ${cause.dma} (device DMA)`,
        );
        out.push(
          `   DSM counters (whole window): read faults ${dsm("readFaults")}, write faults ${dsm("writeFaults")}, upgrades ${dsm("upgrades")}, requests ${dsm("requestsSent")}, ` +
            `grants with bytes ${dsm("pagesSentBytes")}, zero ${dsm("pagesSentZero")}, current ${dsm("pagesSentCurrent")}, invalidations ${dsm("invalidationsSent")}; agent faults ${d((s) => s.agent.faults)}`,
        );
        if (w.guest) {
          out.push(w.guest.text);
          if (w.guest.loc) out.push(`   remote faults per local timer interrupt (all CPUs): ${(cs.remote / w.guest.loc).toFixed(2)}; faults per interrupt ${(cs.faults / w.guest.loc).toFixed(2)}`);
        }
        out.push("");
        const top = cs.pageRows.slice(0, 3).map((r) => `0x${r.page.toString(16)} ${r.name} ${r.faults}`).join("; ");
        const pre = `census.${phase}`;
        metrics[`${pre}_s.2`] = { value: cs.seconds, unit: "s", note: `${title}; window length` };
        metrics[`${pre}_faults.2`] = { value: cs.faults, unit: "count", note: `DSM faults (fault events) in the window; ${cs.remote} remote` };
        metrics[`${pre}_faults_per_s.2`] = { value: cs.faultsPerSecond, unit: "/s", note: `DSM faults per second, both vCPUs; top pages: ${top}` };
        metrics[`${pre}_remote_per_s.2`] = { value: cs.remotePerSecond, unit: "/s", note: "faults that waited for a message from the other node, per second" };
        metrics[`${pre}_pages.2`] = { value: cs.pages, unit: "count", note: "distinct pages faulted" };
        metrics[`${pre}_top20_share.2`] = { value: cs.faults ? cs.pageRows.slice(0, TOP).reduce((a, r) => a + r.faults, 0) / cs.faults : 0, unit: "fraction", note: "share of the faults on the 20 most-faulted pages" };
        metrics[`${pre}_write_share.2`] = { value: cs.faults ? cs.byAccess.write / cs.faults : 0, unit: "fraction", note: "share of write faults (the rest are reads)" };
        metrics[`${pre}_bounce_share.2`] = { value: cs.faults ? cs.bounces / cs.faults : 0, unit: "fraction", note: "share of faults on a page whose previous fault was the other vCPU's" };
        metrics[`${pre}_pagewalk_share.2`] = { value: engineFaults ? cause.physical / engineFaults : 0, unit: "fraction", note: "engine faults of cause 'physical' (page walks and v86's physical accesses) / all engine faults" };
        metrics[`${pre}_fault_us.2`] = { value: cs.meanRemoteUs, unit: "µs", note: "mean duration of a remote fault (2 workers, shared-memory links)" };
        if (w.guest?.loc) metrics[`${pre}_faults_per_tick.2`] = { value: cs.faults / w.guest.loc, unit: "ratio", note: `DSM faults per local timer interrupt (the guest's LOC count, ${TICK_HZ} Hz per CPU)` };
      }
      metrics["census.dropped_events.2"] = { value: c.dropped, unit: "count", note: "trace events the nodes could not keep (over 50,000 per 250 ms report)" };
      console.log(out.join("\n"));
      return metrics;
    } finally {
      await c.end();
    }
  },
};

export default census;
