// The raw cost of the fabric between two tabs of one Chromium over loopback WebRTC: round trip
// of a 4 KiB message (one DSM page) p50/p99, pipelined 4 KiB throughput, bulk 1 MiB throughput,
// and the round trip with the latency knob at 10 ms per side (to check the knob adds what it says).

import { launchChromium } from "../../harness/browser/browser.ts";
import { startWebServer } from "../../harness/browser/web-server.ts";
import { create, join, lab, openLab } from "../../harness/browser/fabric-lab-driver.ts";
import { percentile } from "../../src/fabric/stats.ts";
import type { BenchModule, Metrics } from "../types.ts";

const PAGE = 4096;
const ROUND_TRIPS = 1000;
const PIPELINED = 2000;
const BULK_FRAMES = 32;

const fabric: BenchModule = {
  prefixes: ["tabs.rtt", "tabs.msgs", "tabs.bulk", "tabs.knob"],
  async run(ctx) {
    const server = await startWebServer();
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      const a = await openLab(context, `${server.url}fabric-lab.html`);
      const link = await create(a, 2);
      const b = await openLab(context, link);
      await join(b);
      ctx.log("fabric: two tabs linked; warming up");
      await lab(a, (l) => l.rtts(1, 100, 4096));

      const out: Metrics = {};
      ctx.log(`fabric: ${ROUND_TRIPS} sequential 4 KiB round trips`);
      const rtts = await lab(a, (l, n) => l.rtts(1, n, 4096), ROUND_TRIPS);
      out["tabs.rtt_p50"] = { value: percentile(rtts, 50)!, unit: "ms", note: `4 KiB echo between two tabs, loopback WebRTC, ${ROUND_TRIPS} round trips` };
      out["tabs.rtt_p99"] = { value: percentile(rtts, 99)!, unit: "ms", note: "same run" };

      ctx.log(`fabric: ${PIPELINED} pipelined 4 KiB round trips`);
      const pipe = await lab(a, (l, n) => l.pipelinedDetail(1, n, 4096), PIPELINED);
      out["tabs.msgs_per_s"] = { value: (PIPELINED * 1000) / pipe.ms, unit: "msg/s", note: `${PIPELINED} 4 KiB requests sent at once, each echoed: round trips completed per second` };
      out["tabs.msgs_max_stall_ms"] = { value: pipe.maxGapMs, unit: "ms", note: "same run: longest pause between two consecutive replies" };

      ctx.log(`fabric: ${BULK_FRAMES} pipelined 1 MiB round trips`);
      const bulkMs = await lab(a, (l, n) => l.pipelined(1, n, 1 << 20), BULK_FRAMES);
      out["tabs.bulk_mib_s"] = { value: (2 * BULK_FRAMES * 1000) / bulkMs, unit: "MiB/s", note: "1 MiB frames (chunked) echoed: MiB moved per second, both directions" };

      ctx.log("fabric: latency knob at 10 ms on both tabs");
      await lab(a, (l) => l.setDelay(10));
      await lab(b, (l) => l.setDelay(10));
      const knob = await lab(a, (l) => l.rtts(1, 50, 4096));
      const p50 = out["tabs.rtt_p50"].value;
      out["tabs.knob_rtt_ratio.10ms"] = {
        value: percentile(knob, 50)! / (20 + p50),
        unit: "ratio",
        note: "4 KiB round trip with 10 ms added each way / (20 ms + tabs.rtt_p50): 1.0 when the knob adds exactly what it says",
      };
      if (a.errors.length || b.errors.length) throw new Error(`page errors: ${[...a.errors, ...b.errors].join("; ")}`);
      return out;
    } finally {
      await browser.close();
      await server.close();
    }
  },
};

export default fabric;
