// The elastic VM (issue 14), in Node worker threads: Linux boots on one node with 1 of 4 possible
// vCPUs, against stock v86 with one CPU (same run); then a node joins and its CPU comes online in
// the guest, and leaves again. In a browser the same steps add the tabs' links; these figures are
// the platform's own cost.

import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/runtime/nodejs/firmware-build.ts";
import { startElasticCluster } from "../../src/runtime/nodejs/elastic-cluster.ts";
import type { NodeCluster } from "../../src/runtime/nodejs/cluster.ts";
import type { BenchContext, BenchModule, Metrics } from "../types.ts";

const PROMPT = /giantweb:\/root# /;

async function run(c: NodeCluster, command: string): Promise<string> {
  const mark = c.output().length;
  c.send(0, `${command}; echo '==''done'\n`);
  const out = await c.waitFor(/==done\r?\n/, 300_000, mark);
  return out.slice(mark);
}

export default {
  prefixes: ["elastic."],
  async run(ctx: BenchContext): Promise<Metrics> {
    const stock = await ctx.stockBootSeconds();
    const g = ensureGuestImages();
    ctx.log("elastic VM: Linux with 1 of 4 possible vCPUs on one node, to its shell");
    const t0 = performance.now();
    const vm = startElasticCluster({
      wasmPath: await ensureInstrumentedWasm(),
      guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
      possibleCpus: 4,
    });
    const c = vm.cluster;
    try {
      await c.waitFor(PROMPT, 900_000);
      const boot = (performance.now() - t0) / 1000;
      ctx.log(`elastic boot ${boot.toFixed(1)} s, stock ${stock.toFixed(1)} s; a node joins with vCPU 1`);
      const j0 = performance.now();
      const mark = c.output().length;
      const joined = await vm.join();
      // The kernel prints this once the new CPU has come up and the uevent line onlined it.
      await c.waitFor(/Will online and init hotplugged CPU: 1/, 300_000, mark);
      const join = (performance.now() - j0) / 1000;
      const n2 = await run(c, "nproc");
      if (!/^2\r?$/m.test(n2)) throw new Error(`nproc is not 2 after the join: ${JSON.stringify(n2)}`);
      ctx.log(`joined in ${join.toFixed(2)} s; vCPU 1 leaves`);
      const l0 = performance.now();
      const left = await vm.leave(1);
      const leave = (performance.now() - l0) / 1000;
      const n1 = await run(c, "nproc");
      if (!/^1\r?$/m.test(n1)) throw new Error(`nproc is not 1 after the leave: ${JSON.stringify(n1)}`);
      return {
        "elastic.boot_s": { value: boot, unit: "s", note: "Linux to its shell, 1 of 4 possible vCPUs online, one node (Node workers)" },
        "elastic.boot_ratio": { value: boot / stock, unit: "x", note: `vs stock v86 one CPU (${stock.toFixed(1)} s), same run` },
        "elastic.join_s": { value: join, unit: "s", note: `join() to "Will online and init hotplugged CPU: 1" on the console; the VM paused ${joined.change.pausedMs.toFixed(0)} ms for the DSM change` },
        "elastic.leave_s": { value: leave, unit: "s", note: `leave(1) (guest offlines and ejects the CPU, pages handed to node 0, node ended) to done, then nproc 1; paused ${left.change.pausedMs.toFixed(0)} ms` },
      };
    } finally {
      await c.stop();
    }
  },
} satisfies BenchModule;
