// The SMP self-test guest (our kvm-unit-tests-like checks) with its vCPUs in different tabs of one
// browser, over real WebRTC: every check that passes on QEMU -smp N must pass here too, where
// every shared variable moves between tabs through the DSM and every IPI crosses a data channel.
// Its report (SUMMARY line and all) is read from the console transcript of each tab.

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

it("passes every check with vCPU 0 in tab A and vCPU 1 in tab B", async () => {
  const run = await runSelftestOnTabs(session.context, session.url, [1, 1]);
  console.log(run.lines);
  const report = parseSelftestOutput(run.output);
  expect(reportProblems(report, 2, true)).toEqual([]);
  // The joiner showed the same report (the console is node 0's UART, on every tab).
  expect(run.outputs[1]).toContain(run.output.slice(run.output.indexOf("SELFTEST BEGIN")));
  // The IPIs really crossed tabs: tab B's node sent and received some.
  expect(run.status[1]!.ipisSent).toBeGreaterThan(0);
  expect(run.status[1]!.ipisReceived).toBeGreaterThan(0);
  // The self-test's nodes feed the live view too, and each tab's view hears from both nodes.
  expect(run.viewNodes).toEqual([[0, 1], [0, 1]]);
  // Both tabs host vCPUs of the running VM, so closing either asks first.
  expect(run.closeAsked).toEqual([true, true]);
  expect(run.errors).toEqual([]);
});

it("passes every check with three tabs, one vCPU each (a full mesh: B and C exchange pages directly)", async () => {
  const run = await runSelftestOnTabs(session.context, session.url, [1, 1, 1]);
  console.log(run.lines);
  const report = parseSelftestOutput(run.output);
  expect(reportProblems(report, 3, true)).toEqual([]);
  for (const other of run.outputs.slice(1)) expect(other).toContain(run.output.slice(run.output.indexOf("SELFTEST BEGIN")));
  // Tab C's net worker carried frames: its vCPU's pages and IPIs came over its links, all worker to worker.
  expect(run.counters[2]!.framesIn).toBeGreaterThan(100);
  expect(run.counters.map((c) => c.directIn)).toEqual(run.counters.map((c) => c.framesIn));
  expect(run.vmLinks).toEqual([0, 1, 2].map((me) => [0, 1, 2].filter((t) => t !== me).map((tab) => ({ tab, path: "direct" }))));
  expect(run.errors).toEqual([]);
});

it("passes every check with vCPU 0 in tab A and vCPUs 1 and 2 both in tab B (a slice of two: one pair talks through shared memory, two over WebRTC)", async () => {
  const run = await runSelftestOnTabs(session.context, session.url, [1, 2]);
  console.log(run.lines);
  const report = parseSelftestOutput(run.output);
  expect(reportProblems(report, 3, true)).toEqual([]);
  expect(run.outputs[1]).toContain(run.output.slice(run.output.indexOf("SELFTEST BEGIN")));
  expect(run.errors).toEqual([]);
});
