// The links of one node to the other nodes of the same tab, over shared-memory rings.
// Per ordered pair of nodes one ring keeps frames in FIFO order; frames a full ring cannot take wait
// in a local queue (the sender never blocks, so two nodes can never block on each other's rings).

import { createRingBuffer, Doorbell, RingReader, RingWriter } from "./sab-ring.ts";

/** Everything a node needs to join its tab's links; plain data, so it can be posted to a worker. */
export interface LocalLinksPlan {
  self: number;
  nodes: number;
  /** bells[i] wakes node i. */
  bells: SharedArrayBuffer[];
  /** rings[from][to]; null on the diagonal. */
  rings: (SharedArrayBuffer | null)[][];
}

export function planLocalLinks(nodes: number, ringBytes = 1 << 20): Omit<LocalLinksPlan, "self"> {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) throw new RangeError(`node count ${nodes} must be 1..64`);
  return {
    nodes,
    bells: Array.from({ length: nodes }, () => new SharedArrayBuffer(4)),
    rings: Array.from({ length: nodes }, (_, from) =>
      Array.from({ length: nodes }, (_, to) => (from === to ? null : createRingBuffer(ringBytes))),
    ),
  };
}

/** Atomics.waitAsync (ES2024; not in this project's TypeScript lib), where the engine has it. */
type WaitAsync = (cell: Int32Array, index: number, value: number, timeoutMs?: number) => { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync?.bind(Atomics);

export interface Delivery {
  from: number;
  frame: Uint8Array;
}

export class LocalLinks {
  readonly self: number;
  private readonly out: (RingWriter | null)[];
  private readonly in: (RingReader | null)[];
  private readonly bells: Doorbell[];
  private readonly backlog: Uint8Array[][];
  private next = 0;

  constructor(plan: LocalLinksPlan) {
    this.self = plan.self;
    this.bells = plan.bells.map((b) => new Doorbell(b));
    this.out = plan.rings[plan.self]!.map((sab) => (sab ? new RingWriter(sab) : null));
    this.in = plan.rings.map((row) => (row[plan.self] ? new RingReader(row[plan.self]!) : null));
    this.backlog = plan.rings.map(() => []);
  }

  get nodes(): number {
    return this.bells.length;
  }

  send(to: number, frame: Uint8Array): void {
    const ring = this.out[to];
    if (!ring) throw new RangeError(`node ${this.self} has no link to node ${to}`);
    const queue = this.backlog[to]!;
    if (queue.length === 0 && ring.tryWrite(frame)) this.bells[to]!.ring();
    else queue.push(frame);
  }

  /** Moves queued frames into rings that have room again; true when nothing is left queued. */
  flush(): boolean {
    let empty = true;
    this.backlog.forEach((queue, to) => {
      let wrote = false;
      while (queue.length > 0 && this.out[to]!.tryWrite(queue[0]!)) {
        queue.shift();
        wrote = true;
      }
      if (wrote) this.bells[to]!.ring();
      if (queue.length > 0) empty = false;
    });
    return empty;
  }

  /** The next frame from any peer (taking peers in turn), or null. Each peer's frames stay in order. */
  receive(): Delivery | null {
    for (let i = 0; i < this.in.length; i++) {
      const from = (this.next + i) % this.in.length;
      const ring = this.in[from];
      const frame = ring?.read();
      if (frame) {
        this.next = (from + 1) % this.in.length;
        // Room was made: wake the writer if it keeps frames the ring could not take. (Not on
        // every read: each ring wakes the peer's event loop.)
        if (ring!.takeWriterWaiting()) this.bells[from]!.ring();
        return { from, frame };
      }
    }
    return null;
  }

  private pending(): boolean {
    return this.in.some((r) => r !== null && r.used > 0);
  }

  /** How often this node's doorbell rang so far: compare two readings to learn whether a frame may have come. */
  get rings(): number {
    return this.bells[this.self]!.count;
  }

  /**
   * Calls `onTraffic` from the event loop soon after this node's doorbell rings (and once at the
   * start), without blocking: a worker whose vCPU is idle or between run slices then handles a
   * frame at once instead of at its next timer. Needs Atomics.waitAsync (Node 16+, Chromium);
   * check `LocalLinks.canWatch`. Returns the function that stops watching.
   */
  watch(onTraffic: () => void): () => void {
    if (!LocalLinks.canWatch) throw new Error("this JavaScript engine has no Atomics.waitAsync; poll the links on a timer instead");
    const cell = this.bells[this.self]!.cell;
    let stopped = false;
    const round = () => {
      // A bell rung while onTraffic ran makes waitAsync answer at once; go round again, but
      // yield to the event loop after a few rounds so a busy peer cannot starve this worker.
      for (let i = 0; i < 8 && !stopped; i++) {
        const seen = Atomics.load(cell, 0);
        onTraffic();
        if (stopped) return;
        const w = waitAsync!(cell, 0, seen);
        if (w.async) {
          void w.value.then(round);
          return;
        }
      }
      if (!stopped) setTimeout(round, 0);
    };
    round();
    return () => {
      stopped = true;
      // Release the pending waiter (its round sees `stopped` and ends).
      Atomics.notify(cell, 0);
    };
  }

  static get canWatch(): boolean {
    return waitAsync !== undefined;
  }

  /**
   * Blocks the calling worker until a frame may be waiting or `timeoutMs` passes. Returns at once
   * when frames are already there. Never call it on a page's main thread.
   */
  waitForTraffic(timeoutMs: number): void {
    const bell = this.bells[this.self]!;
    const seen = bell.count;
    if (this.pending()) return;
    bell.wait(seen, timeoutMs);
  }
}
