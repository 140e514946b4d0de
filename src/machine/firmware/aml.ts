// A small encoder for ACPI Machine Language (AML), the byte code of a DSDT, written from the
// grammar in the ACPI specification (6.x, chapter 20 "ACPI Machine Language Specification").
// It covers what our DSDT needs: names and scopes, devices, methods, SystemIO operation regions
// with fields, mutexes, integer/string/buffer data, and the handful of statements and operators
// the CPU hotplug methods use. Every function returns the bytes of one term; terms nest by
// passing those bytes to their parent. Names are checked, lengths computed, nothing is guessed.

import { check, FirmwareError } from "./errors.ts";

/** The bytes of one AML term (or of a list of terms). */
export type Aml = Uint8Array;
/** An operand: encoded AML, or a number (encoded as the shortest integer constant). */
export type Operand = Aml | number;

/** Concatenates terms (a TermList is just its terms one after the other). */
export function aml(...parts: (Aml | readonly number[])[]): Aml {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const operand = (x: Operand): Aml => (typeof x === "number" ? integer(x) : x);

// ---------------------------------------------------------------- package length (20.2.4)

// PkgLength: a lead byte whose bits 7-6 give how many bytes follow (0-3). With none, bits 5-0
// hold the value (0-63). Otherwise bits 3-0 hold its low nybble, bits 5-4 are zero, and each
// following byte holds the next 8 bits: up to 2^28 - 1.
const PKG_MAX = [0x3f, 0xfff, 0xfffff, 0xfffffff] as const;

function encodePkgValue(value: number, follow: number): number[] {
  if (follow === 0) return [value];
  const out = [(follow << 6) | (value & 0x0f)];
  for (let i = 0; i < follow; i++) out.push((value >> (4 + 8 * i)) & 0xff);
  return out;
}

/**
 * The PkgLength of a package whose contents after the PkgLength are `contentLength` bytes. The
 * encoded value counts the PkgLength's own bytes too, so the shortest form that fits is chosen
 * with itself included.
 */
export function pkgLength(contentLength: number): number[] {
  check(Number.isInteger(contentLength) && contentLength >= 0, `package length ${contentLength} is not a byte count`);
  for (let follow = 0; follow < 4; follow++) {
    const total = contentLength + follow + 1;
    if (total <= PKG_MAX[follow]!) return encodePkgValue(total, follow);
  }
  throw new FirmwareError(`package of ${contentLength} bytes exceeds AML's 2^28-byte limit`);
}

/** A PkgLength-encoded plain value (a field element's width in bits): it does not count itself. */
export function pkgValue(value: number): number[] {
  check(Number.isInteger(value) && value >= 0 && value <= PKG_MAX[3], `value ${value} cannot be encoded as a PkgLength`);
  const follow = PKG_MAX.findIndex((max) => value <= max);
  return encodePkgValue(value, follow);
}

/** opcode bytes, PkgLength, contents: the shape of every package-like term. */
function pkg(opcode: readonly number[], ...contents: Aml[]): Aml {
  const body = aml(...contents);
  return aml(opcode, pkgLength(body.length), body);
}

// ---------------------------------------------------------------- names (20.2.2)

const ROOT_CHAR = 0x5c; // '\'
const PARENT_PREFIX = 0x5e; // '^'
const DUAL_NAME_PREFIX = 0x2e;
const MULTI_NAME_PREFIX = 0x2f;
const NULL_NAME = 0x00;

/** NameSeg: four characters, a lead of A-Z or '_' and then A-Z, 0-9 or '_'; shorter names are padded with '_'. */
export function nameSeg(seg: string): number[] {
  check(/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg), `${JSON.stringify(seg)} is not an AML name segment (1-4 of A-Z, 0-9, _; not starting with a digit)`);
  const padded = seg.padEnd(4, "_");
  return Array.from(padded, (c) => c.charCodeAt(0));
}

/**
 * NameString from ASL-style text: an optional `\` (root) or run of `^` (parent), then segments
 * separated by dots, e.g. `\_SB.CPUS.CSCN`, `^CPEN`, `C001`. No segment at all is the null name.
 */
export function nameString(path: string): Aml {
  let i = 0;
  const prefix: number[] = [];
  if (path.startsWith("\\")) {
    prefix.push(ROOT_CHAR);
    i = 1;
  } else {
    while (path[i] === "^") {
      prefix.push(PARENT_PREFIX);
      i++;
    }
  }
  const rest = path.slice(i);
  const segs = rest === "" ? [] : rest.split(".");
  check(segs.length <= 255, `name ${path} has more than 255 segments`);
  const encoded = segs.flatMap(nameSeg);
  if (segs.length === 0) return aml(prefix, [NULL_NAME]);
  if (segs.length === 1) return aml(prefix, encoded);
  if (segs.length === 2) return aml(prefix, [DUAL_NAME_PREFIX], encoded);
  return aml(prefix, [MULTI_NAME_PREFIX, segs.length], encoded);
}

/** A reference to a named object used as an operand or target (the NameString itself). */
export const ref = nameString;

// ---------------------------------------------------------------- data (20.2.3)

const ZERO_OP = 0x00;
const ONE_OP = 0x01;
const ONES_OP = 0xff;
const BYTE_PREFIX = 0x0a;
const WORD_PREFIX = 0x0b;
const DWORD_PREFIX = 0x0c;
const STRING_PREFIX = 0x0d;
const QWORD_PREFIX = 0x0e;

export const Zero: Aml = Uint8Array.of(ZERO_OP);
export const One: Aml = Uint8Array.of(ONE_OP);
/** All bits set: 0xFFFFFFFF in a revision-1 table (32-bit integers), 2^64-1 from revision 2. */
export const Ones: Aml = Uint8Array.of(ONES_OP);

const le = (value: bigint, bytes: number): number[] =>
  Array.from({ length: bytes }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));

/** An integer constant in its shortest form: ZeroOp, OneOp, or a Byte/Word/DWord/QWord prefix. */
export function integer(value: number | bigint): Aml {
  check(typeof value === "bigint" || Number.isInteger(value), `${value} is not an integer`);
  const v = BigInt(value);
  check(v >= 0n && v < 1n << 64n, `integer ${value} does not fit in 64 bits`);
  if (v === 0n) return Zero;
  if (v === 1n) return One;
  if (v <= 0xffn) return aml([BYTE_PREFIX], le(v, 1));
  if (v <= 0xffffn) return aml([WORD_PREFIX], le(v, 2));
  if (v <= 0xffffffffn) return aml([DWORD_PREFIX], le(v, 4));
  return aml([QWORD_PREFIX], le(v, 8));
}

/** A String constant: printable ASCII, NUL-terminated. */
export function string(text: string): Aml {
  check(/^[\x01-\x7f]*$/.test(text), `${JSON.stringify(text)} is not an AML string (ASCII without NUL)`);
  return aml([STRING_PREFIX], Array.from(text, (c) => c.charCodeAt(0)), [0]);
}

/** Buffer (BufferSize) { bytes }: the size is the number of bytes given. */
export function buffer(bytes: readonly number[] | Uint8Array): Aml {
  for (const b of bytes) check(Number.isInteger(b) && b >= 0 && b <= 0xff, `buffer byte ${b} is not a byte`);
  return pkg([0x11], integer(bytes.length), Uint8Array.from(bytes));
}

/** Package (n) { elements }: each element a data object, a name or a nested package. */
export function packageOf(...elements: Operand[]): Aml {
  check(elements.length <= 255, `a Package holds at most 255 elements, got ${elements.length}`);
  return pkg([0x12], Uint8Array.of(elements.length), ...elements.map(operand));
}

/**
 * The 32-bit value of an EISA ID such as "PNP0A05" (what ASL's EisaId() yields): three letters
 * compressed to 5 bits each (A = 1) in a big-endian 16-bit word, then four hex digits, the whole
 * stored as bytes in that order, i.e. read back little-endian.
 */
export function eisaId(id: string): number {
  check(/^[A-Z]{3}[0-9A-F]{4}$/.test(id), `${JSON.stringify(id)} is not an EISA ID (three letters, four hex digits)`);
  const letters = [0, 1, 2].map((i) => id.charCodeAt(i) - 0x40);
  const mfg = (letters[0]! << 10) | (letters[1]! << 5) | letters[2]!;
  const product = parseInt(id.slice(3), 16);
  const bytes = [mfg >> 8, mfg & 0xff, product >> 8, product & 0xff];
  return (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
}

// ---------------------------------------------------------------- local and argument objects (20.2.6)

/** Local0..Local7. */
export function local(n: number): Aml {
  check(Number.isInteger(n) && n >= 0 && n <= 7, `Local${n} does not exist (Local0-Local7)`);
  return Uint8Array.of(0x60 + n);
}
/** Arg0..Arg6. */
export function arg(n: number): Aml {
  check(Number.isInteger(n) && n >= 0 && n <= 6, `Arg${n} does not exist (Arg0-Arg6)`);
  return Uint8Array.of(0x68 + n);
}

// ---------------------------------------------------------------- named objects and namespace modifiers (20.2.5)

const EXT_OP = 0x5b;

/** Name (name, value). */
export function name(path: string, value: Operand): Aml {
  return aml([0x08], nameString(path), operand(value));
}

/** Scope (name) { terms }. */
export function scope(path: string, ...terms: Aml[]): Aml {
  return pkg([0x10], nameString(path), ...terms);
}

/** Device (name) { terms }. */
export function device(path: string, ...terms: Aml[]): Aml {
  return pkg([EXT_OP, 0x82], nameString(path), ...terms);
}

export interface MethodOptions {
  /** Number of arguments, 0-7. */
  args?: number;
  /** Serialized (one thread at a time), default NotSerialized. */
  serialized?: boolean;
  /** SyncLevel, 0-15 (default 0). */
  syncLevel?: number;
}

/** Method (name, args, Serialized|NotSerialized, syncLevel) { terms }. */
export function method(path: string, opts: MethodOptions, ...terms: Aml[]): Aml {
  const args = opts.args ?? 0;
  const sync = opts.syncLevel ?? 0;
  check(Number.isInteger(args) && args >= 0 && args <= 7, `a method takes 0-7 arguments, got ${args}`);
  check(Number.isInteger(sync) && sync >= 0 && sync <= 15, `sync level ${sync} is not 0-15`);
  const flags = args | (opts.serialized ? 1 << 3 : 0) | (sync << 4);
  return pkg([0x14], nameString(path), Uint8Array.of(flags), ...terms);
}

/** Region spaces of OperationRegion (the ones we may use). */
export const RegionSpace = { SystemMemory: 0, SystemIO: 1, PCI_Config: 2 } as const;

/** OperationRegion (name, space, offset, length). */
export function operationRegion(path: string, space: number, offset: Operand, length: Operand): Aml {
  check(Number.isInteger(space) && space >= 0 && space <= 0xff, `region space ${space} is not a byte`);
  return aml([EXT_OP, 0x80], nameString(path), [space], operand(offset), operand(length));
}

export const AccessType = { AnyAcc: 0, ByteAcc: 1, WordAcc: 2, DWordAcc: 3, QWordAcc: 4, BufferAcc: 5 } as const;
export const UpdateRule = { Preserve: 0, WriteAsOnes: 1, WriteAsZeros: 2 } as const;

export interface FieldOptions {
  access: number;
  lock?: boolean;
  update?: number;
}

/**
 * One element of a field list: a named field `{ name, bits }`, unnamed bits to skip `{ skip }`, or
 * ASL's `Offset (byte)` `{ offset }`, which becomes the reserved bits up to that byte.
 */
export type FieldElement = { name: string; bits: number } | { skip: number } | { offset: number };

/** Field (region, access, lock, update) { elements }. */
export function field(region: string, opts: FieldOptions, ...elements: FieldElement[]): Aml {
  check(Number.isInteger(opts.access) && opts.access >= 0 && opts.access <= 5, `access type ${opts.access} is not 0-5`);
  const update = opts.update ?? UpdateRule.Preserve;
  check(Number.isInteger(update) && update >= 0 && update <= 2, `update rule ${update} is not 0-2`);
  const flags = opts.access | (opts.lock ? 1 << 4 : 0) | (update << 5);
  const list: number[] = [];
  let bit = 0;
  for (const e of elements) {
    if ("name" in e) {
      check(Number.isInteger(e.bits) && e.bits >= 1, `field ${e.name} must be at least one bit wide, got ${e.bits}`);
      list.push(...nameSeg(e.name), ...pkgValue(e.bits));
      bit += e.bits;
    } else {
      const skip = "skip" in e ? e.skip : e.offset * 8 - bit;
      check(Number.isInteger(skip) && skip >= 0, `field offset ${JSON.stringify(e)} lies before bit ${bit}, which is already described`);
      if (skip === 0) continue;
      list.push(0x00, ...pkgValue(skip)); // ReservedField
      bit += skip;
    }
  }
  return pkg([EXT_OP, 0x81], nameString(region), Uint8Array.of(flags), Uint8Array.from(list));
}

/** Mutex (name, syncLevel). */
export function mutex(path: string, syncLevel = 0): Aml {
  check(Number.isInteger(syncLevel) && syncLevel >= 0 && syncLevel <= 15, `sync level ${syncLevel} is not 0-15`);
  return aml([EXT_OP, 0x01], nameString(path), [syncLevel]);
}

// ---------------------------------------------------------------- statements (20.2.5.3)

/** If (predicate) { then } Else { otherwise }; ASL's ElseIf is an If inside the Else. */
export function ifThen(predicate: Operand, then: Aml[], otherwise?: Aml[]): Aml {
  const ifTerm = pkg([0xa0], operand(predicate), ...then);
  return otherwise === undefined ? ifTerm : aml(ifTerm, pkg([0xa1], ...otherwise));
}

/** While (predicate) { body }. */
export function whileLoop(predicate: Operand, ...body: Aml[]): Aml {
  return pkg([0xa2], operand(predicate), ...body);
}

export const Break: Aml = Uint8Array.of(0xa5);

/** Return (value). */
export function ret(value: Operand): Aml {
  return aml([0xa4], operand(value));
}

/** Notify (object, value). */
export function notify(object: Aml, value: Operand): Aml {
  return aml([0x86], object, operand(value));
}

/** Acquire (mutex, timeout in ms; 0xFFFF waits forever). The result (true on timeout) is dropped when used as a statement. */
export function acquire(mutexPath: string, timeoutMs = 0xffff): Aml {
  check(Number.isInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= 0xffff, `timeout ${timeoutMs} is not a word`);
  return aml([EXT_OP, 0x23], nameString(mutexPath), le(BigInt(timeoutMs), 2));
}

/** Release (mutex). */
export function release(mutexPath: string): Aml {
  return aml([EXT_OP, 0x27], nameString(mutexPath));
}

/** Store (source, destination). */
export function store(source: Operand, destination: Aml): Aml {
  return aml([0x70], operand(source), destination);
}

/** Calls a method: its name, then exactly the arguments it takes (AML has no delimiter). */
export function call(path: string, ...args: Operand[]): Aml {
  check(args.length <= 7, `a method takes at most 7 arguments, got ${args.length}`);
  return aml(nameString(path), ...args.map(operand));
}

// ---------------------------------------------------------------- expressions (20.2.5.4)

const NO_TARGET: Aml = Uint8Array.of(NULL_NAME);

export const lAnd = (a: Operand, b: Operand): Aml => aml([0x90], operand(a), operand(b));
export const lOr = (a: Operand, b: Operand): Aml => aml([0x91], operand(a), operand(b));
export const lNot = (a: Operand): Aml => aml([0x92], operand(a));
export const lEqual = (a: Operand, b: Operand): Aml => aml([0x93], operand(a), operand(b));
export const lGreater = (a: Operand, b: Operand): Aml => aml([0x94], operand(a), operand(b));
export const lLess = (a: Operand, b: Operand): Aml => aml([0x95], operand(a), operand(b));

/** Add (a, b, target); without a target the sum is only the expression's value. */
export const add = (a: Operand, b: Operand, target: Aml = NO_TARGET): Aml => aml([0x72], operand(a), operand(b), target);
export const subtract = (a: Operand, b: Operand, target: Aml = NO_TARGET): Aml => aml([0x74], operand(a), operand(b), target);
export const and = (a: Operand, b: Operand, target: Aml = NO_TARGET): Aml => aml([0x7b], operand(a), operand(b), target);
export const or = (a: Operand, b: Operand, target: Aml = NO_TARGET): Aml => aml([0x7d], operand(a), operand(b), target);
/** Increment (object). */
export const increment = (object: Aml): Aml => aml([0x75], object);
