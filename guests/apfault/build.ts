// Builds the AP-fault guest (a multiboot ELF) into build/ (gitignored); see guests/common/build.ts.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildGuest, guestElfPath, type GuestBuild } from "../common/build.ts";

const GUEST: GuestBuild = {
  what: "AP-fault guest",
  dir: path.dirname(fileURLToPath(import.meta.url)),
  elf: "apfault.elf",
  sources: ["ap.S", "main.c"],
  dependencies: ["build.ts"],
};
export const APFAULT_ELF = guestElfPath(GUEST);

export function buildApFaultGuest(): string {
  return buildGuest(GUEST);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(buildApFaultGuest());
}
