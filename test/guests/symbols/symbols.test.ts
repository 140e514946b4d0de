import { describe, expect, it } from "vitest";
import { formatSystemMapLine, parseSystemMap, SymbolTable, SystemMapError } from "../../../src/guests/symbols/system-map.ts";

// A hand-written map in the shape `nm -n vmlinux` prints for Debian's 686 kernel: text at 16 MiB
// physical (0xc1000000), data a few pages on, an absolute symbol that is no place at all.
const MAP = `
00000000 A VDSO32_PRELINK
c1000000 T _text
c1000000 T startup_32
c1000040 t early_idt_handler_common
c1001000 T do_one_initcall
c1001ff0 t helper_at_page_end
c1002000 T big_function
c1004010 T after_big
c1005000 D jiffies_64
c1005000 D jiffies
c1005008 d tick_lock
c1005100 B __bss_start
c1005200 B _end
`;

describe("System.map parsing and page lookup", () => {
  const table = SymbolTable.fromSystemMap(MAP);

  it("parses lines and drops absolute symbols", () => {
    const syms = parseSystemMap(MAP);
    expect(syms).toHaveLength(13);
    expect(syms[1]).toEqual({ address: 0xc1000000, type: "T", name: "_text" });
    expect(table.size).toBe(12);
    expect(formatSystemMapLine(syms[2]!)).toBe("c1000000 T startup_32");
  });

  it("names the symbols on a physical page (virtual minus 0xC0000000)", () => {
    const onFirst = table.symbolsOnPage(0x1000).symbols.map((s) => s.name);
    expect(onFirst).toEqual(["_text", "startup_32", "early_idt_handler_common"]);
    // page 0x1001: starts with do_one_initcall and holds a second function near its end
    const second = table.symbolsOnPage(0x1001).symbols;
    expect(second.map((s) => [s.name, s.offsetInPage])).toEqual([
      ["do_one_initcall", 0],
      ["helper_at_page_end", 0xff0],
    ]);
    // page 0x1003 lies wholly inside big_function, which began on the page before
    expect(table.symbolsOnPage(0x1003).symbols.map((s) => [s.name, s.offsetInPage])).toEqual([["big_function", -0x1000]]);
    // the page 0x1004 holds the tail of big_function then after_big
    expect(table.symbolsOnPage(0x1004).symbols.map((s) => s.name)).toEqual(["big_function", "after_big"]);
    // aliases at one address are all named (the timer tick's page); after_big ends exactly at the
    // page boundary so it is not named, and _end marks the image's end, not a symbol on it
    expect(table.symbolsOnPage(0x1005).symbols.map((s) => s.name)).toEqual(["jiffies", "jiffies_64", "tick_lock", "__bss_start"]);
  });

  it("knows where the image ends and what lies outside it", () => {
    expect(table.symbolsOnPage(0x0fff).symbols).toEqual([]);
    expect(table.symbolsOnPage(0x1006).symbols).toEqual([]);
    expect(table.symbolsOnPage(0x2000).symbols).toEqual([]);
    expect(table.imagePages()).toEqual({ first: 0x1000, last: 0x1005 });
    expect(table.symbolAt(0xc1005004)).toEqual({ symbol: { address: 0xc1005000, type: "D", name: "jiffies_64" }, offset: 4 });
    expect(table.symbolAt(0xc1005200)).toBeNull();
    expect(table.symbolAt(0xbfffffff)).toBeNull();
  });

  it("limits long lists and counts the rest", () => {
    const lines = Array.from({ length: 40 }, (_, i) => `${(0xc1000000 + i * 16).toString(16)} t f${i}`).join("\n");
    const t = SymbolTable.fromSystemMap(lines);
    const { symbols, more } = t.symbolsOnPage(0x1000, 5);
    expect(symbols.map((s) => s.name)).toEqual(["f0", "f1", "f2", "f3", "f4"]);
    expect(more).toBe(35);
  });

  it("rejects Debian's stub, empty maps and malformed lines with clear errors", () => {
    expect(() => parseSystemMap("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n")).toThrow(/Debian's stub/);
    expect(() => parseSystemMap("\n\n")).toThrow(/no symbols/);
    expect(() => parseSystemMap("c1000000 T ok\nc1000010 nonsense\n")).toThrow(SystemMapError);
    expect(() => parseSystemMap("c1000000 T ok\nc1000010 nonsense\n")).toThrow(/line 2/);
    expect(() => table.symbolsOnPage(-1)).toThrow(RangeError);
  });
});
