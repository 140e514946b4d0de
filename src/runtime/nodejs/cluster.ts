// A many-to-one VM in Node: its nodes in worker_threads joined by shared-memory links, the console
// output of the device node, and per-node statistics. Used by the integration tests and the benchmarks.
import type { Worker } from "node:worker_threads";
import { MAX_ADDED_DELAY_MS, checkHoldMs } from "../../protocol/types.ts";
import { planLocalLinks } from "../links/local-links.ts";
import { startTsWorker } from "./ts-worker.ts";
import type { GuestFiles } from "./guest-files.ts";
import { errorText, makeFailure, type NodeFailure, NodeFailureError } from "../../protocol/tab/node-failure.ts";
import type { ServeOptions } from "../node/vcpu-node.ts";
import { checkApicTimerClock, type ApicTimerClock } from "../node/apic-timer-clock.ts";
import type { NodeControlRequest, NodeEvent } from "../node/node-control.ts";
import { wallClockMs } from "../node/wall-clock.ts";

export interface NodeCluster {
  workers: Worker[];
  output(): string;
  /** Resolves when the output matches; rejects at once when a node fails (a NodeFailureError naming it). */
  waitFor(re: RegExp, ms: number, from?: number): Promise<string>;
  /** The nodes that failed so far, first first. */
  failures(): NodeFailure[];
  send(node: number, text: string): void;
  stats(node: number): Promise<Record<string, any>>;
  /**
   * A control request to a node's worker (node/node-control.ts); rejects with
   * the worker's error text when it refuses or fails.
   */
  control(node: number, request: NodeControlRequest): Promise<unknown>;
  /** Starts the worker of a node slot planned but not started at boot (`slots`), hosting `vcpu`. */
  startNode(self: number, spec: { vcpu: number; vcpuNodes: (number | null)[]; members: number[]; serve?: ServeOptions }): Promise<void>;
  /** Terminates a node's worker (after it left the VM). */
  endNode(self: number): Promise<void>;
  /** Events the nodes report (a CPU ejected by the guest, an _OST result), oldest first. */
  events(): ClusterEvent[];
  /** Resolves with the first event (from index `from` of events()) that `match` accepts. */
  waitForEvent(match: (e: ClusterEvent) => boolean, ms: number, from?: number): Promise<ClusterEvent>;
  /** Stops the serving nodes and returns their final stats; terminates every worker. */
  stop(): Promise<Record<string, any>[]>;
}

/** Something a node reported on its own (not an answer to a control request), with the node. */
export type ClusterEvent = NodeEvent & { node: number };

export interface ClusterOptions {
  wasmPath: string;
  guest: GuestFiles;
  /**
   * Per node, the vCPU it hosts (null: memory only; vCPUs must be numbered 0..N-1) and when it
   * notices messages (default: every way on, see ServeOptions).
   */
  nodes: { vcpu: number | null; serve?: ServeOptions }[];
  deviceNode: number;
  /** Added one-way delay (0..50 ms) on every frame every node sends (the live view's latency knob, link-delay.ts). */
  linkDelayMs?: number;
  /** Every node's hold window in ms (VcpuNodeConfig.holdMs; default 0, none). */
  holdMs?: number;
  /** Every vCPU's APIC timer clock (VcpuNodeConfig.apicTimer; default DEFAULT_APIC_TIMER). */
  apicTimer?: ApicTimerClock;
  /**
   * Guest-physical pages (page numbers) whose first fault each vCPU node records: the wall time
   * (ms since 1970), the node's fault count and DSM blocked time then; reported in `stats(n).watch`
   * with the node's first fault of all. How the AP wake-up margin is measured (README-interrupts.md,
   * "Guest time").
   */
  watchPages?: number[];
  /**
   * The coherence audit on some vCPUs: their nodes run `wasmPath` (the audit build,
   * ensureInstrumentedWasm({ audit: true })) with the JIT off, and an access around the page map
   * fails the node with an AuditError naming it (src/engine/README.md, "The coherence audit").
   */
  audit?: { wasmPath: string; vcpus: number[] };
  /**
   * An elastic VM (issue 14): the firmware describes this many possible CPUs (vCPUs
   * 0..possibleCpus-1, default: the vCPUs `nodes` host), of which 0..presentCpus-1 are present at
   * boot (default: all). The others are plugged in later through node 0's hotplug device.
   */
  possibleCpus?: number;
  presentCpus?: number;
  /** Node slots the links are planned for (default nodes.length); slots past `nodes` start later (startNode). */
  slots?: number;
}

export function startCluster(opts: ClusterOptions): NodeCluster {
  const slots = opts.slots ?? opts.nodes.length;
  if (!Number.isInteger(slots) || slots < opts.nodes.length) throw new RangeError(`slots must be an integer >= the ${opts.nodes.length} nodes started at boot, got ${String(opts.slots)}`);
  const plan = planLocalLinks(slots);
  const hosted: number[] = [];
  opts.nodes.forEach((n, i) => n.vcpu !== null && (hosted[n.vcpu] = i));
  const possibleCpus = opts.possibleCpus ?? hosted.length;
  const presentCpus = opts.presentCpus ?? possibleCpus;
  if (!Number.isInteger(possibleCpus) || possibleCpus < hosted.length) throw new RangeError(`possibleCpus must cover the hosted vCPUs (${hosted.length}), got ${String(opts.possibleCpus)}`);
  if (!Number.isInteger(presentCpus) || presentCpus < 1 || presentCpus > possibleCpus) throw new RangeError(`presentCpus must be in 1..${possibleCpus}, got ${String(opts.presentCpus)}`);
  const vcpuNodes: (number | null)[] = Array.from({ length: possibleCpus }, (_, v) => hosted[v] ?? null);
  if (vcpuNodes.length === 0 || vcpuNodes.slice(0, presentCpus).some((n) => n === null)) throw new Error(`every present vCPU (0..${presentCpus - 1}) needs a node`);
  const elastic = opts.possibleCpus !== undefined || opts.presentCpus !== undefined || slots > opts.nodes.length;
  const delay = opts.linkDelayMs ?? 0;
  if (!Number.isInteger(delay) || delay < 0 || delay > MAX_ADDED_DELAY_MS) throw new RangeError(`linkDelayMs must be an integer in 0..${MAX_ADDED_DELAY_MS}, got ${String(opts.linkDelayMs)}`);
  const holdMs = checkHoldMs(opts.holdMs);
  const apicTimer = checkApicTimerClock(opts.apicTimer);
  const stopFlag = new SharedArrayBuffer(4);
  let out = "";
  const errors: NodeFailureError[] = [];
  const failed = (f: NodeFailure) => (errors.push(new NodeFailureError(f)), listeners.forEach((l) => l()));
  const listeners = new Set<() => void>();
  const finals: Promise<Record<string, any>>[] = [];
  const events: ClusterEvent[] = [];
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextRequest = 1;
  const workers: Worker[] = [];
  const spawn = (self: number, spec: { vcpu: number | null; serve?: ServeOptions }, hosts: (number | null)[], members?: number[], joining = false) => {
    const w = startTsWorker(new URL("./cluster-worker.ts", import.meta.url), {
      plan: { ...plan, self },
      wasmPath: opts.wasmPath,
      ...(spec.vcpu !== null && opts.audit?.vcpus.includes(spec.vcpu) ? { auditWasmPath: opts.audit.wasmPath } : {}),
      guest: opts.guest,
      vcpu: spec.vcpu,
      serve: spec.serve,
      vcpuNodes: hosts,
      deviceNode: opts.deviceNode,
      stop: stopFlag,
      linkDelayMs: delay,
      holdMs,
      apicTimer,
      watchPages: opts.watchPages,
      ...(elastic ? { elastic: { possibleCpus, presentCpus, members: members ?? opts.nodes.map((_, i) => i), joining } } : {}),
    });
    let ready = false;
    const started = new Promise<void>((resolve, reject) => {
      // An uncaught error ends the worker: before "ready" the node did not start, after it the node died.
      w.on("error", (e) => {
        const f = makeFailure(self, spec.vcpu, ready ? "worker" : "start", errorText(e), wallClockMs());
        failed(f);
        if (!ready) reject(new NodeFailureError(f));
      });
      w.on("message", (m) => {
        if (m.kind === "ready") ((ready = true), resolve());
        else if (m.kind === "failed") failed(m.failure as NodeFailure);
        else if (m.kind === "serial") {
          out += Buffer.from(m.bytes).toString("latin1");
          listeners.forEach((l) => l());
        } else if (m.kind === "event") {
          events.push({ ...m.event, node: self });
          listeners.forEach((l) => l());
        } else if (m.kind === "control-reply") {
          const p = pending.get(m.id);
          pending.delete(m.id);
          if (m.ok) p?.resolve(m.value);
          else p?.reject(new Error(`node ${self}: ${m.error}`));
        }
      });
    });
    if (spec.vcpu === null) finals.push(new Promise((resolve) => w.on("message", (m) => m.kind === "stats" && resolve(m))));
    workers[self] = w;
    return started;
  };
  opts.nodes.forEach((spec, self) => void spawn(self, spec, vcpuNodes).catch(() => {}));
  const worker = (node: number) => {
    const w = workers[node];
    if (!w) throw new RangeError(`node ${node} has no worker (slots 0..${slots - 1}; started: ${workers.map((w, i) => (w ? i : -1)).filter((i) => i >= 0).join(", ")})`);
    return w;
  };
  return {
    workers,
    output: () => out,
    failures: () => errors.map((e) => e.failure),
    waitFor(re, ms, from = 0) {
      return new Promise((resolve, reject) => {
        const done = (f: () => void) => (clearTimeout(t), listeners.delete(check), f());
        const t = setTimeout(() => done(() => reject(new Error(`no ${re} within ${ms / 1000} s; output:\n${out.slice(-2500)}`))), ms);
        const check = () => {
          if (errors.length) done(() => reject(errors[0]));
          else if (re.test(out.slice(from))) done(() => resolve(out));
        };
        listeners.add(check);
        check();
      });
    },
    events: () => [...events],
    waitForEvent(match, ms, from = 0) {
      return new Promise((resolve, reject) => {
        const done = (f: () => void) => (clearTimeout(t), listeners.delete(check), f());
        const t = setTimeout(() => done(() => reject(new Error(`no such node event within ${ms / 1000} s; events so far: ${JSON.stringify(events)}`))), ms);
        const check = () => {
          const e = events.slice(from).find(match);
          if (e) done(() => resolve(e));
          else if (errors.length) done(() => reject(errors[0]));
        };
        listeners.add(check);
        check();
      });
    },
    send: (node, text) => worker(node).postMessage({ kind: "send", text }),
    stats: (node) =>
      new Promise((resolve) => {
        const w = worker(node);
        const on = (m: { kind: string }) => m.kind === "stats" && (w.off("message", on), resolve(m));
        w.on("message", on);
        w.postMessage({ kind: "stats" });
      }),
    control(node, request) {
      const id = nextRequest++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker(node).postMessage({ kind: "control", id, request });
      });
    },
    async startNode(self, spec) {
      if (!Number.isInteger(self) || self < 0 || self >= slots) throw new RangeError(`node ${self} is not a slot of this cluster (0..${slots - 1})`);
      if (workers[self]) throw new Error(`node ${self} is running`);
      await spawn(self, spec, spec.vcpuNodes, spec.members, true);
    },
    async endNode(self) {
      const w = worker(self);
      delete workers[self];
      await w.terminate();
    },
    async stop() {
      Atomics.store(new Int32Array(stopFlag), 0, 1);
      Atomics.notify(new Int32Array(stopFlag), 0);
      // Wake nodes blocked on their doorbells so they see the flag.
      for (const bell of plan.bells) (Atomics.add(new Int32Array(bell), 0, 1), Atomics.notify(new Int32Array(bell), 0));
      const result = await Promise.all(finals);
      await Promise.all(workers.filter(Boolean).map((w) => w.terminate()));
      return result;
    },
  };
}
