// `npm start -- --lan` (scripts/start.ts, run here as npm start runs it once the setup is done):
// HTTPS on every interface with a generated certificate, the LAN address printed, the relay beside
// the page over WSS. Two separate Chromium processes (two "machines") open the printed LAN address,
// not localhost: the second joins the first's cluster by its link through the relay, the WebRTC
// link between them comes up, and the self-test guest passes on the two of them.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { get } from "node:https";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { reportProblems } from "../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../src/guests/selftest/report.ts";
import { ensureGuestImages, REPO_ROOT } from "../../src/guests/images.ts";
import { CHROMIUM, CHROMIUM_ARGS } from "../../harness/browser/browser.ts";
import { consoleText, createCluster, joinCluster, linkCounters, openPage, waitForConsole } from "../../harness/browser/cluster-driver.ts";

let server: ChildProcess | undefined;
let output = "";
const browsers: Browser[] = [];

/** Starts the LAN command on a free port; resolves with what it printed once the relay line is out. */
function startLan(): Promise<string> {
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

beforeAll(async () => {
  // What the page fetches first, built before the clock of any page starts.
  ensureGuestImages();
  await buildSelftest();
  await ensureInstrumentedWasm();
});

afterAll(async () => {
  for (const b of browsers) await b.close();
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
  const a = await openPage(await (await launchMachine()).newContext(), url);
  expect(await a.evaluate(() => crossOriginIsolated)).toBe(true);
  expect(await a.isChecked("#cluster-relay")).toBe(true);
  const link = await createCluster(a, 2, 1, "selftest");
  expect(link.startsWith(url)).toBe(true);
  expect(decodeURIComponent(link)).toContain(`relay=wss://${host}/fabric-relay`);

  // Machine B (another Chromium process: no BroadcastChannel between them) joins by the link.
  const b = await openPage(await (await launchMachine()).newContext(), link);
  expect(await b.evaluate(() => crossOriginIsolated)).toBe(true);
  await joinCluster(b, 1);
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.querySelectorAll("#cluster-roster li").length === 2, undefined, { timeout: 300_000 });
    expect(await p.locator("#cluster-roster").innerText()).toMatch(/tab 1.*compute.*vCPUs 1/);
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
