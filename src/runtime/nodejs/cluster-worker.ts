// Worker entry of one node of a NodeCluster (worker_threads).
import { readAuditReport } from "../../engine/instrument/ensure.ts";
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { LocalLinksPlan } from "../links/local-links.ts";
import { guestSetup } from "../../machine/guest-setup.ts";
import { delayLinks } from "../links/link-delay.ts";
import { startVcpuNode, type ServeOptions } from "../node/vcpu-node.ts";
import { type GuestFiles, readGuestFiles } from "./guest-files.ts";
import { errorText } from "../../protocol/tab/node-failure.ts";

interface Data {
  plan: LocalLinksPlan;
  wasmPath: string;
  /** This node runs the coherence-audit build (its path); see ClusterOptions.audit. */
  auditWasmPath?: string;
  guest: GuestFiles;
  vcpu: number | null;
  serve?: ServeOptions;
  vcpuNodes: number[];
  deviceNode?: number;
  stop: SharedArrayBuffer;
  linkDelayMs?: number;
  watchPages?: number[];
  /** An elastic VM (ClusterOptions.possibleCpus): what the firmware describes, and the DSM's members at this node's start. */
  elastic?: { possibleCpus: number; presentCpus: number; members: number[]; joining?: boolean };
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
  vcpuNodes: d.vcpuNodes,
  deviceNode: d.deviceNode,
  bootWrites,
  onSerial: (bytes) => parentPort!.postMessage({ kind: "serial", bytes }),
  onFailure: (failure) => parentPort!.postMessage({ kind: "failed", failure }),
  ...(d.elastic
    ? {
        elastic: {
          members: d.elastic.members,
          joining: d.elastic.joining === true,
          possibleCpus: d.elastic.possibleCpus,
          present: Array.from({ length: d.elastic.presentCpus }, (_, i) => i),
        },
      }
    : {}),
});
// The guest's answers to the hotplug device (node 0): a CPU ejected, an _OST result.
const event = (e: Record<string, unknown>) => parentPort!.postMessage({ kind: "event", event: e });
node.hotplug?.onEject((cpu) => event({ event: "cpu-ejected", cpu }));
node.hotplug?.onOst((cpu, ostEvent, status) => event({ event: "ost", cpu, ostEvent, status }));
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
      control(m.request).then(
        (value) => parentPort!.postMessage({ kind: "control-reply", id: m.id, ok: true, value: value ?? null }),
        (error) => parentPort!.postMessage({ kind: "control-reply", id: m.id, ok: false, error: errorText(error) }),
      );
  });
}

/** The cluster's control requests (ClusterOptions.possibleCpus: CPUs plugged in and out, nodes joining and leaving). */
async function control(r: { op: string; [k: string]: unknown }): Promise<unknown> {
  switch (r.op) {
    // Stops the vCPU at an instruction boundary; the node keeps serving its peers (timer and doorbell).
    case "pause":
      return node.cpu.pause();
    case "resume":
      return node.cpu.resume();
    // Another vCPU got a host (a node joined with it) or lost it (its node left).
    case "set-host": {
      const vcpu = r.vcpu as number;
      const host = r.node as number | null;
      if (!node.router) throw new Error("this node routes no interrupts");
      node.router.setHost(vcpu, host);
      if (host !== null) node.router.introduceTo(host);
      node.poll();
      return null;
    }
    // The DSM's part of a membership change (see src/protocol/dsm/membership.ts for the order).
    case "dsm-report":
      node.poll();
      return node.dsm.quiescenceReport();
    case "dsm-add-member":
      node.agent.carryOut(node.dsm.addMember(r.node as number));
      return null;
    case "dsm-remove-member":
      node.agent.carryOut(node.dsm.removeMember(r.node as number));
      return null;
    case "dsm-leave": {
      // The engine is stopped for good: read each owned page's bytes and give up all access.
      let handedOff = 0;
      node.agent.carryOut(node.dsm.leave((page) => (handedOff++, node.vcpu.revoke(page, "none"))));
      return { handedOff, owned: ownedPages() };
    }
    // After a leave completed: take in whatever was sent before the others forgot this node, so
    // that a node joining later in this slot starts from empty rings.
    case "drain":
      node.poll();
      return { owned: ownedPages() };
    // Node 0's hotplug device (refusals reach the caller as the device's message).
    case "plug":
    case "unplug": {
      const hotplug = node.hotplug;
      if (!hotplug) throw new Error("this node has no CPU hotplug device");
      const cpu = r.cpu as number;
      node.cpu.deviceAccess(() => (r.op === "plug" ? hotplug.plug(cpu) : hotplug.requestUnplug(cpu)));
      return null;
    }
    case "hotplug-state":
      return node.hotplug?.snapshot() ?? null;
    default:
      throw new Error(`unknown control request ${JSON.stringify(r.op)}`);
  }
}

function ownedPages(): number {
  let owned = 0;
  for (let p = 0; p < node.dsm.pages; p++) if (node.dsm.inspect(p).owner) owned++;
  return owned;
}
