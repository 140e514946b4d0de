// A many-to-one VM in Node: its nodes in worker_threads joined by shared-memory links, the console
// output of the device node, and per-node statistics. Used by the integration tests and the benchmarks.
import type { Worker } from "node:worker_threads";
import { MAX_ADDED_DELAY_MS } from "../../protocol/types.ts";
import { planLocalLinks } from "../links/local-links.ts";
import { startTsWorker } from "./ts-worker.ts";
import type { GuestFiles } from "./guest-files.ts";
import { errorText, makeFailure, type NodeFailure, NodeFailureError } from "../../protocol/tab/node-failure.ts";
import type { ServeOptions } from "../node/vcpu-node.ts";
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
  /** Stops the serving nodes and returns their final stats; terminates every worker. */
  stop(): Promise<Record<string, any>[]>;
}

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
}

export function startCluster(opts: ClusterOptions): NodeCluster {
  const plan = planLocalLinks(opts.nodes.length);
  const vcpuNodes: number[] = [];
  opts.nodes.forEach((n, i) => n.vcpu !== null && (vcpuNodes[n.vcpu] = i));
  if (vcpuNodes.length === 0 || vcpuNodes.some((n) => n === undefined)) throw new Error("the nodes' vCPUs must be numbered 0..N-1 without gaps");
  const delay = opts.linkDelayMs ?? 0;
  if (!Number.isInteger(delay) || delay < 0 || delay > MAX_ADDED_DELAY_MS) throw new RangeError(`linkDelayMs must be an integer in 0..${MAX_ADDED_DELAY_MS}, got ${String(opts.linkDelayMs)}`);
  const stopFlag = new SharedArrayBuffer(4);
  let out = "";
  const errors: NodeFailureError[] = [];
  const failed = (f: NodeFailure) => (errors.push(new NodeFailureError(f)), listeners.forEach((l) => l()));
  const listeners = new Set<() => void>();
  const finals: Promise<Record<string, any>>[] = [];
  const workers = opts.nodes.map((spec, self) => {
    const w = startTsWorker(new URL("./cluster-worker.ts", import.meta.url), {
      plan: { ...plan, self },
      wasmPath: opts.wasmPath,
      ...(spec.vcpu !== null && opts.audit?.vcpus.includes(spec.vcpu) ? { auditWasmPath: opts.audit.wasmPath } : {}),
      guest: opts.guest,
      vcpu: spec.vcpu,
      serve: spec.serve,
      vcpuNodes,
      deviceNode: opts.deviceNode,
      stop: stopFlag,
      linkDelayMs: delay,
      watchPages: opts.watchPages,
    });
    let ready = false;
    // An uncaught error ends the worker: before "ready" the node did not start, after it the node died.
    w.on("error", (e) => failed(makeFailure(self, spec.vcpu, ready ? "worker" : "start", errorText(e), wallClockMs())));
    w.on("message", (m) => {
      if (m.kind === "ready") ready = true;
      else if (m.kind === "failed") failed(m.failure as NodeFailure);
      else if (m.kind === "serial") {
        out += Buffer.from(m.bytes).toString("latin1");
        listeners.forEach((l) => l());
      }
    });
    if (spec.vcpu === null) finals.push(new Promise((resolve) => w.on("message", (m) => m.kind === "stats" && resolve(m))));
    return w;
  });
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
    send: (node, text) => workers[node]!.postMessage({ kind: "send", text }),
    stats: (node) =>
      new Promise((resolve) => {
        const w = workers[node]!;
        const on = (m: { kind: string }) => m.kind === "stats" && (w.off("message", on), resolve(m));
        w.on("message", on);
        w.postMessage({ kind: "stats" });
      }),
    async stop() {
      Atomics.store(new Int32Array(stopFlag), 0, 1);
      Atomics.notify(new Int32Array(stopFlag), 0);
      // Wake nodes blocked on their doorbells so they see the flag.
      for (const bell of plan.bells) (Atomics.add(new Int32Array(bell), 0, 1), Atomics.notify(new Int32Array(bell), 0));
      const result = await Promise.all(finals);
      await Promise.all(workers.map((w) => w.terminate()));
      return result;
    },
  };
}
