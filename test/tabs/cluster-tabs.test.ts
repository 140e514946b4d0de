// The product: two tabs of one browser form a cluster over real WebRTC (loopback), vCPU 0 in tab A
// and vCPU 1 in tab B, and boot one Linux guest whose two CPUs live in the two tabs. A command
// typed in tab B's console runs on the guest; its output shows in both tabs. Closing tab B stops
// the VM on tab A with a clear message. A bad join link gets its error.

import { afterAll, beforeAll, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/platform/firmware/bios-build.ts";
import { launchChromium } from "../support/browser.ts";
import { startWebServer } from "../support/web-server.ts";

let browser: Browser;
let ctx: BrowserContext;
let server: Awaited<ReturnType<typeof startWebServer>>;

beforeAll(async () => {
  ensureGuestImages();
  buildFirmware();
  await ensureInstrumentedWasm();
  server = await startWebServer();
  browser = await launchChromium();
  // Tabs of one browser share a context (BroadcastChannel signaling works only within one).
  ctx = await browser.newContext();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const paneText = async (page: Page) =>
  (await page.evaluate(() => (document.querySelector(".xterm-rows") as HTMLElement | null)?.innerText ?? "")).replace(/\u00a0/g, " ");

const clusterStatus = async (page: Page) => ({
  phase: await page.locator("#cluster-status").getAttribute("data-phase"),
  text: await page.locator("#cluster-status").textContent(),
});

async function waitForPane(page: Page, pattern: RegExp, what: string, timeoutMs = 900_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await paneText(page);
    if (pattern.test(text)) return text;
    const s = await clusterStatus(page);
    if (Date.now() > deadline || s.phase === "error")
      throw new Error(`waiting for ${what}: cluster status ${s.phase} "${s.text}"; console shows:\n${text.slice(-2000)}`);
    await page.waitForTimeout(500);
  }
}

/** Types a command into a tab's console (xterm) and waits for a marker its output must contain. */
async function typeInto(page: Page, command: string): Promise<void> {
  await page.locator(".xterm").click();
  await page.keyboard.type(command, { delay: 20 });
}

it("boots Linux with vCPU 0 in tab A and vCPU 1 in tab B; tab B's command runs and shows in both; closing B stops the VM on A", async () => {
  const a = await ctx.newPage();
  const errorsA: string[] = [];
  a.on("pageerror", (e) => errorsA.push(e.message));
  await a.goto(server.url);
  expect(await a.evaluate(() => crossOriginIsolated)).toBe(true);
  await a.fill("#cluster-total", "2");
  await a.fill("#cluster-here", "1");
  await a.click("#cluster-create");
  await a.waitForFunction(() => (document.querySelector("#cluster-link") as HTMLInputElement | null)?.value.includes("#join="));
  const link = await a.locator("#cluster-link").inputValue();
  expect((await clusterStatus(a)).text).toMatch(/Waiting for tabs to host vCPU 1/);

  const b = await ctx.newPage();
  const errorsB: string[] = [];
  b.on("pageerror", (e) => errorsB.push(e.message));
  await b.goto(link);
  await b.fill("#cluster-join-vcpus", "1");
  await b.click("#cluster-join");

  // Both tabs list both members with their slices.
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.querySelectorAll("#cluster-roster li").length === 2);
    const roster = await p.locator("#cluster-roster").innerText();
    expect(roster).toMatch(/tab 0.*host.*vCPUs 0/);
    expect(roster).toMatch(/tab 1.*compute.*vCPUs 1/);
  }

  // The slices cover both vCPUs, so node 0 boots by itself; the console is node 0's, on both tabs.
  await waitForPane(a, /giantweb:\/root# *$/m, "the shell prompt on tab A");
  await waitForPane(b, /giantweb:\/root# *$/m, "the shell prompt on tab B");
  const transcript = await a.evaluate(() => (globalThis as unknown as { giantwebCluster: { consoleText(): string } }).giantwebCluster.consoleText());
  expect(transcript).toMatch(/giantweb guest up: Linux 6\.1\.\S+, 2 CPU\(s\) online/);
  expect((await clusterStatus(a)).phase).toBe("running");
  expect((await clusterStatus(b)).phase).toBe("running");

  // Typed in tab B, run by the guest (whose UART is on tab A), shown in both. Neither answer is typed.
  await typeInto(b, "echo cpus=$(nproc) sum=$((17*23))\n");
  const want = /^cpus=2 sum=391\s*$/m;
  await waitForPane(b, want, "the command's output on tab B", 300_000);
  await waitForPane(a, want, "the command's output on tab A", 60_000);

  // Both directions of the bridge carried real VM traffic over the data channels.
  const countersA = await a.evaluate(() => (globalThis as unknown as { giantwebCluster: { counters(): { framesOut: number; framesIn: number } } }).giantwebCluster.counters());
  expect(countersA.framesOut).toBeGreaterThan(100);
  expect(countersA.framesIn).toBeGreaterThan(100);

  // Tab B (vCPU 1) goes: tab A says so and the VM stops there, no hang.
  await b.close();
  await a.waitForFunction(() => document.querySelector("#cluster-status")?.getAttribute("data-phase") === "error", undefined, { timeout: 30_000 });
  expect((await clusterStatus(a)).text).toMatch(/tab 1 \(vCPU 1\) left the cluster.*the VM stopped/);
  await a.waitForFunction(() => document.querySelectorAll("#cluster-roster li").length === 1, undefined, { timeout: 10_000 });
  expect(errorsA).toEqual([]);
  expect(errorsB).toEqual([]);
  await a.close();
});

it("a join link with a wrong token or an unknown cluster gets its error", async () => {
  const a = await ctx.newPage();
  await a.goto(server.url);
  await a.click("#cluster-create");
  await a.waitForFunction(() => (document.querySelector("#cluster-link") as HTMLInputElement | null)?.value.includes("#join="));
  const link = await a.locator("#cluster-link").inputValue();
  const [base, frag] = link.split("#join=") as [string, string];
  const [cluster, token] = frag.split(".") as [string, string];

  const b = await ctx.newPage();
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

  // The failed joins leave the cluster running: node 0 still waits for vCPU 1.
  expect((await clusterStatus(a)).text).toMatch(/Waiting for tabs to host vCPU 1/);
  await a.close();
  await b.close();
});
