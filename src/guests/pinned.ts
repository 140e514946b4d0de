// The pinned guest: which Debian packages (exact version, .deb SHA-256) the default guest and the
// matrix's larger initramfs are built from, read from guests/linux/pinned.json. Parsing and
// validation are pure; only loadPinnedManifest touches the file system.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ImageError } from "./image-checks.ts";

export const PINNED_MANIFEST = join(resolve(dirname(fileURLToPath(import.meta.url)), "../.."), "guests/linux/pinned.json");

/** One Debian binary package at one version, and the SHA-256 of its .deb. */
export interface DebPin {
  package: string;
  arch: "i386" | "all";
  version: string;
  sha256: string;
}

export interface PinnedManifest {
  kernel: DebPin;
  busybox: DebPin;
  bios: DebPin;
  /** Added (contents, minus documentation) to the larger initramfs of the matrix. */
  largeInitramfs: DebPin[];
}

const PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]+$/;
// Debian policy: [epoch:]upstream[-revision], upstream starting with a digit.
const VERSION_RE = /^(\d+:)?\d[A-Za-z0-9.+~-]*$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const KERNEL_RE = /^linux-image-\S+-686(-pae)?(-unsigned)?$/;

function pinAt(value: unknown, where: string, source: string): DebPin {
  const bad = (what: string) => new ImageError(`${source}: ${where} ${what}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("must be an object { package, arch, version, sha256 }");
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).filter((k) => !["package", "arch", "version", "sha256"].includes(k));
  if (extra.length) throw bad(`has unknown field(s) ${extra.join(", ")}`);
  if (typeof v.package !== "string" || !PACKAGE_RE.test(v.package)) throw bad(`has an invalid package name ${JSON.stringify(v.package)}`);
  if (v.arch !== "i386" && v.arch !== "all") throw bad(`(${v.package}) has arch ${JSON.stringify(v.arch)}; the guest takes "i386" or "all"`);
  if (typeof v.version !== "string" || !VERSION_RE.test(v.version)) throw bad(`(${v.package}) has an invalid Debian version ${JSON.stringify(v.version)}`);
  if (typeof v.sha256 !== "string" || !SHA256_RE.test(v.sha256))
    throw bad(`(${v.package}) has an invalid sha256 ${JSON.stringify(v.sha256)} (64 lower-case hex digits expected)`);
  return { package: v.package, arch: v.arch, version: v.version, sha256: v.sha256 };
}

/** Parses and validates the manifest's text; an ImageError names `source` and the bad field. */
export function parsePinnedManifest(text: string, source = PINNED_MANIFEST): PinnedManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ImageError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ImageError(`${source} must hold a JSON object`);
  const r = raw as Record<string, unknown>;
  const extra = Object.keys(r).filter((k) => !["about", "kernel", "busybox", "bios", "largeInitramfs"].includes(k));
  if (extra.length) throw new ImageError(`${source}: unknown field(s) ${extra.join(", ")}`);
  const kernel = pinAt(r.kernel, "kernel", source);
  if (!KERNEL_RE.test(kernel.package) || kernel.arch !== "i386")
    throw new ImageError(`${source}: kernel ${kernel.package} (${kernel.arch}) is not an i386 686 kernel package (linux-image-6.1.0-N-686-unsigned)`);
  const busybox = pinAt(r.busybox, "busybox", source);
  const bios = pinAt(r.bios, "bios", source);
  if (!Array.isArray(r.largeInitramfs)) throw new ImageError(`${source}: largeInitramfs must be a list of packages`);
  const largeInitramfs = r.largeInitramfs.map((p, i) => pinAt(p, `largeInitramfs[${i}]`, source));
  const names = [kernel, busybox, bios, ...largeInitramfs].map((p) => p.package);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new ImageError(`${source}: package ${twice} is pinned twice`);
  return { kernel, busybox, bios, largeInitramfs };
}

export function loadPinnedManifest(path = PINNED_MANIFEST): PinnedManifest {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ImageError(`cannot read the pinned guest manifest ${path}: ${(err as Error).message}`);
  }
  return parsePinnedManifest(text, path);
}

/** `pkg:arch` as apt names it. */
export const aptName = (p: DebPin): string => `${p.package}:${p.arch}`;

/** The file name `apt-get download` gives the .deb (an epoch's colon is written %3a). */
export const debFileName = (p: DebPin): string => `${p.package}_${p.version.replace(/:/g, "%3a")}_${p.arch}.deb`;

/** A digest of some pins, recorded in a built cache so that a changed pin rebuilds it. */
export function pinsDigest(pins: readonly DebPin[], ...more: string[]): string {
  const h = createHash("sha256");
  for (const p of pins) h.update(`${aptName(p)}=${p.version} ${p.sha256}\n`);
  for (const m of more) h.update(m);
  return h.digest("hex");
}
