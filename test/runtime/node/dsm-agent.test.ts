// The DSM core, driven by DsmAgent, across real worker threads over shared-memory rings: every
// increment counts (exact totals) and no read goes back in time, with 2 and 4 nodes.

import { expect, it } from "vitest";
import { planLocalLinks } from "../../../src/runtime/links/local-links.ts";
import { startTsWorker } from "../../../src/runtime/nodejs/ts-worker.ts";

type Result = { self: number; totals: number[]; monotonicViolations: number; revokes: number; counters: { faults: number; windows: number; windowWaits: number } };

async function run(nodes: number, ops: number, counters: number, pages: number, seed: number, holdMs = 0): Promise<Result[]> {
  const plan = planLocalLinks(nodes, 1 << 16);
  const done = new SharedArrayBuffer(8);
  return Promise.all(
    Array.from({ length: nodes }, (_, self) => {
      const w = startTsWorker(new URL("./dsm-worker.ts", import.meta.url), { plan: { ...plan, self }, pages, ops, counters, seed, done, holdMs });
      return new Promise<Result>((resolve, reject) => {
        w.once("message", (m) => (resolve(m), void w.terminate()));
        w.once("error", reject);
      });
    }),
  );
}

/** Each node does about 3/4 of its ops as increments: the exact totals, from the workers' own generator. */
function expectedTotals(nodes: number, ops: number, counters: number, seed: number): number[] {
  const expected = new Array(counters).fill(0);
  for (let self = 0; self < nodes; self++) {
    let x = seed * 2654435761 + self * 97;
    const rand = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8);
    for (let i = 0; i < ops; i++) {
      const k = rand() % counters;
      if (rand() % 4 !== 0) expected[k]++;
    }
  }
  return expected;
}

it("with a 2 ms hold window on every node, totals stay exact, and requests did wait for windows to end", async () => {
  const results = await run(3, 1500, 12, 16, 3, 2);
  expect(results.find((r) => r.self === 0)!.totals).toEqual(expectedTotals(3, 1500, 12, 3));
  for (const r of results) expect(r.monotonicViolations).toBe(0);
  const waits = results.reduce((n, r) => n + r.counters.windowWaits, 0);
  expect(results.every((r) => r.self === 0 || r.counters.windows > 0)).toBe(true);
  expect(waits).toBeGreaterThan(0);
});

for (const nodes of [2, 4]) {
  it(`${nodes} worker threads increment shared counters through the DSM with exact totals`, async () => {
    const ops = 4000;
    const counters = 12;
    const results = await run(nodes, ops, counters, 16, nodes);
    const node0 = results.find((r) => r.self === 0)!;
    expect(node0.totals).toEqual(expectedTotals(nodes, ops, counters, nodes));
    for (const r of results) expect(r.monotonicViolations).toBe(0);
    // Pages really moved between the threads. How often depends on scheduling; the floor does not:
    // the 12 counters live on 12 distinct pages, and a node other than 0 starts with no page, so it
    // faults at least once per page it touched, and node 0 gave each of those pages up at least once.
    for (const r of results) if (r.self !== 0) expect(r.counters.faults).toBeGreaterThanOrEqual(12);
    expect(results.find((r) => r.self === 0)!.revokes).toBeGreaterThanOrEqual(12);
  });
}
