// One Linux VM over two tabs of one Chromium (loopback WebRTC): vCPU 0 and the devices in tab A,
// vCPU 1 in tab B. Boot to shell against stock v86 with one CPU, and the remote page-fault
// latency of vCPU 1 (every fault of node 1 is served by node 0, in the other tab) against the raw
// 4 KiB data-channel round trip measured in the same run (with the fabric lab's echo).

import { percentile } from "../../src/fabric/stats.ts";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/platform/firmware/bios-build.ts";
import { launchChromium } from "../../test/support/browser.ts";
import { startWebServer } from "../../test/support/web-server.ts";
import { create, join, lab, openLab } from "../../test/fabric/support/lab-driver.ts";
import { createCluster, joinCluster, linkCounters, nodeStatus, openPage, waitForConsole } from "../../test/tabs/support/cluster-driver.ts";
import type { BenchModule, Metrics } from "../types.ts";

const ROUND_TRIPS = 500;
// The shell writes a cursor-position query (ESC [6n) after its prompt, so nothing is anchored at the end.
const PROMPT = /giantweb:\/root# /;

const tabs: BenchModule = {
  prefixes: ["tabs.boot_ratio", "tabs.fault", "tabs.dsm_faults", "tabs.vm_"],
  async run(ctx) {
    ensureGuestImages();
    buildFirmware();
    await ensureInstrumentedWasm();
    const stock = await ctx.stockBootSeconds();
    const server = await startWebServer();
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      const out: Metrics = {};

      // The raw round trip between two tabs of this browser, now (the same code as the fabric bench).
      ctx.log(`tabs: ${ROUND_TRIPS} 4 KiB round trips between two lab tabs`);
      const la = await openLab(context, `${server.url}fabric-lab.html`);
      const lb = await openLab(context, await create(la, 2));
      await join(lb);
      await lab(la, (l) => l.rtts(1, 100, 4096));
      const rtts = await lab(la, (l, n) => l.rtts(1, n, 4096), ROUND_TRIPS);
      const rtt = percentile(rtts, 50)!;
      await lb.close();
      await la.close();
      out["tabs.fault_rtt_p50"] = { value: rtt, unit: "ms", note: `4 KiB echo between two tabs, ${ROUND_TRIPS} round trips, same run as the faults (the fabric bench's tabs.rtt_p50 is a separate run)` };

      ctx.log("tabs: booting Linux with vCPU 0 in tab A and vCPU 1 in tab B");
      const a = await openPage(context, server.url);
      const link = await createCluster(a, 2, 1);
      const b = await openPage(context, link);
      const start = performance.now();
      await joinCluster(b, 1); // the slices now cover both vCPUs: tab A boots at once
      await waitForConsole(a, PROMPT, "the shell prompt on tab A");
      const seconds = (performance.now() - start) / 1000;
      out["tabs.boot_ratio.2"] = {
        value: seconds / stock,
        unit: "ratio",
        note: `2 vCPUs on 2 tabs: ${seconds.toFixed(1)} s from the join (images fetched, workers started) to the shell / stock v86 one CPU ${stock.toFixed(1)} s`,
      };

      // Node 1's status arrives every 500 ms; wait for one taken after the prompt.
      await b.waitForTimeout(1500);
      const s1 = (await nodeStatus(b)).find((s) => s.node === 1);
      if (!s1?.faultMs) throw new Error("tab B reported no fault latency for node 1");
      out["tabs.fault_p50"] = { value: s1.faultMs.p50, unit: "ms", note: `node 1's last ${s1.faultMs.count} DSM faults during the boot (each served by node 0 in the other tab); p99 ${s1.faultMs.p99.toFixed(2)} ms` };
      out["tabs.fault_p50_ratio"] = { value: s1.faultMs.p50 / rtt, unit: "ratio", note: "tabs.fault_p50 / tabs.fault_rtt_p50, same run" };
      out["tabs.dsm_faults.2"] = { value: s1.faults, unit: "count", note: "node 1's DSM faults during the 2-tab boot" };
      const c = await linkCounters(a);
      if (c) out["tabs.vm_frames.2"] = { value: c.framesOut + c.framesIn, unit: "count", note: `VM link frames tab A sent and received over the fabric during the boot (${((c.bytesOut + c.bytesIn) / 1048576).toFixed(1)} MiB)` };
      if (a.errors.length || b.errors.length) throw new Error(`page errors: ${[...a.errors, ...b.errors].join("; ")}`);
      return out;
    } finally {
      await browser.close();
      await server.close();
    }
  },
};

export default tabs;
