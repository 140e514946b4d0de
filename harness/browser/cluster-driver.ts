// Drives the main page's cluster panel in Chromium as a user would, plus its `giantwebCluster`
// hook (console transcript, link counters, node status); shared by the cluster e2e tests (test/runtime/web, test/ui) and the bench.

import type { BrowserContext, Page } from "playwright-core";
import type { NodeStatus } from "../../src/runtime/web/node-protocol.ts";

/** `errors`: uncaught page errors (a test expects none); `consoleErrors`: the browser console's errors, for failure messages. */
export type ClusterPage = Page & { errors: string[]; consoleErrors: string[] };

interface Hook {
  consoleText(): string;
  counters(): { framesOut: number; framesIn: number; bytesOut: number; bytesIn: number; directOut: number; directIn: number; nodeOut: number } | null;
  vmLinks(): { tab: number; path: "direct" | "relay" | null; why?: string }[];
  vmLinkPing(tab: number, count: number): Promise<number[]>;
  nodeStatus(): NodeStatus[];
}

export async function openPage(ctx: BrowserContext, url: string): Promise<ClusterPage> {
  const page = (await ctx.newPage()) as ClusterPage;
  page.errors = [];
  page.consoleErrors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  // A worker whose module fails to load says why only here.
  page.on("console", (m) => void (m.type() === "error" && page.consoleErrors.push(m.text().slice(0, 500))));
  await page.goto(url);
  return page;
}

export async function clusterStatus(page: Page): Promise<{ phase: string | null; text: string | null }> {
  const el = page.locator("#cluster-status");
  return { phase: await el.getAttribute("data-phase"), text: await el.textContent() };
}

/** Creates a cluster of `total` vCPUs with `here` on this page, booting `guest`; returns the join link. */
export async function createCluster(page: Page, total: number, here = 1, guest: "linux" | "selftest" = "linux"): Promise<string> {
  // Behind the front door's Start, the fixed cluster's form is folded away.
  await page.evaluate(() => ((document.querySelector("#cluster-fixed") as HTMLDetailsElement | null)?.setAttribute("open", "")));
  await page.selectOption("#cluster-guest", guest);
  await page.fill("#cluster-total", String(total));
  await page.fill("#cluster-here", String(here));
  await page.click("#cluster-create");
  await page.waitForFunction(() => (document.querySelector("#cluster-link") as HTMLInputElement | null)?.value.includes("#join="));
  return page.locator("#cluster-link").inputValue();
}

/** The front door's Start: an elastic VM of at most `possible` vCPUs boots on this page with `here` of them; returns the join link. */
export async function startElastic(page: Page, possible: number, here = 1): Promise<string> {
  await page.fill("#cluster-possible", String(possible));
  await page.fill("#cluster-start-here", String(here));
  await page.click("#cluster-start");
  await page.waitForFunction(() => (document.querySelector("#cluster-link") as HTMLInputElement | null)?.value.includes("#join="));
  return page.locator("#cluster-link").inputValue();
}

/** An elastic VM as this page last heard it from tab 0: the tab running each vCPU's node (null: none) and the change under way. */
export const vmHosts = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { giantwebCluster: { vmHosts(): { hosts: (number | null)[]; changing: string } | null } }).giantwebCluster.vmHosts());

export async function joinCluster(page: Page, vcpus: number): Promise<void> {
  await page.fill("#cluster-join-vcpus", String(vcpus));
  await page.click("#cluster-join");
}

export const consoleText = (page: Page) => page.evaluate(() => (globalThis as unknown as { giantwebCluster: Hook }).giantwebCluster.consoleText());
/** How this tab's node frames go to each other tab (issue 15). */
export const vmLinksOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { giantwebCluster: Hook }).giantwebCluster.vmLinks());
/** Round trips (ms) between this tab's net worker and `tab`'s on their direct VM channel, while the VM runs. */
export const vmLinkPing = (page: Page, tab: number, count: number) =>
  page.evaluate(([t, n]) => (globalThis as unknown as { giantwebCluster: Hook }).giantwebCluster.vmLinkPing(t, n), [tab, count] as const);
export const linkCounters = (page: Page) => page.evaluate(() => (globalThis as unknown as { giantwebCluster: Hook }).giantwebCluster.counters());
export const nodeStatus = (page: Page) => page.evaluate(() => (globalThis as unknown as { giantwebCluster: Hook }).giantwebCluster.nodeStatus());

/** The guest kernel's first oops or panic report in a transcript, or null (for failing fast, with the cause). */
export function kernelCrash(text: string): string | null {
  if (!/Kernel panic - not syncing/.test(text)) return null;
  // The oops' first line ("int3: 0000 [#1] SMP", "BUG: ...", a WARNING's cut line), else the panic itself.
  const first = [/\[[ \d.]+\] [^\n]*\[#1\]/, /\[[ \d.]+\] (BUG:|Oops|general protection fault|------------\[ cut here)/, /\[[ \d.]+\] Kernel panic/]
    .map((re) => text.search(re))
    .find((i) => i >= 0)!;
  return text.slice(first, first + 6000);
}

/**
 * Runs a test body on tab A; when it fails, the guest kernel's report from tab A's console is added
 * to the error (other tabs see only what came after they joined; tab A's console has all of it).
 */
export async function withKernelReport(a: ClusterPage, body: (a: ClusterPage) => Promise<void>): Promise<void> {
  try {
    await body(a);
  } catch (err) {
    const crash = a.isClosed() ? null : kernelCrash(await consoleText(a));
    if (crash) (err as Error).message += `\n--- the guest kernel's report on tab A:\n${crash}`;
    throw err;
  }
}

/** Waits until the page's console transcript matches; fails early with the status when the VM stopped or the guest kernel panicked. */
/**
 * How long a Linux boot over tabs may take to reach its shell prompt: a limit for a loaded 2-core
 * machine, not a timing check (a 2-tab boot took 16 minutes there with another boot beside it).
 */
export const LINUX_ON_TABS_MS = 1_500_000;

export async function waitForConsole(page: Page | ClusterPage, pattern: RegExp, what: string, timeoutMs = 900_000, from = 0): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await consoleText(page)).slice(from);
    if (pattern.test(text)) return text;
    const crash = kernelCrash(text);
    if (crash) throw new Error(`waiting for ${what}: the guest kernel panicked; its report:\n${crash}`);
    const s = await clusterStatus(page);
    if (Date.now() > deadline || s.phase === "error" || s.phase === "stopped")
      throw new Error(
        `waiting for ${what}: cluster status ${s.phase} "${s.text}"; console shows:\n${text.slice(-2000)}` +
          ("consoleErrors" in page && page.consoleErrors.length ? `\nthe browser console's errors:\n${page.consoleErrors.slice(-5).join("\n")}` : ""),
      );
    await page.waitForTimeout(250);
  }
}

/** Types into the page's xterm console as a user would. */
export async function typeInto(page: Page, command: string): Promise<void> {
  await page.locator(".xterm").click();
  await page.keyboard.type(command, { delay: 20 });
}

/** Waits until `page` hears from tab 0 that these vCPUs run on these tabs (null: none), with no change under way. */
export async function waitForHosts(page: Page, hosts: (number | null)[], what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const map = await vmHosts(page);
    if (map && map.changing === "" && JSON.stringify(map.hosts) === JSON.stringify(hosts)) return;
    const s = await clusterStatus(page);
    if (Date.now() > deadline || s.phase === "error" || s.phase === "stopped") throw new Error(`waiting for ${what}: hosts ${JSON.stringify(map)}; status ${s.phase} "${s.text}"`);
    await page.waitForTimeout(250);
  }
}

/** Waits until the page's cluster status is in `phase`; returns its text. */
export async function waitForPhase(page: Page, phase: string, what: string, timeoutMs: number): Promise<string> {
  await page
    .waitForFunction((want) => document.querySelector("#cluster-status")?.getAttribute("data-phase") === want, phase, { timeout: timeoutMs, polling: 250 })
    .catch(async (err: Error) => {
      const s = await clusterStatus(page);
      throw new Error(`waiting for ${what}: status ${s.phase} "${s.text}" (${err.message.split("\n")[0]})`);
    });
  return (await clusterStatus(page)).text ?? "";
}

/** The tab id the cluster gave a page (ids are handed out round-robin: a refused tab used one). */
export const tabOf = (page: Page) => page.evaluate(() => (globalThis as unknown as { giantwebCluster: { tab: number } }).giantwebCluster.tab);

