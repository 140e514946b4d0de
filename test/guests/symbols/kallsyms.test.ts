// Kernel symbols recovered from Debian's bzImage (its System.map is a stub): kallsyms text symbols
// plus exported variables. Runs on the default guest's kernel.

import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { elf32Sections, kernelSymbols, KallsymsError, readKallsyms } from "../../../src/guests/symbols/kallsyms.ts";
import { bzImagePayload, decompressVmlinux } from "../../../src/guests/symbols/extract.ts";
import { formatSystemMapLine, SymbolTable } from "../../../src/guests/symbols/system-map.ts";

describe("symbols from the kernel image", () => {
  it("reads kallsyms and the export tables of Debian's 686 kernel", () => {
    const vmlinux = decompressVmlinux(new Uint8Array(readFileSync(ensureGuestImages().bzImage)));
    const text = elf32Sections(vmlinux).find((s) => s.name === ".text")!;
    const { symbols: kallsyms, layout } = readKallsyms(vmlinux);
    expect(layout.count).toBeGreaterThan(20_000);
    expect(layout.relativeBase).toBe(text.addr); // the kernel's first text address
    // Text symbols only (KALLSYMS_ALL is unset), sorted, all inside the kernel's mapping.
    const types = new Set(kallsyms.map((s) => s.type));
    expect([...types].every((t) => "tTwWdD".includes(t))).toBe(true);
    const byName = new Map(kallsyms.map((s) => [s.name, s]));
    for (const name of ["do_timer", "schedule", "startup_32", "default_idle", "tick_do_update_jiffies64"]) {
      const s = byName.get(name)!;
      expect(s, name).toBeDefined();
      expect(s.address).toBeGreaterThanOrEqual(text.addr);
      expect(s.address).toBeLessThan(text.addr + text.size + 0x1000000);
    }
    expect(byName.has("jiffies")).toBe(false); // a variable: not in kallsyms here

    const all = kernelSymbols(vmlinux);
    expect(all.exportedAdded).toBeGreaterThan(100);
    const table = new SymbolTable(all.symbols);
    const jiffies = all.symbols.find((s) => s.name === "jiffies")!;
    expect(jiffies.type).toBe("D");
    const data = elf32Sections(vmlinux).find((s) => s.name === ".data")!;
    expect(jiffies.address).toBeGreaterThanOrEqual(data.addr);
    expect(jiffies.address).toBeLessThan(data.addr + data.size);
    // The page-map hover: jiffies' physical page names it; a text page names functions.
    const names = table.symbolsOnPage(Math.floor((jiffies.address - 0xc0000000) / 4096), 50).symbols.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(["jiffies", "jiffies_64"]));
    const schedPage = Math.floor((byName.get("schedule")!.address - 0xc0000000) / 4096);
    expect(table.symbolsOnPage(schedPage, 50).symbols.map((s) => s.name)).toContain("schedule");
    // And the written System.map reads back the same.
    const text2 = all.symbols.map(formatSystemMapLine).join("\n");
    expect(SymbolTable.fromSystemMap(text2).size).toBe(table.size);
  });

  it("says clearly what is wrong with inputs that are not a kernel", () => {
    expect(() => bzImagePayload(new Uint8Array(4096))).toThrow(/not a Linux bzImage/);
    expect(() => elf32Sections(new Uint8Array(64))).toThrow(/not an ELF file/);
    const elf = new Uint8Array(64);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
    expect(() => elf32Sections(elf)).toThrow(/32-bit/);
    expect(() => readKallsyms(new Uint8Array(100_000))).toThrow(KallsymsError);
  });
});
