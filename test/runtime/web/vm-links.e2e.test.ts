// Issue 15: the VM's node frames between tabs go on data channels the tabs' workers own (each node
// sends on its own, the net workers receive), with no main thread between. The self-test guest checks every mechanism across the tabs; these runs
// also check which way the frames went (the net workers' counters and each tab's VM links), that a
// forced relay still works, and that a busy main thread does not stop the VM.

import { expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { reportProblems } from "../../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../../src/guests/selftest/report.ts";
import { useBrowserSession } from "../../../harness/browser/browser-session.ts";
import { runSelftestOnTabs } from "../../../harness/browser/selftest-tabs.ts";

const session = useBrowserSession(async () => {
  await buildSelftest();
  await ensureInstrumentedWasm();
});

it("carries every node frame worker to worker, and passes the self-test while tab B's main thread is busy 80% of the time", async () => {
  const run = await runSelftestOnTabs(session.context, session.url, [1, 1], 900_000, { busy: [1], probeLink: true });
  console.log(run.lines, JSON.stringify(run.counters), JSON.stringify(run.vmLinks), `link RTTs: ${run.linkRttMs.length}, median ${[...run.linkRttMs].sort((x, y) => x - y)[run.linkRttMs.length >> 1]?.toFixed(2)} ms`);
  expect(reportProblems(parseSelftestOutput(run.output), 2, true)).toEqual([]);
  expect(run.vmLinks).toEqual([[{ tab: 1, path: "direct" }], [{ tab: 0, path: "direct" }]]);
  for (const c of run.counters) {
    expect(c.framesIn).toBeGreaterThan(100);
    // Not one frame crossed a main thread, and each node sent all of its own on its own channel.
    expect(c.directIn).toBe(c.framesIn);
    expect(c.directOut).toBe(c.framesOut);
    expect(c.nodeOut).toBe(c.framesOut);
  }
  // The two net workers answered each other's pings on the VM channel while the VM ran.
  expect(run.linkRttMs.length).toBeGreaterThanOrEqual(10);
  expect(run.linkRttMs.every((ms) => ms > 0)).toBe(true);
  expect(run.errors).toEqual([]);
});

it("relays through the main threads when one tab is told to (?vmlink=relay), and passes the self-test", async () => {
  const run = await runSelftestOnTabs(session.context, session.url, [1, 1], 900_000, { relay: [1] });
  console.log(run.lines, JSON.stringify(run.counters), JSON.stringify(run.vmLinks));
  expect(reportProblems(parseSelftestOutput(run.output), 2, true)).toEqual([]);
  // Tab A offered a channel; tab B said it relays, so the pair relays, and each says why.
  expect(run.vmLinks[0]).toEqual([{ tab: 1, path: "relay", why: "tab 1: this tab was asked to relay (?vmlink=relay)" }]);
  expect(run.vmLinks[1]).toEqual([{ tab: 0, path: "relay", why: "this tab was asked to relay (?vmlink=relay)" }]);
  for (const c of run.counters) {
    expect(c.framesIn).toBeGreaterThan(100);
    expect(c.directIn + c.directOut).toBe(0);
    // Tab A's node had a channel to tab B, but the pair settled on the relay: it never used it.
    expect(c.nodeOut).toBe(0);
  }
  expect(run.errors).toEqual([]);
});
