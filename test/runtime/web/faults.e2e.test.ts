// Fault injection on a cluster of three tabs running the self-test guest (issue 13): each fault
// ends with a named stop on every remaining tab, none left "running" or hung, or, for a fault the
// VM must survive, with the self-test completing. The stop time of each case is printed (the
// bench takes faults.stop_ms_p50/max from the same cases); it is never asserted.

import { expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { useBrowserSession } from "../../../harness/browser/browser-session.ts";
import { FAULT_CASES, runFault } from "../../../harness/browser/fault-cases.ts";

const session = useBrowserSession(async () => {
  await buildSelftest();
  await ensureInstrumentedWasm();
});

for (const fault of FAULT_CASES) {
  it(fault.expect ? `${fault.name}: every remaining tab stops, saying why` : `${fault.name}: the VM runs on`, async () => {
    const run = await runFault(session.browser, session.url, fault);
    console.log(`${fault.name}: ${run.stopMs === null ? "ran on" : `stopped everywhere ${Math.round(run.stopMs)} ms after the fault (${run.stopMsByTab.map((ms, i) => `tab ${"ABC"[i]} ${Math.round(ms)} ms`).join(", ")})`}\n${run.status.map((s, i) => `  tab ${"ABC"[i]}: ${s.phase} "${s.text}"`).join("\n")}`);
    if (process.env.FAULTS_VERBOSE) console.log(run.logs.map((l, i) => `tab ${"ABC"[i]} log:\n${l}`).join("\n"));
    expect(run.problems).toEqual([]);
    for (const s of run.status) {
      if (fault.expect) {
        expect(s.phase).toBe("error");
        expect(s.text).toMatch(fault.expect);
      } else expect(s.phase).toBe("running");
    }
  });
}
