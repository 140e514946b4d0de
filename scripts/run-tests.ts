// Runs the whole suite (type check, then vitest) and ends with one plain summary line,
// "N passed, N failed, N skipped", that CI reads. Exit status: non-zero when anything failed.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";

const resultsFile = ".cache/test-results.json";
mkdirSync(".cache", { recursive: true });
rmSync(resultsFile, { force: true });

// Two checks: each layer of src/ on its own (tsc -b src: per-layer libraries, and only the layers
// below it are visible), then everything with the tests, harness, bench and scripts.
const layers = spawnSync("npx", ["tsc", "-b", "src"], { stdio: "inherit" });
if (layers.status !== 0) console.error("[test] the layered type check failed (npx tsc -b src)");
const tsc = spawnSync("npx", ["tsc", "--noEmit", "-p", "."], { stdio: "inherit" });
if (tsc.status !== 0) console.error("[test] the type check failed (npx tsc --noEmit -p .)");
const typecheckOk = layers.status === 0 && tsc.status === 0;

const vitest = spawnSync(
  "npx",
  ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${resultsFile}`, ...process.argv.slice(2)],
  { stdio: "inherit" },
);

let passed = 0;
let failed = typecheckOk ? 0 : 1;
let skipped = 0;
if (existsSync(resultsFile)) {
  const r = JSON.parse(readFileSync(resultsFile, "utf8"));
  passed = r.numPassedTests;
  failed += r.numFailedTests;
  skipped = r.numPendingTests + r.numTodoTests;
  // A file that failed to load has no tests to count; count it as a failure.
  failed += r.testResults.filter((f: { status: string; assertionResults: unknown[] }) => f.status === "failed" && f.assertionResults.length === 0).length;
} else {
  failed += 1;
  console.error("[test] vitest wrote no results");
}
if (typecheckOk) passed += 1; // the type check counts as one test
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(vitest.status === 0 && typecheckOk && failed === 0 ? 0 : 1);
