// How fast a fault ends the VM everywhere (issue 13): the fault-injection cases of the failure
// tests (harness/browser/fault-cases.ts) on three tabs running the self-test guest, each from the
// fault to the last remaining tab showing the stop. Goal: max <= 2,000 ms.

import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { percentile } from "../../src/fabric/stats.ts";
import { launchChromium } from "../../harness/browser/browser.ts";
import { startWebServer } from "../../harness/browser/web-server.ts";
import { FAULT_CASES, runFault } from "../../harness/browser/fault-cases.ts";
import type { BenchModule } from "../types.ts";

const faults: BenchModule = {
  prefixes: ["faults."],
  async run(ctx) {
    await buildSelftest();
    await ensureInstrumentedWasm();
    const server = await startWebServer();
    const browser = await launchChromium();
    try {
      const times: number[] = [];
      const by: string[] = [];
      for (const fault of FAULT_CASES.filter((f) => f.expect)) {
        ctx.log(`faults: ${fault.name}`);
        const run = await runFault(browser, server.url, fault);
        const bad = run.status.filter((s) => s.phase !== "error" || !fault.expect!.test(s.text ?? ""));
        if (bad.length || run.stopMs === null) throw new Error(`${fault.name}: not every remaining tab stopped as expected: ${JSON.stringify(run.status)}`);
        times.push(run.stopMs);
        by.push(`${fault.name} ${Math.round(run.stopMs)}`);
      }
      const note = `${times.length} cases on 3 tabs (self-test guest), ms from the fault to the last tab's stop: ${by.join("; ")}`;
      return {
        "faults.stop_ms_p50": { value: percentile(times, 50)!, unit: "ms", note },
        "faults.stop_ms_max": { value: Math.max(...times), unit: "ms", note: "goal <= 2000" },
      };
    } finally {
      await browser.close();
      await server.close();
    }
  },
};

export default faults;
