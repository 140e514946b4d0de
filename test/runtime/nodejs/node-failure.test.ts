// An engine panic on one node of a worker cluster is not silent: NodeCluster.waitFor rejects with
// a failure naming the node, its vCPU and the panic text v86 printed (issue 11). The guest
// (guests/apfault) starts its AP, which loads its task register from a zero GDT entry: v86 panics
// there ("#GP | ltr: invalid type"), as it did in the AP of a Linux guest that read stale bytes.

import { afterEach, expect, it, vi } from "vitest";
import { buildApFaultGuest } from "../../../guests/apfault/build.ts";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { startCluster, type NodeCluster } from "../../../src/runtime/nodejs/cluster.ts";
import { NodeFailureError } from "../../../src/protocol/tab/node-failure.ts";

let cluster: NodeCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

it("rejects waitFor with the AP's engine panic, naming node 1 and vCPU 1", async () => {
  cluster = startCluster({
    wasmPath: await ensureInstrumentedWasm(),
    guest: { kind: "multiboot", elf: buildApFaultGuest(), cmdline: "", memoryMiB: 32, smp: true },
    nodes: [{ vcpu: 0 }, { vcpu: 1 }],
    deviceNode: 0,
  });
  // A pattern the guest never prints: only a failure ends this wait before its (long) timeout.
  const err = await cluster.waitFor(/this never appears/, 600_000).then(
    () => null,
    (e: unknown) => e,
  );
  const rejectedAt = performance.timeOrigin + performance.now();
  expect(err).toBeInstanceOf(NodeFailureError);
  const failure = (err as NodeFailureError).failure;
  console.log(`${(err as Error).message}\nwaitFor rejected ${(rejectedAt - failure.atMs).toFixed(1)} ms after the node failed`);
  expect(failure).toMatchObject({ node: 1, vcpu: 1, tab: null, cause: "engine" });
  expect(failure.message).toMatch(/panicked at src\/rust\/cpu\/cpu\.rs:\d+:\d+: #GP \| ltr: invalid type \(type = 0x0\)/);
  expect((err as Error).message).toMatch(/^node 1 \(vCPU 1\) failed: the engine panicked at /);
  // The AP really ran guest code up to the ltr: its line, posted to node 0's UART before the panic,
  // comes out there (maybe after the failure report, which takes a shorter way).
  const c = cluster;
  await vi.waitFor(() => expect(c.output()).toContain("APFAULT AP in protected mode"), { timeout: 60_000, interval: 50 });
  expect(cluster.failures()).toEqual([failure]);
}, 700_000);
