// Little-endian table writing and the 8-bit checksums that MP and ACPI tables share
// (all bytes of the checksummed range sum to 0 modulo 256).

import { check } from "./errors.ts";

export function sum8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s = (s + bytes[i]!) & 0xff;
  return s;
}

/** Sets `bytes[at]` so that `bytes[start..end)` sums to zero. */
export function fixChecksum(bytes: Uint8Array, at: number, start = 0, end = bytes.length): void {
  bytes[at] = 0;
  bytes[at] = (0x100 - sum8(bytes, start, end)) & 0xff;
}

/** A fixed-size little-endian buffer with bounds-checked typed setters. */
export class TableWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u8(at: number, v: number): this {
    check(Number.isInteger(v) && v >= 0 && v <= 0xff, `value ${v} at offset ${at} does not fit in a byte`);
    this.view.setUint8(at, v);
    return this;
  }
  u16(at: number, v: number): this {
    check(Number.isInteger(v) && v >= 0 && v <= 0xffff, `value ${v} at offset ${at} does not fit in 16 bits`);
    this.view.setUint16(at, v, true);
    return this;
  }
  u32(at: number, v: number): this {
    check(Number.isInteger(v) && v >= 0 && v <= 0xffffffff, `value ${v} at offset ${at} does not fit in 32 bits`);
    this.view.setUint32(at, v, true);
    return this;
  }
  u64(at: number, v: number | bigint): this {
    const b = BigInt(v);
    check(b >= 0n && b < 1n << 64n, `value ${v} at offset ${at} does not fit in 64 bits`);
    this.view.setBigUint64(at, b, true);
    return this;
  }
  /** ASCII text, space-padded (MP/ACPI identifiers) unless `pad` says otherwise. */
  ascii(at: number, text: string, length: number, pad = 0x20): this {
    check(/^[\x20-\x7e]*$/.test(text), `identifier ${JSON.stringify(text)} is not printable ASCII`);
    check(text.length <= length, `identifier ${JSON.stringify(text)} is longer than ${length} bytes`);
    for (let i = 0; i < length; i++) this.bytes[at + i] = i < text.length ? text.charCodeAt(i) : pad;
    return this;
  }
  set(at: number, src: Uint8Array): this {
    check(at + src.length <= this.bytes.length, `copy of ${src.length} bytes at ${at} overflows a ${this.bytes.length}-byte table`);
    this.bytes.set(src, at);
    return this;
  }
}
