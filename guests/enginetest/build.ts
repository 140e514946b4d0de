// Builds the engine test guest (a multiboot ELF) with the system's gcc and ld into build/
// (gitignored). Rebuilt when a source file is newer than the output.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const DIR = path.dirname(fileURLToPath(import.meta.url));
const OUT_DIR = path.join(DIR, "build");
export const ENGINETEST_ELF = path.join(OUT_DIR, "enginetest.elf");
const SOURCES = ["start.S", "main.c", "layout.h", "link.ld", "build.ts"];

function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { cwd: DIR, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`building the engine test guest failed: ${cmd} ${args.join(" ")}\n${e.stderr?.toString() ?? e.message}`);
  }
}

export function buildEngineTestGuest(): string {
  const newest = Math.max(...SOURCES.map((s) => fs.statSync(path.join(DIR, s)).mtimeMs));
  if (fs.existsSync(ENGINETEST_ELF) && fs.statSync(ENGINETEST_ELF).mtimeMs >= newest) return ENGINETEST_ELF;
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const cflags = ["-m32", "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie", "-fno-stack-protector", "-O2", "-Wall", "-Werror", "-c"];
  run("gcc", [...cflags, "start.S", "-o", path.join(OUT_DIR, "start.o")]);
  run("gcc", [...cflags, "main.c", "-o", path.join(OUT_DIR, "main.o")]);
  const tmp = `${ENGINETEST_ELF}.${process.pid}.tmp`;
  run("ld", ["-m", "elf_i386", "-T", "link.ld", "-o", tmp, path.join(OUT_DIR, "start.o"), path.join(OUT_DIR, "main.o")]);
  fs.renameSync(tmp, ENGINETEST_ELF);
  return ENGINETEST_ELF;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(buildEngineTestGuest());
}
