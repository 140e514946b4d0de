// The latency knob's effect on the real VM: Linux with 2 vCPUs in 2 workers of one tab
// (view-lab.html?vm=2), boot to shell with 10 ms added one-way delay on every frame every node
// sends, from the start, against the same boot without delay in the same run. The knob acts on
// the in-tab links here (each node worker delays its own sends, link-delay.ts, as it does on a
// cluster of tabs too). Slow by nature: every remote page fault then
// costs at least two 10 ms hops (a boot that takes ~1.5 min takes well over 15 min).

import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/runtime/nodejs/firmware-build.ts";
import { launchChromium } from "../../harness/browser/browser.ts";
import { startWebServer } from "../../harness/browser/web-server.ts";
import type { BenchModule, Metrics } from "../types.ts";
import { boot } from "./view.ts";

const viewKnob: BenchModule = {
  prefixes: ["view.knob_ratio"],
  async run(ctx) {
    // One delayed boot took over 30 minutes on a loaded 2-core machine: only on request.
    const asked = process.argv.some((a) => a.includes("view.knob")) || process.env.GIANTWEB_HEAVY === "1";
    if (!asked) {
      ctx.log("view.knob_ratio.10ms skipped: it takes 30+ minutes; run with GIANTWEB_HEAVY=1 or --only view.knob");
      const none: Metrics = {};
      return none;
    }
    ensureGuestImages();
    buildFirmware();
    await ensureInstrumentedWasm();
    const server = await startWebServer();
    const browser = await launchChromium();
    const base = `${server.url}view-lab.html?vm=2&collapsed=1`;
    try {
      ctx.log("view: 2-vCPU boot without added delay");
      const plain = await boot(browser, base, 1_200_000);
      ctx.log("view: 2-vCPU boot with 10 ms added to every frame every node sends (this takes long)");
      const delayed = await boot(browser, `${base}&delay=10`, 7_200_000);
      return {
        "view.knob_ratio.10ms": {
          value: delayed / plain,
          unit: "ratio",
          note: `2 vCPUs in one tab, boot to shell with 10 ms added one-way delay on the in-tab links (each node delays its sends) ${delayed.toFixed(1)} s / none ${plain.toFixed(1)} s`,
        },
      };
    } finally {
      await browser.close();
      await server.close();
    }
  },
};

export default viewKnob;
