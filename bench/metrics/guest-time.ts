// Guest time against host speed: how long an AP of the 2-vCPU worker cluster takes from its
// start-up IPI to its "first sign of life", the point Linux gives 10 s of guest time (do_boot_cpu
// waits that long for the AP to set its bit in cpu_initialized_mask, at the top of cpu_init()).
// Measured from inside the AP's node (ClusterOptions.watchPages): the AP's first DSM fault is the
// SIPI's first instruction (the AP holds no page), its first fault on the page of `cpu_init` is its
// arrival there. With no added delay and with 10 ms added one way (the latency knob), so the margin
// to the 10 s window is tracked. See src/engine/README-interrupts.md, "Guest time".

import { readFileSync } from "node:fs";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/runtime/nodejs/firmware-build.ts";
import { startCluster } from "../../src/runtime/nodejs/cluster.ts";
import type { BenchContext, BenchModule, Metrics } from "../types.ts";

const PAGE_OFFSET = 0xc0000000; // Debian's 686 kernels: VMSPLIT_3G, lowmem mapped at phys + 3 GiB
const WINDOW_S = 10; // do_boot_cpu: "Wait 10s total for first sign of life from AP" (jiffies + 10*HZ)

interface Mark {
  wallMs: number;
  faults: number;
  blockedMs: number;
}

/** The guest-physical page of a kernel text symbol (the measurement boots with nokaslr). */
function symbolPage(systemMap: string, name: string): number {
  const line = readFileSync(systemMap, "utf8").split("\n").find((l) => l.endsWith(` ${name}`));
  if (!line) throw new Error(`no ${name} in ${systemMap}`);
  return (parseInt(line.split(" ")[0]!, 16) - PAGE_OFFSET) >>> 12;
}

interface Wakeup {
  /** SIPI to the AP's arrival in cpu_init (wall s), its DSM faults and time blocked in them. */
  wakeupS: number;
  faults: number;
  blockedS: number;
  /** SIPI to "smp: Brought up" on the console (wall s), and the same span in the guest's printk time. */
  bringupS: number;
  bringupGuestS: number;
}

async function apWakeup(wasmPath: string, linkDelayMs: number): Promise<Wakeup> {
  const g = ensureGuestImages();
  const cpuInit = symbolPage(g.systemMap, "cpu_init");
  const cluster = startCluster({
    wasmPath,
    // nokaslr: kernel text at its link address, so the page of cpu_init is known beforehand.
    guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: g.bzImage, initramfs: g.initramfs, cmdline: `${g.cmdline} nokaslr`, memoryMiB: 128 },
    nodes: [{ vcpu: 0 }, { vcpu: 1 }],
    deviceNode: 0,
    linkDelayMs,
    watchPages: [cpuInit],
  });
  try {
    await cluster.waitFor(/smp: Bringing up secondary CPUs/, 600_000);
    const out = await cluster.waitFor(/smp: Brought up[^\n]*\n|do_boot_cpu failed[^\n]*\n/, 900_000);
    const broughtMs = performance.timeOrigin + performance.now();
    if (/do_boot_cpu failed/.test(out)) throw new Error(`the AP missed its window at ${linkDelayMs} ms added delay: ${out.match(/[^\n]*do_boot_cpu failed[^\n]*/)![0]}`);
    const watch = (await cluster.stats(1)).watch as { first: Mark | null; pages: Record<number, Mark> };
    const sipi = watch.first;
    const arrived = watch.pages[cpuInit];
    if (!sipi || !arrived) throw new Error("the AP's node recorded no fault on the page of cpu_init");
    const stamp = (re: RegExp) => Number(out.match(new RegExp(`\\[\\s*([0-9.]+)\\] ${re.source}`))?.[1] ?? NaN);
    return {
      wakeupS: (arrived.wallMs - sipi.wallMs) / 1000,
      faults: arrived.faults - sipi.faults,
      blockedS: (arrived.blockedMs - sipi.blockedMs) / 1000,
      bringupS: (broughtMs - sipi.wallMs) / 1000,
      bringupGuestS: stamp(/smp: Brought up/) - stamp(/smp: Bringing up secondary CPUs/),
    };
  } finally {
    await cluster.stop();
  }
}

const mod: BenchModule = {
  prefixes: ["smp.ap_"],
  async run(ctx: BenchContext): Promise<Metrics> {
    const wasmPath = await ensureInstrumentedWasm();
    const metrics: Metrics = {};
    for (const delay of [0, 10]) {
      const suffix = delay ? `.2.delay${delay}` : ".2";
      if (![`smp.ap_wakeup_s${suffix}`, `smp.ap_wakeup_faults${suffix}`, `smp.ap_bringup_s${suffix}`, `smp.ap_bringup_guest_s${suffix}`].some((n) => ctx.wants(n))) continue;
      ctx.log(`2 vCPUs in 2 workers, ${delay} ms added one way: SIPI to the AP's first sign of life`);
      const w = await apWakeup(wasmPath, delay);
      const perFault = w.faults ? (w.wakeupS / w.faults) * 1000 : NaN;
      metrics[`smp.ap_wakeup_s${suffix}`] = {
        value: w.wakeupS,
        unit: "s",
        note: `SIPI to the AP in cpu_init (Linux allows ${WINDOW_S} s): ${w.faults} faults, ${perFault.toFixed(1)} ms each, ${w.blockedS.toFixed(2)} s blocked; margin ${(WINDOW_S / w.wakeupS).toFixed(0)}x`,
      };
      metrics[`smp.ap_wakeup_faults${suffix}`] = { value: w.faults, unit: "count", note: "AP's DSM faults from SIPI to cpu_init" };
      metrics[`smp.ap_bringup_s${suffix}`] = { value: w.bringupS, unit: "s", note: "SIPI to 'smp: Brought up' on the console (no guest timeout after the first sign of life)" };
      metrics[`smp.ap_bringup_guest_s${suffix}`] = {
        value: w.bringupGuestS,
        unit: "s",
        note: "the same span in the guest's printk time (jiffies clocksource then: it counts the timer ticks v86 delivered)",
      };
    }
    return metrics;
  },
};
export default mod;
