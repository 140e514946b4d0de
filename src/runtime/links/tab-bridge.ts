// Joins the shared-memory links of the nodes in one tab to nodes in other tabs. Every node keeps
// one ring per peer, wherever the peer is; for a peer in another tab the other end of the ring is
// this bridge, which runs on the tab's main thread (where the WebRTC data channels live) and moves
// frames between the rings and the network. The workers never see the difference.

import { createRingBuffer, Doorbell, RingReader, RingWriter } from "./sab-ring.ts";
import { Backlog, type BacklogLimits, backlogLimits, FrameTooLargeError, type LocalLinksPlan } from "./local-links.ts";

/** The links of one tab: which nodes run here, and the rings and bells the bridge shares with them. */
export interface TabPlan {
  nodes: number;
  local: number[];
  /** bells[i]: for a local node its own bell; for a remote node the bridge's bell (shared). */
  bells: SharedArrayBuffer[];
  /** rings[from][to], present when `from` or `to` is local. */
  rings: (SharedArrayBuffer | null)[][];
  /**
   * The bound of each link's backlog, in the bridge (frames from another tab waiting for room in a
   * ring) and in the local nodes (their frames waiting for room); default `defaultBacklogLimits`
   * of the ring size (local-links.ts says how it is derived).
   */
  backlog?: Partial<BacklogLimits>;
}

export function planTab(nodes: number, local: number[], ringBytes = 1 << 20, backlog?: Partial<BacklogLimits>): TabPlan {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) throw new RangeError(`node count ${nodes} must be 1..64`);
  for (const n of local) if (!Number.isInteger(n) || n < 0 || n >= nodes) throw new RangeError(`local node ${n} is not in 0..${nodes - 1}`);
  if (new Set(local).size !== local.length) throw new RangeError(`local nodes ${local.join(",")} repeat`);
  const isLocal = (n: number) => local.includes(n);
  const bridgeBell = new SharedArrayBuffer(4);
  backlogLimits(ringBytes, backlog);
  return {
    nodes,
    local: [...local],
    ...(backlog ? { backlog: { ...backlog } } : {}),
    bells: Array.from({ length: nodes }, (_, n) => (isLocal(n) ? new SharedArrayBuffer(4) : bridgeBell)),
    rings: Array.from({ length: nodes }, (_, from) =>
      Array.from({ length: nodes }, (_, to) => (from !== to && (isLocal(from) || isLocal(to)) ? createRingBuffer(ringBytes) : null)),
    ),
  };
}

/** The plan a local node's worker gets. */
export function nodePlan(tab: TabPlan, self: number): LocalLinksPlan {
  if (!tab.local.includes(self)) throw new RangeError(`node ${self} does not run in this tab`);
  return { self, nodes: tab.nodes, bells: tab.bells, rings: tab.rings, ...(tab.backlog ? { backlog: tab.backlog } : {}) };
}

/** Where frames for remote nodes go: the tab's network agent (WebRTC in a browser). */
export type RemoteSend = (from: number, to: number, frame: Uint8Array) => void;

/**
 * The bridge's errors reach the caller of `deliver`, the one place a peer's frames enter: a frame no
 * ring can hold (FrameTooLargeError), a backlog over its bound (QueueOverflowError; the link is then
 * closed and its backlog dropped), a frame on a closed link (LinkClosedError). `pump` and `flush`
 * throw none of them: they only move frames `deliver` accepted, so one bad link never stops the
 * pump of the others.
 */
export class TabBridge {
  private readonly outbound: { from: number; to: number; reader: RingReader }[] = [];
  private readonly inbound = new Map<string, { writer: RingWriter; backlog: Backlog; to: number }>();
  private readonly bells: Doorbell[];
  readonly bell: Doorbell | null;
  readonly counters = { framesOut: 0, framesIn: 0, bytesOut: 0, bytesIn: 0 };

  constructor(
    private readonly tab: TabPlan,
    private readonly sendRemote: RemoteSend,
  ) {
    const isLocal = (n: number) => tab.local.includes(n);
    this.bells = tab.bells.map((b) => new Doorbell(b));
    const remote = Array.from({ length: tab.nodes }, (_, n) => n).filter((n) => !isLocal(n));
    this.bell = remote.length ? this.bells[remote[0]!]! : null;
    for (const from of tab.local)
      for (const to of remote) {
        this.outbound.push({ from, to, reader: new RingReader(tab.rings[from]![to]!) });
        const writer = new RingWriter(tab.rings[to]![from]!);
        const limits = backlogLimits(writer.maxFrame + 4, tab.backlog);
        this.inbound.set(`${to}>${from}`, { writer, backlog: new Backlog("bridge-backlog", to, from, limits), to: from });
      }
  }

  /**
   * Sends every frame local nodes wrote for remote ones; returns how many. Call when the bell rings.
   * `ready(from, to)`, when given, holds a link's frames in its ring while it says no (the link's
   * path is not settled, or its channel is full); it is asked again before each frame.
   */
  pump(ready?: (from: number, to: number) => boolean): number {
    let moved = 0;
    for (const link of this.outbound) {
      if (ready && !ready(link.from, link.to)) continue;
      for (let f = link.reader.read(); f !== null; f = ready && !ready(link.from, link.to) ? null : link.reader.read()) {
        this.sendRemote(link.from, link.to, f);
        this.counters.framesOut++;
        this.counters.bytesOut += f.length;
        moved++;
      }
      if (moved) this.bells[link.from]!.ring(); // room freed for the writer's backlog
    }
    this.flush();
    return moved;
  }

  /**
   * A frame from remote node `from` for local node `to`, as the network delivered it (in order).
   * Throws FrameTooLargeError, QueueOverflowError or LinkClosedError (see the class comment): the
   * frame is then refused, and the VM cannot go on.
   */
  deliver(from: number, to: number, frame: Uint8Array): void {
    const link = this.inbound.get(`${from}>${to}`);
    if (!link) throw new RangeError(`no link from node ${from} to local node ${to} in this tab`);
    if (frame.length > link.writer.maxFrame) throw new FrameTooLargeError(from, to, frame.length, link.writer.maxFrame);
    if (link.backlog.length === 0 && !link.backlog.closed && link.writer.tryWrite(frame)) this.bells[to]!.ring();
    else link.backlog.push(frame);
    this.counters.framesIn++;
    this.counters.bytesIn += frame.length;
  }

  /** Retries frames a full ring could not take; true when none is left waiting. */
  flush(): boolean {
    let empty = true;
    for (const link of this.inbound.values()) {
      if (link.backlog.drainInto(link.writer)) this.bells[link.to]!.ring();
      if (link.backlog.length) empty = false;
    }
    return empty;
  }

  /** The largest frame a local node's ring takes (a larger one from the network is refused). */
  get maxInboundFrame(): number {
    let max = 0;
    for (const link of this.inbound.values()) max = Math.max(max, link.writer.maxFrame);
    return max;
  }

  /** Frames and bytes from remote node `from` waiting in the backlog for local node `to`. */
  backlogOf(from: number, to: number): { frames: number; bytes: number } {
    const link = this.inbound.get(`${from}>${to}`);
    if (!link) throw new RangeError(`no link from node ${from} to local node ${to} in this tab`);
    return { frames: link.backlog.length, bytes: link.backlog.bytes };
  }
}
