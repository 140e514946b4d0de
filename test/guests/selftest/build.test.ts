import { readFileSync, statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildSelftest, checkMultibootElf, SELFTEST_ELF, SelftestBuildError } from "../../../src/guests/selftest/build.ts";

describe("self-test guest build", () => {
  it("compiles the guest from source into a multiboot ELF and reuses it while sources are unchanged", async () => {
    const path = await buildSelftest();
    expect(path).toBe(SELFTEST_ELF);
    const bytes = new Uint8Array(readFileSync(path));
    expect(() => checkMultibootElf(bytes)).not.toThrow();
    const before = statSync(path).mtimeMs;
    expect(await buildSelftest()).toBe(path);
    expect(statSync(path).mtimeMs).toBe(before);
  });

  it("rejects images a multiboot loader would not boot", async () => {
    const good = new Uint8Array(readFileSync(await buildSelftest()));
    expect(() => checkMultibootElf(new Uint8Array(100))).toThrow(/not an ELF/);
    const elf64 = good.slice();
    elf64[4] = 2;
    expect(() => checkMultibootElf(elf64)).toThrow(/not a 32-bit x86 ELF/);
    // break the header's checksum: the loader must not find a valid header any more
    const broken = good.slice();
    const view = new DataView(broken.buffer);
    for (let off = 0; off < 8192; off += 4) if (view.getUint32(off, true) === 0x1badb002) view.setUint32(off + 8, 0, true);
    expect(() => checkMultibootElf(broken)).toThrow(SelftestBuildError);
    expect(() => checkMultibootElf(broken)).toThrow(/no valid multiboot header/);
  });
});
