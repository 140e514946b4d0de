// Property tests: whatever order, loss and repetition snapshots arrive in, rates stay finite and
// non-negative; and the page map built from real DsmNodes' deltas equals the nodes' own states.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DemoCluster } from "../../../src/ui/labs/view/demo-cluster.ts";
import { PageMapModel } from "../../../src/ui/view/model/page-map.ts";
import { DERIVED_RATES, RateTracker } from "../../../src/ui/view/model/rates.ts";
import { snap } from "./support.ts";

describe("properties", () => {
  it("rates are finite and never negative under loss, duplication, reordering and restarts", () => {
    // A node's true history: seq 1..n, counters growing; a restart begins again at seq 1.
    const history = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 500 }), inc: fc.nat(1000), restart: fc.boolean() }), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(history, fc.array(fc.nat(), { maxLength: 80 }), (steps, order) => {
        let seq = 0;
        let t = 0;
        let c = 0;
        const sent = steps.map((s) => {
          if (s.restart) (seq = 0), (t = 0), (c = 0);
          seq++;
          t += s.dt;
          c += s.inc;
          return snap(0, seq, t, { readFaults: c, pagesSentBytes: c }, { vcpus: [{ vcpu: 0, state: "running", instructions: c * 10 }] });
        });
        // delivery: the history in order, plus picks (duplicates, late ones) spliced in
        const delivered = [...sent];
        for (const k of order) delivered.splice(k % (delivered.length + 1), 0, sent[k % sent.length]!);
        const r = new RateTracker();
        for (const s of delivered) {
          r.accept(s, 0);
          const n = r.node(0)!;
          if (n.derived) for (const k of DERIVED_RATES) expect(Number.isFinite(n.derived[k]) && n.derived[k] >= 0).toBe(true);
          for (const v of n.vcpus) if (v.instructionsPerSec !== null) expect(Number.isFinite(v.instructionsPerSec) && v.instructionsPerSec >= 0).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("the page map equals the DsmNodes' own page states and owners", () => {
    const op = fc.record({ node: fc.nat(3), page: fc.nat(31), write: fc.boolean(), report: fc.boolean() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const cluster = new DemoCluster(4, 32);
        const map = new PageMapModel(4, 32);
        const report = () => {
          for (let n = 0; n < 4; n++) map.apply(n, cluster.snapshot(n, 0).pages);
        };
        for (const o of ops) {
          cluster.access(o.node, o.node, o.page, o.write ? "write" : "read", 0);
          if (o.report) report();
        }
        report();
        for (let p = 0; p < 32; p++) {
          const states = cluster.dsm.map((d) => d.pageState(p));
          expect(map.info(p).states).toEqual(states);
          const owners = states.flatMap((s, n) => (s === "modified" || s === "shared-owner" ? [n] : []));
          expect(owners).toHaveLength(1);
          expect(map.ownerOf(p)).toBe(owners[0]);
        }
      }),
      { numRuns: 200 },
    );
  });
});
