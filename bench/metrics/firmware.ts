// Direct Linux boot through our firmware against SeaBIOS, on stock v86 with one CPU, same run:
// wall-clock start-to-prompt with tables for 1 CPU, the ratio to the SeaBIOS boot, and what each
// CPU the tables announce but v86 cannot start costs (Linux's AP wake-up timeout, kernel clock).

import { kernelSecondsBetween, PROMPT_RE, startDirectLinux } from "../../src/runtime/nodejs/linux-boot.ts";
import type { BenchModule, Metrics } from "../types.ts";

async function directBoot(cpus: number): Promise<{ seconds: number; log: string }> {
  const start = performance.now();
  const vm = await startDirectLinux({ cpus });
  try {
    const log = await vm.waitFor(PROMPT_RE, 600_000);
    return { seconds: (performance.now() - start) / 1000, log };
  } finally {
    await vm.destroy();
  }
}

const firmware: BenchModule = {
  prefixes: ["firmware."],
  async run(ctx) {
    const metrics: Metrics = {};
    if (ctx.wants("firmware.boot.1cpu") || ctx.wants("firmware.boot_ratio")) {
      const stock = await ctx.stockBootSeconds();
      ctx.log("direct boot through our firmware, tables for 1 CPU");
      const one = await directBoot(1);
      metrics["firmware.boot.1cpu"] = { value: one.seconds, unit: "s", note: "stock v86, our firmware + direct Linux boot, start to shell prompt" };
      metrics["firmware.boot_ratio"] = { value: one.seconds / stock, unit: "ratio", note: "direct boot (1 CPU in tables) / SeaBIOS boot, same run" };
    }
    if (ctx.wants("firmware.boot.2cpu") || ctx.wants("firmware.ap_timeout_s")) {
      ctx.log("direct boot through our firmware, tables for 2 CPUs (v86 starts only CPU 0)");
      const two = await directBoot(2);
      metrics["firmware.boot.2cpu"] = { value: two.seconds, unit: "s", note: "tables for 2 CPUs on one-CPU v86: includes Linux's wait for CPU 1" };
      const wait = kernelSecondsBetween(two.log, /smp: Bringing up secondary CPUs/, /smp: Brought up/);
      if (wait === null) throw new Error("the 2-CPU boot's kernel log lacks the smp bring-up lines");
      metrics["firmware.ap_timeout_s"] = { value: wait, unit: "s", note: "kernel clock spent waiting for one AP that never starts (per announced AP)" };
    }
    return metrics;
  },
};
export default firmware;
