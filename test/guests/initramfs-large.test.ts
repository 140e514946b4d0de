// The matrix's larger initramfs: the default entries plus the pinned Debian libraries, same /init,
// read back with the independent newc reader.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import type { CpioEntry } from "../../src/guests/cpio.ts";
import { buildLargeInitramfs, initramfsEntries, INIT_SCRIPT, LARGE_INITRAMFS_EXCLUDES, largeInitramfsEntries } from "../../src/guests/initramfs.ts";
import { ensureLargeInitramfs, LARGE_INITRAMFS_MIN_BYTES } from "../../src/guests/matrix-guests.ts";
import { treeEntries } from "../../src/guests/tree-entries.ts";
import { readNewc } from "./newc-reader.ts";

const fakeBusybox = () => {
  const elf = new Uint8Array(64);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  elf[18] = 3;
  return elf;
};

describe("larger initramfs entries", () => {
  it("adds the extra entries after the default ones, keeping a shared directory once", () => {
    const extra: CpioEntry[] = [
      { kind: "dir", path: "etc", mode: 0o755 },
      { kind: "dir", path: "lib", mode: 0o755 },
      { kind: "file", path: "lib/libx.so.1", data: new Uint8Array([1, 2, 3]), mode: 0o644 },
      { kind: "symlink", path: "lib/libx.so", target: "libx.so.1" },
      { kind: "file", path: "etc/ld.so.conf", data: new Uint8Array([10]) },
    ];
    const members = readNewc(Buffer.from(buildLargeInitramfs(fakeBusybox(), extra)));
    const names = members.map((m) => m.name);
    const base = initramfsEntries(fakeBusybox()).map((e) => e.path);
    expect(names.slice(0, base.length)).toEqual(base);
    expect(names.slice(base.length)).toEqual(["lib", "lib/libx.so.1", "lib/libx.so", "etc/ld.so.conf"]);
    expect(members.find((m) => m.name === "init")!.data.toString()).toBe(INIT_SCRIPT);
  });

  it("refuses a clash with the default initramfs and an entry before its directory", () => {
    expect(() => largeInitramfsEntries(fakeBusybox(), [{ kind: "file", path: "init", data: new Uint8Array() }])).toThrow(/init \(file\) clashes with the default initramfs's file/);
    expect(() => largeInitramfsEntries(fakeBusybox(), [{ kind: "dir", path: "bin/sh" }])).toThrow(/bin\/sh \(dir\) clashes/);
    expect(() => largeInitramfsEntries(fakeBusybox(), [{ kind: "file", path: "lib/x.so", data: new Uint8Array() }])).toThrow(/lib\/x.so comes before its directory lib/);
  });
});

describe("a folder as cpio entries", () => {
  const dir = mkdtempSync(join(tmpdir(), "giantweb-tree-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("lists directories before their contents, sorted, with modes and symlinks, minus excluded subtrees", () => {
    mkdirSync(join(dir, "usr/share/doc/x"), { recursive: true });
    mkdirSync(join(dir, "lib/sub"), { recursive: true });
    writeFileSync(join(dir, "lib/b.so"), "b");
    writeFileSync(join(dir, "lib/a.so"), "a");
    chmodSync(join(dir, "lib/a.so"), 0o755);
    writeFileSync(join(dir, "usr/share/doc/x/README"), "doc");
    symlinkSync("a.so", join(dir, "lib/c.so"));
    const entries = treeEntries(dir, ["usr/share/doc"]);
    expect(entries.map((e) => `${e.kind}:${e.path}`)).toEqual(["dir:lib", "file:lib/a.so", "file:lib/b.so", "symlink:lib/c.so", "dir:lib/sub", "dir:usr", "dir:usr/share"]);
    expect(entries[1]).toMatchObject({ mode: 0o755 });
    expect(entries[3]).toMatchObject({ target: "a.so" });
  });
});

describe("the built larger initramfs", () => {
  it("is multi-megabyte, holds busybox, /init and the pinned libraries, and each entry after its directory", () => {
    const gz = readFileSync(ensureLargeInitramfs(() => {}));
    const cpio = gunzipSync(gz);
    expect(cpio.length).toBeGreaterThan(LARGE_INITRAMFS_MIN_BYTES);
    const members = readNewc(cpio);
    const byName = new Map(members.map((m) => [m.name, m]));
    expect(byName.get("init")!.data.toString()).toBe(INIT_SCRIPT);
    expect(byName.get("bin/busybox")!.data.length).toBeGreaterThan(500_000);
    expect(byName.get("dev/console")!.rdevMajor).toBe(5);
    const libc = byName.get("lib/i386-linux-gnu/libc.so.6")!;
    expect(libc.data.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(libc.data[4]).toBe(1); // 32-bit
    expect(byName.get("lib/ld-linux.so.2")!.mode & 0o170000).toBe(0o120000);
    expect([...byName.keys()].some((n) => n.startsWith("usr/lib/i386-linux-gnu/libstdc++.so.6"))).toBe(true);
    for (const ex of LARGE_INITRAMFS_EXCLUDES) expect([...byName.keys()].filter((n) => n === ex || n.startsWith(`${ex}/`))).toEqual([]);
    const seen = new Set<string>();
    for (const m of members) {
      const parent = m.name.includes("/") ? m.name.slice(0, m.name.lastIndexOf("/")) : null;
      if (parent) expect(seen.has(parent), `${m.name} before ${parent}`).toBe(true);
      seen.add(m.name);
    }
  });
});
