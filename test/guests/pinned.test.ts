// The pinned guest: the committed manifest, its validation, the .deb digest check, the message for
// a version the archive no longer has, and that the built guest comes from exactly these pins.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEB_DIR, notOfferedMessage, parseMadison, sha256File, verifyDeb } from "../../src/guests/debs.ts";
import { ImageError } from "../../src/guests/image-checks.ts";
import { defaultGuestDigest, ensureGuestImages, GUEST_DIR } from "../../src/guests/images.ts";
import { debFileName, loadPinnedManifest, parsePinnedManifest, PINNED_MANIFEST, pinsDigest, type DebPin } from "../../src/guests/pinned.ts";

const text = readFileSync(PINNED_MANIFEST, "utf8");
const edit = (f: (m: any) => void): string => {
  const m = JSON.parse(text);
  f(m);
  return JSON.stringify(m);
};

describe("guests/linux/pinned.json", () => {
  it("pins the default guest's kernel, busybox and SeaBIOS by exact version and SHA-256", () => {
    const m = loadPinnedManifest();
    expect(m.kernel).toEqual({ package: "linux-image-6.1.0-57-686-unsigned", arch: "i386", version: "6.1.192-3", sha256: "802ca46b8d960620d2daf9c2964a244d088e5d7823b76cd9b769a1dc2a7f2e89" });
    expect(m.busybox).toMatchObject({ package: "busybox-static", arch: "i386", version: "1:1.35.0-4+deb12u1+b1" });
    expect(m.bios).toMatchObject({ package: "seabios", arch: "all", version: "1.16.2-1" });
    expect(m.largeInitramfs.map((p) => p.package)).toContain("libc6");
  });

  it("keeps the kernel choice on one line", () => {
    const line = text.split("\n").find((l) => l.includes('"kernel"'))!;
    expect(line).toMatch(/"package": "linux-image-[^"]+".*"version": "[^"]+".*"sha256": "[0-9a-f]{64}"/);
  });

  it("refuses a malformed manifest, naming the field", () => {
    const bad = (t: string, re: RegExp) => expect(() => parsePinnedManifest(t, "pins.json")).toThrow(re);
    bad("{", /pins.json is not valid JSON/);
    bad(edit((m) => (m.kernel.sha256 = "abc")), /kernel \(linux-image-6.1.0-57-686-unsigned\) has an invalid sha256 "abc"/);
    bad(edit((m) => (m.busybox.sha256 = m.busybox.sha256.toUpperCase())), /busybox .* invalid sha256/);
    bad(edit((m) => (m.bios.arch = "amd64")), /bios \(seabios\) has arch "amd64"/);
    bad(edit((m) => (m.busybox.version = "latest")), /invalid Debian version "latest"/);
    bad(edit((m) => (m.kernel.package = "linux-image-amd64")), /not an i386 686 kernel package/);
    bad(edit((m) => (m.kernel.release = "x")), /kernel has unknown field\(s\) release/);
    bad(edit((m) => (m.kernal = m.kernel)), /unknown field\(s\) kernal/);
    bad(edit((m) => delete m.bios), /bios must be an object/);
    bad(edit((m) => m.largeInitramfs.push(m.busybox)), /package busybox-static is pinned twice/);
    bad(edit((m) => (m.largeInitramfs[0].package = "Libc6")), /largeInitramfs\[0\] has an invalid package name "Libc6"/);
  });

  it("names the .deb as apt-get download does (an epoch's colon as %3a)", () => {
    const m = loadPinnedManifest();
    expect(debFileName(m.busybox)).toBe("busybox-static_1%3a1.35.0-4+deb12u1+b1_i386.deb");
    expect(debFileName(m.bios)).toBe("seabios_1.16.2-1_all.deb");
    expect(debFileName(m.kernel)).toBe("linux-image-6.1.0-57-686-unsigned_6.1.192-3_i386.deb");
  });

  it("gives the cache a digest that changes with any pin or /init", () => {
    const m = loadPinnedManifest();
    const other = parsePinnedManifest(edit((x) => Object.assign(x.kernel, { package: "linux-image-6.1.0-56-686-unsigned", version: "6.1.192-2" })));
    expect(defaultGuestDigest(other)).not.toBe(defaultGuestDigest(m));
    expect(pinsDigest([m.kernel], "a")).not.toBe(pinsDigest([m.kernel], "b"));
    expect(pinsDigest([{ ...m.kernel, sha256: "0".repeat(64) }])).not.toBe(pinsDigest([m.kernel]));
  });
});

describe("pinned .deb files", () => {
  const dir = mkdtempSync(join(tmpdir(), "giantweb-deb-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the built default guest comes from the pinned packages, each .deb with its pinned SHA-256", () => {
    const m = loadPinnedManifest();
    ensureGuestImages(() => {});
    const built = JSON.parse(readFileSync(join(GUEST_DIR, "manifest.json"), "utf8"));
    if (built.source) return; // a hand-supplied guest (guest-images/) is not built from pins
    expect(built.pinned).toBe(defaultGuestDigest(m));
    for (const pin of [m.kernel, m.busybox, m.bios]) {
      expect(built.debs).toContain(debFileName(pin));
      expect(sha256File(join(DEB_DIR, debFileName(pin)))).toBe(pin.sha256);
    }
  });

  it("refuses a tampered .deb, naming the file and both digests", () => {
    const m = loadPinnedManifest();
    const path = join(dir, debFileName(m.bios));
    copyFileSync(join(DEB_DIR, debFileName(m.bios)), path);
    expect(() => verifyDeb(path, m.bios)).not.toThrow();
    const bytes = readFileSync(path);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(path, bytes);
    const actual = sha256File(path);
    let err: unknown;
    try {
      verifyDeb(path, m.bios);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ImageError);
    const msg = (err as Error).message;
    expect(msg).toContain(path);
    expect(msg).toContain(`SHA-256 ${actual}`);
    expect(msg).toContain(m.bios.sha256);
    expect(msg).toContain("seabios:all=1.16.2-1");
    expect(() => verifyDeb(join(dir, "absent.deb"), m.bios)).toThrow(/absent.deb is missing/);
  });
});

describe("a pin the archive no longer offers", () => {
  const pin: DebPin = { package: "linux-image-6.1.0-57-686-unsigned", arch: "i386", version: "6.1.192-3", sha256: "0".repeat(64) };

  it("reads the versions apt-cache madison lists", () => {
    const out = [
      "busybox-static:i386 | 1:1.35.0-4+deb12u1+b1 | http://deb.debian.org/debian bookworm/main i386 Packages",
      "   seabios |   1.16.2-1 | http://deb.debian.org/debian bookworm/main amd64 Packages",
      "   seabios |   1.16.2-1 | http://deb.debian.org/debian bookworm/main i386 Packages",
      "",
    ].join("\n");
    expect(parseMadison(out)).toEqual(["1:1.35.0-4+deb12u1+b1", "1.16.2-1"]);
    expect(parseMadison("")).toEqual([]);
  });

  it("says which version is pinned and which versions apt has", () => {
    const msg = notOfferedMessage(pin, ["6.1.192-4", "6.1.190-1"]);
    expect(msg).toContain("pinned linux-image-6.1.0-57-686-unsigned:i386=6.1.192-3 is not offered");
    expect(msg).toContain("apt has linux-image-6.1.0-57-686-unsigned:i386 at 6.1.192-4, 6.1.190-1");
    expect(msg).toContain(PINNED_MANIFEST);
    const gone = notOfferedMessage(pin, [], ["linux-image-6.1.0-58-686-unsigned"]);
    expect(gone).toContain("apt knows no linux-image-6.1.0-57-686-unsigned:i386 at all (its 686 kernels: linux-image-6.1.0-58-686-unsigned)");
  });
});
