import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkBios, checkBzImage, checkI386Elf, checkInitramfs, checkVgaBios, ImageError } from "../../src/guests/image-checks.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";

const real = ensureGuestImages();
const read = (p: string) => new Uint8Array(readFileSync(p));

describe("guest image checks", () => {
  it("accept the images the pipeline built from Debian's packages", () => {
    expect(checkBzImage(read(real.bzImage)).protocol).toMatch(/^2\.\d\d$/);
    expect(() => checkInitramfs(read(real.initramfs))).not.toThrow();
    expect(() => checkBios(read(real.bios))).not.toThrow();
    expect(() => checkVgaBios(read(real.vgaBios))).not.toThrow();
  });

  it("reject a kernel that is not a bzImage, naming the file", () => {
    expect(() => checkBzImage(read(real.initramfs), "k.gz")).toThrow(/k\.gz \(\d+ bytes\) is not a Linux bzImage/);
    expect(() => checkBzImage(new Uint8Array(100), "tiny")).toThrow(/too small/);
    const truncated = read(real.bzImage).slice(0, 0x1800);
    truncated[0x1f1] = 40;
    expect(() => checkBzImage(truncated, "cut")).toThrow(/truncated/);
  });

  it("reject images of the wrong kind", () => {
    expect(() => checkInitramfs(read(real.bios), "x")).toThrow(/neither gzip-compressed nor a newc cpio/);
    expect(() => checkBios(read(real.vgaBios), "vga")).toThrow(/wrong size for a BIOS/);
    expect(() => checkVgaBios(read(real.bzImage), "k")).toThrow(ImageError);
    expect(() => checkI386Elf(read(real.bzImage), "k")).toThrow(/not an ELF/);
  });
});
