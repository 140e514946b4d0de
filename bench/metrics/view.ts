// The live view's cost and the latency knob's effect, on the real VM in the browser: Linux with
// 2 vCPUs in 2 workers of one tab (view-lab.html?vm=2, the same TabMachine, node workers and panel
// as the product page). Boot time is from the "booting" phase (images fetched) to the shell prompt.
// - view.overhead_ratio: panel open and redrawing 4 times a second / panel closed (collapsed: the
//   nodes still send their snapshots, nothing is drawn), boots alternated in the same run.
// (view.knob_ratio.10ms is in view-knob.ts: it takes far longer, and a failure there must not
// lose this figure.)

import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/platform/firmware/bios-build.ts";
import { launchChromium } from "../../test/support/browser.ts";
import { startWebServer } from "../../test/support/web-server.ts";
import type { Browser } from "playwright-core";
import type { BenchModule, Metrics } from "../types.ts";

const PROMPT = "giantweb:/root# ";
/** Boots per side for the overhead ratio (alternated: open, closed, open, closed, ...). */
const ROUNDS = 2;

/** Seconds from "booting" to the shell prompt, for one fresh tab at `url`. */
export async function boot(browser: Browser, url: string, limitMs: number): Promise<number> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(url);
    const deadline = Date.now() + limitMs;
    for (;;) {
      const s = await page.evaluate((p) => {
        const lab = (globalThis as { lab?: { vm: { phase(): string; text(): string; oops(): string | null; phases: { phase: string; atMs: number; message?: string }[] } } }).lab;
        return lab ? { phase: lab.vm.phase(), prompt: lab.vm.text().includes(p), phases: lab.vm.phases, text: lab.vm.oops() ?? lab.vm.text().slice(-600) } : null;
      }, PROMPT);
      if (s?.prompt) {
        const booting = s.phases.find((p) => p.phase === "booting")!.atMs;
        const running = s.phases.find((p) => p.phase === "running")?.atMs ?? s.phases[s.phases.length - 1]!.atMs;
        if (!/2 CPU\(s\) online/.test(await page.evaluate(() => (globalThis as unknown as { lab: { vm: { text(): string } } }).lab.vm.text())))
          throw new Error(`${url}: the guest did not bring up 2 CPUs`);
        if (errors.length) throw new Error(`${url}: page errors: ${errors.join("; ")}`);
        return (running - booting) / 1000;
      }
      if (s?.phase === "error" || Date.now() > deadline)
        throw new Error(`${url}: no shell prompt (phase ${s?.phase}, ${JSON.stringify(s?.phases)}):\n${s?.text}`);
      await page.waitForTimeout(500);
    }
  } finally {
    await page.close();
  }
}

const view: BenchModule = {
  prefixes: ["view.overhead"],
  async run(ctx) {
    ensureGuestImages();
    buildFirmware();
    await ensureInstrumentedWasm();
    const server = await startWebServer();
    const browser = await launchChromium();
    const out: Metrics = {};
    const base = `${server.url}view-lab.html?vm=2`;
    try {
      const open: number[] = [];
      const closed: number[] = [];
      if (ctx.wants("view.overhead_ratio")) {
        for (let r = 0; r < ROUNDS; r++) {
          ctx.log(`view: 2-vCPU boot with the panel open (${r + 1}/${ROUNDS})`);
          open.push(await boot(browser, base, 1_200_000));
          ctx.log(`view: 2-vCPU boot with the panel closed (${r + 1}/${ROUNDS})`);
          closed.push(await boot(browser, `${base}&collapsed=1`, 1_200_000));
        }
        const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
        out["view.overhead_ratio"] = {
          value: sum(open) / sum(closed),
          unit: "ratio",
          note: `2 vCPUs in one tab, boot to shell, panel open and redrawing / closed, ${ROUNDS} alternated boots each: open ${open.map((s) => s.toFixed(1)).join(", ")} s, closed ${closed.map((s) => s.toFixed(1)).join(", ")} s`,
        };
      }
      return out;
    } finally {
      await browser.close();
      await server.close();
    }
  },
};

export default view;
