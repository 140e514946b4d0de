import { describe, expect, it } from "vitest";
import { RateTracker } from "../../../src/ui/view/model/rates.ts";
import { snap } from "./support.ts";

describe("rates from cumulative snapshots", () => {
  it("computes per-second rates on the node's own clock, per node and per vCPU", () => {
    const r = new RateTracker();
    expect(r.accept(snap(1, 1, 1000, { readFaults: 10, writeFaults: 4 }, { vcpus: [{ vcpu: 1, state: "running", instructions: 1e6 }] }), 5)).toBe("first");
    expect(r.node(1)!.derived).toBeNull(); // a baseline has no rate yet
    expect(r.node(1)!.vcpus[0]!.instructionsPerSec).toBeNull();
    // 250 ms later on node 1's clock (the viewer's receive time is irrelevant to the rate)
    const v = r.accept(
      snap(1, 2, 1250, { readFaults: 35, writeFaults: 5, pagesSentBytes: 3, pagesSentZero: 1, pagesSentCurrent: 1, invalidationsSent: 2, ipisSent: 8, ioForwarded: 50 },
        { vcpus: [{ vcpu: 1, state: "waiting-page", instructions: 6e6 }] }),
      999,
    );
    expect(v).toBe("rate");
    const d = r.node(1)!.derived!;
    expect(d.readFaults).toBe(100);
    expect(d.writeFaults).toBe(4);
    expect(d.pagesMoved).toBe(20);
    expect(d.invalidations).toBe(8);
    expect(d.ipis).toBe(32);
    expect(d.ioForwarded).toBe(200);
    expect(r.node(1)!.vcpus).toEqual([{ vcpu: 1, state: "waiting-page", instructions: 6e6, instructionsPerSec: 2e7 }]);
    expect(r.node(1)!.intervalMs).toBe(250);
  });

  it("ignores duplicates and late snapshots, and measures across missing ones", () => {
    const r = new RateTracker();
    r.accept(snap(0, 1, 0, { readFaults: 0 }), 0);
    r.accept(snap(0, 2, 500, { readFaults: 50 }), 0);
    expect(r.accept(snap(0, 2, 500, { readFaults: 50 }), 0)).toBe("duplicate");
    expect(r.accept(snap(0, 1, 0, { readFaults: 0 }), 0)).toBe("late");
    expect(r.node(0)!.derived!.readFaults).toBe(100); // unchanged by the two above
    // seq 3 and 4 lost: the rate spans 500 -> 2000 ms
    expect(r.accept(snap(0, 5, 2000, { readFaults: 350 }), 0)).toBe("rate");
    expect(r.node(0)!.derived!.readFaults).toBe(200);
    expect(r.health).toMatchObject({ duplicates: 1, late: 1, missing: 2, resets: 0 });
  });

  it("starts a new baseline when a node restarts, never a negative rate", () => {
    const r = new RateTracker();
    r.accept(snap(2, 7, 5000, { writeFaults: 900 }, { vcpus: [{ vcpu: 3, state: "running", instructions: 5e9 }] }), 0);
    r.accept(snap(2, 8, 5500, { writeFaults: 1000 }, { vcpus: [{ vcpu: 3, state: "running", instructions: 6e9 }] }), 0);
    // the node's worker restarted: seq, counters and its clock begin again
    expect(r.accept(snap(2, 1, 20, { writeFaults: 3 }, { vcpus: [{ vcpu: 3, state: "running", instructions: 1000 }] }), 0)).toBe("reset");
    expect(r.node(2)!.derived).toBeNull();
    expect(r.accept(snap(2, 2, 520, { writeFaults: 53 }, { vcpus: [{ vcpu: 3, state: "halted", instructions: 2000 }] }), 0)).toBe("rate");
    expect(r.node(2)!.derived!.writeFaults).toBe(100);
    expect(r.node(2)!.vcpus[0]!.instructionsPerSec).toBe(2000);
    // counters going back while seq advances is also a restart, as is a clock that stands still
    expect(r.accept(snap(2, 3, 900, { writeFaults: 10 }), 0)).toBe("reset");
    expect(r.accept(snap(2, 4, 900, { writeFaults: 20 }), 0)).toBe("reset");
    expect(r.health.resets).toBe(3);
  });

  it("a vCPU whose counter went back gets no rate while the node's rates go on", () => {
    const r = new RateTracker();
    r.accept(snap(0, 1, 0, {}, { vcpus: [{ vcpu: 0, state: "running", instructions: 500 }, { vcpu: 1, state: "running", instructions: 100 }] }), 0);
    r.accept(snap(0, 2, 1000, { readFaults: 1 }, { vcpus: [{ vcpu: 0, state: "running", instructions: 10 }, { vcpu: 1, state: "running", instructions: 300 }] }), 0);
    expect(r.node(0)!.vcpus.map((v) => v.instructionsPerSec)).toEqual([null, 200]);
  });

  it("sums nodes for the cluster plot and leaves silent nodes out", () => {
    const r = new RateTracker();
    for (const node of [0, 1]) {
      r.accept(snap(node, 1, 0), 0);
      r.accept(snap(node, 2, 1000, { readFaults: 10 * (node + 1) }), node === 0 ? 1000 : 4000);
    }
    expect(r.total(4000).readFaults).toBe(30);
    expect(r.total(4500).readFaults).toBe(20); // node 0 last heard at 1000: stale after 3 s
  });
});
