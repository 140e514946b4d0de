// The first `npm start` of a fresh clone: Vite has no dependency cache, and a dependency it first
// meets while a page runs (v86 is imported only by the VM workers) makes it re-optimize and reload
// every page ("optimized dependencies changed. reloading"), which loses a booting VM (issue 11).
// Here the dev server starts with an empty cache directory, every page is opened, and the main
// page boots VMs that load every worker (a node worker, the one-vCPU worker, the fabric's timer
// worker); no page may reload, and the server must not say it reloads.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { createLogger, createServer, type ViteDevServer } from "vite";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../../src/guests/selftest/build.ts";
import { REPO_ROOT } from "../../../src/guests/images.ts";
import { launchChromium } from "../../../harness/browser/browser.ts";
import { prepareLinuxVm } from "../../../harness/browser/browser-session.ts";
import { clusterStatus, consoleText, createCluster, openPage } from "../../../harness/browser/cluster-driver.ts";

let browser: Browser;
let server: ViteDevServer;
let url: string;
const cacheDir = mkdtempSync(join(tmpdir(), "giantweb-vite-deps-"));
const log: string[] = [];

beforeAll(async () => {
  await prepareLinuxVm();
  await buildSelftest();
  await ensureInstrumentedWasm();
  const logger = createLogger("info");
  for (const level of ["info", "warn", "error"] as const) {
    const print = logger[level].bind(logger);
    logger[level] = (msg, opts) => {
      log.push(`${level}: ${msg}`);
      if (level !== "info") print(msg, opts);
    };
  }
  server = await createServer({
    root: REPO_ROOT,
    configFile: `${REPO_ROOT}/vite.config.ts`,
    // A fresh clone's state: nothing optimized yet. (Hot reload stays on: it is what reloads the page.)
    cacheDir,
    customLogger: logger,
    // No file watching: files others edit in this checkout must not reload the page either.
    server: { port: 0, host: "127.0.0.1", strictPort: false, watch: null },
  });
  await server.listen();
  const address = server.httpServer!.address();
  if (!address || typeof address === "string") throw new Error("vite did not report a TCP address");
  url = `http://127.0.0.1:${address.port}/`;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

/** Marks the page's window and counts its main-frame navigations (a reload is one more). */
async function watched(page: Page, at: string): Promise<{ page: Page; loads: () => number }> {
  let loads = 0;
  page.on("framenavigated", (f) => void (f === page.mainFrame() && loads++));
  await page.goto(at);
  await page.evaluate(() => ((globalThis as { firstRunMarker?: string }).firstRunMarker = "kept"));
  return { page, loads: () => loads };
}

/** Polls `cond` in the page until it holds; stops early when the page reloaded (the failure this test is about). */
async function until(p: { page: Page; loads: () => number }, cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (p.loads() === 1 && !(await p.page.evaluate(cond).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`no ${what} within 300 s`);
    await p.page.waitForTimeout(200);
  }
}

it("loads every page and worker and boots VMs on a cold dependency cache without reloading any page", async () => {
  const ctx = await browser.newContext();
  const pages: { page: Page; loads: () => number }[] = [];
  // The cluster page: a 1-vCPU self-test cluster boots at once (a node worker, the fabric's timer worker).
  const cluster = await watched(await openPage(ctx, "about:blank"), url);
  pages.push(cluster);
  await createCluster(cluster.page, 1, 1, "selftest");
  await until(cluster, () => !!(globalThis as unknown as { giantwebCluster?: { consoleText(): string } }).giantwebCluster?.consoleText().includes("SELFTEST BEGIN"), "SELFTEST BEGIN");
  // The one-tab page: Boot starts the one-vCPU worker (stock v86); stopped once the kernel prints.
  const one = await watched(await openPage(ctx, "about:blank"), `${url}?stock`);
  pages.push(one);
  await one.page.click("#boot");
  await until(one, () => ((document.querySelector(".xterm-rows") as HTMLElement | null)?.innerText ?? "").trim().length > 0, "console output");
  if (one.loads() === 1) await one.page.click("#stop");
  // The other pages.
  for (const lab of ["view-lab.html", "fabric-lab.html"]) pages.push(await watched(await openPage(ctx, "about:blank"), url + lab));
  // Any optimization still running has decided whether to reload once its discoveries settle.
  const optimizer = server.environments.client.depsOptimizer;
  await Promise.all(Object.values(optimizer?.metadata.discovered ?? {}).map((d) => d.processing));
  await cluster.page.waitForTimeout(1000);

  const newDeps = log.filter((l) => /new dependencies optimized|optimized dependencies changed/.test(l));
  console.log(log.filter((l) => !/page reload|hmr update/.test(l)).join("\n"));
  console.log(`dependency optimizer said: ${newDeps.length ? newDeps.join(" | ") : "nothing after its start"}; optimized: ${Object.keys(optimizer?.metadata.optimized ?? {}).join(", ")}`);
  expect(log.filter((l) => /reloading/.test(l))).toEqual([]);
  // Stronger: the first optimization already had every dependency (none was met late, which may
  // reload or not depending on chunk hashes).
  expect(log.filter((l) => /dependenc(y|ies) optimized:/.test(l))).toEqual([]);
  for (const p of pages) {
    expect(p.loads(), p.page.url()).toBe(1);
    expect(await p.page.evaluate(() => (globalThis as { firstRunMarker?: string }).firstRunMarker), p.page.url()).toBe("kept");
  }
  // The cluster's VM is still the one that booted (not a fresh page waiting to create a cluster).
  expect((await clusterStatus(cluster.page)).phase).toBe("running");
  expect(await consoleText(cluster.page)).toContain("SELFTEST BEGIN");
  expect(pages.flatMap((p) => (p.page as Page & { errors: string[] }).errors)).toEqual([]);
  await ctx.close();
}, 900_000);
