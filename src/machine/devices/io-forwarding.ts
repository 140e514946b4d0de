// Port I/O of a vCPU whose node has no devices: every device lives on node 0 (as in GiantVM), so a
// remote vCPU's port reads block until node 0 answers and its writes are posted, kept in order by
// the link. Node 0 runs each request as soon as it arrives, even while its own vCPU is blocked in a
// page fault: a remote CPU's port write must reach the device before anything that CPU did after it
// (a spinlock release, a page handed over) is seen by node 0. Deferring writes to node 0's next run
// slice lost the 8250's transmit interrupt for good: CPU 1 cleared IER.THRI under the port lock,
// CPU 0 took the lock and set THRI, then CPU 1's stale write landed and turned it off again.

import type { IoReply, IoSize, Message, MmioRead, MmioWrite, PortRead, PortWrite } from "../../protocol/messages.ts";
import { MAX_VCPUS, type NodeId, type VcpuId } from "../../protocol/types.ts";
import type { PortDispatcher } from "../../engine/ports.ts";

/** The queues a peer can grow, each bounded: see QueueOverflowError. */
export type BoundedQueue = "io-server" | "link-backlog" | "bridge-backlog";

const QUEUE_TEXT: Record<BoundedQueue, (from: number, to: number) => string> = {
  "io-server": (from, to) => `the I/O server's queue of forwarded accesses on node ${to} (the last from node ${from})`,
  "link-backlog": (from, to) => `node ${from}'s backlog of frames for node ${to} (node ${to} is not reading its ring)`,
  "bridge-backlog": (from, to) => `the tab bridge's backlog of frames from node ${from} for node ${to} (node ${to} is not reading its ring as fast as node ${from} sends)`,
};

/**
 * A queue that another node can grow passed its bound. The VM cannot go on: the frame or request
 * was refused (an ordered protocol that loses a frame hangs), so whoever catches this stops the VM.
 * Defined here, the lowest layer that needs it (machine/ cannot import runtime/); the links in
 * src/runtime/links/ raise it too.
 */
export class QueueOverflowError extends Error {
  override name = "QueueOverflowError";
  constructor(
    /** Which queue overflowed. */
    readonly queue: BoundedQueue,
    /** The node whose frames or requests filled it. */
    readonly from: NodeId,
    /** The node the queue delivers to (for the I/O server: the device node). */
    readonly to: NodeId,
    /** The bound that would have been passed, in `unit`s. */
    readonly limit: number,
    readonly unit: "frames" | "bytes" | "requests",
  ) {
    super(`${QUEUE_TEXT[queue](from, to)} would pass its limit of ${limit} ${unit}; ${queue === "io-server" ? "the request was refused" : "the link is closed"}`);
  }
}

/** The devices' port space (node 0's v86 `cpu.io`). */
export interface PortSpace {
  read(port: number, size: IoSize): number;
  write(port: number, size: IoSize, value: number): void;
}

/** Device registers mapped in memory (node 0's IOAPIC); `null` where a node has none. */
export interface MmioSpace {
  read(address: number, size: IoSize): number;
  write(address: number, size: IoSize, value: number): void;
}

export interface Blocker {
  block(done: () => boolean): void;
  send(to: NodeId, msg: Message): void;
}

export type IoRequest = PortRead | PortWrite | MmioRead | MmioWrite;

/**
 * Watches forwarded I/O for the live view's trace. Optional and null by default: an unobserved
 * node pays one field check per access. Hooks only record; they must not send or block.
 */
export interface IoObserver {
  /** IoClient: this request is leaving for the device node (a read then blocks until its reply). */
  sent(msg: IoRequest): void;
  /** IoClient: the device node's reply to read `msg.id` arrived. */
  replied(msg: IoReply): void;
  /** IoServer: a request from node `from` was run against the devices. */
  served(from: NodeId, msg: IoRequest): void;
}

/** On a node without devices: turns port accesses into messages to the device node. */
export class IoClient {
  private nextId = 1;
  private readonly replies = new Map<number, number>();
  readonly counters = { reads: 0, writes: 0 };
  observer: Pick<IoObserver, "sent" | "replied"> | null = null;

  constructor(
    private readonly agent: Blocker,
    private readonly vcpu: VcpuId,
    private readonly deviceNode: NodeId = 0,
  ) {}

  read(port: number, size: IoSize): number {
    return this.request((id) => ({ type: "port-read", id, vcpu: this.vcpu, port, size }));
  }

  /** Sends a read with a fresh id and blocks until the device node's reply to it arrives. */
  private request(msg: (id: number) => PortRead | MmioRead): number {
    const id = this.nextId++;
    this.nextId &= 0x7fffffff;
    this.counters.reads++;
    const m = msg(id);
    // Observed before the send: sending may pump the links and take the reply already.
    if (this.observer) this.observer.sent(m);
    this.agent.send(this.deviceNode, m);
    this.agent.block(() => this.replies.has(id));
    const value = this.replies.get(id)!;
    this.replies.delete(id);
    return value;
  }

  write(port: number, size: IoSize, value: number): void {
    this.counters.writes++;
    const m: PortWrite = { type: "port-write", vcpu: this.vcpu, port, size, value };
    if (this.observer) this.observer.sent(m);
    this.agent.send(this.deviceNode, m);
  }

  mmioRead(addr: number, size: IoSize): number {
    return this.request((id) => ({ type: "mmio-read", id, vcpu: this.vcpu, addr, size }));
  }

  mmioWrite(addr: number, size: IoSize, value: number): void {
    this.counters.writes++;
    const m: MmioWrite = { type: "mmio-write", vcpu: this.vcpu, addr, size, value };
    if (this.observer) this.observer.sent(m);
    this.agent.send(this.deviceNode, m);
  }

  onReply(msg: IoReply): void {
    this.replies.set(msg.id, msg.value);
    if (this.observer) this.observer.replied(msg);
  }
}

/**
 * How many forwarded accesses may wait in the I/O server's queue. The queue holds only what arrives
 * while another access runs: nothing, unless a device handler blocks and handles frames meanwhile
 * (a DMA device touching a page node 0 does not hold faults on it: the engine's read_blob/write_blob
 * hooks, and the DSM agent serves the links while it waits). A well-behaved peer then adds at most
 * one read per vCPU (a read blocks its vCPU until answered: at most MAX_VCPUS - 1 = 254 from all
 * peers) plus the writes it posts during one page fault (about a round trip, ~1 ms over WebRTC).
 * 16 * MAX_VCPUS (4080) is 16 times the reads' bound: only a peer that floods the device node
 * reaches it.
 */
export const IO_SERVER_MAX_QUEUE = 16 * MAX_VCPUS;

export interface IoServerOptions {
  /** The bound of the queue of waiting accesses (default IO_SERVER_MAX_QUEUE). */
  maxQueue?: number;
  /** This node's id, for the overflow error (default 0, the device node). */
  node?: NodeId;
}

/** On node 0: other nodes' port and MMIO accesses, run against the real devices in arrival order. */
export class IoServer {
  private readonly queue: { from: NodeId; msg: PortRead | PortWrite | MmioRead | MmioWrite }[] = [];
  private running = false;
  readonly counters = { reads: 0, writes: 0 };
  observer: Pick<IoObserver, "served"> | null = null;
  private readonly maxQueue: number;
  private readonly node: NodeId;

  constructor(
    private readonly ports: PortSpace,
    private readonly send: (to: NodeId, msg: Message) => void,
    private readonly mmio: MmioSpace | null = null,
    options: IoServerOptions = {},
  ) {
    this.maxQueue = options.maxQueue ?? IO_SERVER_MAX_QUEUE;
    this.node = options.node ?? 0;
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 1) throw new RangeError(`the I/O server's queue bound must be a positive integer, got ${this.maxQueue}`);
  }

  /**
   * Runs the access now. Safe while node 0's vCPU waits inside an instruction for a page: device
   * handlers touch no guest RAM here, and an interrupt they raise is only posted (taken at the next
   * boundary). A request arriving while another runs (a handler that sends, and so pumps, cannot,
   * but be safe) is queued behind it, keeping arrival order. A request that would make the queue
   * longer than its bound is refused: this throws QueueOverflowError (to the code that handles the
   * node's frames, which fails the node).
   */
  onRequest(from: NodeId, msg: PortRead | PortWrite | MmioRead | MmioWrite): void {
    if (this.queue.length >= this.maxQueue) throw new QueueOverflowError("io-server", from, this.node, this.maxQueue, "requests");
    this.queue.push({ from, msg });
    this.drain();
  }

  /** Runs every queued access, in order; a no-op when called from inside one of them. */
  drain(): void {
    if (this.running) return;
    this.running = true;
    try {
      this.runQueue();
    } finally {
      this.running = false;
    }
  }

  private runQueue(): void {
    for (let item = this.queue.shift(); item; item = this.queue.shift()) {
      const { from, msg } = item;
      switch (msg.type) {
        case "port-read":
          this.counters.reads++;
          this.send(from, { type: "io-reply", id: msg.id, value: this.ports.read(msg.port, msg.size) >>> 0 });
          break;
        case "port-write":
          this.counters.writes++;
          this.ports.write(msg.port, msg.size, msg.value);
          break;
        case "mmio-read":
          this.counters.reads++;
          // A device this node does not have reads as all ones, as an unclaimed bus cycle does.
          this.send(from, { type: "io-reply", id: msg.id, value: (this.mmio ? this.mmio.read(msg.addr, msg.size) : 0xffffffff) >>> 0 });
          break;
        case "mmio-write":
          this.counters.writes++;
          this.mmio?.write(msg.addr, msg.size, msg.value);
          break;
      }
      if (this.observer) this.observer.served(from, msg);
    }
  }
}

/** The devices of a v86 instance (its `vcpu.ports`) as a PortSpace (node 0), bound to the original dispatchers. */
export function portSpaceOf(io: PortDispatcher): PortSpace {
  const r8 = io.port_read8.bind(io), r16 = io.port_read16.bind(io), r32 = io.port_read32.bind(io);
  const w8 = io.port_write8.bind(io), w16 = io.port_write16.bind(io), w32 = io.port_write32.bind(io);
  return {
    read: (port, size) => (size === 1 ? r8(port) : size === 2 ? r16(port) : r32(port)),
    write: (port, size, value) => (size === 1 ? w8(port, value) : size === 2 ? w16(port, value) : w32(port, value)),
  };
}

/** Sends every port access of this v86 instance (its `vcpu.ports`) through `client` (a node without devices). */
export function forwardPorts(io: PortDispatcher, client: IoClient): void {
  io.port_read8 = (port) => client.read(port, 1) & 0xff;
  io.port_read16 = (port) => client.read(port, 2) & 0xffff;
  io.port_read32 = (port) => client.read(port, 4) | 0;
  io.port_write8 = (port, value) => client.write(port, 1, value & 0xff);
  io.port_write16 = (port, value) => client.write(port, 2, value & 0xffff);
  io.port_write32 = (port, value) => client.write(port, 4, value >>> 0);
}
