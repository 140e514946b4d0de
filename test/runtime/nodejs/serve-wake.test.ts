// A node notices other nodes' messages through its doorbell (when idle or between slices) and
// between instruction chunks (while its vCPU runs), not only on a poll timer. Here vCPU 1's node
// has no timer at all: its AP waits for SIPI and then idles in HLT with no timer armed, so each
// start-up IPI, each IPI and each page request it gets is seen only because the doorbell woke it.

import { afterEach, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { reportProblems } from "../../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../../src/guests/selftest/report.ts";
import { startCluster, type NodeCluster } from "../../../src/runtime/nodejs/cluster.ts";
import type { ServeOptions } from "../../../src/runtime/node/vcpu-node.ts";

let cluster: NodeCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function selftest(serve1: ServeOptions): Promise<{ out: string; stats: Record<string, any> }> {
  cluster = startCluster({
    wasmPath: await ensureInstrumentedWasm(),
    guest: { kind: "multiboot", elf: await buildSelftest(), cmdline: "", memoryMiB: 64, smp: true },
    // Node 0 keeps its timer: it also paces the console output.
    nodes: [{ vcpu: 0 }, { vcpu: 1, serve: serve1 }],
    deviceNode: 0,
  });
  const out = await cluster.waitFor(/SUMMARY[^\n]*\n/, 600_000);
  return { out, stats: await cluster.stats(1) };
}

it("a vCPU whose node has no poll timer starts on SIPI and gets every IPI and page request (doorbell and chunk ends)", async () => {
  const { out, stats } = await selftest({ timerMs: null });
  console.log(out.split("\n").filter((l) => /^(RESULT ipi|RESULT bounce|FAIL|SUMMARY)/.test(l)).join("\n"));
  expect(reportProblems(parseSelftestOutput(out), 2, true)).toEqual([]);
  // The IPIs really crossed to node 1 as messages, and it served the page requests of node 0.
  expect(stats.router.ipisReceived).toBeGreaterThan(20);
  expect(stats.interrupts.injected.startup).toBeGreaterThanOrEqual(1);
  expect(stats.agent.framesIn).toBeGreaterThan(100);
});

it("without the doorbell and the chunk ends, the same node never sees the start-up IPI (the check above can fail)", async () => {
  const { out } = await selftest({ timerMs: null, onDoorbell: false, inSlice: false });
  // The BSP gives up on the AP it cannot start and reports one CPU online of the two described.
  expect(reportProblems(parseSelftestOutput(out), 2, true)).not.toEqual([]);
});
