// `npm start -- --lan` (scripts/start.ts, run here as npm start runs it once the setup is done):
// HTTPS on every interface with a generated certificate, the LAN address printed, the relay beside
// the page over WSS. Two separate Chromium processes (two "machines") open the printed LAN address,
// not localhost, and meet through the relay:
// - the fixed cluster: the second joins the first's cluster by its link, the WebRTC link between
//   them comes up, and the self-test guest passes on the two of them;
// - the elastic VM (issue 14): the first presses Start and Linux boots there alone; the second
//   joins the running VM, its vCPU comes online in the guest (nproc 2), a job pinned to that CPU
//   runs on it, and after its Leave the guest is back to 1 CPU and answers on.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { get } from "node:https";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { reportProblems } from "../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../src/guests/selftest/report.ts";
import { ensureGuestImages, REPO_ROOT } from "../../src/guests/images.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../../harness/browser/browser.ts";
import {
  type ClusterPage,
  clusterStatus,
  consoleText,
  createCluster,
  joinCluster,
  linkCounters,
  openPage,
  startElastic,
  typeInto,
  tabOf,
  vmHosts,
  waitForConsole,
  waitForHosts,
  waitForPhase,
  withKernelReport,
} from "../../harness/browser/cluster-driver.ts";
import { markedCommand, markedOutput, MARKED_OUTPUT_DONE } from "../../harness/console-output.ts";

let server: ChildProcess | undefined;
let output = "";
let lan: Promise<string> | undefined;
const browsers: Browser[] = [];

/** Starts the LAN command on a free port (once for the file); resolves with what it printed once the relay line is out. */
function startLan(): Promise<string> {
  lan ??= spawnLan();
  return lan;
}

function spawnLan(): Promise<string> {
  server = spawn(join(REPO_ROOT, "node_modules/.bin/tsx"), ["scripts/start.ts", "--lan", "--port", "0"], {
    cwd: REPO_ROOT,
    detached: true, // its own process group: tsx runs node under it, and afterAll ends both
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the LAN command printed no relay address in 5 minutes; it printed:\n${output}`)), 300_000);
    const take = (chunk: Buffer) => {
      output += chunk.toString();
      if (/wss:\/\/\S+\/fabric-relay/.test(output) || /no LAN address found/.test(output)) {
        clearTimeout(timer);
        resolve(output);
      }
    };
    server!.stdout!.on("data", take);
    server!.stderr!.on("data", take);
    server!.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the LAN command exited (${code}) before serving; it printed:\n${output}`));
    });
  });
}

/** GET over HTTPS accepting the self-signed certificate: status, headers, body. */
function fetchInsecure(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { rejectUnauthorized: false, timeout: 120_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer in 120 s`)));
    req.on("error", reject);
  });
}

/** One "machine": a Chromium process of its own that accepts the self-signed certificate. */
async function launchMachine(): Promise<Browser> {
  const b = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, "--ignore-certificate-errors"] });
  browsers.push(b);
  return b;
}

/**
 * A browsing context on a new machine. `npm start` serves the page with Vite's hot reload on, so a
 * source file edited while a test runs (others work in this checkout) would reload every page and
 * end its VM: the dev server's HMR socket (wss://host/?token=...) is answered here, in the browser,
 * and never reaches the server. The relay's socket (/fabric-relay) goes through untouched.
 */
async function machineContext(): Promise<BrowserContext> {
  const ctx = await (await launchMachine()).newContext();
  await ctx.routeWebSocket((u) => u.pathname === "/" && u.searchParams.has("token"), () => {});
  return ctx;
}

/** Closes the machines a test launched (their VM would otherwise run on beside the next test). */
async function closeMachines(): Promise<void> {
  for (const b of browsers.splice(0)) await b.close();
}

/** The LAN address the command printed first (the test of the printed addresses checks them all). */
async function lanUrl(): Promise<{ url: string; host: string }> {
  const url = (await startLan()).match(/https:\/\/\d+\.\d+\.\d+\.\d+:\d+\//)?.[0];
  if (!url) throw new Error(`the LAN command printed no https:// LAN address; it printed:\n${output}`);
  return { url, host: new URL(url).host };
}

beforeAll(async () => {
  // What the page fetches first, built before the clock of any page starts.
  ensureGuestImages();
  await buildSelftest();
  await ensureInstrumentedWasm();
});

afterAll(async () => {
  await closeMachines();
  if (server?.pid !== undefined && server.exitCode === null) {
    const exited = new Promise((r) => server!.once("exit", r));
    process.kill(-server.pid, "SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (server.exitCode === null && server.signalCode === null) process.kill(-server.pid, "SIGKILL");
  }
});

it("serves HTTPS on the LAN address it prints, and two browsers there form a cluster through its relay and pass the self-test", async () => {
  const lanIps = Object.values(networkInterfaces())
    .flatMap((l) => l ?? [])
    .filter((a) => a.family === "IPv4" && !a.internal)
    .map((a) => a.address);
  if (lanIps.length === 0)
    throw new Error("this machine has no non-loopback IPv4 address (os.networkInterfaces()), so the LAN command cannot be tested here");

  const printed = await startLan();
  const pageUrls = [...printed.matchAll(/https:\/\/(\d+\.\d+\.\d+\.\d+):(\d+)\//g)].map((m) => m[0]);
  expect(pageUrls.map((u) => new URL(u).hostname).sort(), printed).toEqual([...lanIps].sort());
  const url = pageUrls[0]!;
  const { host } = new URL(url);
  expect(printed).toContain(`wss://${host}/fabric-relay`);

  // The page over HTTPS, cross-origin isolated.
  const page = await fetchInsecure(url);
  expect(page.status).toBe(200);
  expect(page.body).toContain("<title>");
  expect(page.headers).toMatchObject({
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
  });

  // Machine A creates a cluster of 2 vCPUs on the LAN address; the relay box is ticked by default
  // there (the page is not on localhost), and the link carries the relay's wss:// address.
  const a = await openPage(await machineContext(), url);
  expect(await a.evaluate(() => crossOriginIsolated)).toBe(true);
  expect(await a.isChecked("#cluster-relay")).toBe(true);
  const link = await createCluster(a, 2, 1, "selftest");
  expect(link.startsWith(url)).toBe(true);
  expect(decodeURIComponent(link)).toContain(`relay=wss://${host}/fabric-relay`);

  // Machine B (another Chromium process: no BroadcastChannel between them) joins by the link.
  const b = await openPage(await machineContext(), link);
  expect(await b.evaluate(() => crossOriginIsolated)).toBe(true);
  await joinCluster(b, 1);
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.querySelectorAll("#cluster-roster li").length === 2, undefined, { timeout: 300_000 });
    expect(await p.locator("#cluster-roster").innerText()).toMatch(/tab 1( \(this tab\))? · compute · vCPUs? 1\b/);
  }

  // The slices cover the VM, so it boots on both: vCPU 1 runs on B, over the WebRTC link.
  const SUMMARY = /SUMMARY[^\n]*\n/;
  await waitForConsole(a, SUMMARY, "the self-test's SUMMARY on machine A", 1_200_000);
  await waitForConsole(b, SUMMARY, "the self-test's SUMMARY on machine B", 120_000);
  const report = parseSelftestOutput(await consoleText(a));
  expect(reportProblems(report, 2, true)).toEqual([]);
  const counters = await linkCounters(b);
  expect(counters?.framesIn).toBeGreaterThan(0);
  expect(counters?.framesOut).toBeGreaterThan(0);
  expect([...a.errors, ...b.errors]).toEqual([]);
  await closeMachines();
}, 1_800_000);

const PROMPT = /giantweb:\/root# /;
/** A join or leave on a loaded 2-core machine (a Chromium process starts, loads the page, fetches the images, starts a v86). */
const CHANGE_MS = 300_000;

/**
 * Types a command on the page's console and returns what it printed (the kernel's lines left out).
 * Markers printed before and after it bound the output: the terminal wraps a long command line as
 * it echoes it, so the echo is no fixed string to look for.
 */
async function run(a: ClusterPage, command: string, timeoutMs = 300_000): Promise<string> {
  const mark = (await consoleText(a)).length;
  await typeInto(a, markedCommand(command));
  const out = await waitForConsole(a, MARKED_OUTPUT_DONE, `the output of ${JSON.stringify(command)}`, timeoutMs, mark);
  return markedOutput(out).trim();
}

/** Waits until the guest lists `online` as its online CPUs and nproc (the CPUs the shell may run on) is `count`. */
async function waitForOnline(a: ClusterPage, online: string, count: number, timeoutMs = CHANGE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [listed, nproc] = (await run(a, "cat /sys/devices/system/cpu/online; nproc")).split(/\r?\n/).slice(-2).map((l) => l.trim());
    if (listed === online && nproc === String(count)) return;
    if (Date.now() > deadline) throw new Error(`waiting for CPUs ${online} online: the guest says ${listed}, nproc ${nproc}; its console:\n${(await consoleText(a)).slice(-3000)}`);
    await a.waitForTimeout(1000);
  }
}

/** Waits until `page` hears from tab 0 that the vCPUs run on these tabs (null: none), with no change under way. */

it("an elastic VM over the LAN: machine A presses Start and Linux boots there; machine B joins the running VM through the relay, its vCPU comes online and runs a pinned job; B leaves and A's guest runs on with 1 CPU", async () => {
  const { url, host } = await lanUrl();
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

  // Machine A: the front door's Start, an elastic VM of at most 2 vCPUs with 1 here. The relay box
  // is ticked by default on the LAN address, so the join link carries the relay's wss:// address.
  const a = await openPage(await machineContext(), url);
  expect(await a.evaluate(() => crossOriginIsolated)).toBe(true);
  expect(await a.isChecked("#cluster-relay")).toBe(true);
  const link = await startElastic(a, 2, 1);
  expect(link.startsWith(url)).toBe(true);
  expect(decodeURIComponent(link)).toContain(`relay=wss://${host}/fabric-relay`);
  const pages: ClusterPage[] = [a];
  // A page that loads again has lost its VM: say so rather than fail on a missing hook.
  const reloads: string[] = [];
  const watchReloads = (p: ClusterPage, name: string) => p.on("load", () => reloads.push(`machine ${name}'s page loaded again`));
  watchReloads(a, "A");
  try {
    await withKernelReport(a, async () => {
      await waitForConsole(a, PROMPT, "the shell prompt on machine A", 900_000);
      console.log(`lan elastic: machine A at its shell prompt after ${elapsed()}`);
      expect(await run(a, "nproc")).toBe("1");
      expect(await tabOf(a)).toBe(0);
      await waitForHosts(a, [0, null], "vCPU 0 alone on tab 0", CHANGE_MS);

      // Machine B (another Chromium process: no BroadcastChannel between them) joins the running VM.
      const b = await openPage(await machineContext(), link);
      pages.push(b);
      watchReloads(b, "B");
      expect(await b.evaluate(() => crossOriginIsolated)).toBe(true);
      await joinCluster(b, 1);
      expect(await waitForPhase(b, "running", "machine B's vCPU in the VM", CHANGE_MS)).not.toBe("");
      const tb = await tabOf(b);
      expect(tb).toBeGreaterThan(0);
      await waitForHosts(a, [0, tb], "vCPU 1 on machine B, as machine A hears it", CHANGE_MS);
      await waitForHosts(b, [0, tb], "vCPU 1 on machine B, as machine B hears it", CHANGE_MS);
      await waitForOnline(a, "0-1", 2);
      await waitForConsole(a, /CPU1 has been hot-added/, "the kernel's hot-add line");
      console.log(`lan elastic: machine B's vCPU online after ${elapsed()}`);

      // A job pinned to CPU 1 runs on B's vCPU and gives its exact sum.
      const job = `taskset 2 sh -c 'x=0; j=0; while [ $j -lt 3000 ]; do x=$((x+j*3)); j=$((j+1)); done; echo job=$x on $(cut -d" " -f39 /proc/self/stat)'`;
      expect(await run(a, job)).toBe(`job=${2999 * 1500 * 3} on 1`);
      // The frames went over the WebRTC link between the two machines.
      const counters = await linkCounters(b);
      expect(counters?.framesIn).toBeGreaterThan(0);
      expect(counters?.framesOut).toBeGreaterThan(0);

      // B leaves: its vCPU goes offline, and A's guest runs on alone.
      await b.click("#cluster-leave");
      expect(await waitForPhase(b, "left", "machine B's leave", CHANGE_MS)).toMatch(/left the VM/);
      await waitForHosts(a, [0, null], "vCPU 1 gone", CHANGE_MS);
      await waitForOnline(a, "0", 1);
      expect(await run(a, "echo $((6*7))")).toBe("42");
      expect((await clusterStatus(a)).phase).toBe("running");
      console.log(`lan elastic: machine B left after ${elapsed()}`);

      // No oops, BUG, WARN or GPF. (An RCU stall report, with its NMI backtraces' call traces, can
      // come on an overloaded host, as in elastic-tabs.e2e.test.ts: it is printed, not failed.)
      const text = await consoleText(a);
      expect(text).not.toMatch(/BUG:|Oops|WARNING:|general protection/);
      if (/rcu: INFO: rcu_preempt detected stalls/.test(text)) console.log("lan elastic: the guest reported an RCU stall (an overloaded host)");
      expect(pages.flatMap((p) => p.errors)).toEqual([]);
      expect(reloads).toEqual([]);
    });
  } catch (err) {
    if (reloads.length) (err as Error).message += `\n${reloads.join("; ")}`;
    throw err;
  }
  await closeMachines();
}, 1_800_000);

it("refuses an unknown option or a bad port with an error naming it, before starting anything", () => {
  const run = (...args: string[]) => spawnSync(join(REPO_ROOT, "node_modules/.bin/tsx"), ["scripts/start.ts", ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 120_000 });
  for (const [args, error] of [
    [["--lan", "--bogus"], /npm start: unknown option "--bogus"/],
    [["--lan", "--port", "70000"], /npm start: bad port "70000" for --port/],
    [["--port=abc"], /npm start: bad port "abc" for --port/],
    [["--lan", "--port"], /npm start: --port needs a number/],
  ] as const) {
    const r = run(...args);
    expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(2);
    expect(r.stderr).toMatch(error);
    expect(r.stderr).toContain("usage: npm start");
    expect(r.stdout).not.toMatch(/https?:\/\//); // no server was started
  }
});
