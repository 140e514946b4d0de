// The kernel matrix (issue 11): boots every linux-image-6.1.0-N-686-unsigned the archive offers,
// with 2 and 4 vCPUs, on the one-thread SMP machine (smp1) and on the worker cluster, with the
// default and the larger initramfs, at 128 and 512 MiB, and reports per cell whether the guest
// reached its prompt with every CPU online.
//
//   npm run matrix [-- options]     (or: npx tsx scripts/guest-matrix.ts [options])
//     --kernels 56,57      ABIs N to boot (default: every one apt lists now)
//     --vcpus 2,4  --machine smp1,cluster  --initrd default,large  --memory 128,512
//     --timeout 600        seconds each boot may take to reach the prompt
//     --out FILE           JSON results (default .cache/matrix/results.json)
//     --list               print the cells and exit
//
// Cells run one at a time, each in its own Node process (a panicking engine or a hung boot cannot
// spoil the next cell, and a cell that does not end is killed). The console of each cell goes to
// .cache/matrix/logs/. Exit status 1 when any cell did not boot with every CPU online.

import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { archiveKernels, kernelAbi } from "../src/guests/debs.ts";
import { ensureGuestImages, REPO_ROOT } from "../src/guests/images.ts";
import { ensureLargeInitramfs, ensureMatrixGuest, MATRIX_DIR, matrixKernelVersion } from "../src/guests/matrix-guests.ts";

export const MACHINES = ["smp1", "cluster"] as const;
export const INITRDS = ["default", "large"] as const;
export type Machine = (typeof MACHINES)[number];
export type Initrd = (typeof INITRDS)[number];

export interface Cell {
  kernel: number;
  kernelPackage: string;
  vcpus: number;
  machine: Machine;
  initrd: Initrd;
  memoryMiB: number;
}

export interface CellResult extends Cell {
  /** The prompt appeared. */
  booted: boolean;
  /** N of "smp: Brought up 1 node, N CPUs". */
  cpusUp: number | null;
  /** N of the banner "giantweb guest up: Linux …, N CPU(s) online" (nproc). */
  cpusOnline: number | null;
  kernelRelease: string | null;
  /** The kernel package's Debian version. */
  kernelVersion: string | null;
  /** Booted with every CPU online. */
  ok: boolean;
  /** The first panic / oops / do_boot_cpu failure on the console, else the engine's panic or error. */
  firstError: string | null;
  /** v86's "panicked at …" with its message (stderr of the one-thread machine), or the cluster's node failure. */
  enginePanic: string | null;
  seconds: number;
  timedOut: boolean;
  log: string;
}

export interface MatrixOptions {
  kernels: number[] | null;
  vcpus: number[];
  machines: Machine[];
  initrds: Initrd[];
  memory: number[];
  timeoutS: number;
  out: string;
  list: boolean;
}

const SCRIPT = fileURLToPath(import.meta.url);
const LOG_DIR = join(MATRIX_DIR, "logs");
const CELL_MARK = "@@matrix-cell ";

export function parseArgs(argv: readonly string[]): MatrixOptions {
  const o: MatrixOptions = {
    kernels: null,
    vcpus: [2, 4],
    machines: [...MACHINES],
    initrds: [...INITRDS],
    memory: [128, 512],
    timeoutS: 600,
    out: join(MATRIX_DIR, "results.json"),
    list: false,
  };
  const numbers = (flag: string, v: string) => {
    const list = v.split(",").map((s) => Number(s.trim()));
    if (!list.length || list.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`${flag} takes positive integers separated by commas, got "${v}"`);
    return list;
  };
  const words = <T extends string>(flag: string, v: string, allowed: readonly T[]) => {
    const list = v.split(",").map((s) => s.trim());
    const bad = list.find((w) => !allowed.includes(w as T));
    if (bad !== undefined) throw new Error(`${flag} takes ${allowed.join(", ")} (comma-separated), got "${bad}"`);
    return list as T[];
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--list") {
      o.list = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case "--kernels": o.kernels = numbers(flag, v); break;
      case "--vcpus": o.vcpus = numbers(flag, v); break;
      case "--machine": o.machines = words(flag, v, MACHINES); break;
      case "--initrd": o.initrds = words(flag, v, INITRDS); break;
      case "--memory": o.memory = numbers(flag, v); break;
      case "--timeout": o.timeoutS = numbers(flag, v)[0]!; break;
      case "--out": o.out = resolve(v); break;
      default: throw new Error(`unknown option ${flag} (see the header of scripts/guest-matrix.ts)`);
    }
  }
  if (o.vcpus.some((n) => n > 8)) throw new Error("--vcpus: at most 8");
  return o;
}

/** Every cell, kernel-major, from the kernels apt lists now. */
export function planCells(o: MatrixOptions, kernelPackages: readonly string[]): Cell[] {
  const kernels = kernelPackages.filter((k) => !o.kernels || o.kernels.includes(kernelAbi(k)));
  if (o.kernels) {
    const missing = o.kernels.filter((n) => !kernels.some((k) => kernelAbi(k) === n));
    if (missing.length) throw new Error(`apt offers no kernel with ABI ${missing.join(", ")} (it has ${kernelPackages.map(kernelAbi).join(", ")})`);
  }
  const cells: Cell[] = [];
  for (const kernelPackage of kernels)
    for (const machine of o.machines)
      for (const initrd of o.initrds)
        for (const memoryMiB of o.memory)
          for (const vcpus of o.vcpus) cells.push({ kernel: kernelAbi(kernelPackage), kernelPackage, vcpus, machine, initrd, memoryMiB });
  return cells;
}

const cellName = (c: Cell) => `k${c.kernel}-${c.machine}-${c.vcpus}cpu-${c.initrd}-${c.memoryMiB}M`;

const FAILURE_RE = /Kernel panic|Oops|BUG:|do_boot_cpu failed|general protection fault|Unable to handle|not syncing/;

/** v86's Rust panic: "panicked at FILE:LINE:COL:" and its message on the next line. */
export function enginePanicIn(stderr: string): string | null {
  const lines = stderr.split(/\r?\n/);
  const i = lines.findIndex((l) => l.includes("panicked at"));
  if (i < 0) return null;
  const line = lines[i]!.trim();
  const next = line.endsWith(":") ? lines.slice(i + 1).find((l) => l.trim() !== "") : undefined;
  return next ? `${line} ${next.trim()}` : line;
}

/** Reads a cell's console (and the engine's stderr, and the child's own error) into a result. */
export function analyse(cell: Cell, r: { console: string; stderr: string; booted: boolean; seconds: number; timedOut: boolean; error: string | null; log: string }): CellResult {
  const up = /smp: Brought up \d+ nodes?, (\d+) CPUs?/.exec(r.console);
  const banner = /giantweb guest up: Linux (\S+), (\d+) CPU\(s\) online/.exec(r.console);
  const firstLine = (text: string) => text.split(/\r?\n/).find((l) => FAILURE_RE.test(l))?.trim() ?? null;
  const enginePanic = enginePanicIn(r.stderr) ?? (r.error ? r.error.split("\n")[0]!.trim() : null);
  const firstError = firstLine(r.console) ?? enginePanic;
  const cpusUp = up ? Number(up[1]) : null;
  const cpusOnline = banner ? Number(banner[2]) : null;
  return {
    ...cell,
    booted: r.booted,
    cpusUp,
    cpusOnline,
    kernelRelease: banner?.[1] ?? null,
    kernelVersion: null,
    ok: r.booted && cpusUp === cell.vcpus && cpusOnline === cell.vcpus,
    firstError,
    enginePanic,
    seconds: Math.round(r.seconds * 10) / 10,
    timedOut: r.timedOut,
    log: r.log,
  };
}

const cellText = (t: string | null) => (t ?? "").replace(/\|/g, "\\|").slice(0, 100);

export function markdownTable(results: readonly CellResult[]): string {
  const rows = results.map((r) =>
    [
      `${r.kernel}`,
      r.machine,
      `${r.vcpus}`,
      r.initrd,
      `${r.memoryMiB}`,
      r.ok ? "yes" : r.booted ? "**partly**" : "**no**",
      `${r.cpusUp ?? "-"}/${r.cpusOnline ?? "-"}`,
      r.timedOut ? `>${r.seconds}` : `${r.seconds}`,
      cellText(r.firstError),
      cellText(r.enginePanic === r.firstError ? null : r.enginePanic),
    ].join(" | "),
  );
  return [
    "| kernel | machine | vCPUs | initrd | MiB | booted, all CPUs | CPUs up/online | s | first error | engine panic |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r} |`),
  ].join("\n");
}

/** Runs one cell in a child process; kills it if it outlives its own timeout by two minutes. */
function runCell(cell: Cell, o: MatrixOptions): Promise<CellResult> {
  const log = join(LOG_DIR, `${cellName(cell)}.log`);
  writeFileSync(log, "");
  return new Promise((done) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ["--import", "tsx", SCRIPT, "--cell", JSON.stringify({ cell, timeoutS: o.timeoutS, log })], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => {
      stderr += d;
      appendFileSync(`${log}.stderr`, d);
    });
    writeFileSync(`${log}.stderr`, "");
    const killer = setTimeout(() => child.kill("SIGKILL"), (o.timeoutS + 120) * 1000);
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      const line = stdout.split("\n").find((l) => l.startsWith(CELL_MARK));
      const report = line ? (JSON.parse(line.slice(CELL_MARK.length)) as { booted: boolean; seconds: number; timedOut: boolean; error: string | null }) : null;
      const consoleText = readFileSync(log, "latin1");
      const lastWords = stderr.trim().split("\n").slice(-3).join(" / ");
      done(
        analyse(cell, {
          console: consoleText,
          stderr,
          log,
          ...(report ?? {
            booted: false,
            seconds: (performance.now() - t0) / 1000,
            timedOut: signal === "SIGKILL",
            error: `the cell's process ended (${signal ?? `exit ${code}`}) without a report${lastWords ? `: ${lastWords}` : ""}`,
          }),
        }),
      );
    });
  });
}

/** The commit the cells ran, and the files changed in the work tree (they run too). */
function sourceState(): { commit: string | null; modified: string[] } {
  const git = (args: string[]) => spawnSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" });
  const head = git(["rev-parse", "HEAD"]);
  const status = git(["status", "--porcelain", "--untracked-files=no"]);
  return { commit: head.status === 0 ? head.stdout.trim() : null, modified: status.status === 0 ? status.stdout.split("\n").filter(Boolean).map((l) => l.slice(3)) : [] };
}

/** Prepares every guest the cells need, then runs them one by one; writes results after each. */
export async function runMatrix(o: MatrixOptions, say: (line: string) => void = (l) => console.error(`[matrix] ${l}`)): Promise<CellResult[]> {
  ensureGuestImages(say);
  const cells = planCells(o, archiveKernels());
  if (o.list) {
    for (const c of cells) console.log(cellName(c));
    return [];
  }
  for (const pkg of new Set(cells.map((c) => c.kernelPackage))) ensureMatrixGuest(pkg, say);
  if (cells.some((c) => c.initrd === "large")) ensureLargeInitramfs(say);
  mkdirSync(LOG_DIR, { recursive: true });
  const results: CellResult[] = [];
  const started = new Date().toISOString();
  const source = sourceState();
  for (const [i, cell] of cells.entries()) {
    say(`${i + 1}/${cells.length} ${cellName(cell)} ...`);
    const r = { ...(await runCell(cell, o)), kernelVersion: matrixKernelVersion(cell.kernelPackage) };
    results.push(r);
    say(`${i + 1}/${cells.length} ${cellName(cell)}: ${r.ok ? "ok" : r.booted ? "booted without every CPU" : "did not boot"}, CPUs ${r.cpusUp ?? "-"}/${r.cpusOnline ?? "-"}, ${r.seconds} s${r.firstError ? `, ${r.firstError}` : ""}`);
    writeFileSync(o.out, JSON.stringify({ started, finished: results.length === cells.length ? new Date().toISOString() : null, options: o, source, cells: results }, null, 2) + "\n");
  }
  return results;
}

// ---- one cell, in its own process ----

async function cellMain(spec: { cell: Cell; timeoutS: number; log: string }): Promise<void> {
  const { cell, timeoutS, log } = spec;
  // An engine panic in a vCPU surfaces as an exception; keep the rest running until the timeout.
  process.on("uncaughtException", (e) => console.error(`uncaught: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
  process.on("unhandledRejection", (e) => console.error(`unhandled rejection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
  const { PROMPT_RE } = await import("../src/guests/serial-console.ts");
  const images = ensureMatrixGuest(cell.kernelPackage, () => {});
  const initramfs = cell.initrd === "large" ? ensureLargeInitramfs(() => {}) : images.initramfs;
  const t0 = performance.now();
  let machine: { output(): string; waitFor(re: RegExp, ms: number): Promise<string>; stop(): Promise<unknown> };
  if (cell.machine === "smp1") {
    const { startSmpMachine } = await import("../harness/nodejs/smp-machine.ts");
    const { linuxV86Options } = await import("../src/runtime/nodejs/linux-v86.ts");
    const m = await startSmpMachine(cell.vcpus, linuxV86Options({ acpi: true, memoryMiB: cell.memoryMiB, images: { ...images, initramfs } }));
    machine = { output: () => m.output(), waitFor: (re, ms) => m.waitFor(re, ms), stop: () => m.destroy() };
  } else {
    const { ensureInstrumentedWasm } = await import("../src/engine/instrument/ensure.ts");
    const { buildFirmware } = await import("../src/runtime/nodejs/firmware-build.ts");
    const { startCluster } = await import("../src/runtime/nodejs/cluster.ts");
    const c = startCluster({
      wasmPath: await ensureInstrumentedWasm(),
      guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: images.bzImage, initramfs, cmdline: images.cmdline, memoryMiB: cell.memoryMiB },
      nodes: Array.from({ length: cell.vcpus }, (_, i) => ({ vcpu: i })),
      deviceNode: 0,
    });
    machine = { output: () => c.output(), waitFor: (re, ms) => c.waitFor(re, ms), stop: () => c.stop() };
  }
  // The console goes to the log as it comes, so a cell killed from outside still leaves it.
  let written = 0;
  const flush = () => {
    const out = machine.output();
    if (out.length > written) appendFileSync(log, out.slice(written), "latin1");
    written = out.length;
  };
  const ticker = setInterval(flush, 1000);
  let booted = false;
  let timedOut = false;
  let error: string | null = null;
  try {
    await machine.waitFor(PROMPT_RE, timeoutS * 1000);
    booted = true;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    timedOut = /within \d+(\.\d+)? s/.test(msg);
    error = timedOut ? null : msg;
  }
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(ticker);
  flush();
  process.stdout.write(`${CELL_MARK}${JSON.stringify({ booted, seconds, timedOut, error })}\n`);
  // A node that panicked may never answer a stop; the result is out, so do not wait long.
  await Promise.race([machine.stop().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
  process.exit(0);
}

if (process.argv[1] && resolve(process.argv[1]) === SCRIPT) {
  const args = process.argv.slice(2);
  if (args[0] === "--cell") await cellMain(JSON.parse(args[1]!));
  else {
    try {
      const o = parseArgs(args);
      const results = await runMatrix(o);
      if (!o.list) {
        console.log(markdownTable(results));
        const bad = results.filter((r) => !r.ok).length;
        console.log(`\n${results.length - bad} of ${results.length} cells booted with every CPU online; results in ${o.out}`);
        process.exitCode = bad ? 1 : 0;
      }
    } catch (e) {
      console.error(`[matrix] ${(e as Error).message}`);
      process.exitCode = 2;
    }
  }
}
