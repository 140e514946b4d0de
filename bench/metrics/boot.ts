// Boot-to-shell baselines: stock v86 with one CPU, and QEMU TCG with one and two CPUs.

import type { BenchModule, Metrics } from "../types.ts";
import { qemuVersion } from "../../src/guests/qemu-process.ts";
import { qemuBootSeconds } from "../qemu.ts";

const boot: BenchModule = {
  prefixes: ["boot."],
  async run(ctx) {
    const metrics: Metrics = {};
    if (ctx.wants("boot.v86.1cpu"))
      metrics["boot.v86.1cpu"] = { value: await ctx.stockBootSeconds(), unit: "s", note: "stock v86 0.5.462 in Node, start to shell prompt" };
    if (!qemuVersion()) {
      ctx.log("qemu-system-i386 is not installed; boot.qemu.* left out (npm run setup installs it)");
      return metrics;
    }
    for (const cpus of [1, 2]) {
      const name = `boot.qemu.smp${cpus}`;
      if (!ctx.wants(name)) continue;
      ctx.log(`QEMU TCG -smp ${cpus}`);
      const r = await qemuBootSeconds(cpus);
      if (r.cpusOnline !== cpus) throw new Error(`QEMU -smp ${cpus}: the guest reported ${r.cpusOnline} CPU(s) online`);
      metrics[name] = { value: r.seconds, unit: "s", note: `qemu-system-i386 TCG -smp ${cpus}, start to shell prompt` };
    }
    return metrics;
  },
};
export default boot;
