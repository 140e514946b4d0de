// Checks on guest images, shared by the image pipeline (Node) and the page (before booting).
// Each returns nothing or throws an ImageError whose message names the file and the problem.

export class ImageError extends Error {
  override name = "ImageError";
}

function describe(what: string, bytes: Uint8Array): string {
  return `${what} (${bytes.length} bytes)`;
}

/** A Linux bzImage: the setup header's "HdrS" magic at 0x202 and a protected-mode kernel behind it. */
export function checkBzImage(bytes: Uint8Array, what = "kernel"): { protocol: string; setupSectors: number } {
  if (bytes.length < 0x1000)
    throw new ImageError(`${describe(what, bytes)} is too small to be a Linux bzImage`);
  const magic = String.fromCharCode(bytes[0x202]!, bytes[0x203]!, bytes[0x204]!, bytes[0x205]!);
  if (magic !== "HdrS" || bytes[0x1fe] !== 0x55 || bytes[0x1ff] !== 0xaa)
    throw new ImageError(`${describe(what, bytes)} is not a Linux bzImage (no "HdrS" boot header at 0x202)`);
  const version = bytes[0x206]! | (bytes[0x207]! << 8);
  if (version < 0x0206)
    throw new ImageError(`${what} uses boot protocol ${version >> 8}.${version & 0xff}; 2.06 or newer is needed`);
  const loadflags = bytes[0x211]!;
  if ((loadflags & 1) === 0)
    throw new ImageError(`${what} is a zImage loaded low, not a bzImage`);
  const setupSectors = bytes[0x1f1] || 4;
  if ((setupSectors + 1) * 512 >= bytes.length)
    throw new ImageError(`${describe(what, bytes)} is truncated: its setup code alone is ${(setupSectors + 1) * 512} bytes`);
  return { protocol: `${version >> 8}.${(version & 0xff).toString().padStart(2, "0")}`, setupSectors };
}

/** A gzip-compressed initramfs: gzip magic, deflate method, and a plausible size. */
export function checkInitramfs(bytes: Uint8Array, what = "initramfs"): void {
  if (bytes.length < 18)
    throw new ImageError(`${describe(what, bytes)} is too small to be a gzip-compressed cpio archive`);
  if (bytes[0] === 0x30 && bytes[1] === 0x37) return; // an uncompressed newc archive ("07...") is fine too
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b || bytes[2] !== 8)
    throw new ImageError(`${describe(what, bytes)} is neither gzip-compressed nor a newc cpio archive`);
}

/** A PC BIOS image: a power-of-two size of 64..256 KiB, as v86 maps it below 1 MiB. */
export function checkBios(bytes: Uint8Array, what = "BIOS"): void {
  const sizes = [0x10000, 0x20000, 0x40000];
  if (!sizes.includes(bytes.length))
    throw new ImageError(`${describe(what, bytes)} has the wrong size for a BIOS image (64, 128 or 256 KiB expected)`);
}

/** A statically linked 32-bit x86 ELF executable, as /bin/busybox must be in our initramfs. */
export function checkI386Elf(bytes: Uint8Array, what = "busybox"): void {
  if (bytes.length < 52 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46)
    throw new ImageError(`${describe(what, bytes)} is not an ELF executable`);
  if (bytes[4] !== 1) throw new ImageError(`${what} is a 64-bit ELF; the guest is 32-bit x86 (i386)`);
  const machine = bytes[18]! | (bytes[19]! << 8);
  if (machine !== 3) throw new ImageError(`${what} is an ELF for machine ${machine}, not i386 (3)`);
}

/** A VGA option ROM: the 0x55 0xAA signature and a length byte that fits the file. */
export function checkVgaBios(bytes: Uint8Array, what = "VGA BIOS"): void {
  if (bytes.length < 512 || bytes[0] !== 0x55 || bytes[1] !== 0xaa)
    throw new ImageError(`${describe(what, bytes)} is not an option ROM (no 0x55 0xAA signature)`);
  if (bytes[2]! * 512 > bytes.length)
    throw new ImageError(`${describe(what, bytes)} is truncated: its header says ${bytes[2]! * 512} bytes`);
}
