// Kernel symbols recovered from the kernel image itself, for kernels shipped without a System.map
// (Debian's -dbg package, which has the real one, is not in the main archive). Pure: takes the
// decompressed vmlinux (an ELF32 file) and returns symbols.
//
// Two sources inside the image:
// - the kallsyms tables (CONFIG_KALLSYMS): every text symbol (Debian's 686 kernel has
//   KALLSYMS_ALL unset, so no data). Located heuristically: the token table holds the digits
//   "0".."9" as consecutive one-character tokens; the token index follows it; walking back,
//   kallsyms_num_syms is the u32 after which exactly that many names decode and end before the
//   token table; kallsyms_relative_base and kallsyms_offsets sit just before num_syms
//   (CONFIG_KALLSYMS_BASE_RELATIVE, the 6.1 layout).
// - the export tables (__ksymtab, __ksymtab_gpl): every EXPORT_SYMBOL'd function *and variable*
//   (jiffies, init_task, ...), with place-relative 32-bit fields (HAVE_ARCH_PREL32_RELOCATIONS).

import type { KernelSymbol } from "./system-map.ts";

export class KallsymsError extends Error {
  override name = "KallsymsError";
}

export interface ElfSection {
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
}

const SHT_PROGBITS = 1;
const SHT_NOBITS = 8;

/** Section headers of a little-endian ELF32 file. */
export function elf32Sections(image: Uint8Array): ElfSection[] {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length < 52 || dv.getUint32(0, false) !== 0x7f454c46) throw new KallsymsError("not an ELF file (no \\x7fELF magic)");
  if (image[4] !== 1 || image[5] !== 1) throw new KallsymsError("not a little-endian 32-bit ELF file (expected an i386 vmlinux)");
  const shoff = dv.getUint32(32, true);
  const shentsize = dv.getUint16(46, true);
  const shnum = dv.getUint16(48, true);
  const shstrndx = dv.getUint16(50, true);
  if (shoff === 0 || shnum === 0 || shoff + shnum * shentsize > image.length) throw new KallsymsError("the ELF file has no (complete) section headers");
  const raw = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return {
      nameOff: dv.getUint32(o, true),
      type: dv.getUint32(o + 4, true),
      addr: dv.getUint32(o + 12, true),
      offset: dv.getUint32(o + 16, true),
      size: dv.getUint32(o + 20, true),
    };
  });
  const strtab = raw[shstrndx];
  if (!strtab) throw new KallsymsError("the ELF file has no section name table");
  return raw.map((s) => ({ name: cString(image, strtab.offset + s.nameOff), type: s.type, addr: s.addr, offset: s.offset, size: s.size }));
}

function cString(image: Uint8Array, at: number, max = 512): string {
  let end = at;
  while (end < image.length && end - at < max && image[end] !== 0) end++;
  return new TextDecoder().decode(image.subarray(at, end));
}

/** Maps kernel virtual addresses to file offsets through the sections that have bytes. */
class AddressMap {
  constructor(private readonly sections: ElfSection[]) {}
  offsetOf(addr: number): number | null {
    for (const s of this.sections)
      if (s.type === SHT_PROGBITS && s.addr !== 0 && addr >= s.addr && addr < s.addr + s.size) return s.offset + (addr - s.addr);
    return null;
  }
  sectionOf(addr: number): ElfSection | null {
    for (const s of this.sections) if (s.addr !== 0 && addr >= s.addr && addr < s.addr + Math.max(1, s.size)) return s;
    return null;
  }
}

export interface KallsymsLayout {
  /** File offsets of the tables found. */
  tokenTable: number;
  tokenIndex: number;
  numSyms: number;
  count: number;
  relativeBase: number;
}

const DIGITS = new TextEncoder().encode("0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00");
const NAME = /^[tTdDbBrRaAwWvV][A-Za-z0-9_.$]+$/;

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0]!;
  for (let i = hay.indexOf(first, from); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    let k = 1;
    while (k < needle.length && hay[i + k] === needle[k]) k++;
    if (k === needle.length) return i;
  }
  return -1;
}

/** Reads the kallsyms tables (text symbols); throws KallsymsError when they cannot be found. */
export function readKallsyms(image: Uint8Array): { symbols: KernelSymbol[]; layout: KallsymsLayout } {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  for (let at = indexOf(image, DIGITS, 0); at >= 0; at = indexOf(image, DIGITS, at + 1)) {
    const found = tryTokenTable(image, dv, at);
    if (found) return found;
  }
  throw new KallsymsError("no kallsyms token table in this image (is CONFIG_KALLSYMS set?)");
}

function tryTokenTable(image: Uint8Array, dv: DataView, digitsAt: number): { symbols: KernelSymbol[]; layout: KallsymsLayout } | null {
  // Tokens '0'..'9' are entries 0x30..0x39; walk to the end of entry 255.
  let p = digitsAt;
  for (let k = 0x30; k < 256; k++) {
    const end = image.indexOf(0, p);
    if (end < 0 || end - p > 64) return null;
    p = end + 1;
  }
  const tokenIndex = (p + 3) & ~3;
  if (tokenIndex + 512 > image.length) return null;
  const idx = Array.from({ length: 256 }, (_, k) => dv.getUint16(tokenIndex + 2 * k, true));
  const tokenTable = digitsAt - idx[0x30]!;
  if (idx[0] !== 0 || tokenTable < 0 || tokenTable + idx[255]! >= tokenIndex) return null;
  const tokens: string[] = [];
  for (let k = 0; k < 256; k++) {
    if (k > 0 && idx[k]! <= idx[k - 1]!) return null;
    const s = cString(image, tokenTable + idx[k]!, 64);
    if (s.length === 0) return null;
    tokens.push(s);
  }
  const entry = (q: number): [number, string] | null => {
    if (q >= tokenTable) return null;
    let len = image[q]!;
    q++;
    if (len & 0x80) len = (len & 0x7f) | (image[q++]! << 7); // "big" symbols (6.1+): two-byte length
    if (q + len > tokenTable) return null;
    let s = "";
    for (let i = 0; i < len; i++) s += tokens[image[q + i]!];
    return [q + len, s];
  };
  // kallsyms_num_syms: a u32 after which that many names decode, all plausible, ending before the tokens.
  const limit = Math.max(0, tokenTable - 16 * 1024 * 1024);
  for (let cand = (tokenTable & ~3) - 4; cand >= limit + 4; cand -= 4) {
    const n = dv.getUint32(cand, true);
    if (n < 1000 || n > 1_000_000) continue;
    let q = cand + 4;
    const names: string[] = [];
    let ok = true;
    for (let k = 0; k < n; k++) {
      const e = entry(q);
      if (!e || (k < 64 && !NAME.test(e[1]))) {
        ok = false;
        break;
      }
      [q, names[k]] = e;
    }
    if (!ok) continue;
    // kallsyms_markers follows the names: offsets of every 256th name, starting with 0.
    const markers = (q + 3) & ~3;
    if (dv.getUint32(markers, true) !== 0) continue;
    const offsetsAt = cand - 4 - 4 * n;
    if (offsetsAt < 0) continue;
    const relativeBase = dv.getUint32(cand - 4, true);
    const symbols = names.map((name, k) => ({
      address: (relativeBase + dv.getUint32(offsetsAt + 4 * k, true)) >>> 0,
      type: name[0]!,
      name: name.slice(1),
    }));
    // Sorted by address is how kallsyms stores them; anything else means we misread the layout.
    for (let k = 1; k < symbols.length; k++) if (symbols[k]!.address < symbols[k - 1]!.address) throw new KallsymsError(`kallsyms addresses are not sorted at symbol ${k}: the table layout is not the expected 6.1 one`);
    return { symbols, layout: { tokenTable, tokenIndex, numSyms: cand, count: n, relativeBase } };
  }
  return null;
}

/** Exported symbols (functions and variables) from __ksymtab and __ksymtab_gpl. */
export function readKsymtab(image: Uint8Array, sections: ElfSection[]): KernelSymbol[] {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const map = new AddressMap(sections);
  const out: KernelSymbol[] = [];
  for (const s of sections.filter((x) => x.name === "__ksymtab" || x.name === "__ksymtab_gpl")) {
    if (s.size % 12 !== 0) throw new KallsymsError(`${s.name} is ${s.size} bytes, not a multiple of 12 (value, name, namespace offsets)`);
    for (let k = 0; k < s.size / 12; k++) {
      const at = s.addr + 12 * k;
      const o = s.offset + 12 * k;
      const value = (at + dv.getInt32(o, true)) >>> 0;
      const nameAt = map.offsetOf((at + 4 + dv.getInt32(o + 4, true)) >>> 0);
      if (nameAt === null) throw new KallsymsError(`${s.name} entry ${k}: its name lies outside the image`);
      const sec = map.sectionOf(value);
      // Per-CPU variables are linked into a template section; their real copies live elsewhere.
      if (!sec || sec.name === ".data..percpu") continue;
      out.push({ address: value, type: typeFor(sec), name: cString(image, nameAt) });
    }
  }
  return out;
}

function typeFor(sec: ElfSection): string {
  if (sec.name.includes("text")) return "T";
  if (sec.type === SHT_NOBITS || sec.name === ".brk") return "B";
  if (sec.name === ".data" || sec.name.startsWith(".data") || sec.name.includes("init.data")) return "D";
  return "R";
}

export interface KernelSymbolsResult {
  symbols: KernelSymbol[];
  textSymbols: number;
  /** Exported symbols that kallsyms lacked (variables, mostly). */
  exportedAdded: number;
  /** Section boundaries added as symbols (so a page of .data with no export still says ".data"). */
  sections: number;
}

/** Every symbol the image gives away, sorted by address, in System.map form. */
export function kernelSymbols(image: Uint8Array): KernelSymbolsResult {
  const sections = elf32Sections(image);
  const { symbols: text } = readKallsyms(image);
  const seen = new Set(text.map((s) => `${s.name}@${s.address}`));
  const names = new Set(text.map((s) => s.name));
  const exported = readKsymtab(image, sections).filter((s) => !names.has(s.name) && !seen.has(`${s.name}@${s.address}`));
  const bounds: KernelSymbol[] = sections
    .filter((s) => s.addr >= 0xc000_0000 && s.size > 0 && (s.type === SHT_PROGBITS || s.type === SHT_NOBITS))
    .map((s) => ({ address: s.addr, type: typeFor(s).toLowerCase(), name: `section:${s.name}` }));
  const last = sections.reduce((m, s) => (s.addr >= 0xc000_0000 ? Math.max(m, s.addr + s.size) : m), 0);
  const all = [...text, ...exported, ...bounds];
  if (!names.has("_end") && last > 0) all.push({ address: last, type: "B", name: "_end" });
  all.sort((a, b) => a.address - b.address || a.name.localeCompare(b.name));
  return { symbols: all, textSymbols: text.length, exportedAdded: exported.length, sections: bounds.length };
}
