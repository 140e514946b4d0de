// Bounds-checked little-endian byte writer and reader used by the codec.
// Every failure is a CodecError so that callers only ever have one error type to handle.

export type CodecErrorReason =
  | "short" // the frame ends before a field does
  | "trailing" // bytes left after the message
  | "version" // frame from another protocol version
  | "unknown-type" // message type code not known
  | "bad-length" // a length field that cannot be right (page not 4096 bytes, too many items, ...)
  | "out-of-range" // a number outside its field's range
  | "bad-value" // an enum code or combination of fields that has no meaning
  | "bad-text"; // text that is not valid UTF-8

export class CodecError extends Error {
  override name = "CodecError";
  constructor(
    readonly reason: CodecErrorReason,
    message: string,
    /** For reason "version": the version the peer's frame carries. */
    readonly peerVersion?: number,
  ) {
    super(message);
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export function checkInt(value: number, min: number, max: number, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    throw new CodecError("out-of-range", `${field} is ${String(value)}, expected an integer in ${min}..${max}`);
  return value;
}

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(value: number, field: string): void {
    checkInt(value, 0, 0xff, field);
    this.reserve(1);
    this.buf[this.pos++] = value;
  }

  u16(value: number, field: string): void {
    checkInt(value, 0, 0xffff, field);
    this.reserve(2);
    this.view.setUint16(this.pos, value, true);
    this.pos += 2;
  }

  u32(value: number, field: string): void {
    checkInt(value, 0, 0xffff_ffff, field);
    this.reserve(4);
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
  }

  f64(value: number, field: string): void {
    if (typeof value !== "number" || !Number.isFinite(value))
      throw new CodecError("out-of-range", `${field} is ${String(value)}, expected a finite number`);
    this.reserve(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  /** Unsigned LEB128 of a safe non-negative integer (at most 8 bytes). */
  varint(value: number, field: string): void {
    checkInt(value, 0, Number.MAX_SAFE_INTEGER, field);
    this.reserve(8);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Length-prefixed (u32) bytes. */
  bytes(bytes: Uint8Array, field: string, maxLength: number): void {
    if (!(bytes instanceof Uint8Array)) throw new CodecError("bad-value", `${field} is not a Uint8Array`);
    if (bytes.length > maxLength)
      throw new CodecError("bad-length", `${field} has ${bytes.length} bytes, at most ${maxLength} allowed`);
    this.u32(bytes.length, field);
    this.raw(bytes);
  }

  /** Length-prefixed (u16) UTF-8 text. */
  text(value: string, field: string, maxBytes: number): void {
    if (typeof value !== "string") throw new CodecError("bad-value", `${field} is not a string`);
    const bytes = utf8Encoder.encode(value);
    if (bytes.length > maxBytes)
      throw new CodecError("bad-length", `${field} is ${bytes.length} bytes of UTF-8, at most ${maxBytes} allowed`);
    this.u16(bytes.length, field);
    this.raw(bytes);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export class Reader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (this.pos + n > this.buf.length)
      throw new CodecError(
        "short",
        `frame ends inside ${field}: needs ${n} byte(s) at offset ${this.pos}, frame has ${this.buf.length}`,
      );
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(field: string): number {
    this.need(8, field);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    if (!Number.isFinite(v)) throw new CodecError("out-of-range", `${field} is ${v}, expected a finite number`);
    return v;
  }

  varint(field: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8(field);
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new CodecError("bad-value", `${field} is a non-canonical varint`);
        if (value > Number.MAX_SAFE_INTEGER)
          throw new CodecError("out-of-range", `${field} exceeds the largest safe integer`);
        return value;
      }
      scale *= 0x80;
    }
    throw new CodecError("out-of-range", `${field} is a varint longer than 8 bytes`);
  }

  /** Reads `n` bytes as a fresh copy (decoded messages never alias the frame). */
  raw(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes(field: string, maxLength: number): Uint8Array {
    const n = this.u32(`${field} length`);
    if (n > maxLength) throw new CodecError("bad-length", `${field} claims ${n} bytes, at most ${maxLength} allowed`);
    if (n > this.remaining)
      throw new CodecError("short", `${field} claims ${n} bytes but only ${this.remaining} remain`);
    return this.raw(n, field);
  }

  text(field: string, maxBytes: number): string {
    const n = this.u16(`${field} length`);
    if (n > maxBytes) throw new CodecError("bad-length", `${field} claims ${n} bytes, at most ${maxBytes} allowed`);
    const bytes = this.raw(n, field);
    try {
      return utf8Decoder.decode(bytes);
    } catch {
      throw new CodecError("bad-text", `${field} is not valid UTF-8`);
    }
  }

  /** Reads a count and checks it against a limit and the bytes left (each item >= minItemBytes). */
  count(field: string, max: number, minItemBytes: number, wide = false): number {
    const n = wide ? this.varint(field) : this.u8(field);
    if (n > max) throw new CodecError("bad-length", `${field} is ${n}, at most ${max} allowed`);
    if (n * minItemBytes > this.remaining)
      throw new CodecError("short", `${field} is ${n} but only ${this.remaining} bytes remain`);
    return n;
  }

  end(): void {
    if (this.remaining !== 0)
      throw new CodecError("trailing", `${this.remaining} unexpected byte(s) after the message at offset ${this.pos}`);
  }
}
