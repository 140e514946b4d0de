// Builds the AP-fault guest (a multiboot ELF) into build/ (gitignored); see guests/common/build.ts.
// Also a stand-in bzImage whose boot CPU panics v86 the same way (for the one-tab page, which
// boots only Linux kernels): ltr-kernel.S behind a minimal boot protocol 2.06 setup header.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
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

const LTR_KERNEL = path.join(GUEST.dir, "build", "ltr-bzImage");

/** Builds the stand-in bzImage (when its inputs changed) and returns its path. */
export function buildLtrKernel(): string {
  const src = path.join(GUEST.dir, "ltr-kernel.S");
  const newest = Math.max(fs.statSync(src).mtimeMs, fs.statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (fs.existsSync(LTR_KERNEL) && fs.statSync(LTR_KERNEL).mtimeMs >= newest) return LTR_KERNEL;
  const out = path.dirname(LTR_KERNEL);
  fs.mkdirSync(out, { recursive: true });
  const obj = path.join(out, "ltr-kernel.o");
  const bin = path.join(out, "ltr-kernel.bin");
  execFileSync("gcc", ["-m32", "-c", src, "-o", obj]);
  execFileSync("ld", ["-m", "elf_i386", "-Ttext=0x100000", "--oformat", "binary", "-o", bin, obj]);
  const code = fs.readFileSync(bin);
  // One setup sector after the boot sector; the protected-mode part follows at 1024, padded to a
  // bzImage's minimum of 4 KiB.
  const image = Buffer.alloc(Math.max(0x1000, 1024 + code.length + 512));
  image[0x1f1] = 1; // setup_sects
  image.writeUInt16LE(0xaa55, 0x1fe);
  image[0x200] = 0xeb; // short jump over the header: its displacement says where the header ends
  image[0x201] = 0x66;
  image.write("HdrS", 0x202, "latin1");
  image.writeUInt16LE(0x0206, 0x206); // boot protocol 2.06
  image[0x211] = 1; // LOADED_HIGH
  image.writeUInt32LE(0x100000, 0x214); // code32_start
  image.writeUInt32LE(0x37ffffff, 0x22c); // initrd_addr_max
  image.writeUInt32LE(0x100000, 0x230); // kernel_alignment
  image.writeUInt32LE(2047, 0x238); // cmdline_size
  code.copy(image, 1024);
  const tmp = `${LTR_KERNEL}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, image);
  fs.renameSync(tmp, LTR_KERNEL);
  return LTR_KERNEL;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(buildApFaultGuest());
  console.log(buildLtrKernel());
}
