// Trace writer: records DSM and interrupt events for a few seconds and writes them in the Chrome
// trace-event JSON format, which Perfetto (ui.perfetto.dev) and chrome://tracing open. One process
// per node, with a "DSM" track (pages sent, invalidations) and one track per vCPU (faults, I/O,
// IPIs sent); metadata events name and order them. A page sent to answer a fault is drawn as an
// arrow from the sender's DSM track to the faulting vCPU's fault slice.

import type { TraceEvent } from "../../../protocol/telemetry/inputs.ts";

/** One Chrome trace event (the subset this writer produces). */
export type ChromeTraceEvent =
  | { ph: "M"; name: "process_name" | "thread_name" | "process_sort_index" | "thread_sort_index"; pid: number; tid?: number; args: Record<string, string | number> }
  | { ph: "X"; name: string; cat: string; pid: number; tid: number; ts: number; dur: number; args: Record<string, string | number> }
  | { ph: "i"; name: string; cat: string; pid: number; tid: number; ts: number; s: "t"; args: Record<string, string | number> }
  /** Flow arrows (v1): from the slice enclosing the "s" to the slice enclosing the "f". */
  | { ph: "s"; id: number; name: string; cat: string; pid: number; tid: number; ts: number }
  | { ph: "f"; bp: "e"; id: number; name: string; cat: string; pid: number; tid: number; ts: number };

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: "ms";
  otherData: Record<string, string | number>;
}

export interface TraceShape {
  nodes: number;
  /** vcpuHome[v] = node hosting vCPU v. */
  vcpuHome: readonly number[];
  /** Optional page description (e.g. the kernel symbols on it) added to events' args. */
  describePage?: (page: number) => string | undefined;
}

// Track ids. pid 0 is special in some viewers, so node n is process n + 1.
export const pidOf = (node: number) => node + 1;
export const DSM_TID = 1;
export const tidOfVcpu = (vcpu: number) => 1000 + vcpu;

const hex = (n: number) => `0x${n.toString(16)}`;

export class TraceRecorder {
  private events: TraceEvent[] = [];
  private startMs: number | null = null;
  private stopMs: number | null = null;
  /** Events refused because the bound was reached. */
  dropped = 0;

  constructor(readonly maxEvents = 200_000) {}

  get recording(): boolean {
    return this.startMs !== null && this.stopMs === null;
  }

  get count(): number {
    return this.events.length;
  }

  start(nowMs: number): void {
    this.events = [];
    this.dropped = 0;
    this.startMs = nowMs;
    this.stopMs = null;
  }

  /** Keeps the events that fall inside the recording (from start until stop). */
  add(events: readonly TraceEvent[]): void {
    if (!this.recording) return;
    for (const e of events) {
      if (timeOf(e) < this.startMs!) continue;
      if (this.events.length >= this.maxEvents) {
        this.dropped++;
        continue;
      }
      this.events.push(e);
    }
  }

  stop(nowMs: number): void {
    if (this.startMs === null) throw new Error("trace stopped before it was started");
    this.stopMs = nowMs;
  }

  /** The trace file's contents; times are µs from the start of the recording. */
  build(shape: TraceShape): ChromeTrace {
    if (this.startMs === null) throw new Error("no trace was recorded");
    const t0 = this.startMs;
    const us = (ms: number) => Math.round((ms - t0) * 1000);
    const out: ChromeTraceEvent[] = [];
    for (let n = 0; n < shape.nodes; n++) {
      const pid = pidOf(n);
      out.push({ ph: "M", name: "process_name", pid, args: { name: n === 0 ? "node 0 (devices)" : `node ${n}` } });
      out.push({ ph: "M", name: "process_sort_index", pid, args: { sort_index: n } });
      out.push({ ph: "M", name: "thread_name", pid, tid: DSM_TID, args: { name: "DSM (pages sent, invalidations)" } });
      out.push({ ph: "M", name: "thread_sort_index", pid, tid: DSM_TID, args: { sort_index: 0 } });
    }
    shape.vcpuHome.forEach((node, vcpu) => {
      out.push({ ph: "M", name: "thread_name", pid: pidOf(node), tid: tidOfVcpu(vcpu), args: { name: `vCPU ${vcpu}` } });
      out.push({ ph: "M", name: "thread_sort_index", pid: pidOf(node), tid: tidOfVcpu(vcpu), args: { sort_index: 1 + vcpu } });
    });
    // The device node serves other nodes' forwarded I/O: one named track per requesting vCPU there.
    const servedTracks = new Set<string>();
    for (const e of this.events)
      if (e.type === "io" && shape.vcpuHome[e.vcpu] !== e.node && !servedTracks.has(`${e.node}:${e.vcpu}`)) {
        servedTracks.add(`${e.node}:${e.vcpu}`);
        out.push({ ph: "M", name: "thread_name", pid: pidOf(e.node), tid: tidOfVcpu(e.vcpu), args: { name: `I/O served for vCPU ${e.vcpu}` } });
        out.push({ ph: "M", name: "thread_sort_index", pid: pidOf(e.node), tid: tidOfVcpu(e.vcpu), args: { sort_index: 1000 + e.vcpu } });
      }
    const pageArgs = (page: number): Record<string, string | number> => {
      const what = shape.describePage?.(page);
      return what ? { page: hex(page), symbols: what } : { page: hex(page) };
    };
    const sorted = [...this.events].sort((a, b) => timeOf(a) - timeOf(b));
    // Faults by (node, page), to find the one a page transfer answered.
    const faults = new Map<string, Extract<TraceEvent, { type: "fault" }>[]>();
    for (const e of sorted)
      if (e.type === "fault") {
        const key = `${e.node}:${e.page}`;
        faults.set(key, [...(faults.get(key) ?? []), e]);
      }
    const flows: ChromeTraceEvent[] = [];
    for (const e of sorted) {
      switch (e.type) {
        case "fault":
          out.push({ ph: "X", name: `${e.access} fault`, cat: "dsm", pid: pidOf(e.node), tid: tidOfVcpu(e.vcpu), ts: us(e.startMs), dur: Math.max(0, us(e.endMs) - us(e.startMs)), args: pageArgs(e.page) });
          break;
        case "page-sent": {
          // A 1 µs slice rather than an instant, so a flow arrow can start from it.
          out.push({ ph: "X", name: `page to node ${e.to}`, cat: "dsm", pid: pidOf(e.node), tid: DSM_TID, ts: us(e.atMs), dur: 1, args: { ...pageArgs(e.page), form: e.form, to: e.to } });
          const fault = faults.get(`${e.to}:${e.page}`)?.find((f) => f.startMs <= e.atMs && e.atMs <= f.endMs);
          if (fault) {
            const id = flows.length / 2 + 1;
            flows.push({ ph: "s", id, name: "page", cat: "dsm", pid: pidOf(e.node), tid: DSM_TID, ts: us(e.atMs) });
            const end = Math.min(Math.max(us(e.atMs), us(fault.startMs)), us(fault.endMs));
            flows.push({ ph: "f", bp: "e", id, name: "page", cat: "dsm", pid: pidOf(fault.node), tid: tidOfVcpu(fault.vcpu), ts: end });
          }
          break;
        }
        case "invalidate":
          out.push({ ph: "i", s: "t", name: "invalidate", cat: "dsm", pid: pidOf(e.node), tid: DSM_TID, ts: us(e.atMs), args: { ...pageArgs(e.page), by: e.by } });
          break;
        case "ipi":
          out.push({ ph: "i", s: "t", name: `${e.kind === "irq" ? "IRQ" : `IPI ${e.kind}`} to CPU ${e.dest}`, cat: "interrupt", pid: pidOf(e.node), tid: tidOfVcpu(e.src), ts: us(e.atMs), args: e.vector === undefined ? { dest: e.dest } : { dest: e.dest, vector: hex(e.vector) } });
          break;
        case "io":
          out.push({ ph: "X", name: e.op, cat: "io", pid: pidOf(e.node), tid: tidOfVcpu(e.vcpu), ts: us(e.startMs), dur: Math.max(0, us(e.endMs) - us(e.startMs)), args: { addr: hex(e.addr) } });
          break;
      }
    }
    return {
      traceEvents: [...out, ...flows],
      displayTimeUnit: "ms",
      otherData: {
        producer: "giantweb live view",
        recordedMs: Math.round((this.stopMs ?? t0) - t0),
        events: this.events.length,
        dropped: this.dropped,
      },
    };
  }
}

export function timeOf(e: TraceEvent): number {
  return e.type === "fault" || e.type === "io" ? e.startMs : e.atMs;
}

/** File name for a trace recorded at `date`: giantweb-trace-2026-11-25T09-30-00.json. */
export function traceFileName(date: Date): string {
  return `giantweb-trace-${date.toISOString().slice(0, 19).replace(/:/g, "-")}.json`;
}
