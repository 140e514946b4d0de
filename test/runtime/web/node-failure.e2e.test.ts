// An engine panic on a node of a cluster of tabs stops the VM on every tab, each saying which node
// failed, on which vCPU and tab, and why (issue 11). Tab A creates a 2-vCPU cluster, tab B joins
// with vCPU 1; the guest (guests/apfault, served in place of the self-test ELF on both tabs)
// starts vCPU 1, which loads its task register from a zero GDT entry: v86 panics there.

import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { buildApFaultGuest } from "../../../guests/apfault/build.ts";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import type { NodeFailure } from "../../../src/protocol/tab/node-failure.ts";
import { useBrowserSession } from "../../../harness/browser/browser-session.ts";
import { SELFTEST_URL } from "../../../src/ui/cluster/served-paths.ts";
import { clusterStatus, consoleText, createCluster, joinCluster, openPage } from "../../../harness/browser/cluster-driver.ts";

const session = useBrowserSession(async () => {
  buildApFaultGuest();
  await ensureInstrumentedWasm();
});

const STOPPED = /^VM stopped: node 1 \(vCPU 1, tab 1\) failed: the engine panicked at src\/rust\/cpu\/cpu\.rs:\d+:\d+: #GP \| ltr: invalid type \(type = 0x0\)/;

it("vCPU 1's engine panics on tab B: both tabs stop, naming node 1, vCPU 1, tab 1 and the panic", async () => {
  const elf = readFileSync(buildApFaultGuest());
  const ctx = session.context;
  await ctx.route(`**/${SELFTEST_URL}`, (route) => route.fulfill({ body: elf, contentType: "application/octet-stream", headers: { "Cross-Origin-Resource-Policy": "same-origin" } }));
  const a = await openPage(ctx, session.url);
  const pages = [a];
  try {
    const link = await createCluster(a, 2, 1, "selftest");
    const b = await openPage(ctx, link);
    pages.push(b);
    await joinCluster(b, 1);
    for (const p of pages)
      await p.waitForFunction(() => ["error", "stopped"].includes(document.querySelector("#cluster-status")?.getAttribute("data-phase") ?? ""), null, { timeout: 600_000, polling: 100 });
    const status = await Promise.all(pages.map((p) => clusterStatus(p)));
    const consoles = await Promise.all(pages.map((p) => consoleText(p)));
    console.log(status.map((s, i) => `tab ${"AB"[i]}: ${s.phase} "${s.text}"`).join("\n"));
    for (const [i, s] of status.entries()) {
      expect(s.phase, `tab ${"AB"[i]}`).toBe("error");
      expect(s.text).toMatch(STOPPED);
      // The console says it too, after the guest's own lines (vCPU 1's went through node 0's UART).
      const line = consoles[i]!.split(/\r?\n/).find((l) => l.startsWith("[VM stopped: "));
      expect(line?.slice(1)).toMatch(STOPPED);
    }
    expect(consoles[0]).toContain("APFAULT BSP sent INIT/SIPI/SIPI");
    // The failure both tabs hold is tab B's node's, with the time it failed: from there to the last
    // tab whose status line changed to the stop.
    const failures = await Promise.all(pages.map((p) => p.evaluate(() => (globalThis as unknown as { giantwebCluster: { failure(): NodeFailure | null } }).giantwebCluster.failure())));
    expect(failures[0]).toEqual(failures[1]);
    expect(failures[0]).toMatchObject({ node: 1, vcpu: 1, tab: 1, cause: "engine" });
    const shownAt = await Promise.all(pages.map((p) => p.locator("#cluster-status").getAttribute("data-since-ms")));
    const ms = shownAt.map((t) => Number(t) - failures[0]!.atMs);
    console.log(`from vCPU 1's panic to the stop on tab B (its own tab): ${ms[1]!.toFixed(1)} ms, on tab A (tab 0): ${ms[0]!.toFixed(1)} ms; last tab: ${Math.max(...ms).toFixed(1)} ms`);
    expect(pages.flatMap((p) => p.errors)).toEqual([]);
  } finally {
    for (const p of pages.reverse()) await p.close();
    await ctx.unroute(`**/${SELFTEST_URL}`);
  }
}, 900_000);
