// Node only: turns a bzImage into a System.map-format file, for kernels shipped without one.
// The bzImage's payload is the compressed vmlinux (XZ for Debian's kernels); Debian's `xz`
// (xz-utils) decompresses it, then kallsyms.ts reads the symbols out of it.
//
//   tsx src/guests/symbols/extract.ts [bzImage] [System.map]
//   (defaults: .cache/guest/linux/bzImage -> .cache/guest/linux/System.map)

import { spawnSync } from "node:child_process";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { kernelSymbols, KallsymsError, type KernelSymbolsResult } from "./kallsyms.ts";
import { formatSystemMapLine } from "./system-map.ts";

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/** The compressed payload of a bzImage (boot protocol 2.08+ says where it is). */
export function bzImagePayload(bz: Uint8Array): Uint8Array {
  const dv = new DataView(bz.buffer, bz.byteOffset, bz.byteLength);
  if (bz.length < 0x250 || dv.getUint32(0x202, true) !== 0x53726448) throw new KallsymsError("not a Linux bzImage (no HdrS signature at 0x202)");
  if (dv.getUint16(0x206, true) < 0x208) throw new KallsymsError("bzImage boot protocol is older than 2.08: it does not say where its payload is");
  const setupSects = bz[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + dv.getUint32(0x248, true);
  const length = dv.getUint32(0x24c, true);
  if (start + length > bz.length) throw new KallsymsError("bzImage payload runs past the end of the file");
  const payload = bz.subarray(start, start + length);
  if (!XZ_MAGIC.every((b, i) => payload[i] === b)) throw new KallsymsError("the bzImage payload is not XZ-compressed (only XZ is supported: Debian's kernels use it)");
  return payload;
}

/** Decompresses the vmlinux with Debian's xz. */
export function decompressVmlinux(bz: Uint8Array): Uint8Array {
  const r = spawnSync("xz", ["--decompress", "--stdout", "--single-stream"], { input: bzImagePayload(bz), maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw new KallsymsError(`cannot run xz (install Debian's xz-utils): ${r.error.message}`);
  // The kernel's XZ stream is followed by the payload's size word; xz may warn but the data is whole.
  if (!r.stdout || r.stdout.length === 0) throw new KallsymsError(`xz failed: ${r.stderr?.toString().trim()}`);
  return new Uint8Array(r.stdout);
}

/** Writes System.map text for the kernel in `bzImagePath` to `outPath`; returns what it found. */
export function writeSystemMap(bzImagePath: string, outPath: string): KernelSymbolsResult & { ms: number } {
  const t0 = performance.now();
  const result = kernelSymbols(decompressVmlinux(new Uint8Array(readFileSync(bzImagePath))));
  const text = result.symbols.map(formatSystemMapLine).join("\n") + "\n";
  writeFileSync(outPath + ".tmp", text);
  renameSync(outPath + ".tmp", outPath);
  return { ...result, ms: performance.now() - t0 };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(fileURLToPath(import.meta.url), "../../../..");
  const bz = process.argv[2] ?? join(root, ".cache/guest/linux/bzImage");
  const out = process.argv[3] ?? join(root, ".cache/guest/linux/System.map");
  try {
    const r = writeSystemMap(bz, out);
    console.error(
      `[symbols] ${out}: ${r.symbols.length} symbols (${r.textSymbols} text from kallsyms, ${r.exportedAdded} exported variables/functions from __ksymtab, ${r.sections} section starts) in ${Math.round(r.ms)} ms`,
    );
  } catch (err) {
    console.error(`[symbols] ${(err as Error).message}`);
    process.exit(1);
  }
}
