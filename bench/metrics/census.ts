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
// added to the nodes: no field of the events is new. The worker also answers "peek" (the bytes of
// pages it holds, for reading kernel structures: per-CPU offsets, the scheduler's domains).
//
// Guest configuration (issue 16: keep work local with standard, documented settings):
//   GIANTWEB_CENSUS_CMDLINE      appended to the kernel command line
//   GIANTWEB_CENSUS_GUEST_SETUP  shell commands typed at the prompt before the windows (sysctl,
//                                debugfs tunables...); what they print is logged
//   GIANTWEB_CENSUS_GUEST_AFTER  shell commands typed after the last window (reading a trace, say);
//                                what they print is in the tables
//   GIANTWEB_CENSUS_LABEL        the configuration's name in the tables and the saved run
//   GIANTWEB_HOLD_MS             every node's DSM hold window in ms (VcpuNodeConfig.holdMs; default
//                                the runtime's default)
//   GIANTWEB_APIC_TIMER          "wall" or "running": what every vCPU's APIC timer counts
//                                (VcpuNodeConfig.apicTimer; default the runtime's default)
//   GIANTWEB_SPIN_WAIT           "on" or "off": whether a vCPU spinning on the clock blocks on its
//                                doorbell (ServeOptions.spinWait; default the runtime's default)
//   GIANTWEB_CENSUS_DUMP=1       after the idle window, write guest RAM (each page from the node that
//                                holds it) to .cache/census/memory.bin, for reading kernel structures
//   GIANTWEB_CENSUS_SYSTEM_MAP   a full System.map (Debian's linux-image-*-dbg) to name static and
//                                per-CPU variables that the kallsyms map lacks (no KALLSYMS_ALL)
//   GIANTWEB_CENSUS_DELAY_MS     the far windows' one-way delay (default 0: no far windows; 10 for
//                                linux.speedup.2.10ms)
//   GIANTWEB_CENSUS_DELAY_LINES  lines of each far window's gzip input (default 40,000)
//   GIANTWEB_CENSUS_FAR_LIMIT_S  how long each command typed at a distance may take (default 900)
// Windows: (a) boot, (b) idle, (c1) one gzip alone on vCPU 0, (c) two gzip pinned to vCPU 0 and 1;
// linux.speedup.2 = 2 x t(c1) / t(c), linux.idle_faults_per_s.2 = remote faults/s in (b).
// Then the far windows, the same pair with the latency knob at 10 ms one way on both nodes (each
// node delays what it sends, as the live view's knob does): (d1) one gzip alone, (d) two at once,
// on smaller inputs (every remote fault then costs at least 20 ms); linux.speedup.2.10ms = 2 x
// t(d1) / t(d). Off by default: at 10 ms the first run never finished (d1) (CPU 0 reported a soft
// lockup of 283 s and a `cat /proc/interrupts` did not end in 600 s); the far windows then end at
// their limit, the knob goes off, the guest's answer is awaited, and the rest of the census stands.

import { readFileSync } from "node:fs";
import { isMainThread, parentPort, workerData, type Worker } from "node:worker_threads";
import type { ReportEvent } from "../../src/protocol/messages.ts";
import type { BenchModule, Metrics } from "../types.ts";
import { checkApicTimerClock, DEFAULT_APIC_TIMER, type ApicTimerClock } from "../../src/runtime/node/apic-timer-clock.ts";

const WORKER_TAG = "giantweb-census-node";
const PROMPT = /giantweb:\/root# /;
const TICK_HZ = 250; // Debian's i386 kernel: CONFIG_HZ_250, periodic tick
const IDLE_S = Number(process.env.GIANTWEB_CENSUS_IDLE_S ?? 60);
/** Lines of generated text per gzip input (busybox seq: 1..N, one number a line). */
const JOB_LINES = Number(process.env.GIANTWEB_CENSUS_JOB_LINES ?? 150_000);
const TOP = 20;
const EXTRA_CMDLINE = (process.env.GIANTWEB_CENSUS_CMDLINE ?? "").trim();
const GUEST_SETUP = (process.env.GIANTWEB_CENSUS_GUEST_SETUP ?? "").trim();
const GUEST_AFTER = (process.env.GIANTWEB_CENSUS_GUEST_AFTER ?? "").trim();
const LABEL = (process.env.GIANTWEB_CENSUS_LABEL ?? "").trim() || (EXTRA_CMDLINE || GUEST_SETUP ? "custom" : "default");
const FULL_MAP = (process.env.GIANTWEB_CENSUS_SYSTEM_MAP ?? "").trim();
const PAGE = 4096;
const DUMP = process.env.GIANTWEB_CENSUS_DUMP === "1";
const HOLD_MS = process.env.GIANTWEB_HOLD_MS === undefined ? undefined : Number(process.env.GIANTWEB_HOLD_MS);
const APIC_TIMER = process.env.GIANTWEB_APIC_TIMER === undefined ? undefined : checkApicTimerClock(process.env.GIANTWEB_APIC_TIMER);
const SPIN_WAIT = process.env.GIANTWEB_SPIN_WAIT === undefined ? undefined : onOff("GIANTWEB_SPIN_WAIT", process.env.GIANTWEB_SPIN_WAIT);
function onOff(name: string, v: string): boolean {
  if (v !== "on" && v !== "off") throw new Error(`${name} must be "on" or "off", got ${JSON.stringify(v)}`);
  return v === "on";
}
const DELAY_MS = Number(process.env.GIANTWEB_CENSUS_DELAY_MS ?? 0);
const FAR_LIMIT_S = Number(process.env.GIANTWEB_CENSUS_FAR_LIMIT_S ?? 900);
const DELAY_LINES = Number(process.env.GIANTWEB_CENSUS_DELAY_LINES ?? 40_000);

// ------------------------------------------------------------------ the node worker

interface NodeData {
  tag: typeof WORKER_TAG;
  plan: import("../../src/runtime/links/local-links.ts").LocalLinksPlan;
  wasmPath: string;
  guest: import("../../src/runtime/nodejs/guest-files.ts").GuestFiles;
  vcpu: number;
  vcpuNodes: number[];
  deviceNode: number;
  holdMs?: number;
  apicTimer?: ApicTimerClock;
  spinWait?: boolean;
}

async function nodeWorker(d: NodeData): Promise<void> {
  const { guestSetup } = await import("../../src/machine/guest-setup.ts");
  const { startVcpuNode } = await import("../../src/runtime/node/vcpu-node.ts");
  const { readGuestFiles } = await import("../../src/runtime/nodejs/guest-files.ts");
  const { NodeViewRecorder } = await import("../../src/runtime/node/view-recorder.ts");
  const { wallClockMs } = await import("../../src/runtime/node/wall-clock.ts");
  const { delayLinks } = await import("../../src/runtime/links/link-delay.ts");
  const { v86, bootWrites } = guestSetup(readGuestFiles(d.guest), { first: d.plan.self === 0, cpus: d.vcpuNodes.length });
  const node = await startVcpuNode({
    plan: d.plan,
    wasm: new Uint8Array(readFileSync(d.wasmPath)),
    v86,
    vcpu: d.vcpu,
    vcpuNodes: d.vcpuNodes,
    deviceNode: d.deviceNode,
    bootWrites,
    ...(d.holdMs !== undefined ? { holdMs: d.holdMs } : {}),
    ...(d.apicTimer !== undefined ? { apicTimer: d.apicTimer } : {}),
    ...(d.spinWait !== undefined ? { serve: { spinWait: d.spinWait } } : {}),
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
  // The latency knob for the far windows (this module's env, read by the worker too): every frame
  // this node sends waits this long once they start. Without far windows the links stay unwrapped.
  let delayMs = 0;
  if (DELAY_MS > 0) delayLinks(node.links, () => delayMs);
  const report = () => {
    const r = recorder.take();
    parentPort!.postMessage({ kind: "events", events: r.events, dropped: r.droppedEvents });
  };
  setInterval(report, 250);
  parentPort!.on("message", (m) => {
    if (m.kind === "send") node.vcpu.sendSerial(m.text);
    if (m.kind === "delay") {
      delayMs = m.ms as number;
      parentPort!.postMessage({ kind: "delayed", ms: delayMs });
    }
    if (m.kind === "peek") {
      // The bytes of each page this node holds (a copy or the page), null for a page it does not.
      const pages: (Uint8Array | null)[] = [];
      for (let p = m.page as number; p < (m.page as number) + (m.count as number); p++)
        pages.push(node.dsm.pageState(p) === "invalid" ? null : node.vcpu.emulator.read_memory(p * 4096, 4096).slice());
      parentPort!.postMessage({ kind: "peek", page: m.page, pages });
    }
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
  /** Where the output of the last command typed by run() begins. */
  private lastCommandAt = 0;
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
      const data: NodeData = { tag: WORKER_TAG, plan: { ...plan, self }, wasmPath, guest, vcpu: self, vcpuNodes: [0, 1], deviceNode: 0, ...(HOLD_MS !== undefined ? { holdMs: HOLD_MS } : {}), ...(APIC_TIMER !== undefined ? { apicTimer: APIC_TIMER } : {}), ...(SPIN_WAIT !== undefined ? { spinWait: SPIN_WAIT } : {}) };
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
    this.lastCommandAt = mark;
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

  /** Waits for the end marker of the last command run() typed (after its own wait gave up). */
  lastCommandDone(ms: number): Promise<string> {
    return this.waitFor(/==done\r?\n/, ms, this.lastCommandAt);
  }

  /** Sets the added one-way delay on every frame both nodes send; resolves when both use it. */
  setDelay(ms: number): Promise<void> {
    return Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            const on = (m: { kind: string }) => m.kind === "delayed" && (w.off("message", on), resolve());
            w.on("message", on);
            w.postMessage({ kind: "delay", ms });
          }),
      ),
    ).then(() => undefined);
  }

  /** Pages [page, page + count) as the node that holds each sees it (null: neither holds it). */
  async peek(page: number, count: number): Promise<(Uint8Array | null)[]> {
    const one = (node: number) =>
      new Promise<(Uint8Array | null)[]>((resolve) => {
        const w = this.workers[node]!;
        const on = (m: { kind: string; page?: number; pages?: (Uint8Array | null)[] }) => m.kind === "peek" && m.page === page && (w.off("message", on), resolve(m.pages!));
        w.on("message", on);
        w.postMessage({ kind: "peek", page, count });
      });
    const [a, b] = await Promise.all([one(0), one(1)]);
    return a.map((x, i) => x ?? b[i] ?? null);
  }

  /** `length` bytes at a physical address, or null when a page is held by no node. */
  async readPhys(address: number, length: number): Promise<Uint8Array | null> {
    const first = Math.floor(address / PAGE);
    const last = Math.floor((address + length - 1) / PAGE);
    const pages = await this.peek(first, last - first + 1);
    if (pages.some((p) => !p)) return null;
    const all = new Uint8Array(pages.length * PAGE);
    pages.forEach((p, i) => all.set(p!, i * PAGE));
    return all.slice(address - first * PAGE, address - first * PAGE + length);
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

function guestContext(before: GuestCounters, after: GuestCounters, seconds: number, cpus: number): { text: string; loc: number; locPerCpu: number[] } {
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
  const locPerCpu = delta(before.irqs.get("LOC"), after.irqs.get("LOC"));
  return { text: lines.join("\n"), loc: locPerCpu.reduce((x, y) => x + y, 0), locPerCpu };
}

/** The machine's CPU time from /proc/stat (jiffies, all cores): total and idle (idle + iowait). */
function machineCpu(): { total: number; idle: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { total: f.reduce((a, b) => a + b, 0), idle: (f[3] ?? 0) + (f[4] ?? 0) };
  } catch {
    return { total: 0, idle: 0 };
  }
}

// ------------------------------------------------------------------ page names

type SymbolTable = import("../../src/guests/symbols/system-map.ts").SymbolTable;
type KernelSymbol = import("../../src/guests/symbols/system-map.ts").KernelSymbol;
type PerCpuLayout = import("../../src/protocol/telemetry/census.ts").PerCpuLayout;
type NamedObject = import("../../src/protocol/telemetry/census.ts").NamedObject;
type Census = typeof import("../../src/protocol/telemetry/census.ts");

interface Naming {
  symbols: SymbolTable | null;
  perCpu: PerCpuLayout | null;
  objects: readonly NamedObject[];
}

function pageNamer(n: Naming, census: Census): { name: (p: number) => string; group: (p: number) => string } {
  const { symbols } = n;
  const image = symbols?.imagePages() ?? null;
  const realNames = (physPage: number, max: number) => (symbols ? symbols.symbolsOnPage(physPage, max).symbols.filter((s) => !s.name.startsWith("section:")).map((s) => s.name) : []);
  const outside = (p: number): string | null => {
    if (n.perCpu) {
      const link = census.perCpuPlace(n.perCpu, p);
      if (link) return census.perCpuPageName(n.perCpu, p, (a) => realNames((a - n.perCpu!.pageOffset) / PAGE, 8), 4);
    }
    const objs = census.objectsOnPage(n.objects, p);
    return objs.length ? objs.slice(0, 4).join(", ") + (objs.length > 4 ? ` +${objs.length - 4} more` : "") : null;
  };
  const region = (p: number) =>
    p < 0x100 ? "first MiB (firmware tables, real-mode trampoline)" : "outside the kernel image (page allocator: per-CPU areas, slab, page tables, page cache, user pages)";
  const symbolsOn = (p: number): string | null => {
    if (!symbols || !image || p < image.first || p > image.last) return outside(p);
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

// ------------------------------------------------------------------ kernel structures in guest memory

const u32 = (b: Uint8Array, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

/** The per-CPU layout: `__per_cpu_offset[]` read from guest memory, the section from the symbols. */
async function readPerCpuLayout(c: CensusCluster, symbols: readonly KernelSymbol[], cpus: number, pageOffset: number): Promise<PerCpuLayout | null> {
  const at = (name: string) => symbols.find((s) => s.name === name)?.address;
  const table = at("__per_cpu_offset");
  const start = at("__per_cpu_start") ?? at("section:.data..percpu");
  // The section ends at __per_cpu_end (a full map) or at the next section's start (the kallsyms map).
  const end = at("__per_cpu_end") ?? symbols.filter((s) => s.name.startsWith("section:") && start !== undefined && s.address > start).map((s) => s.address).sort((a, b) => a - b)[0];
  if (table === undefined || start === undefined || end === undefined) return null;
  const bytes = await c.readPhys(table - pageOffset, 4 * cpus);
  if (!bytes) return null;
  const offsets = Array.from({ length: cpus }, (_, i) => u32(bytes, 4 * i));
  // The first chunk's units sit side by side: the smallest distance between two is the unit size.
  const sorted = [...offsets].sort((a, b) => a - b);
  const gaps = sorted.slice(1).map((o, i) => o - sorted[i]!).filter((d) => d >= end - start);
  return { pageOffset, start, end, offsets, ...(gaps.length ? { unitSize: Math.min(...gaps) } : {}) };
}

/**
 * Debian's 6.1 686 kernel (linux-image-6.1.0-57-686, 6.1.192-3), from its debug package's DWARF:
 * where the scheduler keeps its domains. Checked against the running kernel (the kallsyms map's
 * __per_cpu_offset and section addresses, and the domains' names read back); another build is skipped.
 */
const SCHED_LAYOUT = {
  fingerprint: { __per_cpu_offset: 0xc1bcb580, "section:.data..percpu": 0xc1e5c000 } as Record<string, number>,
  runqueues: 0xc1e74640, // per-CPU struct rq (2112 bytes)
  rq: { rd: 0x648, sd: 0x64c, size: 2112 },
  sd: { parent: 0, groups: 8, name: 236, shared: 248, spanWeight: 252, size: 256 + 4 }, // + cpumask (NR_CPUS 32)
  sg: { next: 0, sgc: 12, cpumask: 24, size: 24 + 4 },
  sgc: { cpumask: 28, size: 28 + 4 },
  sdsSize: 16,
  rdSize: 944,
};

/** The scheduler's domains, groups, group capacities, shared data and root domain, as named objects. */
async function readSchedObjects(c: CensusCluster, symbols: readonly KernelSymbol[], perCpu: PerCpuLayout, pageOffset: number, log: (m: string) => void): Promise<NamedObject[]> {
  const L = SCHED_LAYOUT;
  for (const [name, addr] of Object.entries(L.fingerprint))
    if (symbols.find((s) => s.name === name)?.address !== addr) {
      log(`census: the kernel is not the build SCHED_LAYOUT was read from (${name}); the scheduler's objects are not named`);
      return [];
    }
  const lowmem = (va: number) => va >= pageOffset && va < pageOffset + 0x3800_0000;
  const read = async (va: number, n: number) => (lowmem(va) ? c.readPhys(va - pageOffset, n) : null);
  const str = async (va: number) => {
    const b = await read(va, 16);
    if (!b) return "?";
    const z = b.indexOf(0);
    return new TextDecoder().decode(b.subarray(0, z < 0 ? 16 : z));
  };
  const mask = (m: number) => `{${Array.from({ length: 32 }, (_, i) => i).filter((i) => (m >>> i) & 1).join(",")}}`;
  const objects: NamedObject[] = [];
  const add = (name: string, va: number, size: number) => {
    if (!objects.some((o) => o.name === name && o.address === va - pageOffset)) objects.push({ name, address: va - pageOffset, size });
  };
  for (let cpu = 0; cpu < perCpu.offsets.length; cpu++) {
    const rqVa = (L.runqueues + perCpu.offsets[cpu]!) >>> 0;
    const rq = await read(rqVa, L.rq.size);
    if (!rq) continue;
    const rd = u32(rq, L.rq.rd);
    if (lowmem(rd)) add("root_domain", rd, L.rdSize);
    let sdVa = u32(rq, L.rq.sd);
    for (let level = 0; level < 8 && lowmem(sdVa); level++) {
      const sd = await read(sdVa, L.sd.size);
      if (!sd) break;
      const name = await str(u32(sd, L.sd.name));
      if (!/^[A-Z]{2,5}$/.test(name)) {
        log(`census: CPU ${cpu}'s sched_domain at 0x${sdVa.toString(16)} has no domain name (read "${name}"); its objects are not named`);
        break;
      }
      add(`sched_domain ${name} of CPU ${cpu}`, sdVa, L.sd.size);
      const shared = u32(sd, L.sd.shared);
      if (lowmem(shared)) add(`sched_domain_shared ${name}`, shared, L.sdsSize);
      let sgVa = u32(sd, L.sd.groups);
      for (let i = 0; i < 32 && lowmem(sgVa); i++) {
        const sg = await read(sgVa, L.sg.size);
        if (!sg) break;
        const cpusOf = mask(u32(sg, L.sg.cpumask));
        add(`sched_group ${cpusOf} of ${name} (CPU ${cpu})`, sgVa, L.sg.size);
        const sgc = u32(sg, L.sg.sgc);
        if (lowmem(sgc)) add(`sched_group_capacity ${cpusOf} ${name}`, sgc, L.sgc.size);
        sgVa = u32(sg, L.sg.next);
        if (sgVa === u32(sd, L.sd.groups)) break;
      }
      sdVa = u32(sd, L.sd.parent);
    }
  }
  return objects;
}

// ------------------------------------------------------------------ the run

type Phase = "boot" | "idle" | "one" | "job" | "one10" | "job10";

const census: BenchModule = {
  prefixes: ["census.", "linux."],
  async run(ctx) {
    const { ensureInstrumentedWasm } = await import("../../src/engine/instrument/ensure.ts");
    const { ensureGuestImages } = await import("../../src/guests/images.ts");
    const { buildFirmware } = await import("../../src/runtime/nodejs/firmware-build.ts");
    const { planLocalLinks } = await import("../../src/runtime/links/local-links.ts");
    const { startTsWorker } = await import("../../src/runtime/nodejs/ts-worker.ts");
    const { SymbolTable, parseSystemMap, I386_PAGE_OFFSET } = await import("../../src/guests/symbols/system-map.ts");
    const censusLib = await import("../../src/protocol/telemetry/census.ts");
    const { faultCensus, formatCensus } = censusLib;
    const { wallClockMs } = await import("../../src/runtime/node/wall-clock.ts");

    const { MAX_ADDED_DELAY_MS } = await import("../../src/protocol/types.ts");
    if (!Number.isInteger(DELAY_MS) || DELAY_MS < 0 || DELAY_MS > MAX_ADDED_DELAY_MS) throw new RangeError(`GIANTWEB_CENSUS_DELAY_MS must be an integer in 0..${MAX_ADDED_DELAY_MS}, got ${process.env.GIANTWEB_CENSUS_DELAY_MS}`);
    if (!(FAR_LIMIT_S > 0)) throw new RangeError(`GIANTWEB_CENSUS_FAR_LIMIT_S must be a positive number of seconds, got ${process.env.GIANTWEB_CENSUS_FAR_LIMIT_S}`);
    if (!Number.isInteger(DELAY_LINES) || DELAY_LINES < 1000) throw new RangeError(`GIANTWEB_CENSUS_DELAY_LINES must be an integer of at least 1000, got ${process.env.GIANTWEB_CENSUS_DELAY_LINES}`);
    const g = ensureGuestImages();
    const wasmPath = await ensureInstrumentedWasm();
    // The kallsyms map (text, exports, section starts) locates __per_cpu_offset and fingerprints the
    // build; a full System.map, when given, names the static and per-CPU variables too.
    let mapSymbols: KernelSymbol[] = [];
    let symbols: SymbolTable | null = null;
    try {
      mapSymbols = parseSystemMap(readFileSync(g.systemMap, "utf8"));
      symbols = new SymbolTable(mapSymbols);
    } catch (err) {
      ctx.log(`census: no kernel symbols (${(err as Error).message}); pages are named by number`);
    }
    if (FULL_MAP) {
      try {
        symbols = SymbolTable.fromSystemMap(readFileSync(FULL_MAP, "utf8"));
        ctx.log(`census: naming with ${FULL_MAP} (${symbols.size} symbols)`);
      } catch (err) {
        ctx.log(`census: GIANTWEB_CENSUS_SYSTEM_MAP=${FULL_MAP} not used (${(err as Error).message})`);
      }
    }
    const naming: Naming = { symbols, perCpu: null, objects: [] };
    const metrics: Metrics = {};
    const cpus = 2;
    const cmdline = EXTRA_CMDLINE ? `${g.cmdline} ${EXTRA_CMDLINE}` : g.cmdline;

    ctx.log(`census [${LABEL}]: Linux with 2 vCPUs in 2 workers, tracing every fault; cmdline "${cmdline}"${HOLD_MS !== undefined ? `; hold window ${HOLD_MS} ms` : ""}; APIC timer ${APIC_TIMER ?? DEFAULT_APIC_TIMER}; spin wait ${SPIN_WAIT === undefined ? "default (on)" : SPIN_WAIT ? "on" : "off"}`);
    const t0 = wallClockMs();
    const c = new CensusCluster(startTsWorker, planLocalLinks(2), wasmPath, {
      kind: "linux-smp",
      firmware: buildFirmware(),
      bzImage: g.bzImage,
      initramfs: g.initramfs,
      cmdline,
      memoryMiB: 128,
    });
    try {
      type Window = { startMs: number; endMs: number; stats: [NodeStats[], NodeStats[]]; guest?: { text: string; loc: number; locPerCpu: number[] }; host?: string };
      const windows: Partial<Record<Phase, Window>> = {};
      const zero = (): NodeStats => ({ engine: { faults: 0, faultsByCause: { tlb: 0, physical: 0, dma: 0 } }, agent: { faults: 0, blockedMs: 0 }, dsm: {}, atMs: t0 });
      const allStats = () => Promise.all([0, 1].map((n) => c.stats(n)));
      await c.waitFor(PROMPT, 1_800_000);
      const prompt = wallClockMs();
      windows.boot = { startMs: t0, endMs: prompt, stats: [[zero(), zero()], await allStats()] };
      if (!/2 CPU\(s\) online/.test(c.output())) throw new Error(`the guest did not bring up 2 CPUs:\n${c.output().slice(-1500)}`);
      ctx.log(`census: prompt after ${((prompt - t0) / 1000).toFixed(1)} s`);

      // The configuration under test, then what the guest says about itself.
      const setupLog: string[] = [];
      if (GUEST_SETUP) {
        const said = await c.run(GUEST_SETUP);
        setupLog.push(`guest setup: ${GUEST_SETUP}`, ...said.trim().split(/\r?\n/).filter(Boolean).map((l) => `  | ${l}`));
      }
      const info = await c.run(
        "cat /proc/cmdline; grep -H . /proc/sys/kernel/sched_autogroup_enabled /proc/sys/vm/stat_interval /proc/sys/kernel/watchdog 2>/dev/null; " +
          "grep -H . /sys/kernel/debug/sched/domains/cpu*/domain*/name /sys/kernel/debug/sched/domains/cpu*/domain*/*_interval /sys/kernel/debug/sched/domains/cpu*/domain*/busy_factor 2>/dev/null; " +
          "grep -H . /sys/devices/system/clocksource/clocksource0/current_clocksource /proc/irq/*/smp_affinity_list 2>/dev/null | head -20",
      );
      setupLog.push(...info.trim().split(/\r?\n/).filter(Boolean).map((l) => `  | ${l}`));
      ctx.log(`census [${LABEL}]:\n${setupLog.join("\n")}`);

      // Names for pages outside the kernel image: each CPU's per-CPU area, the scheduler's objects.
      naming.perCpu = await readPerCpuLayout(c, mapSymbols, cpus, I386_PAGE_OFFSET);
      if (naming.perCpu) {
        ctx.log(`census: __per_cpu_offset ${naming.perCpu.offsets.map((o, i) => `CPU ${i} 0x${o.toString(16)} (unit at physical page 0x${Math.floor((((naming.perCpu!.start + o) >>> 0) - I386_PAGE_OFFSET) / PAGE).toString(16)})`).join(", ")}`);
        naming.objects = await readSchedObjects(c, mapSymbols, naming.perCpu, I386_PAGE_OFFSET, ctx.log);
        for (const o of naming.objects) ctx.log(`census:   ${o.name} at physical 0x${o.address.toString(16)} (page 0x${Math.floor(o.address / PAGE).toString(16)}), ${o.size} bytes`);
      } else ctx.log("census: __per_cpu_offset not read; per-CPU pages are not named");

      // The jobs' inputs, made before the idle minute so that the minute is idle.
      await c.run(`seq 1 ${JOB_LINES} > /root/a; cp /root/a /root/b; seq 1 ${DELAY_LINES} > /root/c; cp /root/c /root/d; sync`);

      const counted = async (run: () => Promise<void>, long = false, commandMs = 600_000): Promise<Window> => {
        const before = parseGuestCounters(await c.run(GUEST_COUNTERS, commandMs), cpus);
        if (long) await new Promise((r) => setTimeout(r, 1000));
        const s0 = await allStats();
        const cpu0 = process.cpuUsage();
        const machine0 = machineCpu();
        const startMs = wallClockMs();
        await run();
        const endMs = wallClockMs();
        const cpu = process.cpuUsage(cpu0);
        const machine1 = machineCpu();
        const s1 = await allStats();
        const after = parseGuestCounters(await c.run(GUEST_COUNTERS, commandMs), cpus);
        // Whether the host gave the vCPUs their cores (the machine is shared): this process's CPU
        // time (both node workers and the main thread) and the machine's busy share in the window.
        const wallS = (endMs - startMs) / 1000;
        const busy = machine1.total > machine0.total ? 1 - (machine1.idle - machine0.idle) / (machine1.total - machine0.total) : NaN;
        const host = `   host: this process used ${((cpu.user + cpu.system) / 1e6 / wallS).toFixed(2)} CPU-s per s of ${(await import("node:os")).cpus().length} cores; the machine was ${(100 * busy).toFixed(0)}% busy; load average ${(await import("node:os")).loadavg()[0]!.toFixed(1)}`;
        return { startMs, endMs, stats: [s0, s1], guest: guestContext(before, after, wallS, cpus), host };
      };
      // busybox gzip of /root/<file> on the vCPUs in `mask` (taskset), printing the compressed size.
      const gzipOn = (mask: number, file: string) => `taskset ${mask} sh -c 'gzip -c /root/${file} | wc -c'`;
      const gzipSizes = (text: string, n: number) => {
        const sizes = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => /^\d+$/.test(l));
        if (sizes.length !== n || sizes.some((x) => x !== sizes[0]) || Number(sizes[0]) < 1000) throw new Error(`the gzip job did not print ${n} equal size(s): ${JSON.stringify(text)}`);
      };

      // (b) idle: the guest's counters before and after, nothing typed in between.
      ctx.log(`census: idle for ${IDLE_S} s at the prompt`);
      windows.idle = await counted(() => new Promise((r) => setTimeout(r, IDLE_S * 1000)), true);
      if (DUMP) {
        const { writeFileSync } = await import("node:fs");
        const { REPO_ROOT } = await import("../../src/guests/images.ts");
        const ram = new Uint8Array(128 << 20);
        let missing = 0;
        for (let p = 0; p < ram.length / PAGE; p += 1024)
          (await c.peek(p, 1024)).forEach((b, i) => (b ? ram.set(b, (p + i) * PAGE) : missing++));
        writeFileSync(`${REPO_ROOT}/.cache/census/memory.bin`, ram);
        ctx.log(`census: guest RAM written to .cache/census/memory.bin (${missing} pages held by no node)`);
      }

      // A warm-up after the idle window (pinned tasks leave the scheduler's balance intervals long:
      // a balance that finds only pinned tasks doubles them up to 512 ms, so the idle window comes
      // first, in the state a fresh guest is in): one gzip on each vCPU, so that (c1) and (c) both
      // find busybox's code compiled by each worker's JIT and the files' pages where a reader left
      // them (a first run on a vCPU took 1.7x longer).
      ctx.log("census: warm-up, one gzip on each vCPU in turn");
      await c.run(`${gzipOn(1, "a")}; ${gzipOn(2, "b")}`, 1_200_000);

      // (c1) one gzip alone on vCPU 0, the same work as each of (c)'s two: the speedup's baseline.
      ctx.log(`census: one gzip on vCPU 0 (${JOB_LINES} lines)`);
      windows.one = await counted(async () => gzipSizes(await c.run(gzipOn(1, "a"), 1_200_000), 1));

      // (c) the parallel job: gzip of each file, one process pinned to each vCPU.
      ctx.log(`census: two gzip jobs pinned to vCPU 0 and 1 (${JOB_LINES} lines each)`);
      windows.job = await counted(async () => gzipSizes(await c.run(`${gzipOn(1, "a")} & ${gzipOn(2, "b")} & wait`, 1_200_000), 2));

      // (d1) and (d): the same pair at a distance, on inputs small enough to finish. A warm-up without
      // delay first leaves each small file's pages with the vCPU that reads it, as for (c1) and (c).
      let farFailure: string | null = null;
      if (DELAY_MS > 0) {
        await c.run(`${gzipOn(1, "c")}; ${gzipOn(2, "d")}`, 1_200_000);
        const farStart = wallClockMs();
        const mark = c.output().length;
        await c.setDelay(DELAY_MS);
        // Each command typed at a distance may take FAR_LIMIT_S; one that does not finish ends the far windows.
        const far = FAR_LIMIT_S * 1000;
        try {
          ctx.log(`census: latency knob at ${DELAY_MS} ms one way; one gzip on vCPU 0 (${DELAY_LINES} lines)`);
          windows.one10 = await counted(async () => gzipSizes(await c.run(gzipOn(1, "c"), far), 1), false, far);
          ctx.log(`census: two gzip jobs pinned to vCPU 0 and 1 at ${DELAY_MS} ms (${DELAY_LINES} lines each)`);
          windows.job10 = await counted(async () => gzipSizes(await c.run(`${gzipOn(1, "c")} & ${gzipOn(2, "d")} & wait`, far), 2), false, far);
        } catch (err) {
          // The guest is still working through what was typed: without the delay it finishes, and
          // its last command's end marker says the console is ours again.
          farFailure = `${(err as Error).message.split("\n")[0]} (after ${((wallClockMs() - farStart) / 1000).toFixed(0)} s); the guest's console meanwhile:\n${c.output().slice(mark).slice(-1500)}`;
          delete windows.one10;
          delete windows.job10;
          ctx.log(`census: far windows at ${DELAY_MS} ms abandoned: ${farFailure}`);
        } finally {
          await c.setDelay(0);
        }
        if (farFailure) {
          const rest = c.output().length;
          await c.lastCommandDone(1_200_000); // the command that timed out
          await c.run("echo resync", 600_000);
          ctx.log(`census: the guest answered again ${((wallClockMs() - farStart) / 1000).toFixed(0)} s after the knob went on (${c.output().length - rest} console bytes since)`);
        }
      }

      const afterLog: string[] = [];
      if (GUEST_AFTER) {
        const said = await c.run(GUEST_AFTER, 600_000);
        afterLog.push(`after the windows: ${GUEST_AFTER}`, ...said.trim().split(/\r?\n/).filter(Boolean).map((l) => `  | ${l}`));
      }

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
      writeFileSync(
        saved,
        JSON.stringify({
          label: LABEL,
          cmdline,
          setup: GUEST_SETUP,
          perCpu: naming.perCpu,
          objects: naming.objects,
          windows: Object.fromEntries(Object.entries(windows).map(([k, w]) => [k, { startMs: w.startMs, endMs: w.endMs, locPerCpu: w.guest?.locPerCpu }])),
          events,
        }),
      );
      ctx.log(`census: ${events.length} events saved in ${saved}`);

      const namer = pageNamer(naming, censusLib);
      const out: string[] = [`== configuration [${LABEL}]`, `   cmdline: ${cmdline}`, ...setupLog.map((l) => `   ${l}`), ""];
      const seconds: Partial<Record<Phase, number>> = {};
      for (const phase of ["boot", "idle", "one", "job", "one10", "job10"] as const) {
        const w = windows[phase];
        if (!w) continue;
        const cs = faultCensus(events, { startMs: w.startMs, endMs: w.endMs, name: namer.name, group: namer.group });
        seconds[phase] = cs.seconds;
        const [s0, s1] = w.stats;
        const d = (f: (s: NodeStats) => number) => s1.reduce((a, s) => a + f(s), 0) - s0.reduce((a, s) => a + f(s), 0);
        const cause = { tlb: d((s) => s.engine.faultsByCause.tlb), physical: d((s) => s.engine.faultsByCause.physical), dma: d((s) => s.engine.faultsByCause.dma) };
        const engineFaults = cause.tlb + cause.physical + cause.dma;
        const dsm = (k: string) => d((s) => s.dsm[k] ?? 0);
        const title = {
          boot: "(a) boot, start to shell prompt",
          idle: `(b) idle at the prompt, ${IDLE_S} s`,
          one: "(c1) one gzip process pinned to vCPU 0, alone",
          job: "(c) two gzip processes pinned to vCPU 0 and vCPU 1",
          one10: `(d1) one gzip process pinned to vCPU 0, alone, ${DELAY_MS} ms added one way (${DELAY_LINES} lines)`,
          job10: `(d) two gzip processes pinned to vCPU 0 and vCPU 1, ${DELAY_MS} ms added one way (${DELAY_LINES} lines each)`,
        }[phase];
        out.push(formatCensus(`${title} [${LABEL}]`, cs, TOP));
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
        if (w.host) out.push(w.host);
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
        if (w.guest?.loc) {
          metrics[`${pre}_faults_per_tick.2`] = { value: cs.faults / w.guest.loc, unit: "ratio", note: `DSM faults per local timer interrupt (the guest's LOC count, ${TICK_HZ} Hz per CPU)` };
          metrics[`${pre}_ticks_per_s.2`] = { value: w.guest.loc / cs.seconds, unit: "/s", note: `local timer interrupts per second, both CPUs (${w.guest.locPerCpu.map((n) => (n / cs.seconds).toFixed(1)).join(" + ")}; ${TICK_HZ} Hz each in guest time)` };
        }
        if (phase === "idle") metrics["linux.idle_faults_per_s.2"] = { value: cs.remotePerSecond, unit: "/s", note: `remote DSM faults per second, Linux idle at the prompt for ${IDLE_S} s, 2 vCPUs in 2 workers [${LABEL}]; top pages: ${top}` };
      }
      const speedup = (2 * seconds.one!) / seconds.job!;
      metrics["linux.speedup.2"] = {
        value: speedup,
        unit: "ratio",
        note: `2 x one gzip alone on vCPU 0 (${seconds.one!.toFixed(2)} s) / two pinned to vCPU 0 and 1 at once (${seconds.job!.toFixed(2)} s), busybox gzip of ${JOB_LINES} lines each, same run [${LABEL}]`,
      };
      out.push(`   gzip: one alone ${seconds.one!.toFixed(2)} s, two at once ${seconds.job!.toFixed(2)} s: speedup ${speedup.toFixed(3)} [${LABEL}]`);
      if (seconds.one10 !== undefined && seconds.job10 !== undefined) {
        const far = (2 * seconds.one10) / seconds.job10;
        metrics[`linux.speedup.2.${DELAY_MS}ms`] = {
          value: far,
          unit: "ratio",
          note:
            `the same at ${DELAY_MS} ms added one way on both nodes' sends: 2 x one gzip alone on vCPU 0 (${seconds.one10.toFixed(2)} s) / two at once (${seconds.job10.toFixed(2)} s), ` +
            `${DELAY_LINES} lines each (without delay the same pair took ${seconds.one!.toFixed(2)} / ${seconds.job!.toFixed(2)} s for ${JOB_LINES} lines), same run [${LABEL}]`,
        };
        out.push(`   gzip at ${DELAY_MS} ms: one alone ${seconds.one10.toFixed(2)} s, two at once ${seconds.job10.toFixed(2)} s: speedup ${far.toFixed(3)} [${LABEL}]`);
      }
      if (farFailure) out.push(`   far windows at ${DELAY_MS} ms: not measured: ${farFailure.split("\n")[0]} [${LABEL}]`);
      for (const phase of ["one", "job", "one10", "job10"] as const) if (windows[phase]?.host) out.push(`   ${phase}:${windows[phase]!.host!.slice(8)}`);
      metrics["census.dropped_events.2"] = { value: c.dropped, unit: "count", note: "trace events the nodes could not keep (over 50,000 per 250 ms report)" };
      if (afterLog.length) out.push("", ...afterLog.map((l) => `   ${l}`));
      console.log(out.join("\n"));
      return metrics;
    } finally {
      await c.end();
    }
  },
};

export default census;
