// The default guest's image pipeline (Node only): Debian's i386 kernel, static busybox and SeaBIOS,
// fetched with `apt-get download` into .cache/debs, unpacked with `dpkg -x`, and turned into the
// files the page and the tests boot from, in .cache/guest. Idempotent: a complete, valid cache is
// reused. Where apt cannot deliver, the error says what is missing and how to supply it by hand.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { checkBios, checkBzImage, checkInitramfs, checkVgaBios, ImageError } from "./image-checks.ts";
import { buildInitramfs, INIT_SCRIPT } from "./initramfs.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const GUEST_DIR = join(REPO_ROOT, ".cache/guest");
const DEB_DIR = join(REPO_ROOT, ".cache/debs");
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

export const DEFAULT_CMDLINE = "console=ttyS0 tsc=reliable";

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

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

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

function run(cmd: string, args: string[], opts: { cwd?: string; quiet?: boolean } = {}): string {
  const result = spawnSync(cmd, args, {
    cwd: opts.cwd,
    encoding: "utf8",
    stdio: opts.quiet ? ["ignore", "pipe", "pipe"] : ["ignore", "pipe", "inherit"],
  });
  if (result.error) throw new ImageError(`cannot run ${cmd}: ${result.error.message}\n${HOW_TO_SUPPLY}`);
  if (result.status !== 0)
    throw new ImageError(`${cmd} ${args.join(" ")} failed (exit ${result.status}): ${(result.stderr ?? "").trim()}\n${HOW_TO_SUPPLY}`);
  return result.stdout;
}

function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** The newest linux-image-6.1.0-N-686-unsigned apt knows of, or null. */
function newestKernelPackage(): string | null {
  const out = run("apt-cache", ["search", "--names-only", "^linux-image-6\\.1\\.0-[0-9]+-686-unsigned$"], { quiet: true });
  const names = out
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => /^linux-image-6\.1\.0-\d+-686-unsigned$/.test(n));
  names.sort((a, b) => Number(a.split("-")[4]) - Number(b.split("-")[4]));
  return names.at(-1) ?? null;
}

function ensureI386(log: Log): void {
  const foreign = run("dpkg", ["--print-foreign-architectures"], { quiet: true });
  if (!foreign.split("\n").includes("i386")) {
    log("adding the i386 architecture to dpkg (needed for the guest's kernel and busybox)");
    run("dpkg", ["--add-architecture", "i386"]);
  }
}

function aptUpdate(log: Log): void {
  log("apt-get update");
  // A mirror mid-sync can make one index fail; apt then keeps the others, which is enough here.
  spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
}

function fetchDebs(log: Log): { kernelPkg: string; debs: string[] } {
  if (!has("apt-get") || !has("dpkg"))
    throw new ImageError(`apt-get and dpkg are needed to fetch the default guest and are not installed.\n${HOW_TO_SUPPLY}`);
  ensureI386(log);
  let kernelPkg = newestKernelPackage();
  if (!kernelPkg || run("apt-cache", ["policy", "busybox-static:i386"], { quiet: true }).includes("Candidate: (none)")) {
    aptUpdate(log);
    kernelPkg = newestKernelPackage();
  }
  if (!kernelPkg)
    throw new ImageError(`apt knows no package linux-image-6.1.0-*-686-unsigned (is Debian bookworm's i386 archive reachable?)\n${HOW_TO_SUPPLY}`);
  mkdirSync(DEB_DIR, { recursive: true });
  const cached = readdirSync(DEB_DIR).filter((f) => f.endsWith(".deb"));
  const prefixes = [`${kernelPkg}_`, "busybox-static_", "seabios_"];
  if (prefixes.every((p) => cached.some((f) => f.startsWith(p)))) {
    log(`reusing the packages already downloaded in ${DEB_DIR}`);
    return { kernelPkg, debs: cached };
  }
  const wanted = [`${kernelPkg}:i386`, "busybox-static:i386", "seabios"];
  log(`downloading ${wanted.join(", ")} (about 55 MB) into ${DEB_DIR}`);
  // apt-get prints its own progress; _apt cannot write into a root-owned cache, hence the sandbox off.
  const result = spawnSync("apt-get", ["download", "-o", "APT::Sandbox::User=root", ...wanted], { cwd: DEB_DIR, stdio: "inherit" });
  if (result.status !== 0)
    throw new ImageError(`apt-get download ${wanted.join(" ")} failed (exit ${result.status}).\n${HOW_TO_SUPPLY}`);
  const debs = readdirSync(DEB_DIR).filter((f) => f.endsWith(".deb"));
  return { kernelPkg, debs };
}

function pick(debs: string[], prefix: string): string {
  const matches = debs.filter((d) => d.startsWith(prefix)).sort();
  const deb = matches.at(-1);
  if (!deb) throw new ImageError(`no ${prefix}*.deb in ${DEB_DIR} after apt-get download.\n${HOW_TO_SUPPLY}`);
  return join(DEB_DIR, deb);
}

function unpack(deb: string, into: string): void {
  rmSync(into, { recursive: true, force: true });
  mkdirSync(into, { recursive: true });
  run("dpkg", ["-x", deb, into]);
}

/** Builds .cache/guest from Debian's packages. */
function buildFromDebian(log: Log): void {
  const { kernelPkg, debs } = fetchDebs(log);
  const kernelDeb = pick(debs, `${kernelPkg}_`);
  const root = join(DEB_DIR, "root");
  unpack(kernelDeb, join(root, "kernel"));
  unpack(pick(debs, "busybox-static_"), join(root, "busybox"));
  unpack(pick(debs, "seabios_"), join(root, "seabios"));

  const bootDir = join(root, "kernel/boot");
  const vmlinuz = readdirSync(bootDir).find((f) => f.startsWith("vmlinuz-"));
  const systemMap = readdirSync(bootDir).find((f) => f.startsWith("System.map-"));
  if (!vmlinuz) throw new ImageError(`${kernelDeb} holds no /boot/vmlinuz-*`);

  const out = guestPaths();
  mkdirSync(dirname(out.bzImage), { recursive: true });
  mkdirSync(dirname(out.bios), { recursive: true });
  copyFileSync(join(bootDir, vmlinuz), out.bzImage);
  // Debian's /boot/System.map is a stub pointing at the -dbg package, which the main archive lacks;
  // keep it only when it holds real symbols.
  if (systemMap && readFileSync(join(bootDir, systemMap), "utf8").split("\n").length > 1000)
    copyFileSync(join(bootDir, systemMap), out.systemMap);
  else rmSync(out.systemMap, { force: true });
  copyFileSync(join(root, "seabios/usr/share/seabios/bios.bin"), out.bios);
  copyFileSync(join(root, "seabios/usr/share/seabios/vgabios-stdvga.bin"), out.vgaBios);

  log("building the initramfs (busybox + /init)");
  const busybox = new Uint8Array(readFileSync(join(root, "busybox/bin/busybox")));
  writeFileSync(out.initramfs, gzipSync(buildInitramfs(busybox), { level: 9 }));

  checkGuestDir(out);
  const manifest = {
    kernelPackage: kernelPkg,
    debs: [kernelDeb, pick(debs, "busybox-static_"), pick(debs, "seabios_")].map((d) => d.slice(DEB_DIR.length + 1)),
    initSha256: createHash("sha256").update(INIT_SCRIPT).digest("hex"),
    files: Object.fromEntries(
      Object.entries(out)
        .filter(([k]) => k !== "cmdline")
        .filter(([, p]) => existsSync(p as string))
        .map(([k, p]) => [k, { path: (p as string).slice(GUEST_DIR.length + 1), sha256: sha256(p as string) }]),
    ),
  };
  writeFileSync(join(GUEST_DIR, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
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
  mkdirSync(dirname(out.bzImage), { recursive: true });
  mkdirSync(dirname(out.bios), { recursive: true });
  for (const key of ["bzImage", "initramfs", "bios", "vgaBios", "systemMap"] as const)
    if (existsSync(manual[key])) copyFileSync(manual[key], out[key]);
  writeFileSync(join(GUEST_DIR, "manifest.json"), JSON.stringify({ source: MANUAL_DIR }, null, 2) + "\n");
}

function cacheIsCurrent(): boolean {
  const manifestPath = join(GUEST_DIR, "manifest.json");
  if (!existsSync(manifestPath)) return false;
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    // A changed /init means the initramfs must be rebuilt.
    if (manifest.initSha256 && manifest.initSha256 !== createHash("sha256").update(INIT_SCRIPT).digest("hex")) return false;
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
