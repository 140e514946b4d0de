// Builds the firmware image (guests/firmware/bios.S) into guests/firmware/build/bios.bin with the
// host's gcc, ld and objcopy (Node only). Rebuilds only when a source or tool changed (a stamp
// holds the hash); concurrent builders work in private folders and rename into place.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { checkFirmwareImage } from "../../machine/firmware/bios-build-check.ts";
import { FirmwareError } from "../../machine/firmware/errors.ts";

export { checkFirmwareImage };

export const FIRMWARE_SRC_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../guests/firmware");
export const FIRMWARE_BUILD_DIR = join(FIRMWARE_SRC_DIR, "build");
export const FIRMWARE_BIN = join(FIRMWARE_BUILD_DIR, "bios.bin");
const STAMP = join(FIRMWARE_BUILD_DIR, "bios.stamp");

function tool(cmd: string, args: string[], what: string): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { code?: string; stderr?: string };
    if (err.code === "ENOENT") throw new FirmwareError(`${cmd} not found: install Debian's gcc and binutils (apt-get install -y gcc binutils)`);
    throw new FirmwareError(`${what} failed:\n${err.stderr ?? String(e)}`);
  }
}

/** Returns the path of an up-to-date bios.bin, building it when needed. */
export function buildFirmware(): string {
  if (!existsSync(FIRMWARE_SRC_DIR)) throw new FirmwareError(`firmware sources not found at ${FIRMWARE_SRC_DIR}`);
  const files = readdirSync(FIRMWARE_SRC_DIR).filter((f) => /\.(S|h|ld)$/.test(f)).sort();
  if (!files.includes("bios.S") || !files.includes("bios.ld")) throw new FirmwareError(`${FIRMWARE_SRC_DIR} lacks bios.S or bios.ld`);
  const hash = createHash("sha256");
  for (const t of ["gcc", "ld", "objcopy"]) hash.update(tool(t, ["--version"], `${t} --version`).split("\n")[0]!);
  for (const f of files) hash.update(f).update("\0").update(readFileSync(join(FIRMWARE_SRC_DIR, f)));
  const digest = hash.digest("hex");
  if (existsSync(FIRMWARE_BIN) && existsSync(STAMP) && readFileSync(STAMP, "utf8").trim() === digest) return FIRMWARE_BIN;

  mkdirSync(FIRMWARE_BUILD_DIR, { recursive: true });
  const tmp = join(FIRMWARE_BUILD_DIR, `tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(tmp);
  try {
    const obj = join(tmp, "bios.o");
    const elf = join(tmp, "bios.elf");
    const bin = join(tmp, "bios.bin");
    tool("gcc", ["-m32", "-nostdlib", "-c", join(FIRMWARE_SRC_DIR, "bios.S"), "-o", obj], "assembling bios.S");
    tool("ld", ["-m", "elf_i386", "-nostdlib", "--no-warn-rwx-segments", "-T", join(FIRMWARE_SRC_DIR, "bios.ld"), "-o", elf, obj], "linking the firmware");
    tool("objcopy", ["-O", "binary", elf, bin], "objcopy of the firmware");
    checkFirmwareImage(new Uint8Array(readFileSync(bin)));
    renameSync(bin, FIRMWARE_BIN);
    writeFileSync(STAMP, digest + "\n");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return FIRMWARE_BIN;
}
