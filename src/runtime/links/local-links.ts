// The links of one node to the other nodes of the same tab, over shared-memory rings.
// Per ordered pair of nodes one ring keeps frames in FIFO order; frames a full ring cannot take wait
// in a local queue (the sender never blocks, so two nodes can never block on each other's rings).
// That queue is bounded (`BacklogLimits`): a peer that stops reading its ring while this node keeps
// sending (answers to its pings and port reads, grants for its requests, posted writes) would
// otherwise grow it until the worker runs out of memory.

import { MAX_NODES, PAGE_SIZE } from "../../protocol/types.ts";
import { QueueOverflowError } from "../../machine/devices/io-forwarding.ts";
import { createRingBuffer, Doorbell, RingError, RingReader, RingWriter } from "./sab-ring.ts";

export { QueueOverflowError };

/** A frame longer than the ring it must go through can ever hold; refused where it enters. */
export class FrameTooLargeError extends RingError {
  override name = "FrameTooLargeError";
  constructor(
    readonly from: number,
    readonly to: number,
    readonly bytes: number,
    readonly maxFrame: number,
  ) {
    super(`a frame of ${bytes} bytes from node ${from} to node ${to} is longer than the ${maxFrame} bytes its ring can hold; refused`);
  }
}

/** A link closed after its backlog overflowed: the frame was refused (`cause`: the overflow). */
export class LinkClosedError extends Error {
  override name = "LinkClosedError";
  constructor(
    readonly from: number,
    readonly to: number,
    override readonly cause: QueueOverflowError,
  ) {
    super(`the link from node ${from} to node ${to} was closed when its backlog overflowed (${cause.message}); frame refused`);
  }
}

/** The bound of one link's backlog (frames a full ring could not take yet). */
export interface BacklogLimits {
  frames: number;
  bytes: number;
}

/**
 * How many frames one node can have sent to another that the receiver has not answered, in a
 * well-behaved cluster (src/protocol/README.md, "The DSM in one page"): a node has at most one fault
 * outstanding, so per directed link X -> Y there are at most MAX_NODES forwards (X manages pages Y
 * owns; one per blocked requester), MAX_NODES invalidations (X owns pages Y copies; one per blocked
 * writer), and one each of request, confirm, grant and invalidate-ack for Y's or X's own single
 * fault; likewise one io-reply (a port read blocks its vCPU). Only the grant carries a page.
 */
export const DSM_FRAMES_IN_FLIGHT = 2 * MAX_NODES + 4;
/** Their bytes: the page of the one grant, and at most 32 bytes for each other frame (a request is 8). */
export const DSM_BYTES_IN_FLIGHT = PAGE_SIZE + 512 + 32 * DSM_FRAMES_IN_FLIGHT;

/**
 * The default bound of a backlog behind a ring of `ringBytes`. A frame only waits there once the
 * ring is full, i.e. once the reader is a whole ring behind. The DSM's frames in flight (above) are
 * few and fit the smallest ring; what fills a ring is posted traffic (port and MMIO writes, IPIs,
 * IRQs, EOIs, APIC register broadcasts), which the protocol does not bound and a node reads between
 * instruction chunks. So the bound is another four rings' worth of bytes (a reader 5 MiB behind with
 * the default 1 MiB rings), and in frames one more ring's worth of the smallest frames (a 4-byte
 * frame takes 8 bytes of ring: ringBytes / 8, 131072 for 1 MiB); never below 8 times the DSM's
 * frames and 4 times its bytes in flight, so small rings do not make a well-behaved peer overflow.
 */
export function defaultBacklogLimits(ringBytes: number): BacklogLimits {
  return {
    frames: Math.max(Math.floor(ringBytes / 8), 8 * DSM_FRAMES_IN_FLIGHT),
    bytes: Math.max(4 * ringBytes, 4 * DSM_BYTES_IN_FLIGHT),
  };
}

/** The limits of a backlog behind a ring of `ringBytes`: `limits` where given, the defaults elsewhere; checked. */
export function backlogLimits(ringBytes: number, limits?: Partial<BacklogLimits>): BacklogLimits {
  const l = { ...defaultBacklogLimits(ringBytes), ...limits };
  for (const k of ["frames", "bytes"] as const)
    if (!(Number.isInteger(l[k]) && l[k] >= 1)) throw new RangeError(`backlog limit ${k} must be a positive integer, got ${l[k]}`);
  return l;
}

/**
 * Frames waiting for room in one ring, FIFO, bounded by `limits`. `push` refuses (throws
 * QueueOverflowError, and closes the backlog: it drops what it held and refuses every later frame
 * with LinkClosedError) instead of passing the bound.
 */
export class Backlog {
  private items: Uint8Array[] = [];
  private head = 0;
  private heldBytes = 0;
  private closedBy: QueueOverflowError | null = null;

  constructor(
    readonly queue: "link-backlog" | "bridge-backlog",
    readonly from: number,
    readonly to: number,
    readonly limits: BacklogLimits,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }
  get bytes(): number {
    return this.heldBytes;
  }
  get closed(): boolean {
    return this.closedBy !== null;
  }

  push(frame: Uint8Array): void {
    if (this.closedBy) throw new LinkClosedError(this.from, this.to, this.closedBy);
    let over: QueueOverflowError | null = null;
    if (this.length + 1 > this.limits.frames) over = new QueueOverflowError(this.queue, this.from, this.to, this.limits.frames, "frames");
    else if (this.heldBytes + frame.length > this.limits.bytes) over = new QueueOverflowError(this.queue, this.from, this.to, this.limits.bytes, "bytes");
    if (over) {
      this.closedBy = over;
      this.items = [];
      this.head = 0;
      this.heldBytes = 0;
      throw over;
    }
    this.items.push(frame);
    this.heldBytes += frame.length;
  }

  /** Writes waiting frames into `ring` while it has room; true when at least one went. */
  drainInto(ring: RingWriter): boolean {
    let wrote = false;
    while (this.head < this.items.length && ring.tryWrite(this.items[this.head]!)) {
      this.heldBytes -= this.items[this.head]!.length;
      this.items[this.head++] = EMPTY;
      wrote = true;
    }
    if (this.head === this.items.length) (this.items = []), (this.head = 0);
    else if (this.head > 1024) (this.items = this.items.slice(this.head)), (this.head = 0);
    return wrote;
  }
}
const EMPTY = new Uint8Array(0);

/** Everything a node needs to join its tab's links; plain data, so it can be posted to a worker. */
export interface LocalLinksPlan {
  self: number;
  nodes: number;
  /** bells[i] wakes node i. */
  bells: SharedArrayBuffer[];
  /** rings[from][to]; null on the diagonal. */
  rings: (SharedArrayBuffer | null)[][];
  /** The bound of each link's backlog (default: `defaultBacklogLimits` of the ring size). */
  backlog?: Partial<BacklogLimits>;
}

export function planLocalLinks(nodes: number, ringBytes = 1 << 20, backlog?: Partial<BacklogLimits>): Omit<LocalLinksPlan, "self"> {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64) throw new RangeError(`node count ${nodes} must be 1..64`);
  backlogLimits(ringBytes, backlog);
  return {
    nodes,
    ...(backlog ? { backlog: { ...backlog } } : {}),
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
  private readonly backlog: (Backlog | null)[];
  private next = 0;

  constructor(plan: LocalLinksPlan) {
    this.self = plan.self;
    this.bells = plan.bells.map((b) => new Doorbell(b));
    this.out = plan.rings[plan.self]!.map((sab) => (sab ? new RingWriter(sab) : null));
    this.in = plan.rings.map((row) => (row[plan.self] ? new RingReader(row[plan.self]!) : null));
    this.backlog = this.out.map((ring, to) => (ring ? new Backlog("link-backlog", plan.self, to, backlogLimits(ring.maxFrame + 4, plan.backlog)) : null));
  }

  get nodes(): number {
    return this.bells.length;
  }

  /**
   * Sends a frame, or keeps it in the link's backlog while the ring is full. Throws
   * FrameTooLargeError for a frame the ring can never hold, QueueOverflowError when the backlog
   * would pass its bound (the link is then closed), and LinkClosedError on a closed link.
   */
  send(to: number, frame: Uint8Array): void {
    const ring = this.out[to];
    if (!ring) throw new RangeError(`node ${this.self} has no link to node ${to}`);
    if (frame.length > ring.maxFrame) throw new FrameTooLargeError(this.self, to, frame.length, ring.maxFrame);
    const queue = this.backlog[to]!;
    if (queue.length === 0 && !queue.closed && ring.tryWrite(frame)) this.bells[to]!.ring();
    else queue.push(frame);
  }

  /** Moves queued frames into rings that have room again; true when nothing is left queued. */
  flush(): boolean {
    let empty = true;
    this.backlog.forEach((queue, to) => {
      if (!queue) return;
      if (queue.drainInto(this.out[to]!)) this.bells[to]!.ring();
      if (queue.length > 0) empty = false;
    });
    return empty;
  }

  /** Frames and bytes waiting in the backlog for node `to`. */
  backlogOf(to: number): { frames: number; bytes: number } {
    const queue = this.backlog[to];
    return { frames: queue?.length ?? 0, bytes: queue?.bytes ?? 0 };
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
