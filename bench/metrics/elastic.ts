// The elastic VM (issue 14) as a user meets it in the browser, on one Chromium of this machine:
// - elastic.boot_ratio: the front door's Start (at most 4 vCPUs, 1 on this tab) clicked to the shell
//   prompt, over stock v86 with one CPU at `?stock` (Boot clicked to the shell prompt); the two
//   boots alternate in the same run (stock, elastic, stock, elastic...), each in a fresh tab, and
//   the figure is the median of the pairs' ratios (the machine is shared and noisy: ratios only).
// - elastic.join_s: a second tab opens the join link; its Join clicked to the guest having CPUs 0-1
//   online with nproc 2.
// - elastic.leave_s: that tab's Leave clicked to both its phase "left" and tab 0's guest answering
//   with nproc 1 after it (the VM runs on).
// For join and leave the guest itself prints, every 0.25 s, `nproc` and its online CPUs (a loop
// typed before the click), so no typing falls inside the timed span; they are medians over the
// elastic boots of the run.
// - elastic.node_boot_s / node_join_s / node_leave_s: the same steps in Node worker threads
//   (src/runtime/nodejs/elastic-cluster.ts, no tabs, no page): the platform's own cost, beside the
//   browser figures, with the same guest loop for nproc. About two minutes more (run first); no
//   stock boot is needed for them.
// Times are reported, never checked against a threshold.

import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/runtime/nodejs/firmware-build.ts";
import { startElasticCluster } from "../../src/runtime/nodejs/elastic-cluster.ts";
import { launchChromium } from "../../harness/browser/browser.ts";
import { startWebServer } from "../../harness/browser/web-server.ts";
import { type ClusterPage, clusterStatus, consoleText, joinCluster, kernelCrash, openPage, typeInto, vmHosts, waitForConsole } from "../../harness/browser/cluster-driver.ts";
import type { Browser, Page } from "playwright-core";
import type { BenchContext, BenchModule, Metrics } from "../types.ts";

const PROMPT = /giantweb:\/root# /;
const POSSIBLE = 4;
/** Pairs of boots (stock, elastic); each elastic boot is followed by a join and a leave. */
const ROUNDS = Number(process.env.GIANTWEB_ELASTIC_ROUNDS ?? 2);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 10) throw new Error(`GIANTWEB_ELASTIC_ROUNDS must be an integer in 1..10, got ${process.env.GIANTWEB_ELASTIC_ROUNDS}`);
/** A boot on a loaded 2-core machine: a limit against hanging, not a timing check. */
const BOOT_LIMIT_MS = 1_200_000;
/** A join or leave on a loaded 2-core machine (a limit, not a check). */
const CHANGE_LIMIT_MS = 300_000;
/** What the guest's loop prints: `==n=<nproc> <online CPUs>`; the typed command itself never matches (`$(nproc)` is no digit). */
const LOOP = `while :; do echo "==n=$(nproc) $(cat /sys/devices/system/cpu/online)"; sleep 0.25; done`;
const loopLine = (nproc: number, online: string) => new RegExp(`==n=${nproc} ${online}\\r?\\n`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const list = (xs: number[], digits = 1) => xs.map((x) => x.toFixed(digits)).join(", ");

/** Stock v86, one CPU, one tab: `?stock`, Boot clicked to the shell prompt, in seconds. */
async function stockBoot(browser: Browser, url: string): Promise<number> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(`${url}?stock`);
    const text = () => page.evaluate(() => (globalThis as unknown as { giantwebConsole: { text(): string } }).giantwebConsole.text());
    const t0 = performance.now();
    await page.click("#boot");
    const deadline = Date.now() + BOOT_LIMIT_MS;
    for (;;) {
      const out = await text();
      if (PROMPT.test(out)) {
        const seconds = (performance.now() - t0) / 1000;
        if (!/1 CPU\(s\) online/.test(out)) throw new Error("stock v86 at ?stock: the guest's banner does not say 1 CPU(s) online");
        if (errors.length) throw new Error(`?stock: page errors: ${errors.join("; ")}`);
        return seconds;
      }
      const phase = await page.locator("#status").getAttribute("data-phase");
      if (phase === "error" || kernelCrash(out) || Date.now() > deadline)
        throw new Error(`?stock: no shell prompt (status ${phase} "${await page.locator("#status").textContent()}"):\n${kernelCrash(out) ?? out.slice(-2000)}`);
      await page.waitForTimeout(250);
    }
  } finally {
    await page.close();
  }
}

/** Polls tab A's console (and `also`) every 100 ms from `from` until `pattern` matches; the time it was first seen. */
async function seeOnConsole(a: ClusterPage, pattern: RegExp, from: number, what: string, joiner?: ClusterPage): Promise<{ at: number; text: string }> {
  const deadline = Date.now() + CHANGE_LIMIT_MS;
  for (;;) {
    const text = (await consoleText(a)).slice(from);
    if (pattern.test(text)) return { at: performance.now(), text };
    const crash = kernelCrash(text);
    const s = await clusterStatus(a);
    const j = joiner ? await clusterStatus(joiner) : null;
    if (crash || Date.now() > deadline || s.phase !== "running" || (j && /error|stopped|left/.test(j.phase ?? ""))) {
      const logs = await Promise.all([a, ...(joiner ? [joiner] : [])].map((p) => p.locator("#cluster-log").textContent().catch(() => null)));
      throw new Error(
        `waiting for ${what}: tab A's status ${s.phase} "${s.text}"` +
          (j ? `; tab B's status ${j.phase} "${j.text}"; tab A's vmHosts ${JSON.stringify(await vmHosts(a))}` : "") +
          `; cluster logs:\n${logs.map((l) => (l ?? "").slice(-1500)).join("\n---\n")}\ntab A's console shows:\n${crash ?? text.slice(-600)}`,
      );
    }
    await a.waitForTimeout(100);
  }
}

interface ElasticRound {
  boot: number;
  join: number;
  leave: number;
  /** When the leaving tab's phase went "left", seconds after the click (the guest's nproc 1 may come before or after). */
  leftPhase: number;
}

/** The front door's Start on a fresh tab, then a second tab joins and leaves; in a context of its own (its own BroadcastChannel cluster). */
async function elasticRound(ctx: BenchContext, browser: Browser, url: string): Promise<ElasticRound> {
  const context = await browser.newContext();
  const tabs: ClusterPage[] = [];
  try {
    const a = await openPage(context, url);
    tabs.push(a);
    await a.fill("#cluster-possible", String(POSSIBLE));
    await a.fill("#cluster-start-here", "1");
    const t0 = performance.now();
    await a.click("#cluster-start");
    await a.waitForFunction(() => (document.querySelector("#cluster-link") as HTMLInputElement | null)?.value.includes("#join="));
    const link = await a.locator("#cluster-link").inputValue();
    await waitForConsole(a, PROMPT, "the shell prompt on tab A", BOOT_LIMIT_MS);
    const boot = (performance.now() - t0) / 1000;
    if (!/giantweb guest up: Linux \S+, 1 CPU\(s\) online/.test(await consoleText(a))) throw new Error("the elastic VM's banner does not say 1 CPU(s) online");

    // The guest reports its CPUs by itself from now on.
    let mark = (await consoleText(a)).length;
    await typeInto(a, `${LOOP}\n`);
    const started = await seeOnConsole(a, /==n=\d+ [\d,-]+\r?\n/, mark, "the guest's nproc loop");
    if (!loopLine(1, "0").test(started.text)) throw new Error(`the guest's loop did not print nproc 1 and CPU 0 online: ${JSON.stringify(started.text.slice(-300))}`);

    const b = await openPage(context, link);
    tabs.push(b);
    ctx.log(`elastic: booted in ${boot.toFixed(1)} s; tab B joins with 1 vCPU`);
    mark = (await consoleText(a)).length;
    const j0 = performance.now();
    await joinCluster(b, 1);
    const joined = await seeOnConsole(a, loopLine(2, "0-1"), mark, "nproc 2 with CPUs 0-1 online after tab B's Join", b);
    const join = (joined.at - j0) / 1000;
    if ((await clusterStatus(b)).phase !== "running") await b.waitForFunction(() => document.querySelector("#cluster-status")?.getAttribute("data-phase") === "running", undefined, { timeout: 60_000 });

    ctx.log(`elastic: joined in ${join.toFixed(2)} s; tab B leaves`);
    mark = (await consoleText(a)).length;
    const l0 = performance.now();
    await b.click("#cluster-leave");
    // Tab B's phase "left" (polled every 100 ms), then the guest's first nproc 1 printed after that moment.
    const deadline = Date.now() + CHANGE_LIMIT_MS;
    let leftAt = 0;
    let leftMark = 0;
    for (;;) {
      const s = await clusterStatus(b);
      if (s.phase === "left") {
        leftAt = performance.now();
        leftMark = (await consoleText(a)).length;
        break;
      }
      if (s.phase === "error" || s.phase === "stopped" || Date.now() > deadline) throw new Error(`waiting for tab B's phase "left": status ${s.phase} "${s.text}"`);
      await b.waitForTimeout(100);
    }
    // The loop may have printed nproc 1 before B's phase changed: the answer that counts comes after it.
    const answered = await seeOnConsole(a, loopLine(1, "0"), leftMark, "nproc 1 from tab A's guest after tab B left");
    const leave = (answered.at - l0) / 1000;
    const leftPhase = (leftAt - l0) / 1000;
    ctx.log(`elastic: left in ${leave.toFixed(2)} s (tab B's phase "left" after ${leftPhase.toFixed(2)} s)`);
    await a.locator(".xterm").click();
    await a.keyboard.press("Control+C");
    if ((await clusterStatus(a)).phase !== "running") throw new Error(`tab A is not running after tab B left: ${JSON.stringify(await clusterStatus(a))}`);
    const errors = tabs.flatMap((p) => p.errors);
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
    return { boot, join, leave, leftPhase };
  } finally {
    for (const p of tabs.reverse()) await p.close().catch(() => {});
    await context.close();
  }
}

async function browserFigures(ctx: BenchContext): Promise<Metrics> {
  const server = await startWebServer();
  const browser = await launchChromium();
  try {
    const stock: number[] = [];
    const rounds: ElasticRound[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      ctx.log(`elastic: stock v86 one CPU at ?stock, Boot to shell (${r + 1}/${ROUNDS})`);
      stock.push(await stockBoot(browser, server.url));
      ctx.log(`elastic: stock booted in ${stock[r]!.toFixed(1)} s; front door Start, ${POSSIBLE} possible vCPUs, 1 here (${r + 1}/${ROUNDS})`);
      rounds.push(await elasticRound(ctx, browser, server.url));
    }
    const boots = rounds.map((r) => r.boot);
    const pairs = boots.map((b, i) => b / stock[i]!);
    return {
      "elastic.boot_ratio": {
        value: median(pairs),
        unit: "ratio",
        note: `browser: front door Start (${POSSIBLE} possible vCPUs, 1 on this tab) to the shell / stock v86 one CPU at ?stock Boot to the shell, median of ${ROUNDS} alternated pairs ${list(pairs, 2)}: elastic ${list(boots)} s, stock ${list(stock)} s`,
      },
      "elastic.join_s": {
        value: median(rounds.map((r) => r.join)),
        unit: "s",
        note: `browser: a second tab's Join click to the guest printing nproc 2 with CPUs 0-1 online (its own 0.25 s loop), median of ${list(rounds.map((r) => r.join), 2)} s`,
      },
      "elastic.leave_s": {
        value: median(rounds.map((r) => r.leave)),
        unit: "s",
        note: `browser: that tab's Leave click to its phase "left" (after ${list(rounds.map((r) => r.leftPhase), 2)} s) and then tab 0's guest printing nproc 1, median of ${list(rounds.map((r) => r.leave), 2)} s`,
      },
    };
  } finally {
    await browser.close();
    await server.close();
  }
}

/** The same steps in Node worker threads: boot with 1 of 4, join(), leave(1); the guest's loop says when nproc changed, as in the browser. */
async function nodeFigures(ctx: BenchContext): Promise<Metrics> {
  const g = ensureGuestImages();
  ctx.log(`elastic (Node workers): Linux with 1 of ${POSSIBLE} possible vCPUs on one node, to its shell`);
  const t0 = performance.now();
  const vm = startElasticCluster({
    wasmPath: await ensureInstrumentedWasm(),
    guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
    possibleCpus: POSSIBLE,
  });
  const c = vm.cluster;
  try {
    await c.waitFor(PROMPT, 900_000);
    const boot = (performance.now() - t0) / 1000;
    let mark = c.output().length;
    c.send(0, `${LOOP}\n`);
    await c.waitFor(loopLine(1, "0"), 300_000, mark);
    ctx.log(`elastic (Node workers): booted in ${boot.toFixed(1)} s; a node joins with vCPU 1`);
    mark = c.output().length;
    const j0 = performance.now();
    const joined = await vm.join();
    await c.waitFor(loopLine(2, "0-1"), CHANGE_LIMIT_MS, mark);
    const join = (performance.now() - j0) / 1000;
    const l0 = performance.now();
    const left = await vm.leave(1);
    const done = (performance.now() - l0) / 1000;
    mark = c.output().length;
    await c.waitFor(loopLine(1, "0"), CHANGE_LIMIT_MS, mark);
    const leave = (performance.now() - l0) / 1000;
    c.send(0, "\x03");
    ctx.log(`elastic (Node workers): joined in ${join.toFixed(2)} s, left in ${leave.toFixed(2)} s`);
    return {
      "elastic.node_boot_s": { value: boot, unit: "s", note: `Node workers: Linux to its shell, 1 of ${POSSIBLE} possible vCPUs online, one node (no page, no tabs)` },
      "elastic.node_join_s": { value: join, unit: "s", note: `Node workers: join() to the guest printing nproc 2 with CPUs 0-1 online (its own 0.25 s loop); the VM paused ${joined.change.pausedMs.toFixed(0)} ms for the DSM change` },
      "elastic.node_leave_s": { value: leave, unit: "s", note: `Node workers: leave(1) (guest offlines and ejects the CPU, pages handed to node 0, node ended; done after ${done.toFixed(2)} s) to the guest printing nproc 1 after it; paused ${left.change.pausedMs.toFixed(0)} ms` },
    };
  } finally {
    await c.stop();
  }
}

export default {
  prefixes: ["elastic."],
  async run(ctx: BenchContext): Promise<Metrics> {
    ensureGuestImages();
    buildFirmware();
    await ensureInstrumentedWasm();
    const out: Metrics = {};
    // The Node figures first: a minute or two, and a failure there ends the module before the long browser part.
    if (["elastic.node_boot_s", "elastic.node_join_s", "elastic.node_leave_s"].some((m) => ctx.wants(m))) Object.assign(out, await nodeFigures(ctx));
    if (["elastic.boot_ratio", "elastic.join_s", "elastic.leave_s"].some((m) => ctx.wants(m))) Object.assign(out, await browserFigures(ctx));
    return out;
  },
} satisfies BenchModule;
