// Builds the self-test guest (guests/selftest) into guests/selftest/build/selftest.elf with the
// host's gcc and ld. Rebuilds only when a source, the flags or the compiler changed (a stamp
// file holds the hash); concurrent callers build in private folders and rename into place.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

export const SELFTEST_SRC_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../guests/selftest");
export const SELFTEST_BUILD_DIR = join(SELFTEST_SRC_DIR, "build");
/** Headers outside guests/selftest that its sources include (a change to one rebuilds the ELF). */
const SHARED_HEADERS = ["../common/protected-mode.h"];
export const SELFTEST_ELF = join(SELFTEST_BUILD_DIR, "selftest.elf");
const STAMP = join(SELFTEST_BUILD_DIR, "selftest.stamp");

export const CFLAGS = [
  "-m32",
  "-march=i686",
  "-ffreestanding",
  "-nostdlib",
  "-fno-pic",
  "-fno-pie",
  "-fno-stack-protector",
  "-fno-builtin",
  // otherwise GCC may turn a copy loop into a call to memcpy/memset
  "-fno-tree-loop-distribute-patterns",
  // no FPU/SSE state is saved on interrupts, so the compiler must not use those registers
  "-mno-sse",
  "-mno-mmx",
  "-mgeneral-regs-only",
  "-O2",
  "-std=gnu11",
  "-Wall",
  "-Wextra",
  "-Werror",
];
export const LDFLAGS = ["-m", "elf_i386", "-nostdlib", "-z", "max-page-size=0x1000", "--no-warn-rwx-segments"];

export class SelftestBuildError extends Error {
  override name = "SelftestBuildError";
}

function sources(): { objects: string[]; files: string[] } {
  if (!existsSync(SELFTEST_SRC_DIR)) throw new SelftestBuildError(`self-test sources not found at ${SELFTEST_SRC_DIR}`);
  const files = readdirSync(SELFTEST_SRC_DIR)
    .filter((f) => /\.(c|S|h|ld)$/.test(f))
    .sort();
  // boot.o first: it holds the multiboot header, which must be within the file's first 8 KiB
  const objects = files.filter((f) => /\.(c|S)$/.test(f)).sort((a, b) => (a === "boot.S" ? -1 : b === "boot.S" ? 1 : a.localeCompare(b)));
  if (!objects.includes("boot.S") || !files.includes("linker.ld"))
    throw new SelftestBuildError(`${SELFTEST_SRC_DIR} lacks boot.S or linker.ld`);
  return { objects, files };
}

async function toolVersion(tool: string): Promise<string> {
  try {
    const { stdout } = await run(tool, ["--version"]);
    return stdout.split("\n")[0] ?? "";
  } catch {
    throw new SelftestBuildError(`${tool} not found: install Debian's build-essential (apt-get install -y gcc binutils)`);
  }
}

/** Checks the built file is a 32-bit x86 ELF with a valid multiboot v1 header in its first 8 KiB. */
export function checkMultibootElf(bytes: Uint8Array): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || dv.getUint32(0, false) !== 0x7f454c46) throw new SelftestBuildError("self-test image is not an ELF file");
  if (bytes[4] !== 1 || dv.getUint16(18, true) !== 3) throw new SelftestBuildError("self-test image is not a 32-bit x86 ELF");
  for (let off = 0; off + 12 <= Math.min(bytes.length, 8192); off += 4) {
    if (dv.getUint32(off, true) !== 0x1badb002) continue;
    const flags = dv.getUint32(off + 4, true);
    if (((0x1badb002 + flags + dv.getUint32(off + 8, true)) >>> 0) === 0) return;
  }
  throw new SelftestBuildError("self-test image has no valid multiboot header in its first 8 KiB");
}

let inFlight: Promise<string> | undefined;

/** Returns the path of an up-to-date selftest.elf, building it when needed. */
export function buildSelftest(): Promise<string> {
  inFlight ??= doBuild().finally(() => {
    inFlight = undefined;
  });
  return inFlight;
}

async function doBuild(): Promise<string> {
  const { objects, files } = sources();
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ CFLAGS, LDFLAGS, gcc: await toolVersion("gcc"), ld: await toolVersion("ld") }));
  for (const f of files) hash.update(f).update("\0").update(readFileSync(join(SELFTEST_SRC_DIR, f)));
  // boot.S includes the flat GDT and AP trampoline shared with the other test guests.
  for (const f of SHARED_HEADERS) hash.update(f).update("\0").update(readFileSync(join(SELFTEST_SRC_DIR, f)));
  const digest = hash.digest("hex");
  if (existsSync(SELFTEST_ELF) && existsSync(STAMP) && readFileSync(STAMP, "utf8").trim() === digest) return SELFTEST_ELF;

  mkdirSync(SELFTEST_BUILD_DIR, { recursive: true });
  const tmp = join(SELFTEST_BUILD_DIR, `tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(tmp);
  try {
    const objs: string[] = [];
    for (const src of objects) {
      const obj = join(tmp, src.replace(/\.(c|S)$/, ".o"));
      try {
        await run("gcc", [...CFLAGS, "-c", join(SELFTEST_SRC_DIR, src), "-o", obj]);
      } catch (e) {
        throw new SelftestBuildError(`compiling ${src} failed:\n${(e as { stderr?: string }).stderr ?? String(e)}`);
      }
      objs.push(obj);
    }
    const elf = join(tmp, "selftest.elf");
    try {
      await run("ld", [...LDFLAGS, "-T", join(SELFTEST_SRC_DIR, "linker.ld"), "-o", elf, ...objs]);
    } catch (e) {
      throw new SelftestBuildError(`linking the self-test failed:\n${(e as { stderr?: string }).stderr ?? String(e)}`);
    }
    checkMultibootElf(new Uint8Array(readFileSync(elf)));
    renameSync(elf, SELFTEST_ELF);
    writeFileSync(STAMP, digest + "\n");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return SELFTEST_ELF;
}
