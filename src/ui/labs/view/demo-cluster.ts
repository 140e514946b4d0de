// A tiny synchronous cluster of real protocol-core DsmNodes, for the lab page and the view's tests:
// every message is delivered at once in FIFO order and every engine revokes and retries at once.
// What it produces (snapshots with page deltas, DSM events) is exactly what real nodes produce,
// minus the timing; the lab's workload decides which CPU touches which page when.

import { DsmNode } from "../../../protocol/dsm/node.ts";
import type { DsmEffect } from "../../../protocol/dsm/effects.ts";
import type { DsmMessage, LinkStat, StatCounters, StatsSnapshot, VcpuStat } from "../../../protocol/messages.ts";
import { buildSnapshot } from "../../../protocol/stats.ts";
import type { FaultAccess } from "../../../protocol/types.ts";
import { PAGE_SIZE } from "../../../protocol/types.ts";
import type { TraceEvent } from "../../../protocol/telemetry/inputs.ts";

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export class DemoCluster {
  readonly dsm: DsmNode[];
  private readonly seq: number[];
  /** DSM events since the last takeEvents(), stamped with the time given to access(). */
  private events: TraceEvent[] = [];
  private nowMs = 0;

  constructor(
    readonly nodes: number,
    readonly pages: number,
  ) {
    this.dsm = Array.from({ length: nodes }, (_, self) => new DsmNode({ self, nodes, pages }));
    this.seq = new Array<number>(nodes).fill(0);
  }

  /** vCPU `vcpu` on `node` touches `page`; faults through the protocol when the node lacks access. */
  access(node: number, vcpu: number, page: number, access: FaultAccess, atMs: number): boolean {
    this.nowMs = atMs;
    const state = this.dsm[node]!.pageState(page);
    const ok = access === "read" ? state !== "invalid" : state === "modified";
    if (ok) return false;
    this.run([[node, this.dsm[node]!.onLocalFault(page, access)]]);
    // A remote fault costs about a link round trip; the lab stamps it as ~1 ms.
    this.events.push({ type: "fault", node, vcpu, page, access, startMs: atMs, endMs: atMs + (this.nodes > 1 ? 1 : 0.01) });
    return true;
  }

  private run(initial: [number, DsmEffect[]][]): void {
    const queue: [number, DsmEffect][] = initial.flatMap(([n, effs]) => effs.map((e): [number, DsmEffect] => [n, e]));
    const push = (n: number, effs: DsmEffect[]) => effs.forEach((e) => queue.push([n, e]));
    for (let steps = 0; queue.length > 0; steps++) {
      if (steps > 100_000) throw new Error("demo cluster: the protocol did not settle");
      const [n, e] = queue.shift()!;
      const node = this.dsm[n]!;
      switch (e.type) {
        case "send":
          this.observe(n, e.to, e.msg);
          push(e.to, this.dsm[e.to]!.onMessage(n, e.msg));
          break;
        case "grant":
          push(n, node.accessDone(e.page));
          break;
        case "revoke":
          push(n, node.revoked(e.page, e.wantBytes ? ZERO_PAGE : undefined));
          break;
      }
    }
  }

  private observe(from: number, to: number, msg: DsmMessage): void {
    if (msg.type === "dsm-grant") this.events.push({ type: "page-sent", node: from, to, page: msg.page, form: msg.data.form, atMs: this.nowMs });
    if (msg.type === "dsm-invalidate") this.events.push({ type: "invalidate", node: to, page: msg.page, by: msg.ackTo, atMs: this.nowMs });
  }

  takeEvents(): TraceEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  /** One node's snapshot (takes its page-state changes). */
  snapshot(node: number, atMs: number, extra: { counters?: Partial<StatCounters>; vcpus?: VcpuStat[]; links?: LinkStat[] } = {}): StatsSnapshot {
    return buildSnapshot({ node, seq: ++this.seq[node]!, atMs, dsm: this.dsm[node]!, ...extra });
  }
}
