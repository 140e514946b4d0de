// Kernel symbols for the live view: parse System.map text ("c1000000 T _text" per line) and name
// the symbols that lie on a guest-physical page. Pure: no I/O, runs in the browser and in Node.

/** i386 Linux maps physical memory at 3 GiB (CONFIG_PAGE_OFFSET=0xC0000000, Debian's 686 kernel). */
export const I386_PAGE_OFFSET = 0xc000_0000;
const PAGE_SIZE = 4096;

export interface KernelSymbol {
  /** Kernel virtual address. */
  address: number;
  /** nm type letter: T/t text, D/d data, B/b bss, R/r read-only data, A absolute, W weak, ... */
  type: string;
  name: string;
}

/** A symbol on a page, with where it starts relative to the page (negative: began on an earlier page). */
export interface SymbolOnPage extends KernelSymbol {
  offsetInPage: number;
}

export class SystemMapError extends Error {
  override name = "SystemMapError";
}

// One System.map line: address (hex, 8 or 16 digits on i386/x86-64), nm type letter, name
// (module symbols carry a trailing "\t[module]", which System.map never has but /proc/kallsyms does).
const LINE = /^([0-9a-fA-F]{1,16})\s+([a-zA-Z?-])\s+(\S+)(?:\s+\[\S+\])?\s*$/;

/** Parses System.map (or /proc/kallsyms) text; throws SystemMapError naming the first bad line. */
export function parseSystemMap(text: string): KernelSymbol[] {
  if (typeof text !== "string") throw new SystemMapError("System.map text is not a string");
  // Debian ships a one-line stub in the kernel package; say so rather than "0 symbols".
  if (/The real System\.map is in the/.test(text))
    throw new SystemMapError(
      "this System.map is Debian's stub (the real one is in the linux-image-*-dbg package); " +
        "use the map extracted from the kernel's kallsyms table instead",
    );
  const symbols: KernelSymbol[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const m = LINE.exec(line);
    if (!m) throw new SystemMapError(`System.map line ${i + 1} is not "address type name": ${JSON.stringify(line.slice(0, 80))}`);
    const address = parseInt(m[1]!, 16);
    // x86-64 maps put 16-digit addresses; above 2^53 they lose precision, and i386 never has them.
    if (!Number.isSafeInteger(address)) throw new SystemMapError(`System.map line ${i + 1}: address ${m[1]} is too large`);
    symbols.push({ address, type: m[2]!, name: m[3]! });
  }
  if (symbols.length === 0) throw new SystemMapError("System.map holds no symbols");
  return symbols;
}

/** Types that are not places in the kernel image (absolute values, undefined, debugging). */
const NOT_A_PLACE = new Set(["A", "a", "U", "w", "v", "N", "n", "-", "?"]);

/**
 * Symbols sorted by address, answering "which symbols lie on this guest-physical page?". A
 * symbol extends to the next symbol's address (System.map carries no sizes), so a page in the
 * middle of a large array still names that array.
 */
export class SymbolTable {
  private readonly symbols: KernelSymbol[];
  /** Symbols cannot extend past this (end of the kernel image: _end, or the last symbol). */
  private readonly end: number;

  constructor(
    symbols: readonly KernelSymbol[],
    readonly pageOffset = I386_PAGE_OFFSET,
  ) {
    const placed = symbols.filter((s) => !NOT_A_PLACE.has(s.type) && s.address >= pageOffset);
    placed.sort((a, b) => a.address - b.address || a.name.localeCompare(b.name));
    this.symbols = placed;
    const last = placed[placed.length - 1];
    const endSym = placed.find((s) => s.name === "_end");
    this.end = endSym ? endSym.address : last ? last.address + 1 : pageOffset;
  }

  static fromSystemMap(text: string, pageOffset = I386_PAGE_OFFSET): SymbolTable {
    return new SymbolTable(parseSystemMap(text), pageOffset);
  }

  get size(): number {
    return this.symbols.length;
  }

  /** Index of the last symbol at or below `address`, or -1. */
  private floor(address: number): number {
    let lo = 0;
    let hi = this.symbols.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.symbols[mid]!.address <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** The symbol containing a kernel virtual address, with the offset into it ("jiffies+0x4"). */
  symbolAt(address: number): { symbol: KernelSymbol; offset: number } | null {
    if (address >= this.end) return null;
    const i = this.floor(address);
    if (i < 0) return null;
    const symbol = this.symbols[i]!;
    return { symbol, offset: address - symbol.address };
  }

  /**
   * The symbols on guest-physical page `physPage` (virtual = physical + page offset), in address
   * order: the one running into the page from below (if any), then each starting on it. At most
   * `limit` are returned; `more` counts the rest.
   */
  symbolsOnPage(physPage: number, limit = 12): { symbols: SymbolOnPage[]; more: number } {
    if (!Number.isInteger(physPage) || physPage < 0) throw new RangeError(`page ${physPage} is not a page number`);
    const start = this.pageOffset + physPage * PAGE_SIZE;
    const stop = start + PAGE_SIZE;
    const out: SymbolOnPage[] = [];
    let more = 0;
    if (start >= this.end) return { symbols: out, more };
    // Start at the symbol running into the page from below (and its aliases at the same address).
    let i = Math.max(0, this.floor(start));
    while (i > 0 && this.symbols[i - 1]!.address === this.symbols[i]!.address) i--;
    for (; i < this.symbols.length; i++) {
      const s = this.symbols[i]!;
      if (s.address >= stop || s.address >= this.end) break;
      if (out.length < limit) out.push({ ...s, offsetInPage: s.address - start });
      else more++;
    }
    return { symbols: out, more };
  }

  /** Guest-physical page range the kernel image covers (from its first to its last symbol). */
  imagePages(): { first: number; last: number } | null {
    const first = this.symbols[0];
    if (!first) return null;
    return {
      first: Math.floor((first.address - this.pageOffset) / PAGE_SIZE),
      last: Math.floor((this.end - 1 - this.pageOffset) / PAGE_SIZE),
    };
  }
}

/** One System.map line, as `nm -n` prints it for a 32-bit kernel. */
export function formatSystemMapLine(s: KernelSymbol): string {
  return `${s.address.toString(16).padStart(8, "0")} ${s.type} ${s.name}`;
}
