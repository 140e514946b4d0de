// What the page and its Web Workers import must run in a browser: nothing reachable from the
// firmware's index, the page's entry or any worker entry may import a Node module (Vite only fails
// when the worker runs: "Module node:crypto has been externalized for browser compatibility", and
// every VM in a tab then fails to start).

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { expect, it } from "vitest";
import { workerEntries } from "../../vite.config.ts";

const INDEX = resolve(import.meta.dirname, "../../src/machine/firmware/index.ts");

/** What a module imports at run time (`import type` is erased, so it does not count). */
function imports(file: string): string[] {
  const src = readFileSync(file, "utf8");
  return [...src.matchAll(/^\s*(?:import|export)\s(?!type\s)[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1]!);
}

/** Every module reachable from `entry`, and the Node-only imports among them ("file: module", with the path that led there). */
function walk(entry: string): { seen: Set<string>; bad: string[] } {
  const seen = new Set<string>();
  const bad: string[] = [];
  const visit = (file: string, via: string[]) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of imports(file)) {
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec), [...via, file]);
      else if (spec.startsWith("node:") || ["fs", "path", "child_process", "os", "crypto", "worker_threads"].includes(spec))
        bad.push(`${[...via, file].map((f) => f.slice(ROOT.length + 1)).join(" -> ")}: ${spec}`);
    }
  };
  visit(entry, []);
  return { seen, bad };
}

const ROOT = resolve(import.meta.dirname, "../..");

it("index.ts and everything it reaches import no node: or other Node-only module", () => {
  const { seen, bad } = walk(INDEX);
  expect(seen.size, "the walk found the firmware modules").toBeGreaterThan(8);
  expect(bad).toEqual([]);
});

it("the page's entry and every Web Worker entry reach no Node-only module", () => {
  const entries = ["src/ui/page/main.ts", ...workerEntries()];
  expect(entries).toContain("src/runtime/web/node-worker.ts");
  for (const entry of entries) expect(walk(resolve(ROOT, entry)).bad, entry).toEqual([]);
});
