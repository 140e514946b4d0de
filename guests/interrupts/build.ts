// Builds the interrupts test guest (a multiboot ELF) with the system's gcc and ld into build/
// (gitignored). Rebuilt when a source file is newer than the output.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const DIR = path.dirname(fileURLToPath(import.meta.url));
const OUT_DIR = path.join(DIR, "build");
export const INTERRUPTS_ELF = path.join(OUT_DIR, "interrupts.elf");
const SOURCES = ["start.S", "main.c", "layout.h", "link.ld", "build.ts"];

function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { cwd: DIR, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`building the interrupts guest failed: ${cmd} ${args.join(" ")}\n${e.stderr?.toString() ?? e.message}`);
  }
}

export function buildInterruptsGuest(): string {
  const newest = Math.max(...SOURCES.map((s) => fs.statSync(path.join(DIR, s)).mtimeMs));
  if (fs.existsSync(INTERRUPTS_ELF) && fs.statSync(INTERRUPTS_ELF).mtimeMs >= newest) return INTERRUPTS_ELF;
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const cflags = ["-m32", "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie", "-fno-stack-protector", "-mgeneral-regs-only", "-O2", "-Wall", "-Werror", "-c"];
  const obj = (s: string) => path.join(OUT_DIR, s.replace(/\.[cS]$/, ".o"));
  for (const s of ["start.S", "main.c"]) run("gcc", [...cflags, s, "-o", obj(s)]);
  const tmp = `${INTERRUPTS_ELF}.${process.pid}.tmp`;
  run("ld", ["-m", "elf_i386", "-T", "link.ld", "-o", tmp, obj("start.S"), obj("main.c")]);
  fs.renameSync(tmp, INTERRUPTS_ELF);
  return INTERRUPTS_ELF;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(buildInterruptsGuest());
}
