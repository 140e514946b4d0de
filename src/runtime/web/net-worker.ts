// Web Worker entry of a tab's net worker (issue 15): the VM's data channels to other tabs end
// here, so a page fault or an IPI between tabs crosses no main thread. Why this worker receives and
// not each vCPU worker: a vCPU worker blocks in Atomics.wait while a page comes, and its channel's
// message events could not run then, so a page another tab asks it for would wait for the one it
// is waiting for; this worker never blocks, writes what arrives into the local nodes' rings and
// rings their doorbells, which a blocked vCPU does serve.
// It owns one channel per pair of tabs (probes, and the frames of nodes that send through it: an
// elastic VM's, or a node whose own channel was not ready at its first frame) and the receiving
// ends of the other tab's nodes' own channels (links/node-channels.ts: a node sends on its own,
// which saves the hop to this worker). It publishes each pair's settled path for the nodes.

import type { NetToPage, PageToNet } from "./net-protocol.ts";
import { VmLinks } from "../links/vm-links.ts";
import { joinHopTrace } from "../links/hop-trace.ts";
import { writePathCell } from "../links/node-channels.ts";
import { dataChannelPort } from "./data-channel-port.ts";

/** The pump also runs at this period (ms) without a bell, so a lost wake-up cannot stall a link. */
const PUMP_FALLBACK_MS = 20;
const REPORT_MS = 250;
/** The channel says `bufferedamountlow` at this level; frames for its tab wait above the links' high water. */
const LOW_WATER = 256 * 1024;

type WaitAsync = (cell: Int32Array, index: number, value: number, timeoutMs: number) => { async: boolean; value: Promise<string> | string };

const post = (m: NetToPage, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);
let links: VmLinks | null = null;
/** Per tab: wall time (ms) of the last frame heard on its channel; the page's liveness check reads it. */
let heard: Float64Array | null = null;
/** The probe under way per tab: its id and when it left, and who waits for the series. */
const probes = new Map<number, { sent: number; id: number; left: number; rtts: number[]; request: number }>();
let probeIds = 0;
const PROBE_TIMEOUT_MS = 10_000;

function probe(tab: number, request: number, left: number, rtts: number[]): void {
  if (left === 0) {
    probes.delete(tab);
    post({ kind: "pinged", id: request, rtts });
    return;
  }
  const id = ++probeIds >>> 0;
  probes.set(tab, { sent: performance.now(), id, left, rtts, request });
  if (!links!.ping(tab, id)) {
    probes.delete(tab);
    post({ kind: "pinged", id: request, rtts, error: `no direct VM channel to tab ${tab}` });
    return;
  }
  setTimeout(() => {
    const p = probes.get(tab);
    if (p?.id !== id) return;
    probes.delete(tab);
    post({ kind: "pinged", id: request, rtts, error: `tab ${tab} did not answer a ping within ${PROBE_TIMEOUT_MS / 1000} s` });
  }, PROBE_TIMEOUT_MS);
}
let failed = false;
let dirty = true;

function fatal(err: unknown): void {
  if (failed) return;
  failed = true;
  post({ kind: "fatal", why: err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err) });
}

function pump(): void {
  if (!links || failed) return;
  try {
    if (links.pump()) dirty = true;
    links.flush();
  } catch (err) {
    fatal(err);
  }
}

async function pumpLoop(l: VmLinks): Promise<void> {
  const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
  const cell = l.bell!.cell;
  while (!failed) {
    const seen = Atomics.load(cell, 0);
    pump();
    const r = waitAsync(cell, 0, seen, PUMP_FALLBACK_MS);
    if (r.async) await r.value;
  }
}

/** What arrives on a channel from `tab`: it counts as hearing from that tab; a message the links refuse stops them. */
function listen(channel: RTCDataChannel, tab: number, read: (bytes: Uint8Array) => void): void {
  channel.binaryType = "arraybuffer";
  channel.onmessage = (e: MessageEvent<ArrayBuffer>) => {
    if (failed) return;
    try {
      if (heard && tab < heard.length) heard[tab] = performance.timeOrigin + performance.now();
      read(new Uint8Array(e.data));
      dirty = true;
    } catch (err) {
      fatal(err);
    }
  };
}

function handle(m: PageToNet): void {
  if (m.kind === "init") {
    if (links) throw new Error("the net worker was set up twice");
    heard = new Float64Array(m.heard);
    const paths = new Int32Array(m.paths);
    joinHopTrace(`net ${m.plan.local.join(",")}`);
    links = new VmLinks(m.plan, {
      onPath: (tab, path) => writePathCell(paths, tab, path),
      onPong: (tab, id) => {
        const p = probes.get(tab);
        if (p?.id !== id) return;
        p.rtts.push(performance.now() - p.sent);
        probe(tab, p.request, p.left - 1, p.rtts);
      },
      relay: (from, to, frame) => {
        const copy = frame.slice();
        post({ kind: "relay-out", from, to, frame: copy }, [copy.buffer]);
      },
    });
    void pumpLoop(links);
    setInterval(() => {
      if (!links || !dirty) return;
      dirty = false;
      post({ kind: "report", counters: links.counters, links: links.states() });
    }, REPORT_MS);
    return;
  }
  // The page posts init first (TabNet's constructor), so anything before it is a bug of the page.
  if (!links) throw new Error(`the net worker got "${m.kind}" before its init`);
  const l = links;
  dirty = true;
  switch (m.kind) {
    case "routes":
      l.setRoutes(m.hostOf);
      break;
    case "channel": {
      const { tab, channel } = m;
      const port = dataChannelPort(channel);
      channel.bufferedAmountLowThreshold = LOW_WATER;
      l.addChannel(tab, port, m.maxMessage);
      // Frames for that tab wait in their rings until the channel opens.
      channel.onopen = pump;
      listen(channel, tab, (bytes) => l.fromChannel(tab, bytes));
      channel.onbufferedamountlow = pump;
      channel.onclose = () => {
        dirty = true;
        post({ kind: "channel-closed", tab });
      };
      break;
    }
    case "node-channel": {
      const { tab, node, channel } = m;
      l.addNodeChannel(tab, node);
      listen(channel, tab, (bytes) => l.fromNodeChannel(tab, node, bytes));
      // Its close says nothing new: the node's worker ended (the VM stopped there, or the tab
      // left), and the pair's own channel reports a tab going.
      break;
    }
    case "relay-to":
      l.relayTo(m.tab, m.why);
      break;
    case "their-path":
      l.theirPath(m.tab, m.direct ? "direct" : "relay", m.why);
      pump();
      break;
    case "drop-tab":
      l.dropTab(m.tab);
      break;
    case "relay-in":
      l.fromRelay(m.from, m.to, m.frame);
      break;
    case "ping":
      if (probes.has(m.tab)) post({ kind: "pinged", id: m.id, rtts: [], error: `a measurement of the channel to tab ${m.tab} is under way` });
      else probe(m.tab, m.id, m.count, []);
      break;
  }
}

self.onmessage = (e: MessageEvent<PageToNet>) => {
  if (failed) return;
  try {
    handle(e.data);
  } catch (err) {
    fatal(err);
  }
};
