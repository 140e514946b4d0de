// Round trip of each of a node's links, measured with the protocol's ping/pong through the same
// links (and the same added delay) as the node's DSM traffic, for the live view's RTT plot.

import type { Message, Pong } from "../../protocol/messages.ts";

/** Samples kept per peer; the reported round trip is their median (one slow poll does not spike it). */
const KEEP = 5;

export class RttProbe {
  private seq = 0;
  private readonly samples = new Map<number, number[]>();

  constructor(
    private readonly self: number,
    private readonly peers: readonly number[],
    private readonly send: (to: number, msg: Message) => void,
    /** This node's clock (ms); pongs echo it back unchanged. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Sends one ping to every peer. */
  ping(): void {
    const atMs = this.now();
    for (const p of this.peers) if (p !== this.self) this.send(p, { type: "ping", seq: this.seq++, atMs });
  }

  /** Handles a ping (answers it) or a pong (records it); false for any other message. */
  onMessage(from: number, msg: Message): boolean {
    if (msg.type === "ping") {
      this.send(from, { type: "pong", seq: msg.seq, atMs: msg.atMs } satisfies Pong);
      return true;
    }
    if (msg.type === "pong") {
      const rtt = this.now() - (msg as Pong).atMs;
      if (!(rtt >= 0)) return true; // not a pong to our clock (cannot happen between our own nodes)
      const s = this.samples.get(from) ?? [];
      s.push(rtt);
      if (s.length > KEEP) s.shift();
      this.samples.set(from, s);
      return true;
    }
    return false;
  }

  /** Median round trip per peer that answered, in microseconds (the snapshot's LinkStat). */
  links(): { peer: number; rttUs: number }[] {
    const out: { peer: number; rttUs: number }[] = [];
    for (const [peer, s] of [...this.samples].sort((a, b) => a[0] - b[0])) {
      const sorted = [...s].sort((a, b) => a - b);
      out.push({ peer, rttUs: Math.round(sorted[sorted.length >> 1]! * 1000) });
    }
    return out;
  }
}
