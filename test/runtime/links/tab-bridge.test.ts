// Nodes in two "tabs" (two sets of worker threads, each with its own rings and bridge), joined by
// an in-memory network with delay: the DSM keeps exact totals across the bridge, as it will over
// WebRTC between real tabs.

import { afterEach, expect, it } from "vitest";
import { nodePlan, planTab, TabBridge } from "../../../src/runtime/links/tab-bridge.ts";
import { startTsWorker } from "../../../src/runtime/nodejs/ts-worker.ts";

type Result = { self: number; totals: number[]; monotonicViolations: number; revokes: number; counters: { faults: number } };
const timers: ReturnType<typeof setInterval>[] = [];
afterEach(() => timers.splice(0).forEach(clearInterval));

it("three nodes in two tabs keep exact totals through the bridges, with 2 ms of network delay", async () => {
  const nodes = 3;
  const tabs = [planTab(nodes, [0, 1], 1 << 16), planTab(nodes, [2], 1 << 16)];
  const tabOf = (n: number) => (n < 2 ? 0 : 1);
  const bridges: TabBridge[] = [];
  // The "network": per ordered pair of tabs, FIFO with a fixed delay (as a data channel keeps order).
  tabs.forEach((tab, t) => {
    bridges[t] = new TabBridge(tab, (from, to, frame) => {
      const copy = frame.slice();
      setTimeout(() => bridges[tabOf(to)]!.deliver(from, to, copy), 2);
    });
  });
  for (const b of bridges) timers.push(setInterval(() => b.pump(), 0));

  const ops = 1500;
  const counters = 8;
  const done = new SharedArrayBuffer(8);
  const results = await Promise.all(
    Array.from({ length: nodes }, (_, self) => {
      const plan = nodePlan(tabs[tabOf(self)]!, self);
      const w = startTsWorker(new URL("../node/dsm-worker.ts", import.meta.url), { plan, pages: 12, ops, counters, seed: 7, done });
      return new Promise<Result>((resolve, reject) => {
        w.once("message", (m) => (resolve(m), void w.terminate()));
        w.once("error", reject);
      });
    }),
  );
  const expected = new Array(counters).fill(0);
  for (let self = 0; self < nodes; self++) {
    let x = 7 * 2654435761 + self * 97;
    const rand = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8);
    for (let i = 0; i < ops; i++) {
      const k = rand() % counters;
      if (rand() % 4 !== 0) expected[k]++;
    }
  }
  expect(results.find((r) => r.self === 0)!.totals).toEqual(expected);
  for (const r of results) expect(r.monotonicViolations).toBe(0);
  // Traffic really crossed the bridges both ways.
  expect(bridges[0]!.counters.framesOut).toBeGreaterThan(100);
  expect(bridges[1]!.counters.framesOut).toBeGreaterThan(100);
});

it("rejects a plan or a delivery that names a node the tab does not have", () => {
  expect(() => planTab(2, [2])).toThrow(/local node 2 is not in 0..1/);
  const tab = planTab(2, [0]);
  expect(() => nodePlan(tab, 1)).toThrow(/does not run in this tab/);
  const bridge = new TabBridge(tab, () => {});
  expect(() => bridge.deliver(0, 1, new Uint8Array(1))).toThrow(/no link from node 0 to local node 1/);
});
