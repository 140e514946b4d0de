// The live view in Chromium: the lab page (view-lab.html) mounts the panel and feeds it a scripted
// cluster of real protocol-core nodes. Checks the page map, the plots, the hover, the latency
// knob's event, the trace download, and saves a screenshot for reviewers.

import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { REPO_ROOT } from "../../../src/guests/images.ts";
import { BACKGROUND, cellColor, parseHex } from "../../../src/ui/view/colors.ts";
import { LAB_PAGES } from "../../../src/ui/labs/view/scenario.ts";
import type { ChromeTrace } from "../../../src/ui/view/model/trace.ts";
import { launchChromium } from "../../../harness/browser/browser.ts";
import { startWebServer } from "../../../harness/browser/web-server.ts";

let browser: Browser;
let server: Awaited<ReturnType<typeof startWebServer>>;

beforeAll(async () => {
  server = await startWebServer();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

// A hand-made System.map naming the lab's timer-tick page.
const jiffiesVa = (0xc0000000 + LAB_PAGES.jiffies * 4096).toString(16);
const SYMBOLS = `c1000000 T _text\n${jiffiesVa} D jiffies_64\n${jiffiesVa} D jiffies\n${(parseInt(jiffiesVa, 16) + 4096).toString(16)} d after_jiffies\nc1d20000 d lab_runqueue_lock\nc1d21000 d after_lock\nc1ee6000 B _end\n`;

type Lab = { view: import("../../../src/ui/view/panel.ts").LiveViewHandle; events: unknown[] };
declare const lab: Lab;

async function labValue<T>(page: Page, fn: string): Promise<T> {
  return page.evaluate(fn) as Promise<T>;
}

async function waitFor(page: Page, fn: string, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(fn))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(200);
  }
}

/** RGB of the canvas pixel at the centre (or the top-left corner) of the page's cell (CSS px = device px at scale 1). */
async function cellPixel(page: Page, pageNo: number, at: "centre" | "corner" = "centre"): Promise<[number, number, number]> {
  return page.evaluate(([p, at]) => {
    const canvas = document.querySelector(".lv-pagemap-canvas") as HTMLCanvasElement;
    const zoom = Number((document.querySelector(".lv-zoom") as HTMLSelectElement).value);
    const cell = Math.floor(p / zoom);
    const off = at === "centre" ? 3 : 0;
    const x = (cell % 64) * 7 + off;
    const y = Math.floor(cell / 64) * 7 + off;
    const d = canvas.getContext("2d")!.getImageData(x, y, 1, 1).data;
    return [d[0]!, d[1]!, d[2]!] as [number, number, number];
  }, [pageNo, at] as const);
}

it("shows the cluster live, emits the knob's event, exports a trace and is captured for review", async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 2100 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.route((url) => url.pathname === "/lab-symbols.map", (route) => route.fulfill({ status: 200, contentType: "text/plain", body: SYMBOLS }));
  await page.goto(`${server.url}view-lab.html?speed=2&symbols=/lab-symbols.map`);
  await page.waitForSelector(".lv-panel .lv-pagemap-canvas");

  // 1. The page map: from 20 s (script time) the last CPU, on node 2, writes a 1 MiB buffer.
  await waitFor(page, `lab.view.model.pageMap.ownerOf(${LAB_PAGES.buffer[1] - 1}) === 2`, "the buffer's pages to be owned by node 2", 120_000);
  await page.waitForTimeout(600); // a frame or two
  const zoom = Number(await page.locator(".lv-zoom").inputValue());
  expect(zoom).toBe(16); // 32768 pages fit 40 rows of 64 cells at 16 pages a cell
  const bufferCell = await cellPixel(page, LAB_PAGES.buffer[0] + 64);
  expect(bufferCell).toEqual(cellColor(2, 1)); // node 2's colour, modified: bright
  const untouched = await cellPixel(page, 0x7f00); // never touched: node 0, modified
  expect(untouched).toEqual(cellColor(0, 1));
  // The lab's tab is node 0: the buffer is invalid here, so its cells are smaller squares.
  expect(await cellPixel(page, LAB_PAGES.buffer[0] + 64, "corner")).toEqual(parseHex(BACKGROUND));
  expect(await cellPixel(page, 0x7f00, "corner")).toEqual(cellColor(0, 1));
  const legend = await page.locator(".lv-legend").innerText();
  expect(legend).toMatch(/node 2: \d+ pages/);

  // Zoom in to one page per cell and hover over a page of the buffer: the tooltip names it.
  await page.selectOption(".lv-zoom", "1");
  const target = LAB_PAGES.buffer[0] + 3;
  await page.locator(".lv-pagemap-scroll").evaluate((el, y) => (el.scrollTop = y - 40), Math.floor(target / 64) * 7);
  const box = (await page.locator(".lv-pagemap-canvas").boundingBox())!;
  await page.mouse.move(box.x + (target % 64) * 7 + 3, box.y + Math.floor(target / 64) * 7 + 3);
  const tip = await page.locator(".lv-tooltip").innerText();
  expect(tip).toContain(`page 0x${target.toString(16)}`);
  expect(tip).toContain("owner: node 2 (modified)");
  expect(tip).toContain("this tab (node 0): invalid here");
  // ...and the timer tick's page bounces between nodes, named by the kernel symbols.
  await page.mouse.move(box.x - 50, box.y - 50);
  await waitFor(page, `document.querySelector('.lv-hot[data-page="${LAB_PAGES.jiffies}"] .lv-sym')?.textContent.includes("jiffies")`, "jiffies in the hot pages");
  await page.selectOption(".lv-zoom", "16");

  // 2. The plots: uPlot drew the fault rates (non-zero data, and the series colour on the canvas).
  const plots = await page.locator(".lv-plot canvas").count();
  expect(plots).toBe(4);
  const faultData = await labValue<(number | null)[][]>(page, "lab.view.model.series.data()");
  expect(Math.max(...(faultData[2] as number[]).filter((v) => v !== null))).toBeGreaterThan(0);
  const writeColour = parseHex("#f5a524");
  const colourPixels = await page.locator('.lv-plot[data-plot="readFaults,writeFaults"] canvas').evaluate((c: HTMLCanvasElement, rgb) => {
    const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i]! - rgb[0]!) < 12 && Math.abs(d[i + 1]! - rgb[1]!) < 12 && Math.abs(d[i + 2]! - rgb[2]!) < 12) n++;
    return n;
  }, writeColour);
  expect(colourPixels).toBeGreaterThan(20);

  // 3. The latency knob emits its typed event (and the lab's stand-in fabric applies it).
  await page.locator(".lv-knob-on").check();
  await page.locator(".lv-knob-range").fill("30");
  const events = await labValue<{ kind: string; ms?: number }[]>(page, "lab.events");
  expect(events.filter((e) => e.kind === "set-link-delay")).toEqual([
    { kind: "set-link-delay", ms: 10 },
    { kind: "set-link-delay", ms: 30 },
  ]);
  expect(await page.locator(".lv-knob-value").innerText()).toBe("30 ms");
  await waitFor(page, `(lab.view.model.rtt.latest("0-1") ?? 0) > 40`, "the link RTT plot to show the added delay");

  // 4. Trace export: a download that parses, with the node and vCPU tracks and DSM/IPI events.
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 30_000 }), page.click(".lv-trace")]);
  expect(download.suggestedFilename()).toMatch(/^giantweb-trace-.*\.json$/);
  const trace = JSON.parse(readFileSync((await download.path())!, "utf8")) as ChromeTrace;
  const names = trace.traceEvents.flatMap((e) => (e.ph === "M" && (e.name === "process_name" || e.name === "thread_name") ? [e.args.name] : []));
  expect(names).toEqual(expect.arrayContaining(["node 0 (devices)", "node 1", "node 2", "vCPU 0", "vCPU 1", "vCPU 2", "vCPU 3"]));
  const kinds = new Set(trace.traceEvents.filter((e) => e.ph === "X" || e.ph === "i").map((e) => e.name.split(" ")[0]));
  expect([...kinds]).toEqual(expect.arrayContaining(["read", "write", "page", "IPI", "port-read"]));
  expect(trace.traceEvents.some((e) => e.ph === "X" && e.name.endsWith("fault") && e.dur >= 55_000)).toBe(true); // 1 ms + 2 × 30 ms
  expect(trace.traceEvents.filter((e) => e.ph === "s").length).toBeGreaterThan(0); // page arrows into faults
  expect(await labValue<unknown[]>(page, "lab.events")).toEqual(expect.arrayContaining([{ kind: "trace", recording: true }, { kind: "trace", recording: false }]));

  // Cost of one full redraw (reported, not asserted: the machine is shared).
  const drawMs = await page.evaluate(() => {
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      lab.view.model.pageMap!.generation++; // force the page map to redraw too
      lab.view.renderNow();
    }
    return (performance.now() - t0) / 20;
  });
  console.log(`live view: one full redraw (32768-page map, 4 plots) took ${drawMs.toFixed(1)} ms`);

  // 5. Screenshot for reviewers; collapsing still works afterwards.
  await page.locator(".lv-knob-on").uncheck();
  await page.waitForTimeout(1500);
  mkdirSync(join(REPO_ROOT, "test-results"), { recursive: true });
  await page.locator(".lv-panel").screenshot({ path: join(REPO_ROOT, "test-results/live-view.png") });
  await page.click(".lv-toggle");
  expect(await page.locator(".lv-body").isVisible()).toBe(false);
  expect(errors).toEqual([]);
  await page.close();
});
