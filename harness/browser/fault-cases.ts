// Faults injected into a running cluster of tabs (the self-test guest, one vCPU per tab), each
// ending in a named stop on every remaining tab, or in the VM running on when the fault is one it
// must survive. Shared by the failure tests (test/runtime/web/faults.e2e.test.ts) and the bench
// (faults.stop_ms_*). A case's stop time runs from the injection (wall clock, just before it) to
// the last remaining tab's status line changing to the stop (its data-since-ms stamp).

import { readFileSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { buildApFaultGuest } from "../../guests/apfault/build.ts";
import { SELFTEST_URL } from "../../src/ui/cluster/served-paths.ts";
import { type RelayServer, startRelay } from "../../src/fabric/relay/server.ts";
import { relayProxy } from "../nodejs/relay-proxy.ts";
import { type ClusterPage, clusterStatus, consoleText, createCluster, joinCluster, openPage, waitForConsole } from "./cluster-driver.ts";

export interface FaultRun {
  name: string;
  /** Milliseconds from the injection to the last remaining tab showing the stop (null: it ran on). */
  stopMs: number | null;
  /** The same for each remaining tab, tab A first. */
  stopMsByTab: number[];
  /** Each remaining tab's status line at the end, tab A first. */
  status: { phase: string | null; text: string | null }[];
  /** Tab A's console, for a failing case's report. */
  console: string;
  /** Each remaining tab's cluster log (what it dropped, who left), tab A first. */
  logs: string[];
  /** What the case's own checks found wrong. */
  problems: string[];
}

/** A cluster of tabs A (tab 0, vCPU 0), B (vCPU 1), C (vCPU 2), and W watching when asked. */
interface Cluster {
  ctx: BrowserContext;
  tabs: ClusterPage[];
  watcher: ClusterPage | null;
}

export interface FaultCase {
  name: string;
  /** Readies the case's browser context before any tab opens (e.g. serves another guest). */
  prepare?(ctx: BrowserContext): Promise<void>;
  /** Starts what the case needs outside the browser; returns the query tab A's page opens with. */
  start?(): Promise<string>;
  /** Ends what `start` started. */
  cleanup?(): Promise<void>;
  /** For a fault the guest causes itself: when it happened (wall-clock ms), read after the stop. */
  faultTime?(c: Cluster): Promise<number>;
  /** When the fault comes: while tab C fetches its images (tab A waits for it), while the self-test runs, or by itself. */
  when: "booting" | "running" | "by-itself";
  watcher?: boolean;
  /** Injects the fault; returns the tabs still there (the others it closed). `at.ms` is set just before; a case may move it to the fault's own moment. */
  inject(c: Cluster, at: { ms: number }): Promise<ClusterPage[]>;
  /** What every remaining tab's status must say; null when the VM must run on. */
  expect: RegExp | null;
  /** More checks once the case ended; returns what is wrong (nothing: fine). */
  after?(c: Cluster): Promise<string[]>;
}

/** Gives the pages' wall clock just before the call (Node's Date.now() is the same clock on one machine). */
const now = () => Date.now();

const STOPPED = ["error", "stopped"];
const ENGINE = "**/engine/v86-giantweb.wasm";

/**
 * Closes a tab the way a user does: the page asks first (beforeunload), the user confirms. The
 * fault's time is the confirmation (the tab closes then), reported through `at`.
 */
async function closeConfirmed(page: Page, at: { ms: number }): Promise<void> {
  const closed = new Promise<void>((resolve) => page.once("close", () => resolve()));
  page.once("dialog", (d) => {
    at.ms = now();
    void d.accept();
  });
  await page.close({ runBeforeUnload: true });
  await closed;
}

/** A control message's envelope bytes, as a page would send it (the envelope's kind 4, JSON). */
const control = (msg: unknown) => [4, ...new TextEncoder().encode(JSON.stringify(msg))];

const sendRaw = (page: Page, tab: number, bytes: number[], times = 1) =>
  page.evaluate(
    ([tab, bytes, times]) => {
      const hook = (globalThis as unknown as { giantwebCluster: { inject: { send(tab: number, b: number[]): void } } }).giantwebCluster;
      for (let i = 0; i < times; i++) hook.inject.send(tab, bytes);
    },
    [tab, bytes, times] as const,
  );

/**
 * The cluster signals through a relay of its own (the page's ?relay=), reached through a proxy;
 * mid-run tab 0's relay connection is cut (the relay then closes the cluster id) and the relay
 * stops. Signaling only introduces tabs: the VM runs on, every tab says nobody new can join.
 */
function relayStopped(): FaultCase {
  let relay: RelayServer | null = null;
  let proxy: Awaited<ReturnType<typeof relayProxy>> | null = null;
  return {
    name: "the relay stopped mid-run",
    when: "running",
    start: async () => {
      relay = await startRelay();
      proxy = await relayProxy(relay.port);
      return `?relay=${encodeURIComponent(proxy.url)}`;
    },
    inject: async ({ tabs }) => {
      proxy!.cut(0);
      await relay!.close();
      relay = null;
      return tabs;
    },
    after: async ({ tabs }) => {
      const problems: string[] = [];
      for (const [i, p] of tabs.entries()) {
        const link = await p.locator("#cluster-link").inputValue();
        if (!link.includes("&relay=")) problems.push(`tab ${"ABC"[i]}'s join link names no relay: ${link}`);
        const log = await p.locator("#cluster-log").innerText();
        if (!/signaling lost .*nobody new can join/.test(log)) problems.push(`tab ${"ABC"[i]}'s log does not say signaling was lost:\n${log}`);
      }
      return problems;
    },
    cleanup: async () => {
      await proxy?.close();
      await relay?.close();
    },
    expect: null,
  };
}

export const FAULT_CASES: FaultCase[] = [
  relayStopped(),
  {
    // Each remaining tab names what it saw first: tab 2 leaving, its link going down, or a frame for it that cannot go.
    name: "a vCPU tab closed mid-boot",
    when: "booting",
    inject: async ({ tabs }, at) => (await closeConfirmed(tabs[2]!, at), tabs.slice(0, 2)),
    expect: /^VM stopped: .*tab 2 \(vCPU 2\)/,
  },
  {
    name: "a vCPU tab closed mid-job",
    when: "running",
    inject: async ({ tabs }, at) => (await closeConfirmed(tabs[2]!, at), tabs.slice(0, 2)),
    expect: /^VM stopped: .*tab 2 \(vCPU 2\)/,
  },
  {
    // Tabs B and C (neither is tab 0) lose their link: each tells tab 0, which removes one of them;
    // every tab stops, each naming the link or the tab it lost.
    name: "the link between two tabs other than tab 0 cut",
    when: "running",
    inject: async ({ tabs }) => {
      await tabs[1]!.evaluate(() => (globalThis as unknown as { giantwebCluster: { inject: { cutLink(tab: number): void } } }).giantwebCluster.inject.cutLink(2));
      return tabs;
    },
    expect: /^VM stopped: .*(link between tab [12] and tab [12] \(vCPU [12]\) went down|tab [12] \(vCPU [12]\) left the cluster|evicted)/,
  },
  {
    // A node frame from node 1 to node 0 whose DSM message is garbage: node 0's codec refuses it.
    name: "a corrupted node frame on a link",
    when: "running",
    inject: async ({ tabs }) => (await sendRaw(tabs[1]!, 0, [1, 1, 0, 0xde, 0xad, 0xbe, 0xef]), tabs),
    expect: /^VM stopped: node 0 \(vCPU 0, tab 0\) failed: /,
  },
  {
    name: "1,000 malformed frames from a tab hosting a vCPU",
    when: "running",
    inject: async ({ tabs }) => (await sendRaw(tabs[1]!, 0, [77, 1, 2, 3], 1000), tabs),
    expect: /^VM stopped: tab 1 sent a frame tab 0 cannot use \(unknown envelope kind 77\); a lost frame would hang the VM, so it stopped/,
  },
  {
    // The AP-fault guest (served as the self-test ELF) loads vCPU 1's task register from a zero
    // GDT entry once the BSP started it: v86 panics inside tab B's node. Timed from the node's
    // own failure stamp.
    name: "an engine panic in a worker",
    when: "by-itself",
    prepare: async (ctx) => {
      const elf = readFileSync(buildApFaultGuest());
      await ctx.route(`**/${SELFTEST_URL}`, (route) => route.fulfill({ body: elf, contentType: "application/octet-stream", headers: { "Cross-Origin-Resource-Policy": "same-origin" } }));
    },
    faultTime: async ({ tabs }) => (await tabs[1]!.evaluate(() => (globalThis as unknown as { giantwebCluster: { failure(): { atMs: number } | null } }).giantwebCluster.failure()))!.atMs,
    inject: async ({ tabs }) => tabs,
    expect: /^VM stopped: node 1 \(vCPU 1, tab 1\) failed: the engine panicked at /,
  },
  {
    // A watcher hosts no node: what it sends cannot be a lost node frame, so it is dropped; and it
    // has no right to type, stop the VM or turn the knob (the creator did not allow it).
    name: "a watcher's stop, typing and knob, and 1,000 malformed frames from it",
    when: "running",
    watcher: true,
    inject: async ({ tabs, watcher }) => {
      const w = watcher!;
      await sendRaw(w, 0, [3, ...new TextEncoder().encode("reboot\n")]);
      for (const to of [0, 1, 2]) await sendRaw(w, to, control({ t: "stop", reason: "stopped by the user (on tab 3)" }));
      await sendRaw(w, 0, control({ t: "link-delay", ms: 50 }));
      await sendRaw(w, 0, [77, 1, 2, 3], 1000);
      return tabs;
    },
    after: async ({ tabs, watcher }) => {
      const problems: string[] = [];
      const log = await tabs[0]!.locator("#cluster-log").innerText();
      for (const refused of ["tab 3 watches and may not type", "tab 3 watches and may not stop the VM", "tab 3 watches and may not change the knob", "from tab 3: unknown envelope kind 77 (×1000)"])
        if (!log.includes(refused)) problems.push(`tab A's log does not say "${refused}":\n${log}`);
      for (const [i, p] of tabs.entries()) {
        const knob = await p.locator(".lv-knob-value").textContent();
        if (knob !== "off") problems.push(`tab ${"ABC"[i]}'s knob shows ${knob}, not off`);
      }
      if (!(await watcher!.locator(".lv-knob-on").isDisabled()) || !(await watcher!.locator(".lv-trace").isDisabled())) problems.push("the watcher's knob and trace button are not greyed out");
      if (await watcher!.locator("#cluster-stop").isVisible()) problems.push("the watcher shows a Stop button");
      return problems;
    },
    expect: null,
  },
];

async function startCluster(browser: Browser, url: string, fault: FaultCase): Promise<{ cluster: Cluster; gate: () => void }> {
  const ctx = await browser.newContext();
  await fault.prepare?.(ctx);
  const a = await openPage(ctx, `${url}${(await fault.start?.()) ?? ""}`);
  const tabs = [a];
  const link = await createCluster(a, 3, 1, "selftest");
  for (let i = 1; i < 3; i++) {
    const p = await openPage(ctx, link);
    tabs.push(p);
    await joinCluster(p, 1);
    await a.waitForFunction((k) => document.querySelectorAll("#cluster-roster li").length === k, i + 1, { timeout: 60_000 });
  }
  let gate = () => {};
  if (fault.when === "booting") {
    // Tab C's engine download waits until the fault is in: tab A is then booting, waiting for C.
    const held = new Promise<void>((r) => (gate = r));
    await tabs[2]!.route(ENGINE, async (route) => (await held, route.continue().catch(() => {})));
  }
  return { cluster: { ctx, tabs, watcher: null }, gate };
}

async function waitPhase(page: Page, phases: string[], what: string, timeoutMs: number): Promise<void> {
  await page.waitForFunction((ps) => ps.includes(document.querySelector("#cluster-status")?.getAttribute("data-phase") ?? ""), phases, { timeout: timeoutMs, polling: 50 }).catch(async () => {
    const s = await clusterStatus(page);
    throw new Error(`waiting for ${what}: status ${s.phase} "${s.text}"`);
  });
}

/** Runs one case on a fresh cluster (its own browser context) and closes it. */
export async function runFault(browser: Browser, url: string, fault: FaultCase): Promise<FaultRun> {
  const { cluster, gate } = await startCluster(browser, url, fault);
  const { tabs } = cluster;
  try {
    if (fault.when === "booting") {
      await waitPhase(tabs[2]!, ["fetching"], "tab C fetching its images", 120_000);
      await waitPhase(tabs[0]!, ["booting"], "tab A booting", 120_000);
    } else if (fault.when === "running") {
      // The self-test runs: its first checks have passed.
      await waitForConsole(tabs[0]!, /PASS /, "the self-test's first check on tab A", 600_000);
      if (fault.watcher) {
        // The watcher comes in by tab 0's watch link (its own token: watchers only).
        const watchLink = await tabs[0]!.locator("#cluster-watch-link").inputValue();
        if (!watchLink.includes("#watch=")) throw new Error(`tab A shows no watch link (got "${watchLink}")`);
        const w = await openPage(cluster.ctx, watchLink);
        if (!(await w.locator("#cluster-join").isHidden())) throw new Error("a watch link's page offers to join with vCPUs");
        await w.click("#cluster-watch");
        await waitPhase(w, ["running"], "the watcher showing the VM", 60_000);
        cluster.watcher = w;
      }
    }
    const at = { ms: now() };
    const remaining = await fault.inject(cluster, at);
    gate();
    let stopMsByTab: number[] = [];
    if (fault.expect) {
      for (const [i, p] of remaining.entries()) await waitPhase(p, STOPPED, `tab ${"ABC"[i]} to stop after ${fault.name}`, 60_000);
      if (fault.faultTime) at.ms = await fault.faultTime(cluster);
      const since = await Promise.all(remaining.map((p) => p.locator("#cluster-status").getAttribute("data-since-ms")));
      stopMsByTab = since.map((s) => Number(s) - at.ms);
    } else {
      // It must run on: the self-test completes on every tab.
      for (const p of remaining) await waitForConsole(p, /SUMMARY[^\n]*\n/, "the self-test's SUMMARY after the fault", 600_000);
    }
    const problems = (await fault.after?.(cluster)) ?? [];
    const status = await Promise.all(remaining.map((p) => clusterStatus(p)));
    const stopMs = stopMsByTab.length ? Math.max(...stopMsByTab) : null;
    const logs = await Promise.all(
      remaining.map(async (p) => {
        const states = await p.evaluate(() => (globalThis as unknown as { giantwebCluster: { states(): { phase: string; atMs: number; text: string }[] } }).giantwebCluster.states());
        return `${await p.locator("#cluster-log").innerText()}\n${states.map((s) => `${Math.round(s.atMs - at.ms)} ms: ${s.phase} ${s.text}`).join("\n")}`;
      }),
    );
    return { name: fault.name, stopMs, stopMsByTab, status, console: await consoleText(tabs[0]!), logs, problems };
  } finally {
    gate();
    await cluster.ctx.close();
    await fault.cleanup?.();
  }
}
