// Builds the interrupts test guest (a multiboot ELF) into build/ (gitignored); see guests/common/build.ts.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildGuest, guestElfPath, type GuestBuild } from "../common/build.ts";

const GUEST: GuestBuild = {
  what: "interrupts guest",
  dir: path.dirname(fileURLToPath(import.meta.url)),
  elf: "interrupts.elf",
  sources: ["isr.S", "main.c"],
  dependencies: ["layout.h", "build.ts"],
  // isr() is called from the stubs without saving FPU/SSE state, so C code must not use it.
  extraCflags: ["-mgeneral-regs-only"],
};
export const INTERRUPTS_ELF = guestElfPath(GUEST);

export function buildInterruptsGuest(): string {
  return buildGuest(GUEST);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(buildInterruptsGuest());
}
