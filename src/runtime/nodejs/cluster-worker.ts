// Worker entry of one node of a NodeCluster (worker_threads).
import { readAuditReport } from "../../engine/instrument/ensure.ts";
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { LocalLinksPlan } from "../links/local-links.ts";
import { guestSetup } from "../../machine/guest-setup.ts";
import { delayLinks } from "../links/link-delay.ts";
import { startVcpuNode, type ServeOptions } from "../node/vcpu-node.ts";
import type { ApicTimerClock } from "../node/apic-timer-clock.ts";
import { type GuestFiles, readGuestFiles } from "./guest-files.ts";
import { errorText } from "../../protocol/tab/node-failure.ts";
import { checkControlRequest, elasticNodeConfig, type ElasticNodeInit, reportNodeEvents, runNodeControl } from "../node/node-control.ts";

interface Data {
  plan: LocalLinksPlan;
  wasmPath: string;
  /** This node runs the coherence-audit build (its path); see ClusterOptions.audit. */
  auditWasmPath?: string;
  guest: GuestFiles;
  vcpu: number | null;
  serve?: ServeOptions;
  vcpuNodes: (number | null)[];
  deviceNode?: number;
  stop: SharedArrayBuffer;
  linkDelayMs?: number;
  holdMs?: number;
  apicTimer?: ApicTimerClock;
  watchPages?: number[];
  /** An elastic VM (ClusterOptions.possibleCpus): what the firmware describes, and the DSM's members at this node's start. */
  elastic?: ElasticNodeInit;
}
const d = workerData.data as Data;
const { v86, bootWrites } = guestSetup(readGuestFiles(d.guest), {
  first: d.plan.self === 0,
  cpus: d.elastic?.presentCpus ?? d.vcpuNodes.length,
  ...(d.elastic ? { possibleCpus: d.elastic.possibleCpus } : {}),
});
const stop = new Int32Array(d.stop);
const node = await startVcpuNode({
  plan: d.plan,
  wasm: new Uint8Array(readFileSync(d.auditWasmPath ?? d.wasmPath)),
  ...(d.auditWasmPath ? { audit: await readAuditReport(d.auditWasmPath) } : {}),
  v86,
  vcpu: d.vcpu,
  serve: d.serve,
  ...(d.holdMs ? { holdMs: d.holdMs } : {}),
  ...(d.apicTimer ? { apicTimer: d.apicTimer } : {}),
  vcpuNodes: d.vcpuNodes,
  deviceNode: d.deviceNode,
  bootWrites,
  onSerial: (bytes) => parentPort!.postMessage({ kind: "serial", bytes }),
  onFailure: (failure) => parentPort!.postMessage({ kind: "failed", failure }),
  ...elasticNodeConfig(d.elastic),
});
// The guest's answers to the hotplug device (node 0): a CPU ejected, an _OST result.
reportNodeEvents(node, (event) => parentPort!.postMessage({ kind: "event", event }));
// The latency knob (fixed for the cluster's life): every frame this node sends waits this long.
if (d.linkDelayMs) delayLinks(node.links, () => d.linkDelayMs!);
// First faults on watched pages (and the node's first fault of all), with the fault count and the
// time blocked in DSM faults so far: the AP's progress through its bring-up, timed from inside.
interface Mark { wallMs: number; faults: number; blockedMs: number }
const watch: { first: Mark | null; pages: Record<number, Mark> } = { first: null, pages: {} };
if (d.watchPages?.length) {
  const pages = new Set(d.watchPages);
  const handler = node.vcpu.onFault!;
  node.vcpu.onFault = (fault) => {
    const mark = (): Mark => ({ wallMs: performance.timeOrigin + performance.now(), faults: node.vcpu.stats.faults, blockedMs: node.agent.counters.blockedMs });
    watch.first ??= mark();
    if (pages.has(fault.page) && !watch.pages[fault.page]) watch.pages[fault.page] = mark();
    return handler(fault);
  };
}
parentPort!.postMessage({ kind: "ready" });
const report = () => ({
  kind: "stats",
  self: d.plan.self,
  engine: node.vcpu.stats,
  auditArmed: node.vcpu.auditArmed,
  interrupts: { ...node.cpu.stats, runState: node.cpu.runState },
  router: node.router?.counters ?? null,
  agent: node.agent.counters,
  dsm: node.dsm.counters,
  io: node.io.counters,
  // The guest's time-stamp counter against wall time (comparable across nodes).
  clock: { tsc: Number(node.cpu.tsc), wallMs: performance.timeOrigin + performance.now() },
  watch,
});
if (d.vcpu === null) {
  node.serveUntil(() => Atomics.load(stop, 0) !== 0);
  parentPort!.postMessage(report());
} else {
  parentPort!.on("message", (m) => {
    if (m.kind === "send") node.vcpu.sendSerial(m.text);
    if (m.kind === "stats") parentPort!.postMessage(report());
    if (m.kind === "control")
      Promise.resolve()
        .then(() => runNodeControl(node, checkControlRequest(m.request)))
        .then(
          (value) => parentPort!.postMessage({ kind: "control-reply", id: m.id, ok: true, value: value ?? null }),
          (error) => parentPort!.postMessage({ kind: "control-reply", id: m.id, ok: false, error: errorText(error) }),
        );
  });
}

