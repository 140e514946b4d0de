// Builds the instrumented v86.wasm once and caches it in .cache/v86/ (gitignored). The file name
// carries the input hash and the pass version, so a changed input or pass yields a new build.

import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AUDIT_PASS_VERSION, PASS_VERSION } from "./expected.ts";
import { INTERRUPTS_PASS_VERSION } from "../interrupts/abi.ts";
import { sha256 } from "./hash.ts";
import type { InstrumentReport } from "./pass.ts";
import type { AuditReport } from "../audit-sites.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const STOCK_WASM = path.join(REPO_ROOT, "node_modules/v86/build/v86.wasm");
export const CACHE_DIR = path.join(REPO_ROOT, ".cache/v86");

export interface EnsureOptions {
  /** Input wasm (default: the pinned node_modules/v86/build/v86.wasm). */
  input?: string;
  cacheDir?: string;
  log?: (message: string) => void;
  /** The coherence-audit build (debug: every guest-RAM access checked; see audit-pass.ts). */
  audit?: boolean;
  /** A build that keeps v86's bugs (fixes-pass.ts), for the tests that show what the fixes prevent. */
  withoutFixes?: boolean;
}

/** Returns the path of the instrumented wasm, building it when missing or stale. */
export async function ensureInstrumentedWasm(options: EnsureOptions = {}): Promise<string> {
  const input = options.input ?? STOCK_WASM;
  const cacheDir = options.cacheDir ?? CACHE_DIR;
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(input);
  } catch (err) {
    throw new Error(`cannot read v86 wasm at ${input} (is v86 installed? run npm ci): ${(err as Error).message}`);
  }
  const hash = sha256(bytes);
  const out = path.join(cacheDir, `v86-giantweb-${hash.slice(0, 16)}-p${PASS_VERSION}i${INTERRUPTS_PASS_VERSION}${options.audit ? `a${AUDIT_PASS_VERSION}` : ""}${options.withoutFixes ? "-nofix" : ""}.wasm`);
  try {
    const cached = await fs.readFile(out);
    const meta = JSON.parse(await fs.readFile(out + ".json", "utf8")) as { outputSha256?: string };
    if (meta.outputSha256 === sha256(cached)) return out;
    options.log?.(`cached ${out} does not match its record; rebuilding`);
  } catch {
    // missing or unreadable: build below
  }
  options.log?.(`instrumenting ${input} -> ${out}`);
  // binaryen is large; load it only when a build is needed.
  const { instrumentV86Wasm } = await import("./pass.ts");
  const { output, report } = instrumentV86Wasm(bytes, { audit: options.audit, withoutFixes: options.withoutFixes });
  await fs.mkdir(cacheDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await fs.writeFile(tmp, output);
  const meta: InstrumentReport & { outputSha256: string; passVersion: number } = {
    ...report,
    outputSha256: sha256(output),
    passVersion: PASS_VERSION,
  };
  await fs.writeFile(out + ".json", JSON.stringify(meta, null, 2) + "\n");
  await fs.rename(tmp, out); // atomic, so a concurrent reader never sees a partial file
  return out;
}

/** The audit build's site table (audit-pass.ts), read from the record beside the wasm. */
export async function readAuditReport(wasmPath: string): Promise<AuditReport> {
  const meta = JSON.parse(await fs.readFile(wasmPath + ".json", "utf8")) as { audit?: AuditReport };
  if (!meta.audit) throw new Error(`${wasmPath} is not an audit build (no audit record beside it)`);
  return meta.audit;
}
