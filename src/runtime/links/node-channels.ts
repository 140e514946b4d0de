// A node's own send channels to other tabs (issue 15): the hop from a node's worker to its tab's net
// worker cost 0.06-0.09 ms at the median and up to 2 ms at p90 each way (the bench's hop trace),
// so a node sends its frames for another tab on a data channel of its own, created by the page and
// handed to the node's worker with its init. Receiving stays in the net worker (vm-links.ts): a
// vCPU worker blocked in Atomics.wait cannot run a channel's message events, a net worker can.
// Measured since: the send hop goes to 0.01 ms (p90 0.02), but in three bench runs the network hop
// after it was slower in its tail than from the net worker (p90 ~4 vs ~2.7 ms), so the guest's IPI
// round trip is not reliably faster; faults did better. `?vmlink=pair` keeps the old way to compare.
//
// The rule that keeps frames in order: two channels keep no order between them, so each node picks,
// per tab, one way at its first frame for that tab and keeps it for its life: its own channel when
// the tab pair's path is settled direct (the other end then has its receiving end: it said direct
// only after creating it) and the channel is open; else the ring to the net worker, which carries
// the frame as it carries every frame (the pair's channel or the relay). A node never waits for a
// channel: one that blocked before an open event ran would wait forever, so a channel not yet open
// at the first frame means the ring. No timers and no DOM: node-worker.ts wires real channels.

import { encodeVmFrame } from "../../protocol/tab/vm-channel.ts";
import { hopSeen, hopTracedFrame } from "./hop-trace.ts";
import type { VmPath, VmPort } from "./vm-links.ts";

/** A tab pair's settled path as the net worker publishes it to its nodes (an Int32 per tab, shared memory). */
export const PATH_CELL: Record<"unsettled" | VmPath, number> = { unsettled: 0, direct: 1, relay: 2 };

export function writePathCell(cells: Int32Array, tab: number, path: VmPath | null): void {
  if (tab >= 0 && tab < cells.length) Atomics.store(cells, tab, path === null ? PATH_CELL.unsettled : PATH_CELL[path]);
}

export function readPathCell(cells: Int32Array, tab: number): VmPath | null {
  const v = tab >= 0 && tab < cells.length ? Atomics.load(cells, tab) : PATH_CELL.unsettled;
  return v === PATH_CELL.direct ? "direct" : v === PATH_CELL.relay ? "relay" : null;
}

/** Channel ids and labels of the node channels: the tab pair's own channel is 1000, node n's is 1001 + n. */
export const NODE_CHANNEL_BASE_ID = 1001;
export const nodeChannelLabel = (node: number) => `giantweb-node-${node}`;

export class NodeChannelError extends Error {
  override name = "NodeChannelError";
}

/** A node's end of its channel to one tab. `closed`: it will never carry a frame again. */
export interface NodeChannelPort extends VmPort {
  readonly closed: boolean;
}

export interface NodeChannelsOptions {
  self: number;
  /** hostOf[node]: the tab running VM node `node`; fixed for the VM's life (a fixed cluster). */
  hostOf: readonly (number | null)[];
  /** This node's channel to each tab that has one, with the channel's message limit. */
  channels: ReadonlyMap<number, { port: NodeChannelPort; maxMessage: number }>;
  /** The tab pair's settled path (the net worker's path cells). */
  pathTo(tab: number): VmPath | null;
  /** The node's links' own send: the ring to its tab's net worker. */
  ring(to: number, frame: Uint8Array): void;
  /** Frames and bytes this node sent on its channels, written after each send ([0] frames, [1] bytes). */
  sent?: Float64Array;
}

export type NodeChannelWay = "channel" | "ring";

export class NodeChannels {
  private readonly ways = new Map<number, NodeChannelWay>();
  /** Frames for a channel that had closed (its tab went, or its end's worker ended): the VM stops for that cause. */
  dropped = 0;

  constructor(private readonly opts: NodeChannelsOptions) {}

  /** The way chosen for each tab this node has sent to, in tab order. */
  choices(): { tab: number; way: NodeChannelWay }[] {
    return [...this.ways].sort(([a], [b]) => a - b).map(([tab, way]) => ({ tab, way }));
  }

  private wayTo(tab: number): NodeChannelWay {
    let way = this.ways.get(tab);
    if (!way) {
      const c = this.opts.channels.get(tab);
      way = c && c.port.open && this.opts.pathTo(tab) === "direct" ? "channel" : "ring";
      this.ways.set(tab, way);
    }
    return way;
  }

  send(to: number, frame: Uint8Array): void {
    const tab = this.opts.hostOf[to];
    if (tab === undefined || tab === null || this.wayTo(tab) === "ring") return this.opts.ring(to, frame);
    const { port, maxMessage } = this.opts.channels.get(tab)!;
    // A closed channel never opens again; the VM stops for the reason it closed (the tab left, the
    // pair's link went down), which names itself better than this frame could.
    if (port.closed) {
      this.dropped++;
      return;
    }
    if (hopTracedFrame(frame)) hopSeen("net-out");
    try {
      for (const chunk of encodeVmFrame(this.opts.self, to, frame, maxMessage)) port.send(chunk);
    } catch (err) {
      throw new NodeChannelError(`node ${this.opts.self}'s channel to tab ${tab} refused a frame for node ${to} (${(err as Error).message}; ${port.bufferedAmount} bytes waited in it)`);
    }
    const sent = this.opts.sent;
    if (sent) {
      sent[0] = sent[0]! + 1;
      sent[1] = sent[1]! + frame.length;
    }
  }
}
