// Guests for the kernel matrix (Node only): any linux-image-6.1.0-N-686-unsigned the archive offers,
// with the default guest's initramfs and BIOS, in .cache/matrix/<N>/; and the larger initramfs
// (the default one plus the pinned Debian libraries), in .cache/matrix/large/. The default guest in
// .cache/guest is never touched beyond making sure it exists.

import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { archivePin, fetchPinned, kernelAbi, unpackDebs } from "./debs.ts";
import { checkBzImage, checkInitramfs } from "./image-checks.ts";
import { copyAtomic, ensureGuestImages, GUEST_DIR, guestPaths, REPO_ROOT, vmlinuzIn, writeAtomic, type GuestImages } from "./images.ts";
import { buildLargeInitramfs, INIT_SCRIPT, LARGE_INITRAMFS_EXCLUDES } from "./initramfs.ts";
import { loadPinnedManifest, pinsDigest, type DebPin } from "./pinned.ts";
import { treeEntries } from "./tree-entries.ts";

export const MATRIX_DIR = join(REPO_ROOT, ".cache/matrix");
export const LARGE_INITRAMFS = join(MATRIX_DIR, "large/initramfs.cpio.gz");
/** The larger initramfs must be at least this big uncompressed (the failing one was about 9 MB). */
export const LARGE_INITRAMFS_MIN_BYTES = 9_000_000;

type Log = (line: string) => void;
const defaultLog: Log = (l) => console.error(`[matrix] ${l}`);

const readJson = (path: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return null;
  }
};

/** The kernel's pin: the manifest's when it pins this package, else the archive's candidate at apt's SHA-256. */
export function kernelPin(pkg: string, log: Log = defaultLog): DebPin {
  const pinned = loadPinnedManifest();
  return pinned.kernel.package === pkg ? pinned.kernel : archivePin(pkg, "i386", log);
}

/**
 * A guest folder for one kernel package: its bzImage plus the default guest's initramfs and BIOS.
 * Reused while the default guest is unchanged (Debian gives every kernel upload a new ABI number N,
 * so one package name is one kernel).
 */
export function ensureMatrixGuest(kernelPackage: string, log: Log = defaultLog): GuestImages {
  const dir = join(MATRIX_DIR, String(kernelAbi(kernelPackage)));
  const out = guestPaths(dir);
  const base = ensureGuestImages(log);
  const stampPath = join(dir, "manifest.json");
  const stamp = readJson(stampPath);
  // A hand-supplied default guest has no pin digest; its initramfs is then recopied each time.
  const baseDigest = (readJson(join(GUEST_DIR, "manifest.json"))?.pinned as string | undefined) ?? "";
  if (stamp && stamp.kernelPackage === kernelPackage && stamp.base === baseDigest && baseDigest && [out.bzImage, out.initramfs, out.bios, out.vgaBios].every(existsSync))
    return out;
  const pin = kernelPin(kernelPackage, log);
  const [deb] = fetchPinned([pin], log) as [string];
  const unpacked = unpackDebs({ kernel: deb });
  try {
    const bz = vmlinuzIn(unpacked.root("kernel"), deb);
    checkBzImage(new Uint8Array(readFileSync(bz)), bz);
    copyAtomic(bz, out.bzImage);
  } finally {
    unpacked.remove();
  }
  for (const key of ["initramfs", "bios", "vgaBios"] as const) copyAtomic(base[key], out[key]);
  writeAtomic(stampPath, JSON.stringify({ kernelPackage, kernelVersion: pin.version, deb: basename(deb), sha256: pin.sha256, base: baseDigest }, null, 2) + "\n");
  log(`guest for ${kernelPackage} ${pin.version} in ${dir}`);
  return out;
}

/** The larger initramfs (gzip), built from the pinned busybox and largeInitramfs packages; its path. */
/** The Debian version of the kernel in a matrix guest folder (from its stamp), or null. */
export function matrixKernelVersion(kernelPackage: string): string | null {
  return (readJson(join(MATRIX_DIR, String(kernelAbi(kernelPackage)), "manifest.json"))?.kernelVersion as string | undefined) ?? null;
}

export function ensureLargeInitramfs(log: Log = defaultLog): string {
  const pinned = loadPinnedManifest();
  const pins = [pinned.busybox, ...pinned.largeInitramfs];
  const digest = pinsDigest(pins, INIT_SCRIPT, LARGE_INITRAMFS_EXCLUDES.join(","));
  const stampPath = join(MATRIX_DIR, "large/manifest.json");
  if (readJson(stampPath)?.pinned === digest && existsSync(LARGE_INITRAMFS)) return LARGE_INITRAMFS;
  const debs = fetchPinned(pins, log);
  const names = pins.map((p) => p.package);
  const unpacked = unpackDebs(Object.fromEntries(names.map((n, i) => [n, debs[i]!])));
  try {
    const busybox = new Uint8Array(readFileSync(join(unpacked.root(pinned.busybox.package), "bin/busybox")));
    const extra = pinned.largeInitramfs.flatMap((p) => treeEntries(unpacked.root(p.package), LARGE_INITRAMFS_EXCLUDES));
    const cpio = buildLargeInitramfs(busybox, extra);
    const gz = gzipSync(cpio, { level: 9 });
    checkInitramfs(gz, LARGE_INITRAMFS);
    writeAtomic(LARGE_INITRAMFS, gz);
    const info = { pinned: digest, packages: pins.map((p) => `${p.package}:${p.arch}=${p.version}`), cpioBytes: cpio.length, gzipBytes: gz.length };
    writeAtomic(stampPath, JSON.stringify(info, null, 2) + "\n");
    log(`larger initramfs: ${(cpio.length / 1e6).toFixed(1)} MB (${(gz.length / 1e6).toFixed(1)} MB gzip) from ${info.packages.join(", ")}`);
  } finally {
    unpacked.remove();
  }
  return LARGE_INITRAMFS;
}
