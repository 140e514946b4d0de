// Drives one node's DsmNode against its local memory and its links: the glue between the pure
// protocol core and a vCPU engine in a worker. The engine calls `fault` synchronously from inside a
// guest instruction; `fault` blocks (on the links' doorbell) until the page is granted, and while
// it waits it keeps serving every other message, so two blocked vCPUs can never wait on each other.

import { decode, encode } from "../../protocol/codec.ts";
import type { DsmEffect } from "../../protocol/dsm/effects.ts";
import type { DsmNode } from "../../protocol/dsm/node.ts";
import type { DsmMessage, Message } from "../../protocol/messages.ts";
import { PAGE_SIZE, type FaultAccess, type NodeId } from "../../protocol/types.ts";
import { hopSeen, hopTraced } from "../links/hop-trace.ts";

/** What the agent needs of the local engine (the engine's Vcpu provides these). */
export interface PageMemory {
  setPageAccess(page: number, state: "write" | "read" | "none"): void;
  /** Lowers the page's state at an instruction boundary and returns its current bytes. */
  revoke(page: number, to: "read" | "none"): Uint8Array;
  writePage(page: number, bytes: Uint8Array): void;
}

/** What the agent needs of the links (LocalLinks in a tab; a network agent's proxy across tabs). */
export interface FrameLinks {
  send(to: number, frame: Uint8Array): void;
  receive(): { from: number; frame: Uint8Array } | null;
  flush(): boolean;
  waitForTraffic(timeoutMs: number): void;
}

export interface DsmAgentCounters {
  faults: number;
  blockedMs: number;
  /** Hold windows opened, and those at whose end a peer's request was waiting. */
  windows: number;
  windowWaits: number;
  framesIn: number;
  framesOut: number;
}

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

/**
 * Optional observer of the agent's traffic (the live view's page moves and trace events). Called
 * synchronously with the decoded message; it must only record (never send or block).
 */
export interface DsmObserver {
  sent(to: NodeId, msg: Message): void;
  received(from: NodeId, msg: Message): void;
}

export class DsmAgent {
  private blockedSince: number | null = null;
  readonly counters: DsmAgentCounters = { faults: 0, blockedMs: 0, windows: 0, windowWaits: 0, framesIn: 0, framesOut: 0 };
  /** Pages granted whose access has not been reported done to the DSM yet. */
  private held: number[] = [];
  private lastGrant: { page: number; access: FaultAccess } | null = null;
  /** Null unless a viewer listens; each frame then costs one check of this field. */
  observer: DsmObserver | null = null;
  /** Open hold windows in the order they opened (one length for all, so also in the order they end). */
  private windows: { page: number; until: number }[] = [];

  constructor(
    private readonly dsm: DsmNode,
    private readonly memory: PageMemory,
    private readonly links: FrameLinks,
    /** Every message that is not DSM traffic (IPIs, I/O, console, control). */
    private readonly onOther: (from: NodeId, msg: Message) => void = () => {},
    private readonly now: () => number = () => performance.now(),
    /**
     * How long a page that came to be written stays after its first use (Mirage's window;
     * the DsmNode must have holdGrants). 0: no window (a hold effect ends at once).
     */
    private readonly holdMs = 0,
  ) {
    if (!(Number.isFinite(holdMs) && holdMs >= 0)) throw new RangeError(`holdMs must be a number of ms >= 0, got ${holdMs}`);
  }

  /** Sends a non-DSM message to another node through the same ordered links. */
  send(to: NodeId, msg: Message): void {
    if (hopTraced(msg.type)) hopSeen("send");
    this.links.send(to, encode(msg));
    this.counters.framesOut++;
    if (this.observer) this.observer.sent(to, msg);
  }

  /**
   * The engine needs `page` with `access`. Blocks until the DSM grants it; returns the access granted.
   * The page's bytes, when they changed, are already written into local memory.
   */
  fault(page: number, access: FaultAccess): "read" | "write" {
    this.counters.faults++;
    // The previous grants' accesses have happened by now (the engine moved on to this one).
    this.releaseHeld();
    this.lastGrant = null;
    this.apply(this.dsm.onLocalFault(page, access));
    this.block(() => this.granted(page, access));
    return this.lastGrant!.access;
  }

  /**
   * Blocks the worker until `done()` holds, handling every message that arrives meanwhile (DSM
   * traffic through the protocol core, the rest through `onOther`, which is what sets `done`).
   * Used for faults and for I/O reads that wait on node 0.
   */
  block(done: () => boolean): void {
    // Never wait while holding a granted page: the node we wait for may need it to answer (an I/O
    // read on node 0 that is itself faulting on this page). The engine restarts an instruction
    // whose page was taken away while it waited.
    this.releaseHeld();
    const start = this.now();
    this.blockedSince = start;
    try {
      while (!done()) {
        // Windows end on time even while this vCPU waits: a peer's request may wait on one.
        this.endWindows();
        this.links.flush();
        if (!this.pump()) this.links.waitForTraffic(this.windows.length > 0 ? Math.min(20, Math.max(0, this.windows[0]!.until - this.now())) : 20);
      }
    } finally {
      this.blockedSince = null;
      this.counters.blockedMs += this.now() - start;
    }
  }

  /** Total ms this node's vCPU has waited in block(), the wait under way included: never decreases. */
  waitedMs(): number {
    return this.counters.blockedMs + (this.blockedSince === null ? 0 : this.now() - this.blockedSince);
  }

  private granted(page: number, access: FaultAccess): boolean {
    const g = this.lastGrant;
    return g !== null && g.page === page && (g.access === "write" || access === "read");
  }

  /**
   * True while a granted page's access has not been reported done: the manager waits for that
   * report (sent by `poll` or the next fault) before it moves the page again.
   */
  get holdsGrants(): boolean {
    return this.held.length > 0;
  }

  /**
   * Carries out effects the runtime asked of the DSM outside a fault or a message (a membership
   * change: DsmNode.addMember, removeMember, leave) and pushes the frames out.
   */
  carryOut(effects: DsmEffect[]): void {
    this.apply(effects);
    this.links.flush();
  }

  /**
   * True when a hold window is over and a peer's request waits on one: a reason to poll now (the
   * engine's clock reads ask, to end a slice early).
   */
  get windowDue(): boolean {
    return this.windows.length > 0 && this.dsm.requestsInWindows > 0 && this.windows[0]!.until <= this.now();
  }

  /** Non-blocking: finishes held grants, handles every waiting frame, ends due windows, pushes queued frames out. */
  poll(): void {
    this.releaseHeld();
    this.pump();
    this.endWindows();
    this.links.flush();
  }

  private endWindows(): void {
    if (this.windows.length === 0) return;
    const t = this.now();
    while (this.windows.length > 0 && this.windows[0]!.until <= t) {
      const waiting = this.dsm.requestsInWindows;
      this.apply(this.dsm.holdOver(this.windows.shift()!.page));
      if (this.dsm.requestsInWindows < waiting) this.counters.windowWaits++;
    }
  }

  /** Handles every frame waiting on the links; true when there was at least one. */
  private pump(): boolean {
    let any = false;
    for (let d = this.links.receive(); d !== null; d = this.links.receive()) {
      any = true;
      this.counters.framesIn++;
      const msg = decode(d.frame);
      if (hopTraced(msg.type)) hopSeen("receive");
      if (this.observer) this.observer.received(d.from, msg);
      if (msg.type.startsWith("dsm-")) this.apply(this.dsm.onMessage(d.from, msg as DsmMessage));
      else this.onOther(d.from, msg);
    }
    return any;
  }

  private releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const page of held) this.apply(this.dsm.accessDone(page));
  }

  private apply(effects: DsmEffect[]): void {
    const queue = effects.slice();
    for (let e = queue.shift(); e !== undefined; e = queue.shift()) {
      switch (e.type) {
        case "send":
          this.links.send(e.to, encode(e.msg));
          this.counters.framesOut++;
          if (this.observer) this.observer.sent(e.to, e.msg);
          break;
        case "grant":
          if (e.data.form === "bytes") this.memory.writePage(e.page, e.data.bytes);
          else if (e.data.form === "zero") this.memory.writePage(e.page, ZERO_PAGE);
          this.memory.setPageAccess(e.page, e.access);
          this.held.push(e.page);
          this.lastGrant = { page: e.page, access: e.access };
          break;
        case "hold":
          this.counters.windows++;
          if (this.holdMs > 0) this.windows.push({ page: e.page, until: this.now() + this.holdMs });
          else queue.push(...this.dsm.holdOver(e.page));
          break;
        case "revoke": {
          const bytes = this.memory.revoke(e.page, e.access);
          queue.push(...this.dsm.revoked(e.page, e.wantBytes ? bytes : undefined));
          break;
        }
      }
    }
  }
}
