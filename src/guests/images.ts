// The default guest's image pipeline (Node only): Debian's i386 kernel, static busybox and SeaBIOS,
// at the exact versions pinned in guests/linux/pinned.json, fetched with `apt-get download` into
// .cache/debs, checked against their pinned SHA-256, unpacked with `dpkg -x`, and turned into the
// files the page and the tests boot from, in .cache/guest. Idempotent: a complete, valid cache built
// from the current pins is reused. Where apt cannot deliver, the error says what is missing and how
// to supply it by hand.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { fetchPinned, REPO_ROOT, sha256File, unpackDebs } from "./debs.ts";
import { checkBios, checkBzImage, checkInitramfs, checkVgaBios, ImageError } from "./image-checks.ts";
import { buildInitramfs, INIT_SCRIPT } from "./initramfs.ts";
import { loadPinnedManifest, pinsDigest, type PinnedManifest } from "./pinned.ts";
import { writeSystemMap } from "./symbols/extract.ts";

export { REPO_ROOT };
export const GUEST_DIR = join(REPO_ROOT, ".cache/guest");
/** Where a user who has no apt may put images by hand (documented in the README). */
export const MANUAL_DIR = join(REPO_ROOT, "guest-images");

export interface GuestImages {
  bzImage: string;
  initramfs: string;
  systemMap: string;
  bios: string;
  vgaBios: string;
  /** Kernel command line the default guest boots with. */
  cmdline: string;
}

/**
 * `nokaslr`: Debian's kernel otherwise picks a random physical base at each boot (48 MiB above its
 * link address in one boot here), and the live view names pages from System.map's link addresses.
 * `irqaffinity=0` (a documented kernel parameter: the default affinity of device interrupts): the
 * devices live on node 0 with vCPU 0, and without it the kernel put the serial port's IRQ 4 on CPU 1
 * in a 2-vCPU boot (the census counted it there), so with vCPU 1 on another tab every UART register
 * access of the interrupt handler would cross the network.
 * `lpj=4000000` (documented: preset loops per jiffy, so no CPU calibrates its delay loop): the value
 * the BSP computes from the TSC anyway (v86's 1 GHz / HZ 250; every Debian 686 kernel ticks at 250),
 * but each AP would otherwise time its delay loop against jiffies, which the BSP's tick counts before
 * the switch to the TSC clocksource; with each APIC timer counting its vCPU's running time, a BSP
 * whose loop faults on the AP's pages takes few ticks, and a 2-vCPU boot with 10 ms added one way
 * printed nothing for 600 s after "calibrate_delay_direct() failed" on CPU 1.
 * Kept equal to the page's DEFAULT_BOOT_CONFIG.cmdline (src/ui/page/boot-config.ts; a test checks).
 */
export const DEFAULT_CMDLINE = "console=ttyS0 tsc=reliable nokaslr irqaffinity=0 lpj=4000000";

export const guestPaths = (dir = GUEST_DIR): GuestImages => ({
  bzImage: join(dir, "linux/bzImage"),
  initramfs: join(dir, "linux/initramfs.cpio.gz"),
  systemMap: join(dir, "linux/System.map"),
  bios: join(dir, "bios/seabios.bin"),
  vgaBios: join(dir, "bios/vgabios.bin"),
  cmdline: DEFAULT_CMDLINE,
});

const HOW_TO_SUPPLY = `To supply the guest by hand, put these files in ${MANUAL_DIR}/:
  bzImage            an i386 Linux kernel (e.g. /boot/vmlinuz-* from Debian's linux-image-6.1.0-*-686-unsigned)
  initramfs.cpio.gz  a gzip-compressed newc cpio whose /init starts a shell on ttyS0
  seabios.bin        SeaBIOS (Debian's seabios package: /usr/share/seabios/bios.bin)
  vgabios.bin        a VGA BIOS (Debian's seabios package: /usr/share/seabios/vgabios-stdvga.bin)
  System.map         optional: the kernel's symbol map, for the live view
and run the setup again; or open the page with ?kernel=URL&initrd=URL.`;

type Log = (line: string) => void;

/** Validates every file of a guest folder; throws ImageError naming the first bad one. */
export function checkGuestDir(paths: GuestImages): void {
  const read = (p: string): Uint8Array => {
    if (!existsSync(p)) throw new ImageError(`missing guest image ${p}`);
    return new Uint8Array(readFileSync(p));
  };
  checkBzImage(read(paths.bzImage), paths.bzImage);
  checkInitramfs(read(paths.initramfs), paths.initramfs);
  checkBios(read(paths.bios), paths.bios);
  checkVgaBios(read(paths.vgaBios), paths.vgaBios);
}

/** Writes through a temporary name and renames, so a test reading the cache meanwhile never sees half a file. */
export function writeAtomic(path: string, bytes: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp-${process.pid}`, bytes);
  renameSync(`${path}.tmp-${process.pid}`, path);
}

export const copyAtomic = (from: string, to: string): void => writeAtomic(to, readFileSync(from));

/** What a cache built from `pinned` records, so that a changed pin or /init rebuilds it. */
export const defaultGuestDigest = (pinned: PinnedManifest): string => pinsDigest([pinned.kernel, pinned.busybox, pinned.bios], INIT_SCRIPT);

/** The kernel image inside an unpacked kernel package. */
export function vmlinuzIn(kernelRoot: string, deb: string): string {
  const bootDir = join(kernelRoot, "boot");
  const vmlinuz = existsSync(bootDir) ? readdirSync(bootDir).find((f) => f.startsWith("vmlinuz-")) : undefined;
  if (!vmlinuz) throw new ImageError(`${deb} holds no /boot/vmlinuz-*`);
  return join(bootDir, vmlinuz);
}

/** The default initramfs (busybox + /init), gzip-compressed, for the busybox in an unpacked busybox-static. */
export function defaultInitramfsGz(busyboxRoot: string): Uint8Array {
  return gzipSync(buildInitramfs(new Uint8Array(readFileSync(join(busyboxRoot, "bin/busybox")))), { level: 9 });
}

/** Builds .cache/guest from the pinned Debian packages. */
function buildFromDebian(log: Log): void {
  const pinned = loadPinnedManifest();
  let debs: string[];
  let unpacked: ReturnType<typeof unpackDebs>;
  try {
    debs = fetchPinned([pinned.kernel, pinned.busybox, pinned.bios], log);
    unpacked = unpackDebs({ kernel: debs[0]!, busybox: debs[1]!, seabios: debs[2]! });
  } catch (err) {
    if (err instanceof ImageError) throw new ImageError(`${err.message}\n${HOW_TO_SUPPLY}`);
    throw err;
  }
  const kernelDeb = debs[0]!;
  try {
    const out = guestPaths();
    copyAtomic(vmlinuzIn(unpacked.root("kernel"), kernelDeb), out.bzImage);
    copyAtomic(join(unpacked.root("seabios"), "usr/share/seabios/bios.bin"), out.bios);
    copyAtomic(join(unpacked.root("seabios"), "usr/share/seabios/vgabios-stdvga.bin"), out.vgaBios);
    log(`building the initramfs (busybox + /init) for ${pinned.kernel.package} ${pinned.kernel.version}`);
    writeAtomic(out.initramfs, defaultInitramfsGz(unpacked.root("busybox")));
    checkGuestDir(out);
    // Debian's /boot/System.map is a stub pointing at the -dbg package; the live view's symbols come
    // from the kernel image itself (the setup runs the same extraction; this keeps a rebuild whole).
    try {
      const own = `${out.systemMap}.${process.pid}`; // concurrent rebuilds must not share a temporary name
      writeSystemMap(out.bzImage, own);
      renameSync(own, out.systemMap);
    } catch (err) {
      rmSync(out.systemMap, { force: true });
      log(`no System.map: ${(err as Error).message}`);
    }
    const manifest = {
      pinned: defaultGuestDigest(pinned),
      kernelPackage: pinned.kernel.package,
      kernelVersion: pinned.kernel.version,
      debs: debs.map((d) => basename(d)),
      initSha256: createHash("sha256").update(INIT_SCRIPT).digest("hex"),
      files: Object.fromEntries(
        Object.entries(out)
          .filter(([k]) => k !== "cmdline")
          .filter(([, p]) => existsSync(p as string))
          .map(([k, p]) => [k, { path: (p as string).slice(GUEST_DIR.length + 1), sha256: sha256File(p as string) }]),
      ),
    };
    writeAtomic(join(GUEST_DIR, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  } finally {
    unpacked.remove();
  }
}

/** Copies a hand-supplied guest from guest-images/ into the cache, checking every file. */
function importManual(log: Log): void {
  log(`using the hand-supplied guest in ${MANUAL_DIR}`);
  const out = guestPaths();
  const manual = {
    bzImage: join(MANUAL_DIR, "bzImage"),
    initramfs: join(MANUAL_DIR, "initramfs.cpio.gz"),
    systemMap: join(MANUAL_DIR, "System.map"),
    bios: join(MANUAL_DIR, "seabios.bin"),
    vgaBios: join(MANUAL_DIR, "vgabios.bin"),
    cmdline: DEFAULT_CMDLINE,
  };
  checkGuestDir(manual);
  for (const key of ["bzImage", "initramfs", "bios", "vgaBios", "systemMap"] as const)
    if (existsSync(manual[key])) copyAtomic(manual[key], out[key]);
  writeAtomic(join(GUEST_DIR, "manifest.json"), JSON.stringify({ source: MANUAL_DIR }, null, 2) + "\n");
}

function cacheIsCurrent(): boolean {
  const manifestPath = join(GUEST_DIR, "manifest.json");
  if (!existsSync(manifestPath)) return false;
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    // A hand-supplied guest stays until the cache is removed; one built from Debian must match the
    // current pins and /init (a cache from before the pins has no digest and is rebuilt once).
    if (manifest.source !== MANUAL_DIR && manifest.pinned !== defaultGuestDigest(loadPinnedManifest())) return false;
    checkGuestDir(guestPaths());
    return true;
  } catch {
    return false;
  }
}

/** Makes sure .cache/guest holds a valid default guest; returns its paths. */
export function ensureGuestImages(log: Log = (l) => console.error(`[guest] ${l}`)): GuestImages {
  if (!cacheIsCurrent()) {
    if (existsSync(join(MANUAL_DIR, "bzImage"))) importManual(log);
    else buildFromDebian(log);
  }
  return guestPaths();
}

// Used by scripts: `tsx src/guests/images.ts` prepares the cache.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const paths = ensureGuestImages();
    console.error(`[guest] ready: ${dirname(paths.bzImage)}`);
  } catch (err) {
    console.error(`[guest] ${(err as Error).message}`);
    process.exit(1);
  }
}
