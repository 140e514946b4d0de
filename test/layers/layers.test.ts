// The layers of src/ import only downward. The rule is written once, here; each layer's
// tsconfig.json must reference exactly the layers the rule lets it import (so `tsc -b src` refuses
// an upward import too, with "File ... is not listed within the file list of project"). This test
// reads every import, type-only ones included, so it names the file and the line that breaks it.

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const SRC = join(ROOT, "src");

/** Which layers each layer may import (besides itself). Bottom first. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  protocol: [],
  guests: [],
  engine: ["protocol"],
  "engine/instrument": ["engine", "protocol"],
  fabric: ["protocol"],
  machine: ["protocol", "engine", "guests"],
  runtime: ["protocol", "engine", "engine/instrument", "machine", "fabric", "guests"],
  ui: ["protocol", "engine", "engine/instrument", "machine", "runtime", "fabric", "guests"],
};
/** Files of src/ outside every layer: ambient declarations the layers' tsconfigs include. */
const SHARED = new Set(["encoding.d.ts", "tsconfig.json"]);

/** The layer a path under src/ belongs to: the longest layer folder that holds it. */
export function layerOf(path: string): string | null {
  let best: string | null = null;
  for (const layer of Object.keys(MAY_IMPORT)) if ((path === layer || path.startsWith(`${layer}/`)) && (!best || layer.length > best.length)) best = layer;
  return best;
}

/** Relative specifiers a module names: static and dynamic imports, re-exports, `new URL(…, import.meta.url)`. */
export function specifiers(source: string): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+|new URL\(\s*)["'](\.{1,2}\/[^"'?]*)/gm;
  for (const m of source.matchAll(re)) out.push({ spec: m[1]!, line: source.slice(0, m.index).split("\n").length });
  return out;
}

/** Every import from one layer into a layer it may not import, as "file:line -> target (a → b)". */
export function violations(files: { path: string; source: string }[]): string[] {
  const bad: string[] = [];
  for (const { path, source } of files) {
    const from = layerOf(path);
    for (const { spec, line } of specifiers(source)) {
      const target = relative(".", join(dirname(path), spec));
      if (target.startsWith("..")) {
        bad.push(`${path}:${line} -> ${spec} (outside src/)`);
        continue;
      }
      const to = layerOf(target);
      if (from === null || to === null) {
        if (!SHARED.has(path)) bad.push(`${path}:${line} -> ${target} (${from ?? "no layer"} → ${to ?? "no layer"})`);
        continue;
      }
      if (to !== from && !MAY_IMPORT[from]!.includes(to)) bad.push(`${path}:${line} -> ${target} (${from} → ${to})`);
    }
  }
  return bad;
}

function sources(dir: string, base = dir): { path: string; source: string }[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p, base);
    return /\.(ts|mts|mjs)$/.test(name) ? [{ path: relative(base, p), source: readFileSync(p, "utf8") }] : [];
  });
}

describe("layers", () => {
  it("the checker flags an upward import and passes a downward one", () => {
    const files = [
      { path: "machine/firmware/x.ts", source: 'import type { A } from "../../runtime/node/vcpu-node.ts";\nimport { B } from "../../protocol/types.ts";' },
      { path: "protocol/y.ts", source: 'export { C } from "./types.ts";\nconst w = new URL("../ui/page/main.ts", import.meta.url);' },
    ];
    expect(violations(files)).toEqual([
      "machine/firmware/x.ts:1 -> runtime/node/vcpu-node.ts (machine → runtime)",
      "protocol/y.ts:2 -> ui/page/main.ts (protocol → ui)",
    ]);
  });

  it("every file of src/ is in a layer, and no layer imports upward", () => {
    const files = sources(SRC);
    expect(files.length).toBeGreaterThan(150);
    expect(files.filter((f) => layerOf(f.path) === null && !SHARED.has(f.path)).map((f) => f.path)).toEqual([]);
    expect(violations(files)).toEqual([]);
  });

  it("each layer's tsconfig references exactly the layers it may import", () => {
    for (const [layer, may] of Object.entries(MAY_IMPORT)) {
      const file = join(SRC, layer, "tsconfig.json");
      expect(existsSync(file), file).toBe(true);
      const config = JSON.parse(readFileSync(file, "utf8")) as { references?: { path: string }[]; compilerOptions: { composite?: boolean } };
      expect(config.compilerOptions.composite, `${layer}: composite`).toBe(true);
      const refs = (config.references ?? []).map((r) => relative(SRC, resolve(SRC, layer, r.path))).sort();
      expect(refs, `${layer}/tsconfig.json references`).toEqual([...may].sort());
    }
    const solution = JSON.parse(readFileSync(join(SRC, "tsconfig.json"), "utf8")) as { references: { path: string }[] };
    expect(solution.references.map((r) => r.path).sort()).toEqual(Object.keys(MAY_IMPORT).sort());
  });

  it("the pure layers see no DOM and no Node.js types", () => {
    for (const layer of ["protocol", "machine"]) {
      const { compilerOptions: o } = JSON.parse(readFileSync(join(SRC, layer, "tsconfig.json"), "utf8")) as { compilerOptions: { lib: string[]; types: string[] } };
      expect(o.lib, layer).toEqual(["ES2022"]);
      expect(o.types, layer).toEqual([]);
    }
  });
});
