import { gunzipSync, gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CpioError, writeCpio, type CpioEntry } from "../../src/guests/cpio.ts";
import { initramfsEntries, INIT_SCRIPT } from "../../src/guests/initramfs.ts";
import { guestPaths } from "../../src/guests/images.ts";
import { existsSync } from "node:fs";
import { readNewc, type Member } from "./newc-reader.ts";

const typeBits = (m: Member) => m.mode & 0o170000;

describe("newc cpio writer", () => {
  it("writes every kind of entry so that an independent reader gets them back exactly", () => {
    const payload = new Uint8Array([1, 2, 3, 4, 5, 6, 7]);
    const entries: CpioEntry[] = [
      { kind: "dir", path: "etc", mode: 0o750 },
      { kind: "file", path: "etc/motd", data: payload, mode: 0o640 },
      { kind: "file", path: "etc/empty", data: new Uint8Array() },
      { kind: "symlink", path: "bin/sh", target: "busybox" },
      { kind: "chardev", path: "dev/console", major: 5, minor: 1 },
    ];
    const members = readNewc(Buffer.from(writeCpio(entries)));
    expect(members.map((m) => m.name)).toEqual(["etc", "etc/motd", "etc/empty", "bin/sh", "dev/console"]);
    expect(members[0]!.mode).toBe(0o040750);
    expect(members[0]!.nlink).toBe(2);
    expect(members[1]!.mode).toBe(0o100640);
    expect([...members[1]!.data]).toEqual([...payload]);
    expect(members[2]!.data.length).toBe(0);
    expect(typeBits(members[3]!)).toBe(0o120000);
    expect(members[3]!.data.toString()).toBe("busybox");
    expect(members[4]!.mode).toBe(0o020600);
    expect([members[4]!.rdevMajor, members[4]!.rdevMinor]).toEqual([5, 1]);
    expect(new Set(members.map((m) => m.ino)).size).toBe(members.length);
  });

  it("round-trips arbitrary file names and contents (property)", () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9_.-]{1,20}$/).filter((s) => s !== "." && s !== ".." && s !== "TRAILER!!!");
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, fc.uint8Array({ maxLength: 300 })), { selector: ([n]) => n, maxLength: 12 }), (files) => {
        const entries: CpioEntry[] = files.map(([path, data]) => ({ kind: "file", path, data }));
        const members = readNewc(Buffer.from(writeCpio(entries)));
        expect(members.map((m) => [m.name, [...m.data]])).toEqual(files.map(([n, d]) => [n, [...d]]));
      }),
    );
  });

  it("rejects absolute, dotted, empty and duplicate paths with an error naming the path", () => {
    const file = (path: string): CpioEntry => ({ kind: "file", path, data: new Uint8Array() });
    expect(() => writeCpio([file("/etc/passwd")])).toThrow(/"\/etc\/passwd" must be relative/);
    expect(() => writeCpio([file("a/../b")])).toThrow(CpioError);
    expect(() => writeCpio([file("")])).toThrow(/empty path/);
    expect(() => writeCpio([file("x"), file("x")])).toThrow(/"x" appears twice/);
    expect(() => writeCpio([{ kind: "dir", path: "d", mode: 0o10000 }])).toThrow(/invalid permission/);
    expect(() => writeCpio([{ kind: "symlink", path: "l", target: "" }])).toThrow(/empty target/);
  });
});

describe("the default initramfs", () => {
  const fakeBusybox = () => {
    const elf = new Uint8Array(64);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
    elf[18] = 3;
    return elf;
  };

  it("holds /init, busybox, /dev/console and the mount points the kernel and /init need", () => {
    const members = readNewc(Buffer.from(gunzipSync(gzipSync(writeCpio(initramfsEntries(fakeBusybox()))))));
    const byName = new Map(members.map((m) => [m.name, m]));
    expect(byName.get("init")!.data.toString()).toBe(INIT_SCRIPT);
    expect(byName.get("init")!.mode & 0o111).toBe(0o111);
    expect(byName.get("bin/busybox")!.mode).toBe(0o100755);
    expect(byName.get("dev/console")!.rdevMajor).toBe(5);
    for (const dir of ["proc", "sys", "dev", "tmp"]) expect(typeBits(byName.get(dir)!)).toBe(0o040000);
    expect(INIT_SCRIPT).toMatch(/mount -t proc/);
    expect(INIT_SCRIPT).toMatch(/mount -t sysfs/);
    expect(INIT_SCRIPT).toMatch(/mount -t devtmpfs/);
  });

  it("refuses a busybox that is not a 32-bit x86 ELF", () => {
    const amd64 = fakeBusybox();
    amd64[4] = 2;
    expect(() => initramfsEntries(amd64)).toThrow(/64-bit/);
    expect(() => initramfsEntries(new TextEncoder().encode("#!/bin/sh\n".padEnd(80)))).toThrow(/not an ELF/);
  });

  it("in the built guest image, carries Debian's busybox byte for byte", () => {
    const paths = guestPaths();
    expect(existsSync(paths.initramfs), "run `npm run setup` to build the guest images").toBe(true);
    const members = readNewc(gunzipSync(readFileSync(paths.initramfs)));
    const busybox = members.find((m) => m.name === "bin/busybox")!;
    expect(busybox.data.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(busybox.data.length).toBeGreaterThan(500_000);
  });
});
