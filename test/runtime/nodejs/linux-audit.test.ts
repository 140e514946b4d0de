// The coherence audit on the worker cluster: vCPU 1's node runs the audit build (every guest-RAM
// access of its engine checked against the page map, JIT off), with the real DSM, blocking faults,
// revocations served while blocked and instruction restarts. Linux must bring the AP up and run a
// job on it with no access around the map; one would fail the node (and `waitFor`) with an AuditError.
import { afterEach, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { buildFirmware } from "../../../src/runtime/nodejs/firmware-build.ts";
import { startCluster, type NodeCluster } from "../../../src/runtime/nodejs/cluster.ts";

let cluster: NodeCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

it("an audited AP on the worker cluster brings Linux up and runs a job with no access around the page map", async () => {
  const g = ensureGuestImages();
  const c = (cluster = startCluster({
    wasmPath: await ensureInstrumentedWasm(),
    audit: { wasmPath: await ensureInstrumentedWasm({ audit: true }), vcpus: [1] },
    guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
    nodes: [{ vcpu: 0 }, { vcpu: 1 }],
    deviceNode: 0,
  }));
  await c.waitFor(/giantweb:\/root# /, 900_000);
  expect(c.output()).toMatch(/smp: Brought up 1 node, 2 CPUs/);
  const mark = c.output().length;
  c.send(0, "taskset 2 sh -c 'x=0; for i in $(seq 300); do x=$((x+i)); done; echo ap-sum=$x'\n");
  await c.waitFor(/ap-sum=45150/, 300_000, mark);
  const ap = await c.stats(1);
  expect(ap.auditArmed).toBe(true);
  expect((await c.stats(0)).auditArmed).toBe(false);
  // The AP really ran on the DSM: thousands of its accesses were faulted in and checked.
  expect(ap.dsm.readFaults + ap.dsm.writeFaults).toBeGreaterThan(1000);
  expect(c.failures()).toEqual([]);
}, 1_500_000);
