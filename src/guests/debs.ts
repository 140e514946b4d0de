// Debian packages for the guests (Node only): fetch pinned .debs with `apt-get download`, check each
// one's SHA-256 before use, unpack with `dpkg -x`, and ask apt which kernels and versions it offers.
// A cached .deb is used offline; apt is asked only for what is missing.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ImageError } from "./image-checks.ts";
import { aptName, debFileName, PINNED_MANIFEST, type DebPin } from "./pinned.ts";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const DEB_DIR = join(REPO_ROOT, ".cache/debs");

type Log = (line: string) => void;

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Refuses a .deb whose SHA-256 is not the pinned one: ImageError naming the file and both digests. */
export function verifyDeb(path: string, pin: DebPin): void {
  if (!existsSync(path)) throw new ImageError(`${path} is missing (${aptName(pin)}=${pin.version})`);
  const actual = sha256File(path);
  if (actual !== pin.sha256)
    throw new ImageError(
      `${path} has SHA-256 ${actual}, but ${aptName(pin)}=${pin.version} is pinned at SHA-256 ${pin.sha256}: the file is refused ` +
        `(delete it to download it again, or fix the pin in ${PINNED_MANIFEST})`,
    );
}

export function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  if (r.error) throw new ImageError(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new ImageError(`${cmd} ${args.join(" ")} failed (exit ${r.status}): ${(r.stderr ?? "").trim()}`);
  return r.stdout;
}

/** The versions in `apt-cache madison` output ("pkg | version | source" per line), in apt's order. */
export function parseMadison(text: string): string[] {
  const versions = text
    .split("\n")
    .map((l) => l.split("|").map((s) => s.trim()))
    .filter((f) => f.length >= 3 && f[1])
    .map((f) => f[1]!);
  return [...new Set(versions)];
}

/** The message for a pin the archive no longer offers. */
export function notOfferedMessage(pin: DebPin, offered: readonly string[], kernels: readonly string[] = []): string {
  const has = offered.length
    ? `apt has ${aptName(pin)} at ${offered.join(", ")}`
    : `apt knows no ${aptName(pin)} at all` + (kernels.length ? ` (its 686 kernels: ${kernels.join(", ")})` : "");
  return (
    `the pinned ${aptName(pin)}=${pin.version} is not offered by the archive: ${has}. ` +
    `Pin a version apt has in ${PINNED_MANIFEST} (version and sha256: apt-cache show ${aptName(pin)}), ` +
    `or put the .deb (${debFileName(pin)}) in ${DEB_DIR}/ by hand.`
  );
}

let updated = false;
function aptUpdate(log: Log): void {
  if (updated) return;
  updated = true;
  log("apt-get update");
  // A mirror mid-sync can make one index fail; apt then keeps the others, which is enough here.
  spawnSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "inherit", "inherit"] });
}

export function ensureI386(log: Log): void {
  if (!has("apt-get") || !has("dpkg")) throw new ImageError("apt-get and dpkg are needed to fetch the guest's Debian packages and are not installed");
  const foreign = run("dpkg", ["--print-foreign-architectures"]);
  if (!foreign.split("\n").includes("i386")) {
    log("adding the i386 architecture to dpkg (needed for the guest's kernel and busybox)");
    run("dpkg", ["--add-architecture", "i386"]);
    updated = false;
    aptUpdate(log);
  }
}

const madison = (pin: DebPin): string[] => parseMadison(run("apt-cache", ["madison", aptName(pin)]));

/** linux-image-6.1.0-N-686-unsigned packages apt knows of, by N ascending. */
export function archiveKernels(): string[] {
  const out = run("apt-cache", ["search", "--names-only", "^linux-image-6\\.1\\.0-[0-9]+-686-unsigned$"]);
  const names = out
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => /^linux-image-6\.1\.0-\d+-686-unsigned$/.test(n));
  return [...new Set(names)].sort((a, b) => kernelAbi(a) - kernelAbi(b));
}

/** N of linux-image-6.1.0-N-686-unsigned. */
export function kernelAbi(pkg: string): number {
  const m = /^linux-image-6\.1\.0-(\d+)-/.exec(pkg);
  if (!m) throw new ImageError(`${pkg} is not a linux-image-6.1.0-N-* package`);
  return Number(m[1]);
}

/** The version apt would install of `pkg:arch`, pinned at the SHA-256 apt's index gives (for kernels the manifest does not pin). */
export function archivePin(pkg: string, arch: DebPin["arch"], log: Log): DebPin {
  ensureI386(log);
  const candidate = () => /Candidate: (\S+)/.exec(run("apt-cache", ["policy", `${pkg}:${arch}`]))?.[1];
  let version = candidate();
  if (!version || version === "(none)") {
    aptUpdate(log);
    version = candidate();
  }
  if (!version || version === "(none)")
    throw new ImageError(`apt offers no ${pkg}:${arch} (its 686 kernels: ${archiveKernels().join(", ") || "none"})`);
  const show = run("apt-cache", ["show", `${pkg}:${arch}=${version}`]);
  const sha256 = /^SHA256: ([0-9a-f]{64})$/m.exec(show)?.[1];
  if (!sha256) throw new ImageError(`apt-cache show ${pkg}:${arch}=${version} gives no SHA256`);
  return { package: pkg, arch, version, sha256 };
}

/**
 * The pinned .debs in .cache/debs, downloaded where missing, each checked against its SHA-256.
 * A version the archive no longer offers fails with what apt has instead.
 */
export function fetchPinned(pins: readonly DebPin[], log: Log): string[] {
  mkdirSync(DEB_DIR, { recursive: true });
  const paths = pins.map((p) => join(DEB_DIR, debFileName(p)));
  const missing = pins.filter((_, i) => !existsSync(paths[i]!));
  if (missing.length) {
    ensureI386(log);
    let absent = missing.filter((p) => !madison(p).includes(p.version));
    if (absent.length) {
      aptUpdate(log);
      absent = absent.filter((p) => !madison(p).includes(p.version));
    }
    if (absent.length) {
      const kernels = absent.some((p) => p.package.startsWith("linux-image-")) ? archiveKernels() : [];
      throw new ImageError(absent.map((p) => notOfferedMessage(p, madison(p), kernels)).join("\n"));
    }
    const wanted = missing.map((p) => `${aptName(p)}=${p.version}`);
    log(`downloading ${wanted.join(", ")} into ${DEB_DIR}`);
    // _apt cannot write into a root-owned cache, hence the sandbox off.
    const r = spawnSync("apt-get", ["download", "-q", "-o", "APT::Sandbox::User=root", ...wanted], { cwd: DEB_DIR, stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) throw new ImageError(`apt-get download ${wanted.join(" ")} failed (exit ${r.status})`);
  }
  pins.forEach((p, i) => verifyDeb(paths[i]!, p));
  return paths;
}

/** Unpacks .debs (dpkg -x) into a fresh folder under .cache/debs, so concurrent builds never share one. */
export function unpackDebs(debs: Record<string, string>): { dir: string; root(name: string): string; remove(): void } {
  mkdirSync(DEB_DIR, { recursive: true });
  const dir = mkdtempSync(join(DEB_DIR, "unpack-"));
  for (const [name, deb] of Object.entries(debs)) run("dpkg", ["-x", deb, join(dir, name)]);
  return { dir, root: (name) => join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
