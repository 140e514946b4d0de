// Devices live on node 0: a vCPU on node 1 with no RAM and no devices of its own runs the self-test
// guest; every port access (UART output, PIT calibration, ...) goes to node 0's devices and every
// page comes from node 0 through the DSM. The guest's report, written by node 0's UART, must show
// every single-CPU check passing, the UART interrupt routed from node 0's IOAPIC included.

import { afterAll, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { checksWithStatus, describeFailures, parseSelftestOutput } from "../../../src/guests/selftest/report.ts";
import { startCluster, type NodeCluster } from "../../../src/runtime/nodejs/cluster.ts";

let cluster: NodeCluster | undefined;
afterAll(async () => void (await cluster?.stop()));

it("a vCPU without devices runs the self-test guest with its port I/O served by node 0", async () => {
  cluster = startCluster({
    wasmPath: await ensureInstrumentedWasm(),
    guest: { kind: "multiboot", elf: await buildSelftest(), cmdline: "", memoryMiB: 64 },
    nodes: [{ vcpu: null }, { vcpu: 0 }],
    deviceNode: 0,
  });
  const out = await cluster.waitFor(/SUMMARY[^\n]*\n/, 300_000);
  const report = parseSelftestOutput(out);
  // Including ioapic.uart_irq_routed: node 0's IOAPIC delivers COM1's IRQ to the vCPU on node 1.
  expect(describeFailures(report)).toBe("");
  expect(report.summary.fail).toBe(0);
  expect(checksWithStatus(report, "pass")).toEqual(expect.arrayContaining(["tsc.calibrated", "ipi.self", "apic.timer_all_cpus", "ioapic.uart_irq_routed"]));
  const [node0] = await cluster.stop();
  cluster = undefined;
  // The output came through node 0's UART: node 1's port writes were forwarded.
  expect(node0!.io.writes).toBeGreaterThan(100);
  expect(node0!.io.reads).toBeGreaterThan(10);
});
