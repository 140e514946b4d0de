import { describe, expect, it } from "vitest";
import { faultCensus, formatCensus, objectsOnPage, outcomeLabel, perCpuPageName, perCpuPlace, type PerCpuLayout } from "../../../src/protocol/telemetry/census.ts";
import type { ReportEvent } from "../../../src/protocol/messages.ts";

const fault = (node: number, page: number, access: "read" | "write", startMs: number, endMs: number): ReportEvent => ({ type: "fault", node, vcpu: node, page, access, startMs, endMs });
const sent = (node: number, to: number, page: number, atMs: number, form: "bytes" | "zero" | "current" = "bytes"): ReportEvent => ({ type: "page-sent", node, to, page, form, atMs });
const inval = (node: number, page: number, by: number, atMs: number): ReportEvent => ({ type: "invalidate", node, page, by, atMs });

describe("fault census", () => {
  it("matches each fault with the grant and invalidations that served it", () => {
    const events: ReportEvent[] = [
      // vCPU 1 reads page 5: node 0 sends it (a copy, the ownership moves).
      fault(1, 5, "read", 100, 100.2),
      sent(0, 1, 5, 100.1),
      // vCPU 1 writes it: it owns it shared, so it only invalidates node 0's copy.
      fault(1, 5, "write", 101, 101.1),
      inval(0, 5, 1, 101.05),
      // vCPU 0 writes page 5: node 1 sends it back.
      fault(0, 5, "write", 102, 102.3),
      sent(1, 0, 5, 102.1),
      // vCPU 0 reads page 9 and gets a zero page; then a fault that raced a grant (no message).
      fault(0, 9, "read", 103, 103.1),
      sent(1, 0, 9, 103.05, "zero"),
      fault(0, 9, "read", 104, 104.01),
      // Outside the window: ignored.
      fault(0, 7, "write", 2000, 2000.1),
      sent(1, 0, 7, 2000.05),
      { type: "ipi", node: 0, src: 0, dest: 1, kind: "fixed", vector: 0xfd, atMs: 100.5 },
      { type: "ipi", node: 0, src: 0, dest: 1, kind: "fixed", vector: 0xfd, atMs: 101.5 },
    ];
    const c = faultCensus(events, { startMs: 0, endMs: 1000, name: (p) => (p === 5 ? "jiffies" : `page ${p}`) });
    expect(c.seconds).toBe(1);
    expect(c.faults).toBe(5);
    expect(c.remote).toBe(4);
    expect(c.list.map((f) => f.outcome)).toEqual(["bytes", "upgrade", "bytes", "zero", "local"]);
    expect(c.byAccess).toEqual({ read: 3, write: 2 });
    expect(c.byOutcome).toEqual({ bytes: 2, zero: 1, current: 0, upgrade: 1, local: 1 });
    expect(c.byAccessOutcome).toEqual({ "read bytes": 1, "write upgrade": 1, "write bytes": 1, "read zero": 1 });
    expect(c.byVcpu).toEqual([3, 2]);
    expect(c.pages).toBe(2);
    expect(c.invalidations).toBe(1);
    expect(c.unmatched).toEqual({ grants: 0, invalidations: 0 });
    expect(c.matchedWithSlack).toBe(0);
    const top = c.pageRows[0]!;
    expect(top).toMatchObject({ page: 5, name: "jiffies", faults: 3, remote: 3, reads: 1, writes: 2, byVcpu: [1, 2], invalidations: 1, bounces: 1 });
    expect(top.outcomes).toEqual({ bytes: 2, zero: 0, current: 0, upgrade: 1, local: 0 });
    expect(c.bounces).toBe(1);
    expect(c.causes[0]).toMatchObject({ group: "jiffies", faults: 1, pages: 1 });
    expect(c.causes.reduce((a, r) => a + r.faults, 0)).toBe(5);
    expect(c.interrupts).toEqual([{ kind: "fixed", vector: 0xfd, src: 0, dest: 1, count: 2 }]);
    expect(c.blockedMs).toBeCloseTo(0.2 + 0.1 + 0.3 + 0.1 + 0.01, 6);
  });

  it("gives a later fault its own grant before lending leftovers with the slack", () => {
    // Fault A (an upgrade, no grant) ends 0.5 ms before fault B of the same page, which gets a grant
    // inside its span: B keeps it, A keeps its invalidation.
    const events: ReportEvent[] = [
      fault(1, 3, "write", 10, 10.2),
      inval(0, 3, 1, 10.1),
      fault(1, 3, "read", 10.7, 11),
      sent(0, 1, 3, 10.8),
      // Clocks apart: the grant is stamped 1 ms after the fault ended; the slack matches it.
      fault(0, 4, "read", 20, 20.1),
      sent(1, 0, 4, 21.1),
    ];
    const c = faultCensus(events, { startMs: 0, endMs: 100 });
    expect(c.list.map((f) => f.outcome)).toEqual(["upgrade", "bytes", "bytes"]);
    expect(c.matchedWithSlack).toBe(1);
    const strict = faultCensus(events, { startMs: 0, endMs: 100, slackMs: 0 });
    expect(strict.list.map((f) => f.outcome)).toEqual(["upgrade", "bytes", "local"]);
    expect(strict.unmatched.grants).toBe(1);
  });

  it("reads each sender's stamps on the faulting node's clock (median offset around the faults)", () => {
    // Node 0's clock reads 3 ms ahead of node 1's: its grants fall outside node 1's fault spans.
    const events: ReportEvent[] = [];
    for (let i = 0; i < 40; i++) events.push(fault(1, 100 + i, "read", 10 * i, 10 * i + 1), sent(0, 1, 100 + i, 10 * i + 0.8 + 3));
    const c = faultCensus(events, { startMs: 0, endMs: 1000, slackMs: 0 });
    expect(c.byOutcome.bytes).toBe(40);
    expect(c.unmatched.grants).toBe(0);
  });

  it("takes at most one invalidation per other node for a fault", () => {
    const events: ReportEvent[] = [fault(0, 8, "write", 5, 6), inval(1, 8, 0, 5.2), inval(2, 8, 0, 5.3), inval(1, 8, 0, 5.9)];
    const c = faultCensus(events, { startMs: 0, endMs: 10 });
    expect(c.list[0]).toMatchObject({ outcome: "upgrade", invalidations: 2 });
    expect(c.unmatched.invalidations).toBe(1);
  });

  it("refuses an empty window and formats its tables", () => {
    expect(() => faultCensus([], { startMs: 5, endMs: 5 })).toThrow(RangeError);
    const c = faultCensus([fault(0, 1, "read", 1, 2), sent(1, 0, 1, 1.5)], { startMs: 0, endMs: 2000 });
    const text = formatCensus("boot", c, 20);
    expect(text).toContain("1 faults (0.5/s), 1 remote (0.5/s) on 1 pages");
    expect(text).toContain("copy sent, owner moves");
    expect(text).toContain("page 0x1");
    expect(outcomeLabel("write", "bytes")).toBe("page moved");
  });

  it("names the pages of each CPU's per-CPU area from __per_cpu_offset", () => {
    // Debian 6.1.0-57-686 with 2 CPUs and 128 MiB: .data..percpu is [0xc1e5c000, 0xc1e753d4) and the
    // units start at physical 0x7d71000 (CPU 0) and 0x7d92000 (CPU 1).
    const layout: PerCpuLayout = { pageOffset: 0xc000_0000, start: 0xc1e5c000, end: 0xc1e753d4, offsets: [0xc7d71000 - 0xc1e5c000, 0xc7d92000 - 0xc1e5c000] };
    expect(perCpuPlace(layout, 0x7d89)).toEqual({ cpu: 0, unitOffset: 0x18000, linkAddress: 0xc1e74000 });
    expect(perCpuPlace(layout, 0x7daa)).toEqual({ cpu: 1, unitOffset: 0x18000, linkAddress: 0xc1e74000 });
    expect(perCpuPlace(layout, 0x7d71)?.unitOffset).toBe(0);
    expect(perCpuPlace(layout, 0x7d8a)?.unitOffset).toBe(0x19000); // the section's last, partial page
    expect(perCpuPlace(layout, 0x7d8b)).toBeNull(); // past the static section's end, unit size not given
    // With the unit size (0x21000 here: the units' distance), the dynamic part is named too.
    const units: PerCpuLayout = { ...layout, unitSize: 0x21000 };
    expect(perCpuPageName(units, 0x7d8b)).toBe("per-CPU area of CPU 0 +0x1a000 (dynamic: alloc_percpu)");
    expect(perCpuPageName(units, 0x7d91)).toBe("per-CPU area of CPU 0 +0x20000 (dynamic: alloc_percpu)");
    expect(perCpuPlace(units, 0x7d92)?.cpu).toBe(1);
    expect(perCpuPlace(units, 0x7db3)).toBeNull();
    expect(perCpuPlace(layout, 0x7d70)).toBeNull();
    expect(perCpuPlace(layout, 0x1c49)).toBeNull();
    const names = (link: number) => (link === 0xc1e74000 ? ["irq_stat", "runqueues", "sched_clock_data", "rcu_data", "cfd_data"] : []);
    expect(perCpuPageName(layout, 0x7daa, names)).toBe("per-CPU area of CPU 1 +0x18000: irq_stat, runqueues, sched_clock_data, rcu_data +1 more");
    expect(perCpuPageName(layout, 0x7d80, names)).toBe("per-CPU area of CPU 0 +0xf000");
    expect(perCpuPageName(layout, 0x7d80)).toBe("per-CPU area of CPU 0 +0xf000");
    expect(perCpuPageName(layout, 0x2177, names)).toBeNull();
    // Offsets are unsigned 32-bit: a unit below the section's link address wraps.
    const below: PerCpuLayout = { ...layout, offsets: [(0xc0100000 - 0xc1e5c000) >>> 0] };
    expect(perCpuPlace(below, 0x100)).toEqual({ cpu: 0, unitOffset: 0, linkAddress: 0xc1e5c000 });
  });

  it("names objects found in guest memory by the pages they overlap", () => {
    const objects = [
      { name: "sched_domain DIE of CPU 1", address: 0x2130_200, size: 260 },
      { name: "sched_domain DIE of CPU 0", address: 0x2130_000, size: 260 },
      { name: "root_domain", address: 0x2130_f80, size: 944 },
      { name: "sched_group_capacity {0}", address: 0x2177_040, size: 32 },
    ];
    expect(objectsOnPage(objects, 0x2130)).toEqual(["sched_domain DIE of CPU 0", "sched_domain DIE of CPU 1", "root_domain"]);
    expect(objectsOnPage(objects, 0x2131)).toEqual(["root_domain"]);
    expect(objectsOnPage(objects, 0x2177)).toEqual(["sched_group_capacity {0}"]);
    expect(objectsOnPage(objects, 0x2178)).toEqual([]);
  });
});
