// Builds one of the small multiboot test guests (guests/enginetest, guests/interrupts) with the
// system's gcc and ld into <guest>/build/ (gitignored): the shared entry common/start.S first,
// then the guest's own sources (which include common/guest.h; .S files common/protected-mode.h),
// linked with the guest's link.ld. Rebuilt when any input (sources, headers, linker script, these
// build files) is newer than the ELF.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const COMMON_DIR = path.dirname(fileURLToPath(import.meta.url));
const COMMON_START = path.join(COMMON_DIR, "start.S");
/** C helpers the guests include as "../common/guest.h". */
const COMMON_HEADER = path.join(COMMON_DIR, "guest.h");
/** Flat GDT and AP trampoline macros, included by start.S and by guests' .S files ("../common/protected-mode.h"). */
const COMMON_ASM_HEADER = path.join(COMMON_DIR, "protected-mode.h");
const CFLAGS = ["-m32", "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie", "-fno-stack-protector", "-O2", "-Wall", "-Werror", "-c"];

export interface GuestBuild {
  /** What the guest is called in error messages, e.g. "engine test guest". */
  what: string;
  /** The guest's folder (holds link.ld and the sources). */
  dir: string;
  /** File name of the ELF written into <dir>/build/. */
  elf: string;
  /** The guest's own .S/.c files, in link order after the shared entry. */
  sources: string[];
  /** Other inputs whose change must trigger a rebuild (headers, the guest's build.ts). */
  dependencies: string[];
  /** Compiler flags beyond the common ones. */
  extraCflags?: string[];
}

/** Path the ELF of `guest` is written to. */
export function guestElfPath(guest: Pick<GuestBuild, "dir" | "elf">): string {
  return path.join(guest.dir, "build", guest.elf);
}

/** Builds the guest if any input is newer than its ELF; returns the ELF's path. */
export function buildGuest(guest: GuestBuild): string {
  const outDir = path.join(guest.dir, "build");
  const elf = guestElfPath(guest);
  const inputs = [
    COMMON_START,
    COMMON_HEADER,
    COMMON_ASM_HEADER,
    fileURLToPath(import.meta.url),
    ...[...guest.sources, ...guest.dependencies, "link.ld"].map((s) => path.join(guest.dir, s)),
  ];
  const newest = Math.max(...inputs.map((s) => fs.statSync(s).mtimeMs));
  if (fs.existsSync(elf) && fs.statSync(elf).mtimeMs >= newest) return elf;

  const run = (cmd: string, args: string[]): void => {
    try {
      execFileSync(cmd, args, { cwd: guest.dir, stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`building the ${guest.what} failed: ${cmd} ${args.join(" ")}\n${e.stderr?.toString() ?? e.message}`);
    }
  };
  fs.mkdirSync(outDir, { recursive: true });
  const cflags = [...CFLAGS, ...(guest.extraCflags ?? [])];
  const obj = (s: string) => path.join(outDir, path.basename(s).replace(/\.[cS]$/, ".o"));
  // The shared entry gets its own object name so a guest file called start.S cannot clash with it.
  const objects = [path.join(outDir, "common-start.o")];
  run("gcc", [...cflags, COMMON_START, "-o", objects[0]]);
  for (const s of guest.sources) {
    run("gcc", [...cflags, s, "-o", obj(s)]);
    objects.push(obj(s));
  }
  // Written under a temporary name and renamed, so a concurrent reader never sees a partial ELF.
  const tmp = `${elf}.${process.pid}.tmp`;
  run("ld", ["-m", "elf_i386", "-T", "link.ld", "-o", tmp, ...objects]);
  fs.renameSync(tmp, elf);
  return elf;
}
