// An elastic VM at the hotplug interface's limit (issue 14): 32 possible vCPUs, the guest boots on
// vCPU 0 and vCPU 31 joins (APIC ID 31: past the 8 of flat logical APIC mode, so the kernel must
// address CPUs physically). Heavy (about 3 minutes), so it runs with GIANTWEB_HEAVY=1; the default
// suite's elastic tests use 3 and 4 possible vCPUs.

import { expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { buildFirmware } from "../../../src/runtime/nodejs/firmware-build.ts";
import { markedCommand, markedOutput, MARKED_OUTPUT_DONE } from "../../../harness/console-output.ts";
import { startElasticCluster } from "../../../src/runtime/nodejs/elastic-cluster.ts";

const HEAVY = process.env.GIANTWEB_HEAVY === "1";

it.skipIf(!HEAVY)("boots with 1 of 32 possible vCPUs and takes vCPU 31 online", async () => {
  const g = ensureGuestImages();
  const vm = startElasticCluster({
    wasmPath: await ensureInstrumentedWasm(),
    guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
    possibleCpus: 32,
  });
  const c = vm.cluster;
  const run = async (command: string) => {
    const mark = c.output().length;
    c.send(0, markedCommand(command));
    const out = await c.waitFor(MARKED_OUTPUT_DONE, 300_000, mark);
    return markedOutput(out.slice(mark)).trim();
  };
  try {
    await c.waitFor(/giantweb:\/root# /, 900_000);
    expect(c.output()).toMatch(/Allowing 32 CPUs, 31 hotplug CPUs/);
    const joined = await vm.join(31);
    expect(joined).toMatchObject({ vcpu: 31, node: 31 });
    await c.waitFor(/Booting Node 0 Processor 1 APIC 0x1f/, 300_000);
    // The guest numbers the CPU 1 (its next logical id); nproc counts it once the scheduler has it.
    let seen = "";
    for (let i = 0; i < 120 && !/^0-1\n2$/.test(seen); i++) {
      seen = (await run("cat /sys/devices/system/cpu/online; nproc")).split(/\r?\n/).slice(-2).join("\n");
      if (!/^0-1\n2$/.test(seen)) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(seen).toBe("0-1\n2");
    expect(await run(`taskset 2 sh -c 'echo on $(cut -d" " -f39 /proc/self/stat)'`)).toContain("on 1");
    expect(c.output()).not.toMatch(/Oops|BUG:|Call Trace/);
  } finally {
    await c.stop();
  }
}, 1_200_000);
