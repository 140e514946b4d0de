// What a node records for the live view beyond its statistics snapshot: the pages it sent (exact
// hot pages), the interrupts it sent by destination and kind (the IPI matrix), and, only while a
// trace records, DSM and interrupt events. It observes the DSM agent and the interrupt router
// through their optional observer fields; every hook only appends to plain maps and arrays.

import { MAX_REPORT_EVENTS } from "../../protocol/codec.ts";
import type { Delivery, Message } from "../../protocol/messages.ts";
import type { FaultAccess } from "../../protocol/types.ts";
import { IpiCountCollector, PageMoveCollector } from "../../protocol/telemetry/collect.ts";
import type { TraceEvent } from "../../protocol/telemetry/inputs.ts";
import type { DsmObserver } from "./dsm-agent.ts";
import type { IoObserver, IoRequest } from "../../machine/devices/io-forwarding.ts";
import type { NodeViewReport } from "../web/node-protocol.ts";

/**
 * Events kept between two reports (a report leaves every 250 ms); more are counted as dropped. Below
 * the codec's limit, so a report always encodes for the other tabs.
 */
export const MAX_EVENTS_PER_REPORT = Math.min(50_000, MAX_REPORT_EVENTS);

export class NodeViewRecorder implements DsmObserver {
  private readonly moves = new PageMoveCollector();
  private readonly ipis = new IpiCountCollector();
  private events: TraceEvent[] = [];
  private dropped = 0;

  constructor(
    private readonly node: number,
    /** True while the viewer records a trace (a shared flag the page sets). */
    private readonly tracing: () => boolean,
    /** Wall-clock ms (performance.timeOrigin + performance.now()): the page shifts it to its own clock. */
    private readonly now: () => number,
  ) {}

  private push(e: TraceEvent): void {
    if (this.events.length < MAX_EVENTS_PER_REPORT) this.events.push(e);
    else this.dropped++;
  }

  sent(to: number, msg: Message): void {
    if (msg.type !== "dsm-grant") return;
    this.moves.sent(msg.page, to);
    if (this.tracing()) this.push({ type: "page-sent", node: this.node, to, page: msg.page, form: msg.data.form, atMs: this.now() });
  }

  received(_from: number, msg: Message): void {
    if (msg.type === "dsm-invalidate" && this.tracing())
      this.push({ type: "invalidate", node: this.node, page: msg.page, by: msg.ackTo, atMs: this.now() });
  }

  /** The router's observer: an interrupt this node sent to vCPU `dest` (pin: an IOAPIC IRQ). */
  readonly interrupt = (src: number | null, dest: number, delivery: Delivery, pin?: number): void => {
    const kind = pin === undefined ? delivery.mode : "irq";
    const from = src ?? 0; // the device node without a vCPU raises IRQs on behalf of vCPU 0's machine
    this.ipis.count(from, dest, kind);
    if (this.tracing()) {
      const vector = "vector" in delivery ? delivery.vector : undefined;
      this.push({ type: "ipi", node: this.node, src: from, dest, kind, ...(vector === undefined ? {} : { vector }), atMs: this.now() });
    }
  };

  /** Reads this node's vCPU forwarded, by request id: when each left (only while a trace records). */
  private readonly pendingReads = new Map<number, IoRequest & { atMs: number }>();

  /**
   * The observer of the node's I/O forwarding: a client node's forwarded accesses as slices on its
   * vCPU's track (a read lasts from its request to the reply), the device node's served ones as
   * instants (start = end) on its own process, on a track per requesting vCPU.
   */
  readonly io: IoObserver = {
    sent: (msg) => {
      if (!this.tracing()) return;
      const atMs = this.now();
      if (msg.type === "port-read" || msg.type === "mmio-read") this.pendingReads.set(msg.id, { ...msg, atMs });
      else this.push(ioEvent(this.node, msg, atMs, atMs));
    },
    replied: (reply) => {
      const read = this.pendingReads.get(reply.id);
      if (!read) return;
      this.pendingReads.delete(reply.id);
      this.push(ioEvent(this.node, read, read.atMs, this.now()));
    },
    served: (_from, msg) => {
      if (!this.tracing()) return;
      const atMs = this.now();
      this.push(ioEvent(this.node, msg, atMs, atMs));
    },
  };

  /** A fault of this node's vCPU, timed by the worker (wall-clock ms). */
  fault(vcpu: number, page: number, access: FaultAccess, startMs: number, endMs: number): void {
    if (this.tracing()) this.push({ type: "fault", node: this.node, vcpu, page, access, startMs, endMs });
  }

  /** Everything since the previous report (page moves and events are taken; IPI counts are cumulative). */
  take(): NodeViewReport {
    const events = this.events;
    const dropped = this.dropped;
    this.events = [];
    this.dropped = 0;
    const moves = this.moves.take(this.node, this.now());
    return { node: this.node, movesSeq: moves.seq, moves: moves.moves, ipiCounts: this.ipis.report(this.node).counts, events, droppedEvents: dropped };
  }
}

function ioEvent(node: number, msg: IoRequest, startMs: number, endMs: number): TraceEvent {
  const addr = msg.type === "port-read" || msg.type === "port-write" ? msg.port : msg.addr;
  return { type: "io", node, vcpu: msg.vcpu, op: msg.type, addr, startMs, endMs };
}
