// Runs the self-test guest on a cluster of tabs through the page's cluster panel (shared by the
// cluster e2e tests and the bench): tab A creates the cluster with slices[0] vCPUs, one more tab joins per
// further slice, tab A (tab 0) boots when the slices cover every vCPU, and the report is read from the
// consoles once its SUMMARY line came.

import type { BrowserContext } from "playwright-core";
import type { NodeStatus } from "../../src/runtime/web/node-protocol.ts";
import { consoleText, createCluster, joinCluster, linkCounters, nodeStatus, openPage, vmLinkPing, vmLinksOf, waitForConsole } from "./cluster-driver.ts";

export interface SelftestTabsRun {
  /** Tab A's console transcript (node 0's UART). */
  output: string;
  /** Every tab's transcript, tab A first. */
  outputs: string[];
  /** The RESULT, FAIL and SUMMARY lines, for logs. */
  lines: string;
  /** Each tab's latest node status for its first vCPU. */
  status: NodeStatus[];
  counters: { framesOut: number; framesIn: number; bytesOut: number; bytesIn: number; directOut: number; directIn: number; nodeOut: number }[];
  /** Each tab's VM links after the run (issue 15): how its node frames went to each other tab. */
  vmLinks: { tab: number; path: "direct" | "relay" | null; why?: string }[][];
  /** With `probeLink`: tab A to tab B round trips (ms) on their VM channel during the run. */
  linkRttMs: number[];
  /** Whether closing each tab (with the VM running on it) asked first ("beforeunload"), tab A first. */
  closeAsked: boolean[];
  /** The nodes each tab's live view has snapshots from (sorted), tab A first. */
  viewNodes: number[][];
  /** Seconds from the last join to the SUMMARY line. */
  seconds: number;
  errors: string[];
}

const SUMMARY = /SUMMARY[^\n]*\n/;

export interface SelftestTabsOptions {
  /** Tabs (by index, 0 = tab A) opened with `?vmlink=relay`: their node frames go through the main threads. */
  relay?: number[];
  /**
   * Tabs (by index) whose main thread is kept busy from the last join to the SUMMARY: a 200 ms busy
   * loop every 250 ms, as a page drawing a heavy view might (issue 15's test of the worker path).
   */
  busy?: number[];
  /**
   * Measure tab A's direct VM channel to tab B while the self-test runs: 10 round trips between
   * the two net workers every 250 ms (the raw round trip under the run's own load; `linkRttMs`).
   */
  probeLink?: boolean;
  /** Query parameters every tab's page is opened with (e.g. `spinwait: "on"`). */
  query?: Record<string, string>;
  /** Called once tab A showed the SUMMARY, while every tab and worker still runs (e.g. to stop a hop trace). */
  atSummary?: () => Promise<void>;
}

const withQuery = (url: string, key: string, value: string) => {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.href;
};

export async function runSelftestOnTabs(ctx: BrowserContext, url: string, slices: number[], timeoutMs = 900_000, opts: SelftestTabsOptions = {}): Promise<SelftestTabsRun> {
  /** Tab `i`'s URL: the query for every tab, and `?vmlink=relay` for the tabs told to relay. */
  const urlFor = (i: number, u: string) => {
    for (const [k, v] of Object.entries(opts.query ?? {})) u = withQuery(u, k, v);
    return opts.relay?.includes(i) ? withQuery(u, "vmlink", "relay") : u;
  };
  const total = slices.reduce((a, b) => a + b, 0);
  const a = await openPage(ctx, urlFor(0, url));
  const pages = [a];
  try {
    const link = await createCluster(a, total, slices[0], "selftest");
    let start = performance.now();
    for (const n of slices.slice(1)) {
      const p = await openPage(ctx, urlFor(pages.length, link));
      pages.push(p);
      // Join one at a time, each once the previous is in the roster, so tab numbers follow slices.
      await joinCluster(p, n);
      await a.waitForFunction((k) => document.querySelectorAll("#cluster-roster li").length === k, pages.length, { timeout: 60_000 });
      start = performance.now();
    }
    for (const i of opts.busy ?? [])
      await pages[i]!.evaluate(() => {
        (globalThis as { busyTimer?: unknown }).busyTimer = setInterval(() => {
          const end = performance.now() + 200;
          while (performance.now() < end);
        }, 250);
      });
    const linkRttMs: number[] = [];
    const probeErrors = new Set<string>();
    let probing = opts.probeLink === true;
    const probe = (async () => {
      // Tab B's number, once its page has joined (it is undefined a moment after Join).
      let tabB: number | undefined;
      while (probing) {
        try {
          tabB ??= await pages[1]!.evaluate(() => (globalThis as unknown as { giantwebCluster: { tab?: number } }).giantwebCluster.tab);
          if (tabB !== undefined) linkRttMs.push(...(await vmLinkPing(a, tabB, 10)));
          await a.waitForTimeout(250);
        } catch (err) {
          // the link settles a moment after the join, and the VM stops after its SUMMARY
          probeErrors.add((err as Error).message.split("\n")[0]!.slice(0, 200));
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    })();
    let seconds = 0;
    try {
      await waitForConsole(a, SUMMARY, "the self-test's SUMMARY on tab A", timeoutMs);
      seconds = (performance.now() - start) / 1000;
      await opts.atSummary?.();
    } finally {
      probing = false;
      await probe;
    }
    if (opts.probeLink && linkRttMs.length === 0) throw new Error(`no round trip on the VM channel tab A -> tab B was measured: ${[...probeErrors].join("; ")}`);
    for (const i of opts.busy ?? []) await pages[i]!.evaluate(() => clearInterval((globalThis as { busyTimer?: ReturnType<typeof setInterval> }).busyTimer));
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
    const counters = await Promise.all(pages.map(async (p) => (await linkCounters(p)) ?? { framesOut: 0, framesIn: 0, bytesOut: 0, bytesIn: 0, directOut: 0, directIn: 0, nodeOut: 0 }));
    const vmLinks = await Promise.all(pages.map((p) => vmLinksOf(p)));
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
      vmLinks,
      linkRttMs,
      viewNodes,
      seconds,
      errors: pages.flatMap((p) => p.errors),
    };
  } finally {
    for (const p of pages.reverse()) await p.close();
  }
}
