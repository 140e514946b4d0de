// Builds the engine test guest (a multiboot ELF) into build/ (gitignored); see guests/common/build.ts.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildGuest, guestElfPath, type GuestBuild } from "../common/build.ts";

const GUEST: GuestBuild = {
  what: "engine test guest",
  dir: path.dirname(fileURLToPath(import.meta.url)),
  elf: "enginetest.elf",
  sources: ["main.c"],
  dependencies: ["layout.h", "build.ts"],
};
export const ENGINETEST_ELF = guestElfPath(GUEST);

export function buildEngineTestGuest(): string {
  return buildGuest(GUEST);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(buildEngineTestGuest());
}
