// Web Worker entry: one node of a many-to-one VM (a vCPU engine, its DSM node, links), booting
// Linux (by SeaBIOS or our firmware) or a multiboot guest (the SMP self-test), with the live view's
// statistics, reports, knob and trace for every guest.

import { encode } from "../../protocol/codec.ts";
import { buildSnapshot } from "../../protocol/stats.ts";
import { guestSetup } from "../../machine/guest-setup.ts";
import { startVcpuNode, type VcpuNode } from "../node/vcpu-node.ts";
import type { LocalLinks } from "../links/local-links.ts";
import { errorText, makeFailure, type NodeFailureCause } from "../../protocol/tab/node-failure.ts";
import { delayLinks } from "../links/link-delay.ts";
import { RttProbe } from "../links/link-rtt.ts";
import { checkControlRequest, elasticNodeConfig, reportNodeEvents, runNodeControl } from "../node/node-control.ts";
import { CONTROL_CELLS, CONTROL_DELAY_MS, CONTROL_TRACING, type NodeChannelsInit, type NodeInit, type NodeToPage, type PageToNode } from "./node-protocol.ts";
import { NodeViewRecorder } from "../node/view-recorder.ts";
import { wallClockMs } from "../node/wall-clock.ts";
import { joinHopTrace } from "../links/hop-trace.ts";
import { NodeChannels, type NodeChannelPort, readPathCell } from "../links/node-channels.ts";
import { dataChannelPort } from "./data-channel-port.ts";

const post = (msg: NodeToPage, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(msg, transfer);
let node: VcpuNode | null = null;
let init: NodeInit | null = null;
/** The page's live-view controls (added link delay, trace recording); zeros when it sent none. */
let control: Int32Array<ArrayBufferLike> = new Int32Array(CONTROL_CELLS);
let recorder: NodeViewRecorder | null = null;
let rtt: RttProbe | null = null;
let failed = false;
/** Reports this node's first failure to the page (which stops the VM); later ones follow from it. */
function fail(cause: NodeFailureCause, message: string): void {
  if (failed) return;
  failed = true;
  post({ kind: "failed", failure: makeFailure(init?.plan.self ?? -1, init?.vcpu ?? null, cause, message, wallClockMs()) });
}
// Anything thrown outside the engine and the node's own serving (a report timer, a message handler).
self.addEventListener("error", (e) => (e.preventDefault(), fail(node ? "worker" : "start", errorText(e.error ?? e.message))));
self.addEventListener("unhandledrejection", (e) => (e.preventDefault(), fail(node ? "worker" : "start", errorText(e.reason))));
/** Wall-clock ms: comparable with the page's clock (the page subtracts its own timeOrigin). */
const wallMs = wallClockMs;

/** The latest faults' durations (a ring), for the remote page-fault latency the live view and bench show. */
const faultTimes = {
  ring: new Float64Array(4096),
  n: 0,
  add(ms: number) {
    this.ring[this.n++ % this.ring.length] = ms;
  },
  summary(): { count: number; p50: number; p99: number } | null {
    const count = Math.min(this.n, this.ring.length);
    if (count === 0) return null;
    const sorted = this.ring.slice(0, count).sort();
    const at = (q: number) => sorted[Math.min(count - 1, Math.floor(q * count))]!;
    return { count, p50: at(0.5), p99: at(0.99) };
  },
};

/** Times every DSM fault of the node (the engine calls agent.fault through the object). */
function timeFaults(n: VcpuNode): void {
  const agent = n.agent;
  const fault = agent.fault.bind(agent);
  agent.fault = (page, access) => {
    const start = performance.now();
    try {
      return fault(page, access);
    } finally {
      const end = performance.now();
      faultTimes.add(end - start);
      if (recorder && init!.vcpu !== null) recorder.fault(init!.vcpu, page, access, performance.timeOrigin + start, performance.timeOrigin + end);
    }
  };
}

function status(): NodeToPage {
  const n = node!;
  return {
    kind: "status",
    status: {
      node: init!.plan.self,
      vcpu: init!.vcpu,
      runState: n.cpu.runState,
      instructions: n.vcpu.emulator.get_instruction_counter?.() ?? 0,
      faults: n.agent.counters.faults,
      blockedMs: n.agent.counters.blockedMs,
      revocations: n.vcpu.stats.revocations,
      ipisSent: n.router?.counters.ipisSent ?? 0,
      ipisReceived: n.router?.counters.ipisReceived ?? 0,
      faultMs: faultTimes.summary(),
    },
  };
}

// A statistics snapshot for the live view, encoded by the protocol codec (a few per second).
let statsSeq = 0;
function statsFrame(): NodeToPage {
  const n = node!;
  const r = n.router?.counters;
  const snapshot = buildSnapshot({
    node: init!.plan.self,
    seq: statsSeq++,
    atMs: wallClockMs(),
    dsm: n.dsm,
    counters: {
      ipisSent: r?.ipisSent ?? 0,
      ipisReceived: r?.ipisReceived ?? 0,
      irqsForwarded: r?.irqsSent ?? 0,
      ioForwarded: n.io.counters.reads + n.io.counters.writes,
      bytesSent: n.agent.counters.framesOut,
      bytesReceived: n.agent.counters.framesIn,
    },
    links: rtt?.links() ?? [],
    vcpus:
      init!.vcpu === null
        ? []
        : [{ vcpu: init!.vcpu, state: n.cpu.runState === "wait-for-sipi" ? "waiting-sipi" : "running", instructions: n.vcpu.emulator.get_instruction_counter?.() ?? 0 }],
  });
  const frame = encode(snapshot);
  return { kind: "stats", frame };
}

async function start(msg: NodeInit): Promise<VcpuNode> {
  const { v86, bootWrites } = guestSetup(msg.guest, {
    first: msg.plan.self === 0,
    cpus: msg.elastic?.presentCpus ?? msg.vcpuNodes.length,
    ...(msg.elastic ? { possibleCpus: msg.elastic.possibleCpus } : {}),
  });
  const n = await startVcpuNode({
    plan: msg.plan,
    wasm: new Uint8Array(msg.wasm),
    v86,
    bootWrites,
    vcpu: msg.vcpu,
    vcpuNodes: msg.vcpuNodes,
    deviceNode: msg.deviceNode,
    onSerial: (bytes) => post({ kind: "serial", bytes }, [bytes.buffer]),
    onFailure: (failure) => {
      if (failed) return;
      failed = true;
      post({ kind: "failed", failure });
    },
    // Link round-trip probes (nothing else reaches here: the node's own traffic is handled inside).
    onOther: (from, m) => void rtt?.onMessage(from, m),
    // (The delay knob, added later by observe(), wraps this and so delays these sends too.)
    ...(msg.channels ? { onLinks: (links: LocalLinks) => void sendOnChannels(links, msg.plan.self, msg.channels!) } : {}),
    ...(msg.spinWait ? { serve: { spinWait: true } } : {}),
    ...elasticNodeConfig(msg.elastic),
  });
  // The guest's answers to the hotplug device (node 0): a CPU ejected, an _OST result.
  reportNodeEvents(n, (event) => post({ kind: "event", event }));
  return n;
}

/**
 * How long a node waits, before its guest runs, for each channel to open and each tab pair's path to
 * settle (both ends said how they carry frames). Past it, a tab not ready yet is reached through the
 * net worker for the node's life (node-channels.ts): correct, only slower. Tab 0 starts the guest
 * once every tab said it is ready, and a pair settles before either end says so, so this wait is
 * short but for a pair of tabs other than tab 0, where it overlaps the slower tab's start.
 */
const CHANNELS_READY_MS = 20_000;
const CHANNELS_POLL_MS = 5;

/** Resolves once every channel is open (or closed) and every pair's path settled, or after CHANNELS_READY_MS. */
function channelsReady(c: NodeChannelsInit): Promise<void> {
  const paths = new Int32Array(c.paths);
  const ready = () => c.ends.every((e) => e.channel.readyState !== "connecting" && readPathCell(paths, e.tab) !== null);
  const until = performance.now() + CHANNELS_READY_MS;
  return new Promise((resolve) => {
    const check = () => (ready() || performance.now() > until ? resolve() : setTimeout(check, CHANNELS_POLL_MS));
    check();
  });
}

/** Frames for nodes in other tabs go on this node's own channels (links/node-channels.ts), the ring being the fallback. */
function sendOnChannels(links: LocalLinks, self: number, c: NodeChannelsInit): NodeChannels {
  const channels = new Map<number, { port: NodeChannelPort; maxMessage: number }>();
  for (const { tab, channel, maxMessage } of c.ends) channels.set(tab, { port: dataChannelPort(channel), maxMessage });
  const paths = new Int32Array(c.paths);
  const ring = links.send.bind(links);
  const nc = new NodeChannels({ self, hostOf: c.hostOf, channels, pathTo: (tab) => readPathCell(paths, tab), ring, sent: new Float64Array(c.sent, self * 16, 2) });
  // Everything the node sends goes through its links object (the DSM agent, the router, I/O, probes).
  links.send = (to, frame) => nc.send(to, frame);
  return nc;
}

/** Hooks the live view's observers, delay and round-trip probes onto a started node. */
function observe(n: VcpuNode, msg: NodeInit): void {
  if (msg.control) control = new Int32Array(msg.control);
  const self = msg.plan.self;
  // The knob: every frame this node sends waits the added one-way delay (read at each send).
  delayLinks(n.links, () => control[CONTROL_DELAY_MS]!);
  recorder = new NodeViewRecorder(self, () => control[CONTROL_TRACING] !== 0, wallMs);
  n.agent.observer = recorder;
  if (n.router) n.router.observer = recorder.interrupt;
  n.io.observer = recorder.io;
  const peers = Array.from({ length: n.links.nodes }, (_, i) => i).filter((i) => i !== self);
  // Not in an elastic VM: its link slots include nodes not started (or gone), whose rings nobody reads.
  if (!msg.elastic) rtt = new RttProbe(self, peers, (to, m) => n.agent.send(to, m));
}

self.onmessage = async (event: MessageEvent<PageToNode>) => {
  const msg = event.data;
  try {
    switch (msg.kind) {
      case "init": {
        init = msg;
        joinHopTrace(`node ${msg.plan.self}`);
        if (msg.channels) await channelsReady(msg.channels);
        node = await start(msg);
        timeFaults(node);
        observe(node, msg);
        post({ kind: "ready", node: msg.plan.self });
        setInterval(() => post(status()), 500);
        setInterval(() => rtt?.ping(), 500);
        setInterval(() => {
          const m = statsFrame();
          post(m, m.kind === "stats" ? [m.frame.buffer] : []);
          if (recorder) post({ kind: "view", report: recorder.take() });
        }, 250);
        if (msg.vcpu === null) {
          // A node without a vCPU only serves memory (and devices): it blocks here, woken by its peers.
          const stop = new Int32Array(msg.stop);
          node.serveUntil(() => Atomics.load(stop, 0) !== 0);
        }
        break;
      }
      case "control":
        // Answered on its own (a request must not wait for another, and its failure is the caller's, not the node's).
        Promise.resolve()
          .then(() => {
            if (!node) throw new Error("the node has not started (or has stopped)");
            return runNodeControl(node, checkControlRequest(msg.request));
          })
          .then(
          (value) => post({ kind: "control-reply", id: msg.id, ok: true, value: value ?? null }),
          (error) => post({ kind: "control-reply", id: msg.id, ok: false, error: errorText(error) }),
        );
        break;
      case "serial-input":
        node?.vcpu.sendSerial(msg.bytes);
        break;
      case "stop":
        await node?.destroy();
        node = null;
        break;
    }
  } catch (err) {
    // Before "ready" the node did not start; after it (a memory-only node's serving loop) it died.
    fail(node ? "serve" : "start", (err as Error).message);
  }
};
