// The AML encoder, construct by construct, against bytes worked out by hand from the grammar in
// the ACPI specification (chapter 20), plus an independent PkgLength decoder for every length.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as A from "../../../src/machine/firmware/aml.ts";
import { FirmwareError } from "../../../src/machine/firmware/errors.ts";

const bytes = (a: A.Aml | number[]) => Array.from(a);
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const hex = (s: string) => s.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16));

/** PkgLength decoded as the spec describes it: returns the value and how many bytes it took. */
function decodePkgLength(b: number[], at = 0): { value: number; size: number } {
  const lead = b[at]!;
  const follow = lead >> 6;
  if (follow === 0) return { value: lead & 0x3f, size: 1 };
  expect(lead & 0x30, "bits 5-4 of a multi-byte PkgLength lead byte are zero").toBe(0);
  let value = lead & 0x0f;
  for (let i = 0; i < follow; i++) value |= b[at + 1 + i]! << (4 + 8 * i);
  return { value, size: 1 + follow };
}

describe("PkgLength", () => {
  it.each([
    [0, "01"],
    [62, "3f"], // the largest one-byte form: 62 + 1 = 63
    [63, "41 04"], // 63 + 2 = 65 = 0x041: low nybble 1, then 0x04
    [0xffd, "4f ff"], // 0xFFD + 2 = 0xFFF, the largest two-byte form
    [0xffe, "81 00 01"], // 0xFFE + 3 = 0x1001
    [0xffffc, "8f ff ff"], // 0xFFFFC + 3 = 0xFFFFF, the largest three-byte form
    [0xffffd, "c1 00 00 01"], // 0xFFFFD + 4 = 0x100001
  ])("counts itself: %i content bytes -> %s", (content, expected) => {
    expect(bytes(A.pkgLength(content))).toEqual(hex(expected));
  });

  it("is the shortest form that holds contents plus itself, for any length", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffb }), (content) => {
        const enc = A.pkgLength(content);
        const { value, size } = decodePkgLength(enc);
        expect(size).toBe(enc.length);
        expect(value).toBe(content + size);
        const limits = [0x3f, 0xfff, 0xfffff];
        if (size > 1) expect(content + size - 1).toBeGreaterThan(limits[size - 2]!);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses a package past 2^28 bytes", () => {
    expect(() => A.pkgLength(0xffffffc)).toThrow(FirmwareError);
  });

  it("encodes a field width as a plain value that does not count itself", () => {
    expect(bytes(A.pkgValue(1))).toEqual([0x01]);
    expect(bytes(A.pkgValue(63))).toEqual([0x3f]);
    expect(bytes(A.pkgValue(64))).toEqual(hex("40 04"));
    expect(bytes(A.pkgValue(0x1000))).toEqual(hex("80 00 01"));
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xfffffff }), (v) => {
      expect(decodePkgLength(A.pkgValue(v)).value).toBe(v);
    }));
  });
});

describe("names", () => {
  it("pads a NameSeg with underscores and checks its characters", () => {
    expect(bytes(A.nameSeg("CPUS"))).toEqual(ascii("CPUS"));
    expect(bytes(A.nameSeg("_SB"))).toEqual(ascii("_SB_"));
    expect(bytes(A.nameSeg("C"))).toEqual(ascii("C___"));
    for (const bad of ["", "1ABC", "cpus", "TOOLONG", "A-B", "A.B"]) expect(() => A.nameSeg(bad)).toThrow(FirmwareError);
  });

  it.each([
    ["", "00"], // NullName
    ["\\", "5c 00"], // the root itself
    ["CPEN", "43 50 45 4e"],
    ["\\_SB", "5c 5f 53 42 5f"],
    ["^CPEN", "5e 43 50 45 4e"],
    ["^^CPEN", "5e 5e 43 50 45 4e"],
    ["\\_SB.CPUS", "5c 2e 5f 53 42 5f 43 50 55 53"], // DualNamePath
    ["\\_SB.CPUS.CSCN", "5c 2f 03 5f 53 42 5f 43 50 55 53 43 53 43 4e"], // MultiNamePath, 3 segments
    ["CPUS.C001", "2e 43 50 55 53 43 30 30 31"],
  ])("NameString %j", (path, expected) => {
    expect(bytes(A.nameString(path))).toEqual(hex(expected));
  });
});

describe("data objects", () => {
  it.each([
    [0, "00"], // ZeroOp
    [1, "01"], // OneOp
    [2, "0a 02"],
    [0xff, "0a ff"],
    [0x100, "0b 00 01"],
    [0xaf00, "0b 00 af"],
    [0xffff, "0b ff ff"],
    [0x10000, "0c 00 00 01 00"],
    [0xffffffff, "0c ff ff ff ff"],
    [0x100000000, "0e 00 00 00 00 01 00 00 00"],
  ])("integer %i in its shortest form", (value, expected) => {
    expect(bytes(A.integer(value))).toEqual(hex(expected));
  });

  it("has Zero, One and Ones constants and refuses what is not a 64-bit unsigned integer", () => {
    expect([bytes(A.Zero), bytes(A.One), bytes(A.Ones)]).toEqual([[0x00], [0x01], [0xff]]);
    expect(bytes(A.integer(0xffffffffffffffffn))).toEqual(hex("0e ff ff ff ff ff ff ff ff"));
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => A.integer(bad)).toThrow(FirmwareError);
    expect(() => A.integer(1n << 64n)).toThrow(FirmwareError);
  });

  it("encodes a string with StringPrefix and a NUL", () => {
    expect(bytes(A.string("ACPI0007"))).toEqual([0x0d, ...ascii("ACPI0007"), 0x00]);
    expect(bytes(A.string(""))).toEqual([0x0d, 0x00]);
    expect(() => A.string("a\0b")).toThrow(FirmwareError);
  });

  it("encodes a buffer as BufferOp, PkgLength, size, bytes", () => {
    // 0x0B = 1 (PkgLength) + 2 (BytePrefix 8) + 8 bytes
    expect(bytes(A.buffer([0, 8, 1, 1, 1, 0, 0, 0]))).toEqual(hex("11 0b 0a 08 00 08 01 01 01 00 00 00"));
    expect(bytes(A.buffer([]))).toEqual(hex("11 02 00"));
    expect(() => A.buffer([256])).toThrow(FirmwareError);
  });

  it("encodes a package with its element count", () => {
    expect(bytes(A.packageOf(1, 0x0f, A.string("A")))).toEqual(hex("12 08 03 01 0a 0f 0d 41 00"));
  });

  it("packs EISA IDs as ASL's EisaId does", () => {
    expect(A.eisaId("PNP0A03")).toBe(0x030ad041); // the PCI root bridge, a value every DSDT carries
    expect(A.eisaId("PNP0A05")).toBe(0x050ad041);
    expect(A.eisaId("PNP0C0F")).toBe(0x0f0cd041);
    expect(() => A.eisaId("pnp0a05")).toThrow(FirmwareError);
  });

  it("names the locals and arguments", () => {
    expect([0, 7].map((i) => bytes(A.local(i)))).toEqual([[0x60], [0x67]]);
    expect([0, 6].map((i) => bytes(A.arg(i)))).toEqual([[0x68], [0x6e]]);
    expect(() => A.local(8)).toThrow(FirmwareError);
    expect(() => A.arg(7)).toThrow(FirmwareError);
  });
});

describe("named objects", () => {
  it("Name", () => {
    expect(bytes(A.name("_UID", 1))).toEqual([0x08, ...ascii("_UID"), 0x01]);
    expect(bytes(A.name("_HID", A.string("ACPI0010")))).toEqual([0x08, ...ascii("_HID"), 0x0d, ...ascii("ACPI0010"), 0x00]);
    expect(bytes(A.name("_CID", A.eisaId("PNP0A05")))).toEqual([0x08, ...ascii("_CID"), ...hex("0c 41 d0 0a 05")]);
  });

  it("Scope and Device wrap a term list in a package", () => {
    expect(bytes(A.scope("\\_GPE"))).toEqual([0x10, 0x06, 0x5c, ...ascii("_GPE")]);
    expect(bytes(A.device("C001"))).toEqual([0x5b, 0x82, 0x05, ...ascii("C001")]);
    const inner = A.name("_UID", 1);
    expect(bytes(A.device("C001", inner))).toEqual([0x5b, 0x82, 0x05 + inner.length, ...ascii("C001"), ...inner]);
  });

  it("Method: flags hold the argument count, Serialized (bit 3) and the sync level (bits 4-7)", () => {
    // Method (_STA) { Return (0x0F) }: 4 (name) + 1 (flags) + 3 (ReturnOp, BytePrefix 0x0F) + 1 (PkgLength)
    expect(bytes(A.method("_STA", {}, A.ret(0x0f)))).toEqual(hex("14 09 5f 53 54 41 00 a4 0a 0f"));
    expect(A.method("COST", { args: 3, serialized: true, syncLevel: 2 })[6]).toBe(0x2b);
    expect(A.method("CSCN", { serialized: true })[6]).toBe(0x08);
    expect(() => A.method("M", { args: 8 })).toThrow(FirmwareError);
    expect(() => A.method("M", { syncLevel: 16 })).toThrow(FirmwareError);
  });

  it("a method long enough to need a two-byte PkgLength", () => {
    const body = Array.from({ length: 20 }, () => A.store(A.arg(0), A.local(0))); // 3 bytes each
    const m = bytes(A.method("LONG", {}, ...body));
    // 4 + 1 + 60 = 65 content bytes, + 2 = 67 = 0x43
    expect(m.slice(0, 3)).toEqual([0x14, 0x43, 0x04]);
    expect(m.length).toBe(1 + 67);
  });

  it("OperationRegion", () => {
    expect(bytes(A.operationRegion("PRST", A.RegionSpace.SystemIO, 0xaf00, 12))).toEqual([0x5b, 0x80, ...ascii("PRST"), 0x01, ...hex("0b 00 af 0a 0c")]);
  });

  it("Field: flags, named fields, reserved bits and Offset()", () => {
    const f = A.field("PRST", { access: A.AccessType.ByteAcc, update: A.UpdateRule.WriteAsZeros },
      { offset: 4 }, { name: "CPEN", bits: 1 }, { name: "CINS", bits: 1 }, { offset: 5 }, { name: "CCMD", bits: 8 });
    // flags: ByteAcc 1 | NoLock | WriteAsZeros 2<<5 = 0x41; Offset(4) = 32 reserved bits;
    // Offset(5) after 34 bits = 6 reserved bits
    const list = [0x00, 0x20, ...ascii("CPEN"), 0x01, ...ascii("CINS"), 0x01, 0x00, 0x06, ...ascii("CCMD"), 0x08];
    expect(bytes(f)).toEqual([0x5b, 0x81, 1 + 4 + 1 + list.length, ...ascii("PRST"), 0x41, ...list]);
    const g = A.field("PRST", { access: A.AccessType.DWordAcc, lock: true }, { name: "CSEL", bits: 32 }, { skip: 32 }, { name: "CDAT", bits: 32 });
    expect(bytes(g).slice(7, 8)).toEqual([0x13]); // DWordAcc 3 | Lock 1<<4 | Preserve
    expect(bytes(g).slice(8)).toEqual([...ascii("CSEL"), 0x20, 0x00, 0x20, ...ascii("CDAT"), 0x20]);
    // a wide field needs a multi-byte width
    expect(bytes(A.field("R", { access: 0 }, { name: "BIG", bits: 256 })).slice(-6)).toEqual([...ascii("BIG_"), 0x40, 0x10]);
    expect(() => A.field("R", { access: 1 }, { name: "A", bits: 16 }, { offset: 1 })).toThrow(/lies before bit 16/);
    expect(() => A.field("R", { access: 6 })).toThrow(FirmwareError);
  });

  it("Mutex, Acquire, Release", () => {
    expect(bytes(A.mutex("CPLK", 0))).toEqual([0x5b, 0x01, ...ascii("CPLK"), 0x00]);
    expect(bytes(A.acquire("CPLK"))).toEqual([0x5b, 0x23, ...ascii("CPLK"), 0xff, 0xff]); // Timeout is a raw WordData
    expect(bytes(A.acquire("CPLK", 0x1234))).toEqual([0x5b, 0x23, ...ascii("CPLK"), 0x34, 0x12]);
    expect(bytes(A.release("CPLK"))).toEqual([0x5b, 0x27, ...ascii("CPLK")]);
  });
});

describe("statements and expressions", () => {
  it("Store, Notify, Return, Break", () => {
    expect(bytes(A.store(A.arg(0), A.ref("CSEL")))).toEqual([0x70, 0x68, ...ascii("CSEL")]);
    expect(bytes(A.store(0x0f, A.local(0)))).toEqual(hex("70 0a 0f 60"));
    expect(bytes(A.notify(A.ref("C001"), A.arg(1)))).toEqual([0x86, ...ascii("C001"), 0x69]);
    expect(bytes(A.ret(A.local(0)))).toEqual([0xa4, 0x60]);
    expect(bytes(A.Break)).toEqual([0xa5]);
  });

  it("If, If/Else and ElseIf (an If inside the Else)", () => {
    const then = A.store(1, A.local(0)); // 70 01 60
    expect(bytes(A.ifThen(A.lEqual(A.arg(0), 1), [then]))).toEqual(hex("a0 07 93 68 01 70 01 60"));
    expect(bytes(A.ifThen(A.arg(0), [then], [A.store(0, A.local(0))]))).toEqual(hex("a0 05 68 70 01 60 a1 04 70 00 60"));
    expect(bytes(A.ifThen(A.arg(0), [], [A.ifThen(A.arg(1), [])]))).toEqual(hex("a0 02 68 a1 04 a0 02 69"));
  });

  it("While", () => {
    expect(bytes(A.whileLoop(A.lLess(A.local(1), 9), A.increment(A.local(1))))).toEqual(hex("a2 07 95 61 0a 09 75 61"));
  });

  it("logical operators take two operands (LNot one), arithmetic ones a target", () => {
    expect(bytes(A.lAnd(A.local(0), A.lLess(A.local(1), 2)))).toEqual(hex("90 60 95 61 0a 02"));
    expect(bytes(A.lOr(0, 1))).toEqual(hex("91 00 01"));
    expect(bytes(A.lNot(A.arg(0)))).toEqual(hex("92 68"));
    expect(bytes(A.lGreater(A.arg(0), 3))).toEqual(hex("94 68 0a 03"));
    expect(bytes(A.add(A.local(0), 1, A.local(0)))).toEqual(hex("72 60 01 60"));
    expect(bytes(A.add(A.local(0), 1))).toEqual(hex("72 60 01 00")); // NullName: no target
    expect(bytes(A.subtract(A.local(0), 1, A.local(0)))).toEqual(hex("74 60 01 60"));
    expect(bytes(A.and(A.arg(0), 0x0f))).toEqual(hex("7b 68 0a 0f 00"));
    expect(bytes(A.or(A.arg(0), 0x10, A.local(2)))).toEqual(hex("7d 68 0a 10 62"));
  });

  it("a method call is the name followed by its arguments", () => {
    expect(bytes(A.call("\\_SB.CPUS.CSCN"))).toEqual(hex("5c 2f 03 5f 53 42 5f 43 50 55 53 43 53 43 4e"));
    expect(bytes(A.call("CTFY", A.ref("CDAT"), 3))).toEqual([...ascii("CTFY"), ...ascii("CDAT"), 0x0a, 0x03]);
    expect(() => A.call("M", 1, 2, 3, 4, 5, 6, 7, 8)).toThrow(FirmwareError);
  });
});
