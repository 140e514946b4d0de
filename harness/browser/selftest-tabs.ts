// Runs the self-test guest on a cluster of tabs through the page's cluster panel (shared by the
// cluster e2e tests and the bench): tab A creates the cluster with slices[0] vCPUs, one more tab joins per
// further slice, tab A (tab 0) boots when the slices cover every vCPU, and the report is read from the
// consoles once its SUMMARY line came.

import type { BrowserContext } from "playwright-core";
import type { NodeStatus } from "../../src/runtime/web/node-protocol.ts";
import { consoleText, createCluster, joinCluster, linkCounters, nodeStatus, openPage, waitForConsole } from "./cluster-driver.ts";

export interface SelftestTabsRun {
  /** Tab A's console transcript (node 0's UART). */
  output: string;
  /** Every tab's transcript, tab A first. */
  outputs: string[];
  /** The RESULT, FAIL and SUMMARY lines, for logs. */
  lines: string;
  /** Each tab's latest node status for its first vCPU. */
  status: NodeStatus[];
  counters: { framesOut: number; framesIn: number; bytesOut: number; bytesIn: number }[];
  /** Whether closing each tab (with the VM running on it) asked first ("beforeunload"), tab A first. */
  closeAsked: boolean[];
  /** The nodes each tab's live view has snapshots from (sorted), tab A first. */
  viewNodes: number[][];
  /** Seconds from the last join to the SUMMARY line. */
  seconds: number;
  errors: string[];
}

const SUMMARY = /SUMMARY[^\n]*\n/;

export async function runSelftestOnTabs(ctx: BrowserContext, url: string, slices: number[], timeoutMs = 900_000): Promise<SelftestTabsRun> {
  const total = slices.reduce((a, b) => a + b, 0);
  const a = await openPage(ctx, url);
  const pages = [a];
  try {
    const link = await createCluster(a, total, slices[0], "selftest");
    let start = performance.now();
    for (const n of slices.slice(1)) {
      const p = await openPage(ctx, link);
      pages.push(p);
      // Join one at a time, each once the previous is in the roster, so tab numbers follow slices.
      await joinCluster(p, n);
      await a.waitForFunction((k) => document.querySelectorAll("#cluster-roster li").length === k, pages.length, { timeout: 60_000 });
      start = performance.now();
    }
    await waitForConsole(a, SUMMARY, "the self-test's SUMMARY on tab A", timeoutMs);
    const seconds = (performance.now() - start) / 1000;
    for (const p of pages.slice(1)) await waitForConsole(p, SUMMARY, "the self-test's SUMMARY on a joined tab", 60_000);
    // Node statuses come every 500 ms; wait for one taken after the run.
    await a.waitForTimeout(1200);
    const outputs = await Promise.all(pages.map((p) => consoleText(p)));
    const status: NodeStatus[] = [];
    for (const [i, p] of pages.entries()) {
      const s = (await nodeStatus(p)).sort((x, y) => x.node - y.node)[0];
      if (!s) throw new Error(`tab ${i} reported no node status`);
      status.push(s);
    }
    const counters = await Promise.all(pages.map(async (p) => (await linkCounters(p)) ?? { framesOut: 0, framesIn: 0, bytesOut: 0, bytesIn: 0 }));
    const viewNodes = await Promise.all(
      pages.map((p) =>
        p.evaluate(() => (globalThis as unknown as { giantwebView: { model: { rates: { nodes(): { node: number }[] } } } }).giantwebView.model.rates.nodes().map((r) => r.node).sort((x, y) => x - y)),
      ),
    );
    // Closing a tab that hosts vCPUs ends the VM: the page must ask. The harness declines (the tab
    // stays) and closes it for good below. 10 s is a hang guard, not a measure.
    const closeAsked: boolean[] = [];
    for (const p of pages) {
      const asked = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 10_000);
        p.once("dialog", (d) => {
          clearTimeout(timer);
          resolve(d.type() === "beforeunload");
          void d.dismiss();
        });
      });
      await p.close({ runBeforeUnload: true });
      closeAsked.push(await asked);
    }
    const output = outputs[0]!;
    return {
      closeAsked,
      output,
      outputs,
      lines: output.replace(/\r/g, "").split("\n").filter((l) => /^(RESULT|FAIL|SUMMARY)/.test(l)).join("\n"),
      status,
      counters,
      viewNodes,
      seconds,
      errors: pages.flatMap((p) => p.errors),
    };
  } finally {
    for (const p of pages.reverse()) await p.close();
  }
}
