// The self-test guest (our kvm-unit-tests-like SMP checks) with its CPUs in separate worker
// threads: the same checks that pass on qemu-system-i386 -smp N must pass here, where every
// shared variable moves through the DSM and every IPI crosses workers as a message.

import { afterEach, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { reportProblems } from "../../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../../src/guests/selftest/report.ts";
import { startCluster, type NodeCluster } from "../../../src/runtime/nodejs/cluster.ts";

let cluster: NodeCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const HEAVY = process.env.GIANTWEB_HEAVY === "1";
for (const vcpus of HEAVY ? [2, 4] : [2]) {
  it(`passes every check with ${vcpus} vCPUs in ${vcpus} workers`, async () => {
    cluster = startCluster({
      wasmPath: await ensureInstrumentedWasm(),
      guest: { kind: "multiboot", elf: await buildSelftest(), cmdline: "", memoryMiB: 64, smp: true },
      nodes: Array.from({ length: vcpus }, (_, i) => ({ vcpu: i })),
      deviceNode: 0,
    });
    const out = await cluster.waitFor(/SUMMARY[^\n]*\n/, 900_000);
    console.log(out.split("\n").filter((l) => /^(RESULT|FAIL|SUMMARY)/.test(l)).join("\n"));
    const report = parseSelftestOutput(out);
    expect(reportProblems(report, vcpus, true)).toEqual([]);
  });
}
