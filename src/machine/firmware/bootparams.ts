// The Linux x86 boot protocol (Documentation/arch/x86/boot.rst): reading a bzImage's setup header
// and building the boot_params "zero page" a 32-bit entry expects in ESI.

import { TableWriter } from "./bytes.ts";
import { check, FirmwareError } from "./errors.ts";
import { E820_ENTRY_SIZE, E820_MAX_ENTRIES, type E820Entry } from "./e820.ts";

/** Offsets in the bzImage file and, identically, in boot_params. */
export const HDR = {
  setupSects: 0x1f1,
  syssize: 0x1f4,
  vidMode: 0x1fa,
  bootFlag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  code32Start: 0x214,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  prefAddress: 0x258,
  initSize: 0x260,
} as const;

/** Other boot_params fields (outside the setup header). */
export const BP = {
  altMemK: 0x1e0,
  e820Entries: 0x1e8,
  e820Table: 0x2d0,
  size: 0x1000,
} as const;

export const LOADFLAG = { LOADED_HIGH: 1 << 0, KASLR: 1 << 1, QUIET: 1 << 5, KEEP_SEGMENTS: 1 << 6, CAN_USE_HEAP: 1 << 7 } as const;
export const MIN_PROTOCOL = 0x206;
export const HDRS_MAGIC = 0x53726448; // "HdrS"

export interface SetupHeader {
  /** Boot protocol version, e.g. 0x20f for 2.15. */
  version: number;
  setupSects: number;
  /** Offset of the protected-mode kernel in the file: (setup_sects + 1) * 512. */
  kernelOffset: number;
  loadflags: number;
  code32Start: number;
  initrdAddrMax: number;
  kernelAlignment: number;
  relocatable: boolean;
  xloadflags: number;
  /** Maximum command line length without the terminating NUL. */
  cmdlineSize: number;
  prefAddress: bigint;
  /** Bytes the kernel needs from its load address to decompress and start. */
  initSize: number;
  /** End of the setup header in the file (0x202 + the jump's displacement byte). */
  headerEnd: number;
}

export function parseSetupHeader(image: Uint8Array): SetupHeader {
  check(image.length >= 0x1000, `kernel image is ${image.length} bytes, too small to be a bzImage`);
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const u8 = (o: number) => dv.getUint8(o);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  if (u16(HDR.bootFlag) !== 0xaa55) throw new FirmwareError("kernel image has no 0xAA55 boot flag at 0x1FE: not a Linux bzImage");
  if (u32(HDR.header) !== HDRS_MAGIC) throw new FirmwareError('kernel image has no "HdrS" setup header signature at 0x202');
  const version = u16(HDR.version);
  if (version < MIN_PROTOCOL)
    throw new FirmwareError(`kernel boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, "0")} is older than 2.06, which direct boot needs`);
  const loadflags = u8(HDR.loadflags);
  if (!(loadflags & LOADFLAG.LOADED_HIGH)) throw new FirmwareError("kernel is a zImage (loads low); only bzImages are supported");
  const setupSects = u8(HDR.setupSects) || 4;
  const kernelOffset = (setupSects + 1) * 512;
  check(kernelOffset < image.length, `setup_sects ${setupSects} points past the end of the ${image.length}-byte image`);
  const jump = u16(HDR.jump);
  check((jump & 0xff) === 0xeb, `setup header has no short jump at 0x200 (found 0x${jump.toString(16)})`);
  const headerEnd = 0x202 + (jump >> 8);
  const field = (o: number, size: 1 | 4 | 8, fallback: number | bigint) =>
    o + size <= headerEnd ? (size === 1 ? u8(o) : size === 4 ? u32(o) : dv.getBigUint64(o, true)) : fallback;
  return {
    version,
    setupSects,
    kernelOffset,
    loadflags,
    code32Start: u32(HDR.code32Start),
    initrdAddrMax: field(HDR.initrdAddrMax, 4, 0x37ffffff) as number,
    kernelAlignment: field(HDR.kernelAlignment, 4, 0x100000) as number,
    relocatable: (field(HDR.relocatableKernel, 1, 0) as number) !== 0,
    xloadflags: version >= 0x20c ? u16(HDR.xloadflags) : 0,
    cmdlineSize: field(HDR.cmdlineSize, 4, 255) as number,
    prefAddress: version >= 0x20a ? (field(HDR.prefAddress, 8, 0x100000n) as bigint) : 0x100000n,
    initSize: version >= 0x20a ? (field(HDR.initSize, 4, 0) as number) : 0,
    headerEnd,
  };
}

export interface BootParamsInput {
  image: Uint8Array;
  header: SetupHeader;
  cmdlineAddress: number;
  /** Length of the command line without its NUL. */
  cmdlineLength: number;
  initrd?: { address: number; size: number };
  e820: E820Entry[];
}

export function buildBootParams(input: BootParamsInput): Uint8Array {
  const { image, header, e820 } = input;
  check(input.cmdlineLength <= header.cmdlineSize, `command line is ${input.cmdlineLength} bytes; this kernel takes at most ${header.cmdlineSize}`);
  check(e820.length <= E820_MAX_ENTRIES, `${e820.length} e820 entries; boot_params holds ${E820_MAX_ENTRIES}`);
  const w = new TableWriter(BP.size);
  // the setup header is copied from the image, then the loader's fields are filled in
  w.set(HDR.setupSects, image.subarray(HDR.setupSects, header.headerEnd));
  w.u16(HDR.vidMode, 0xffff); // "normal" text mode; unused with a serial console
  w.u8(HDR.typeOfLoader, 0xff); // undefined loader
  // no real-mode setup code runs, so no heap; KEEP_SEGMENTS off: the kernel loads its own segments
  w.u8(HDR.loadflags, header.loadflags & ~(LOADFLAG.QUIET | LOADFLAG.KEEP_SEGMENTS | LOADFLAG.CAN_USE_HEAP) & 0xff);
  w.u32(HDR.cmdLinePtr, input.cmdlineAddress);
  w.u32(HDR.ramdiskImage, input.initrd?.address ?? 0).u32(HDR.ramdiskSize, input.initrd?.size ?? 0);

  const above1M = e820.filter((e) => e.type === 1 && e.address >= 0x100000).reduce((n, e) => n + e.size, 0);
  w.u32(BP.altMemK, Math.floor(above1M / 1024));
  w.u8(BP.e820Entries, e820.length);
  e820.forEach((e, i) => {
    const at = BP.e820Table + i * E820_ENTRY_SIZE;
    w.u64(at, e.address).u64(at + 8, e.size).u32(at + 16, e.type);
  });
  return w.bytes;
}
