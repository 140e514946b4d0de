// The product: two tabs of one browser form a cluster over real WebRTC (loopback), vCPU 0 in tab A
// and vCPU 1 in tab B, and boot one Linux guest whose two CPUs live in the two tabs. A command
// typed in tab B's console runs on the guest; its output shows in both tabs. Closing tab B stops
// the VM on tab A with a clear message. A bad join link gets its error.

import { expect, it } from "vitest";
import type { Page } from "playwright-core";
import { launchChromium } from "../../../harness/browser/browser.ts";
import { useBrowserSession } from "../../../harness/browser/browser-session.ts";
import { type ClusterPage, clusterStatus, consoleText, createCluster, LINUX_ON_TABS_MS, joinCluster, kernelCrash, linkCounters, openPage, vmLinksOf, waitForConsole, withKernelReport } from "../../../harness/browser/cluster-driver.ts";

// The shell writes a cursor-position query (ESC [6n) after its prompt, so nothing is anchored at the end.
const PROMPT = /giantweb:\/root# /;

const session = useBrowserSession();

// What the xterm pane shows, row by row (its DOM renderer draws spaces as no-break spaces).
const paneText = async (page: Page) =>
  (await page.evaluate(() => (document.querySelector(".xterm-rows") as HTMLElement | null)?.innerText ?? "")).replace(/\u00a0/g, " ");

/** Waits until the xterm pane itself shows `pattern` (short lines only: the pane wraps long ones). */
async function waitForPane(page: Page, pattern: RegExp, what: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(await paneText(page))) {
    const crash = kernelCrash(await consoleText(page));
    if (crash) throw new Error(`waiting for ${what} in the pane: the guest kernel panicked; its report:\n${crash}`);
    const s = await clusterStatus(page);
    if (Date.now() > deadline || s.phase === "error") throw new Error(`waiting for ${what} in the pane: status ${s.phase} "${s.text}"\n${(await paneText(page)).slice(-1500)}`);
    await page.waitForTimeout(250);
  }
}

async function typeInto(page: Page, command: string): Promise<void> {
  await page.locator(".xterm").click();
  await page.keyboard.type(command, { delay: 20 });
}

it("boots Linux with vCPU 0 in tab A and vCPU 1 in tab B; tab B's command runs and shows in both; a watcher comes and goes; closing B stops the VM on A", async () => {
  await withKernelReport(await openPage(session.context, session.url), twoTabs);
  // A limit for a loaded 2-core machine (two boots side by side took over 10 minutes), not a timing check.
}, 2_400_000);

async function twoTabs(a: ClusterPage): Promise<void> {
  expect(await a.evaluate(() => crossOriginIsolated)).toBe(true);
  const link = await createCluster(a, 2, 1);
  expect((await clusterStatus(a)).text).toMatch(/Waiting for tabs to host vCPU 1/);

  const b = await openPage(session.context, link);
  await joinCluster(b, 1);

  // Both tabs list both members with their slices.
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.querySelectorAll("#cluster-roster li").length === 2);
    const roster = await p.locator("#cluster-roster").innerText();
    expect(roster).toMatch(/tab 0.*host.*vCPUs 0/);
    expect(roster).toMatch(/tab 1.*compute.*vCPUs 1/);
  }

  // The slices cover both vCPUs, so tab 0 boots by itself; the console is node 0's, on both tabs.
  await waitForConsole(a, PROMPT, "the shell prompt on tab A", LINUX_ON_TABS_MS);
  await waitForConsole(b, PROMPT, "the shell prompt on tab B");
  // (Not /init's banner: lines the two CPUs write can come out of order, see the issue note on
  // forwarded UART writes being applied after later DSM traffic from the same node.)
  expect(await consoleText(a)).toMatch(/smp: Brought up 1 node, 2 CPUs/);
  expect((await clusterStatus(a)).phase).toBe("running");
  expect((await clusterStatus(b)).phase).toBe("running");

  // Typed in tab B, run by the guest (whose UART is on tab A), shown in both. Neither answer is typed.
  await typeInto(b, "echo cpus=$(nproc) sum=$((17*23))\n");
  const want = /^cpus=2 sum=391\s*$/m;
  await waitForPane(b, want, "the command's output on tab B");
  await waitForPane(a, want, "the command's output on tab A", 60_000);

  // Both directions carried real VM traffic, all of it on the net workers' own channel (issue 15).
  const countersA = (await linkCounters(a))!;
  expect(countersA.framesOut).toBeGreaterThan(100);
  expect(countersA.framesIn).toBeGreaterThan(100);
  expect([countersA.directOut, countersA.directIn]).toEqual([countersA.framesOut, countersA.framesIn]);
  expect(countersA.nodeOut).toBe(countersA.framesOut); // node 0 sent every frame on its own channel
  expect(await vmLinksOf(a)).toEqual([{ tab: 1, path: "direct" }]);
  expect(await a.locator("#cluster-roster li[data-tab='1']").getAttribute("data-vm-link")).toBe("direct");

  // A watcher joins the running VM, sees the console, leaves; the VM goes on.
  const w = await openPage(session.context, link);
  await w.click("#cluster-watch");
  await w.waitForSelector('#cluster-status[data-phase="running"]', { timeout: 60_000 });
  await typeInto(a, "echo watched=$((6*7))\n");
  await waitForConsole(w, /^watched=42\s*$/m, "the command's output on the watcher", 300_000);
  await w.close();
  await a.waitForFunction(() => document.querySelectorAll("#cluster-roster li").length === 2, undefined, { timeout: 30_000 });
  await typeInto(b, "echo still=$((5*5))\n");
  await waitForPane(a, /^still=25\s*$/m, "output after the watcher left");
  expect((await clusterStatus(a)).phase).toBe("running");

  // Tab B (vCPU 1) goes: tab A says so and the VM stops there, no hang.
  await b.close();
  await a.waitForFunction(() => document.querySelector("#cluster-status")?.getAttribute("data-phase") === "error", undefined, { timeout: 30_000 });
  expect((await clusterStatus(a)).text).toMatch(/tab 1 \(vCPU 1\) left the cluster.*the VM stopped/);
  await a.waitForFunction(() => document.querySelectorAll("#cluster-roster li").length === 1, undefined, { timeout: 10_000 });
  expect([...a.errors, ...b.errors, ...w.errors]).toEqual([]);
  await a.close();
}

it("a join link with a wrong token or an unknown cluster gets its error", async () => {
  const a = await openPage(session.context, session.url);
  const link = await createCluster(a, 2, 1);
  const [base, frag] = link.split("#join=") as [string, string];
  const [cluster, token] = frag.split(".") as [string, string];

  const b = await session.context.newPage();
  const badToken = `${base}#join=${cluster}.${token.slice(0, -2)}${token.endsWith("AA") ? "BB" : "AA"}`;
  await b.goto(badToken);
  await b.click("#cluster-join");
  await b.waitForSelector('#cluster-status[data-phase="error"]', { timeout: 60_000 });
  expect((await clusterStatus(b)).text).toMatch(/Joining the cluster failed \(wrong-token\)/);

  await b.goto("about:blank");
  await b.goto(`${base}#join=not-a-cluster`);
  await b.click("#cluster-join");
  await b.waitForSelector('#cluster-status[data-phase="error"]', { timeout: 60_000 });
  expect((await clusterStatus(b)).text).toMatch(/Joining the cluster failed \(malformed-link\)/);

  // The failed joins leave the cluster running: tab 0 still waits for vCPU 1.
  expect((await clusterStatus(a)).text).toMatch(/Waiting for tabs to host vCPU 1/);
  await a.close();
  await b.close();
});

it("tabs in two separate browsers (as on two machines) join through the page server's relay", async () => {
  const other = await launchChromium(); // its own process: BroadcastChannel cannot reach it
  try {
    const a = await openPage(session.context, session.url);
    await a.check("#cluster-relay");
    const link = await createCluster(a, 2, 1);
    expect(link).toMatch(/#join=[^&]+&relay=ws%3A%2F%2F127\.0\.0\.1%3A\d+%2Ffabric-relay/);
    const b = await openPage(await other.newContext(), link);
    await joinCluster(b, 1);
    for (const p of [a, b]) {
      await p.waitForFunction(() => document.querySelectorAll("#cluster-roster li").length === 2, undefined, { timeout: 60_000 });
      expect(await p.locator("#cluster-roster").innerText()).toMatch(/tab 1.*compute.*vCPUs 1/);
    }
    // The slices cover the VM, so tab 0 starts booting it with tab B (whose link is WebRTC, not the relay).
    await a.waitForFunction(() => ["booting", "running"].includes(document.querySelector("#cluster-status")?.getAttribute("data-phase") ?? ""), undefined, { timeout: 120_000 });
    await b.waitForFunction(() => ["booting", "running"].includes(document.querySelector("#cluster-status")?.getAttribute("data-phase") ?? ""), undefined, { timeout: 300_000 });
    expect([...a.errors, ...b.errors]).toEqual([]);
    await b.close();
    await a.waitForSelector('#cluster-status[data-phase="error"]', { timeout: 30_000 });
    expect((await clusterStatus(a)).text).toMatch(/tab 1 \(vCPU 1\) left the cluster/);
    await a.close();
  } finally {
    await other.close();
  }
});
