// The firmware's index is what browser code imports: nothing reachable from it may import a Node
// module (the page bundles it for a worker).

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { expect, it } from "vitest";

const INDEX = resolve(import.meta.dirname, "../../src/platform/firmware/index.ts");

function imports(file: string): string[] {
  const src = readFileSync(file, "utf8");
  return [...src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1]!);
}

it("index.ts and everything it reaches import no node: or other Node-only module", () => {
  const seen = new Set<string>();
  const bad: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of imports(file)) {
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      else if (spec.startsWith("node:") || ["fs", "path", "child_process", "os"].includes(spec)) bad.push(`${file}: ${spec}`);
    }
  };
  visit(INDEX);
  expect(seen.size, "the walk found the firmware modules").toBeGreaterThan(8);
  expect(bad).toEqual([]);
});
