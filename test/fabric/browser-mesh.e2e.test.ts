// Browser end-to-end: the fabric lab page in Debian's Chromium, real WebRTC on loopback.
// Tabs of one browser (pages of one context share BroadcastChannel); separate Chromium
// processes through the WebSocket relay, as two machines would be.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { type RelayServer, startRelay } from "../../src/fabric/relay/server.ts";
import { launchChromium } from "../../harness/browser/browser.ts";
import { relayProxy } from "../../harness/nodejs/relay-proxy.ts";
import { startWebServer } from "../../harness/browser/web-server.ts";
import { create, join, lab, type LabPage, openLab as openLabAt, type Received, status, waitPhase, waitRoster } from "../../harness/browser/fabric-lab-driver.ts";

let server: Awaited<ReturnType<typeof startWebServer>>;
let browser: Browser;
let relay: RelayServer;

beforeAll(async () => {
  server = await startWebServer();
  browser = await launchChromium();
  relay = await startRelay();
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await relay?.close();
});

const labUrl = () => `${server.url}fabric-lab.html`;
const openLab = (ctx: BrowserContext, url = labUrl()): Promise<LabPage> => openLabAt(ctx, url);

/** Polls until `page` has received `count` data frames from `from`, and returns them. */
async function receivedFrom(page: Page, from: number, count: number): Promise<Received[]> {
  for (;;) {
    const got = (await lab(page, (l) => l.received())).filter((r) => r.from === from);
    if (got.length >= count) return got;
    await page.waitForTimeout(100);
  }
}

// The frames every pair exchanges: small, one 4 KiB page, two above the channel's message size
// limit (the 1 MiB one is chunked into 17 messages), and more after them to check the order.
const SIZES = [5, 4096, 1 << 20, 70_000, 5, 300, 1 << 20, 16];

async function exchangeAll(pages: Page[]): Promise<void> {
  const tabs = await Promise.all(pages.map((p) => lab(p, (l) => l.tab()!)));
  for (let i = 0; i < pages.length; i++)
    for (let j = 0; j < pages.length; j++) if (i !== j) await lab(pages[i]!, (l, a) => l.sendData(a[0]!, a.slice(1), 0), [tabs[j]!, ...SIZES]);
  for (let j = 0; j < pages.length; j++)
    for (let i = 0; i < pages.length; i++) {
      if (i === j) continue;
      const got = await receivedFrom(pages[j]!, tabs[i]!, SIZES.length);
      expect(got.map((r) => r.seq)).toEqual(SIZES.map((_, k) => k)); // in order, none lost or repeated
      expect(got.map((r) => r.size)).toEqual(SIZES);
      expect(got.every((r) => r.intact)).toBe(true);
    }
}

describe("tabs of one browser over BroadcastChannel signaling and WebRTC", () => {
  it("two tabs form a link and exchange binary frames intact and in order, a chunked 1 MiB frame included", async () => {
    const ctx = await browser.newContext();
    const a = await openLab(ctx);
    expect(await a.evaluate(() => crossOriginIsolated)).toBe(true);
    const link = await create(a, 2);
    expect(link).toMatch(/fabric-lab\.html#join=[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{32}$/);
    const b = await openLab(ctx, link);
    await join(b);
    expect(await lab(b, (l) => l.members())).toEqual([
      expect.objectContaining({ tab: 0, role: "host", vcpus: [0] }),
      expect.objectContaining({ tab: 1, role: "compute", vcpus: [1] }),
    ]);
    await waitRoster(a, [0, 1]);
    expect(await a.locator("#coverage").textContent()).toMatch(/all 2 vCPU\(s\) have a tab/);
    await exchangeAll([a, b]);
    // The roster table shows the link with a measured RTT (pings run every second).
    await a.waitForFunction(() => /\d+\.\d+ ms/.test(document.querySelector('#roster tr[data-tab="1"]')?.textContent ?? ""));
    // The bench's second yardstick: round trips while a worker of tab A spins through all of them.
    const spun = await lab(a, (l) => l.rttsWhileSpinning(1, 20, 4096));
    expect(spun.rtts).toHaveLength(20);
    expect(spun.rtts.every((ms) => ms > 0)).toBe(true);
    expect(spun.spunMs).toBeGreaterThanOrEqual(spun.rtts.reduce((x, y) => x + y, 0));
    expect([...a.errors, ...b.errors]).toEqual([]);
    await ctx.close();
  });

  it("three tabs form a full mesh; closing one is seen by the others, and tab 0's leaving ends the cluster", async () => {
    const ctx = await browser.newContext();
    const a = await openLab(ctx);
    const link = await create(a, 3);
    const b = await openLab(ctx, link);
    await join(b);
    const c = await openLab(ctx, link);
    await join(c, "compute", 1);
    for (const p of [a, b, c]) await waitRoster(p, [0, 1, 2]);
    await exchangeAll([a, b, c]);

    await c.close();
    for (const p of [a, b]) await waitRoster(p, [0, 1]);
    // tab 2 hosted vCPU 2: the others say the VM must stop.
    expect((await status(a)).text).toMatch(/tab 2 hosted vCPU\(s\) 2 and left/);
    expect(await b.locator("#log").textContent()).toMatch(/tab 2 \(compute, vCPUs 2\) left/);

    await a.close();
    expect(await waitPhase(b, ["ended"])).toMatch(/cluster over: tab 0 left/);
    await ctx.close();
  });

  it("notices a crashed tab (no goodbye, no closed connection) by its silence", async () => {
    const ctx = await browser.newContext();
    const a = await openLab(ctx);
    const b = await openLab(ctx, await create(a, 2));
    await join(b);
    const cdp = await ctx.newCDPSession(b);
    void cdp.send("Page.crash").catch(() => {}); // the renderer dies: nothing is closed cleanly
    await waitRoster(a, [0]);
    expect(await a.locator("#log").textContent()).toMatch(/tab 1 has been silent for \d+ ms \(limit 5000 ms\): its tab crashed/);
    await ctx.close();
  });

  it("gives a bad join link its error", async () => {
    const ctx = await browser.newContext();
    const malformed = await openLab(ctx, `${labUrl()}#join=abc.def`);
    expect(await waitPhase(malformed, ["error"])).toMatch(/malformed-link: malformed join link: cluster id "abc"/);
    expect(await malformed.locator("#join").isDisabled()).toBe(true);

    const host = await openLab(ctx);
    const link = await create(host, 2);
    const wrongToken = link.replace(/\.[A-Za-z0-9_-]{32}$/, `.${"A".repeat(32)}`);
    const w = await openLab(ctx, wrongToken);
    await w.click("#join");
    expect(await waitPhase(w, ["error"])).toMatch(/wrong-token/);

    const full = await openLab(ctx, link);
    await full.fill("#join-vcpus", "2");
    await full.click("#join");
    expect(await waitPhase(full, ["error"])).toMatch(/cluster-full: .*asks for 2 vCPU\(s\) but only 1/);

    const otherVersion = await openLab(ctx, link.replace("fabric-lab.html#", "fabric-lab.html?protocol=2#"));
    await otherVersion.click("#join");
    expect(await waitPhase(otherVersion, ["error"])).toMatch(/version-mismatch: .*VM protocol v1, the joining tab speaks .*VM protocol v2/);

    const unknown = await openLab(ctx, link.replace(/#join=[A-Za-z0-9_-]{12}/, `#join=${"B".repeat(12)}`));
    await unknown.click("#join");
    expect(await waitPhase(unknown, ["error"])).toMatch(/unknown-cluster: no tab 0 answered/);
    await waitRoster(host, [0]); // none of them got in
    await ctx.close();
  });
});

describe("two Chromium processes through the WebSocket relay", () => {
  it("join by a link carrying the relay, exchange frames, and see each other leave", async () => {
    const other = await launchChromium();
    try {
      const a = await openLab(await browser.newContext());
      const link = await create(a, 2, relay.url);
      expect(link).toContain(`&relay=${encodeURIComponent(relay.url)}`);
      const b = await openLab(await other.newContext(), link);
      await join(b);
      expect(relay.stats()).toEqual({ clusters: 1, peers: 2 });
      await exchangeAll([a, b]);
      await other.close(); // the whole second "machine" goes away
      await waitRoster(a, [0]);
      expect((await status(a)).text).toMatch(/tab 1 hosted vCPU\(s\) 1 and left/);
      await a.context().close();
    } finally {
      await other.close();
    }
  });
});

describe("the relay only introduces tabs", () => {
  it("the relay stopped mid-run: the tabs' links stay up and frames still flow; a new join fails with a clear message", async () => {
    const own = await startRelay();
    const proxy = await relayProxy(own.port);
    try {
      const a = await openLab(await browser.newContext());
      const link = await create(a, 2, proxy.url);
      const b = await openLab(await browser.newContext(), link);
      await join(b);
      await waitRoster(a, [0, 1]);
      await exchangeAll([a, b]);

      // First tab 0's own relay connection drops: the relay tells tab 1 "peer gone" and closes the cluster id.
      proxy.cut(0);
      for (const p of [a, b]) await p.waitForFunction(() => /signaling lost|ended:/.test(document.querySelector("#log")?.textContent ?? ""));
      // Then the relay itself stops.
      await own.close();
      await proxy.close();

      // Both tabs are still members of the same cluster, and frames still flow both ways, in order and intact.
      for (const p of [a, b]) {
        expect((await status(p)).phase).toBe("member");
        expect(await lab(p, (l) => l.members()?.map((m) => m.tab))).toEqual([0, 1]);
        expect(await p.locator("#log").textContent()).toMatch(/signaling lost \(links stay up, nobody new can join\)/);
        expect(await lab(p, (l) => l.signalingLost())).toMatch(/^signaling ended \(.*relay.*\); the links stay up/);
      }
      expect((await status(b)).text).toMatch(/signaling lost: the links stay up, nobody new can join/);
      const sizes = [5, 4096, 70_000, 16];
      await lab(a, (l, s) => l.sendData(1, s, 100), sizes);
      await lab(b, (l, s) => l.sendData(0, s, 100), sizes);
      for (const [p, from] of [[b, 0], [a, 1]] as const) {
        for (;;) {
          const got = (await lab(p, (l) => l.received())).filter((r) => r.from === from && r.seq >= 100);
          if (got.length >= sizes.length) {
            expect(got.map((r) => [r.seq, r.size, r.intact])).toEqual(sizes.map((size, i) => [100 + i, size, true]));
            break;
          }
          await p.waitForTimeout(100);
        }
      }

      // A new tab cannot join: nothing introduces it any more, and it says so.
      const c = await openLab(await browser.newContext(), link);
      await c.click("#join");
      expect(await waitPhase(c, ["error"])).toMatch(/joining failed: relay: cannot reach the relay ws:\/\/127\.0\.0\.1:\d+\/ .*no new tab can join through it \(a running cluster keeps its links without the relay\)/);
      expect(await lab(a, (l) => l.members()?.map((m) => m.tab))).toEqual([0, 1]);
      expect([...a.errors, ...b.errors]).toEqual([]);
      for (const p of [a, b, c]) await p.context().close();
    } finally {
      await proxy.close();
      await own.close();
    }
  });
});
