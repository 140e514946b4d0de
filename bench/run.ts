// `npm run bench [-- --only <prefix>]`: runs every module in bench/metrics, prints a table and
// writes bench-results.json (metric name -> { value, unit, note? }). Ratios are taken side by side
// in this one run, against the stock boot measured here (the machine is shared and noisy).

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../src/guests/images.ts";
import { measureBootSeconds } from "../harness/nodejs/serial-vm.ts";
import type { BenchContext, BenchModule, Metrics } from "./types.ts";

function parseArgs(argv: string[]): { only: string[] } {
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--only" && argv[i + 1]) only.push(argv[++i]!);
    else if (argv[i]!.startsWith("--only=")) only.push(argv[i]!.slice("--only=".length));
    else throw new Error(`unknown argument "${argv[i]}" (usage: npm run bench -- [--only <metric-prefix>]...)`);
  }
  return { only };
}

const { only } = parseArgs(process.argv.slice(2));
const wants = (name: string) => only.length === 0 || only.some((p) => name.startsWith(p) || p.startsWith(name));
const log = (m: string) => console.error(`[bench] ${m}`);

let stockBoot: Promise<number> | null = null;
const ctx: BenchContext = {
  wants: (name) => only.length === 0 || only.some((p) => name.startsWith(p)),
  stockBootSeconds: () => {
    if (!stockBoot) {
      log("stock v86, one CPU: booting the default Linux guest to its shell");
      stockBoot = measureBootSeconds();
    }
    return stockBoot;
  },
  log,
};

const dir = join(REPO_ROOT, "bench/metrics");
const results: Metrics = {};
const failures: string[] = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts")).sort()) {
  const mod = (await import(pathToFileURL(join(dir, file)).href)).default as BenchModule;
  if (!mod.prefixes.some(wants)) continue;
  log(`running ${file}`);
  try {
    const metrics = await mod.run(ctx);
    for (const [name, metric] of Object.entries(metrics)) if (ctx.wants(name)) results[name] = metric;
  } catch (err) {
    failures.push(`${file}: ${(err as Error).message}`);
    log(`${file} failed: ${(err as Error).stack ?? err}`);
  }
}

// With --only, the other metrics of the last run stay in the file (each ratio is still taken side
// by side within its own module's run); a full run rewrites it.
const resultsPath = join(REPO_ROOT, "bench-results.json");
const kept: Metrics = only.length > 0 && existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, "utf8")) : {};
for (const name of Object.keys(kept)) if (ctx.wants(name)) delete kept[name];
writeFileSync(resultsPath, JSON.stringify({ ...kept, ...results }, null, 2) + "\n");
const rows = Object.entries(results).map(([name, m]) => [name, m.value.toPrecision(4), m.unit, m.note ?? ""]);
const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), ["metric", "value", "unit"][i]!.length));
console.log(["metric", "value", "unit"].map((h, i) => h.padEnd(widths[i]!)).join("  ") + "  note");
for (const r of rows) console.log(r.slice(0, 3).map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ") + "  " + r[3]);
console.log(JSON.stringify(results));
if (failures.length) {
  console.error(`[bench] ${failures.length} module(s) failed:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
