// The Linux boot protocol side: setup-header parsing, boot_params, the e820 map, and the whole
// direct-boot plan assembled into a model of guest RAM and read back the way Linux finds things.

import { existsSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildBootParams, parseSetupHeader } from "../../../src/machine/firmware/bootparams.ts";
import { planDirectBoot, type DirectBootInput } from "../../../src/machine/firmware/direct-boot.ts";
import { buildE820, checkE820, E820 } from "../../../src/machine/firmware/e820.ts";
import { FirmwareError } from "../../../src/machine/firmware/errors.ts";
import * as L from "../../../src/machine/firmware/layout.ts";
import { guestPaths } from "../../../src/guests/images.ts";
import { decodeAcpi, decodeBootParams, decodeMadt, decodeMp, Memory, scanMp, scanRsdp } from "./decode.ts";
import { fakeBzImage } from "./fake-kernel.ts";

const MiB = 1024 * 1024;

describe("setup header", () => {
  it("reads the fields of a boot protocol 2.15 header", () => {
    const h = parseSetupHeader(fakeBzImage({ setupSects: 7 }));
    expect(h).toMatchObject({ version: 0x20f, setupSects: 7, kernelOffset: 8 * 512, code32Start: 0x100000, cmdlineSize: 2047, relocatable: true, headerEnd: 0x268 });
    expect(h.prefAddress).toBe(0x1000000n);
  });

  it("treats setup_sects = 0 as 4, as the protocol says", () => {
    const img = fakeBzImage({ setupSects: 4 });
    img[0x1f1] = 0;
    expect(parseSetupHeader(img).kernelOffset).toBe(5 * 512);
  });

  it.each([
    ["no boot flag", (b: Uint8Array) => void (b[0x1fe] = 0), /0xAA55/],
    ["no HdrS", (b: Uint8Array) => void (b[0x202] = 0x41), /HdrS/],
    ["protocol 2.05", (b: Uint8Array) => void new DataView(b.buffer).setUint16(0x206, 0x205, true), /2\.05 is older than 2\.06/],
    ["a zImage", (b: Uint8Array) => void (b[0x211] = 0), /zImage/],
    ["no jump at 0x200", (b: Uint8Array) => void (b[0x200] = 0x90), /short jump/],
  ])("rejects an image with %s", (_, spoil, message) => {
    const img = fakeBzImage();
    spoil(img);
    expect(() => parseSetupHeader(img)).toThrow(FirmwareError);
    expect(() => parseSetupHeader(img)).toThrow(message);
  });

  it("rejects a file too small to be a kernel", () => {
    expect(() => parseSetupHeader(new Uint8Array(100))).toThrow(/too small/);
  });

  const real = guestPaths().bzImage;
  it.skipIf(!existsSync(real))("accepts the default guest's Debian kernel (protocol >= 2.06, loads high at 1 MiB)", () => {
    const h = parseSetupHeader(new Uint8Array(readFileSync(real)));
    expect(h.version).toBeGreaterThanOrEqual(0x206);
    expect(h.code32Start).toBe(0x100000);
    expect(h.loadflags & 1).toBe(1);
    expect(h.initSize).toBeGreaterThan(0);
  });
});

describe("e820 map", () => {
  it("marks low RAM and RAM above 1 MiB usable and firmware/MMIO reserved, sorted and disjoint", () => {
    fc.assert(
      fc.property(fc.integer({ min: 16 * 256, max: 0xc0000 }), (pages) => {
        const mem = pages * 4096;
        const map = buildE820(mem);
        checkE820(map);
        const ram = map.filter((e) => e.type === E820.RAM);
        expect(ram).toEqual([
          { address: 0, size: 0x9fc00, type: 1 },
          { address: 0x100000, size: mem - 0x100000, type: 1 },
        ]);
        const covers = (a: number) => map.find((e) => a >= e.address && a < e.address + e.size);
        for (const a of [0x9fc00, 0xf0000, 0xfe000, 0xffff0, 0xfec00000, 0xfee00000, 0xfffffff0]) expect(covers(a)?.type).toBe(E820.RESERVED);
        expect(covers(0xb8000)).toBeUndefined(); // the VGA hole is not RAM
      }),
    );
  });

  it.each([0, 8 * MiB, 16 * MiB + 1, 0xc0001000])("rejects %d bytes of guest memory", (bytes) => {
    expect(() => buildE820(bytes)).toThrow(FirmwareError);
  });

  it("refuses overlapping or unsorted maps", () => {
    expect(() => checkE820([{ address: 0, size: 0x2000, type: 1 }, { address: 0x1000, size: 0x1000, type: 2 }])).toThrow(/overlaps/);
    expect(() => checkE820([{ address: 0, size: 0, type: 1 }])).toThrow(/empty/);
  });
});

describe("boot_params", () => {
  it("copies the setup header and fills the loader fields and the e820 table", () => {
    const image = fakeBzImage();
    const header = parseSetupHeader(image);
    const e820 = buildE820(64 * MiB);
    const bp = buildBootParams({ image, header, cmdlineAddress: 0x20000, cmdlineLength: 12, initrd: { address: 0x3000000, size: 12345 }, e820 });
    const d = decodeBootParams(bp);
    expect(d).toMatchObject({ typeOfLoader: 0xff, cmdLinePtr: 0x20000, ramdiskImage: 0x3000000, ramdiskSize: 12345, version: 0x20f });
    expect(d.e820).toEqual(e820);
    // everything of the header the loader does not own is the image's own bytes
    const loaderOwned = new Set([0x1fa, 0x1fb, 0x210, 0x211, 0x218, 0x219, 0x21a, 0x21b, 0x21c, 0x21d, 0x21e, 0x21f, 0x228, 0x229, 0x22a, 0x22b]);
    for (let o = 0x1f1; o < header.headerEnd; o++) if (!loaderOwned.has(o)) expect(bp[o], `byte 0x${o.toString(16)}`).toBe(image[o]);
    // KEEP_SEGMENTS and the heap flag are cleared; LOADED_HIGH kept
    expect(d.loadflags & 0xc1).toBe(0x01);
  });

  it("refuses a command line longer than the kernel takes", () => {
    const image = fakeBzImage({ cmdlineSize: 10 });
    const header = parseSetupHeader(image);
    expect(() => buildBootParams({ image, header, cmdlineAddress: 0x20000, cmdlineLength: 11, e820: buildE820(64 * MiB) })).toThrow(/at most 10/);
  });
});

describe("direct-boot plan", () => {
  const input = (over: Partial<DirectBootInput> = {}): DirectBootInput => ({
    bzImage: fakeBzImage(),
    initrd: new Uint8Array(300_000).fill(0x5a),
    cmdline: "console=ttyS0 tsc=reliable",
    memoryBytes: 64 * MiB,
    platform: { cpus: 4 },
    ...over,
  });

  it("puts every piece where Linux and the firmware look for it, without overlaps", () => {
    const inp = input();
    const plan = planDirectBoot(inp);
    const spans = plan.writes.map((w) => [w.address, w.address + w.bytes.length, w.what] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0], `${spans[i]![2]} overlaps ${spans[i - 1]![2]}`).toBeGreaterThanOrEqual(spans[i - 1]![1]);

    const mem = new Memory(inp.memoryBytes);
    for (const w of plan.writes) mem.write(w.address, w.bytes);

    // the handoff block the reset code reads
    expect(mem.u32(L.FW_HANDOFF_ADDR)).toBe(L.FW_HANDOFF_MAGIC);
    expect(mem.u32(L.FW_HANDOFF_ADDR + 4)).toBe(L.FW_HANDOFF_VERSION);
    expect(mem.u32(L.FW_HANDOFF_ADDR + 8)).toBe(0x100000);
    const bpAddr = mem.u32(L.FW_HANDOFF_ADDR + 12);
    expect([mem.u32(L.FW_HANDOFF_ADDR + 16), mem.u32(L.FW_HANDOFF_ADDR + 20)]).toEqual([4, 0xfec00000]);

    // boot_params -> command line, initramfs, e820
    const bp = decodeBootParams(mem.slice(bpAddr, 4096));
    expect(mem.text(bp.cmdLinePtr, inp.cmdline.length + 1)).toBe(inp.cmdline + "\0");
    expect(bp.ramdiskSize).toBe(300_000);
    expect(bp.ramdiskImage % 4096).toBe(0);
    expect(bp.ramdiskImage + bp.ramdiskSize).toBeLessThanOrEqual(inp.memoryBytes);
    expect(bp.ramdiskImage, "initramfs clear of the kernel's decompression area").toBeGreaterThanOrEqual(0x1000000 + 0x800000);
    expect(mem.slice(bp.ramdiskImage, 300_000).every((b) => b === 0x5a)).toBe(true);
    expect(mem.slice(0x100000, 0x3000)).toEqual(inp.bzImage.subarray(5 * 512));

    // the BIOS data area points at an EBDA the e820 map reserves
    expect(mem.u16(0x40e) << 4).toBe(0x9fc00);
    expect(mem.u16(0x413)).toBe(639);

    // tables found by Linux's own scans, inside reserved memory, describing 4 CPUs
    const mpAt = scanMp(mem, 0xf0000, 0x100000)!;
    expect(decodeMp(mem, mpAt).processors.map((p) => p.apicId)).toEqual([0, 1, 2, 3]);
    const rsdp = scanRsdp(mem, 0xe0000, 0x100000)!;
    expect(decodeMadt(decodeAcpi(mem, rsdp).tables.get("APIC")!).lapics.map((l) => l.apicId)).toEqual([0, 1, 2, 3]);
    const inRam = (a: number) => bp.e820.some((e) => e.type === 1 && a >= e.address && a < e.address + e.size);
    expect(inRam(mpAt) || inRam(rsdp)).toBe(false);
  });

  it("leaves out the tables it is told to", () => {
    const mp = planDirectBoot(input({ tables: { acpi: false } }));
    expect([mp.mpAddress, mp.rsdpAddress]).toEqual([0xf0000, undefined]);
    const acpi = planDirectBoot(input({ tables: { mp: false } }));
    expect([acpi.mpAddress, acpi.rsdpAddress]).toEqual([undefined, 0xf0000]);
  });

  it("boots without an initramfs", () => {
    const plan = planDirectBoot(input({ initrd: undefined }));
    expect(plan.initrd).toBeUndefined();
    expect(plan.writes.some((w) => w.what === "initramfs")).toBe(false);
  });

  it("explains what does not fit", () => {
    expect(() => planDirectBoot(input({ memoryBytes: 20 * MiB }))).toThrow(/the kernel needs RAM up to 0x1800000/);
    expect(() => planDirectBoot(input({ initrd: new Uint8Array(41 * MiB) }))).toThrow(/does not fit .* give the guest more memory/);
    expect(() => planDirectBoot(input({ cmdline: "console=ttyS0\n" }))).toThrow(/printable ASCII/);
    expect(() => planDirectBoot(input({ platform: { cpus: 16 } }))).toThrow(/cpus must be/);
    const moved = fakeBzImage();
    new DataView(moved.buffer).setUint32(0x214, 0x200000, true);
    expect(() => planDirectBoot(input({ bzImage: moved }))).toThrow(/code32_start is 0x200000/);
  });

  it("never overlaps its blocks and keeps them in RAM or the firmware area, for any memory and initramfs size", () => {
    fc.assert(
      fc.property(fc.integer({ min: 32, max: 768 }), fc.integer({ min: 0, max: 8 * MiB }), fc.integer({ min: 1, max: 15 }), (mib, initrdSize, cpus) => {
        const memoryBytes = mib * MiB;
        const plan = planDirectBoot(input({ memoryBytes, initrd: new Uint8Array(initrdSize), platform: { cpus } }));
        const spans = plan.writes.map((w) => [w.address, w.address + w.bytes.length] as const).sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
        for (const [a, b] of spans) expect(b <= L.EBDA_BASE || (a >= L.FW_IMAGE_BASE && b <= memoryBytes)).toBe(true);
        if (initrdSize > 0) expect(plan.initrd!.address).toBeGreaterThanOrEqual(0x1000000 + 0x800000);
      }),
      { numRuns: 100 },
    );
  });
});
