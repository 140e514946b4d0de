// The hotplug DSDT through ACPICA's iasl, an independent AML implementation: `iasl -d` must
// disassemble it without complaint into the namespace we mean (the container, its register block,
// the methods with their argument counts, one processor device per possible CPU with _UID, _MAT,
// _EJ0, and \_GPE._E02), and compiling that disassembly again with optimisations off must give
// back our AML byte for byte. iasl comes from Debian's acpica-tools (scripts/setup.sh test installs
// it); without it these tests fail rather than skip.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CPU_HOTPLUG_BASE, CPU_HOTPLUG_LENGTH } from "../../../src/machine/devices/cpu-hotplug-interface.ts";
import { buildDsdt } from "../../../src/machine/firmware/acpi.ts";
import { cpuDeviceName } from "../../../src/machine/firmware/cpu-hotplug-aml.ts";
import { describePlatform } from "../../../src/machine/firmware/platform.ts";

const IASL_MISSING =
  "iasl is not installed: these checks need ACPICA's compiler/disassembler, Debian package acpica-tools " +
  "(`npm run setup`, i.e. scripts/setup.sh test, installs it; by hand: apt-get install -y acpica-tools)";

function iasl(args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync("iasl", args, { cwd, encoding: "utf8" });
  if (r.error) throw new Error(`${IASL_MISSING} (${r.error.message})`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** How the disassembler prints an integer constant. */
const asl = (n: number) => (n === 0 ? "Zero" : n === 1 ? "One" : `0x${n.toString(16).toUpperCase().padStart(2, "0")}`);
const hexByte = (n: number) => `0x${n.toString(16).toUpperCase().padStart(2, "0")}`;

const dir = mkdtempSync(join(tmpdir(), "gw-dsdt-iasl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the hotplug DSDT, read by ACPICA's iasl", () => {
  it("iasl is installed", () => {
    const r = iasl(["-v"], dir);
    expect(r.out, IASL_MISSING).toMatch(/ACPI Component Architecture/);
  });

  it.each([
    [1, 2],
    [1, 4],
    [3, 32],
  ])("with %i of %i CPUs: disassembles to the namespace we meant, and compiles back to the same bytes", (cpus, possible) => {
    const dsdt = buildDsdt(describePlatform({ cpus, possibleCpus: possible }));
    const base = `dsdt-${cpus}-${possible}`;
    writeFileSync(join(dir, `${base}.dat`), dsdt);

    const dis = iasl(["-d", `${base}.dat`], dir);
    expect(dis.status, dis.out).toBe(0);
    expect(dis.out).not.toMatch(/\bError\b|\bWarning\b/);
    const src = readFileSync(join(dir, `${base}.dsl`), "utf8");

    expect(src).toContain('DefinitionBlock ("", "DSDT", 1, "GIANTW", "GWEBPLAT", 0x00000001)');
    expect(src).toContain("Scope (\\_SB)");
    expect(src).toContain("Device (CPUS)");
    expect(src).toContain('Name (_HID, "ACPI0010" /* Processor Container Device */)');
    expect(src).toContain('Name (_CID, EisaId ("PNP0A05")');
    const ioBase = `0x${CPU_HOTPLUG_BASE.toString(16).toUpperCase()}`;
    expect(src).toContain(`OperationRegion (PRST, SystemIO, ${ioBase}, ${hexByte(CPU_HOTPLUG_LENGTH)})`);
    // the register layout: flags at byte 4, command at 5, selector at 0, data at 8
    expect(src.replace(/\s+/g, " ")).toContain(
      "Field (PRST, ByteAcc, NoLock, WriteAsZeros) { Offset (0x04), CPEN, 1, CINS, 1, CRMV, 1, CEJF, 1, Offset (0x05), CCMD, 8 }",
    );
    expect(src.replace(/\s+/g, " ")).toContain("Field (PRST, DWordAcc, NoLock, Preserve) { CSEL, 32, Offset (0x08), CDAT, 32 }");
    expect(src).toContain("Mutex (CPLK, 0x00)");

    // every method, where it lives, with its argument count and serialisation
    const methods = [...src.matchAll(/Method \((\w+), (\d), (Serialized|NotSerialized)\)/g)].map((m) => `${m[1]}/${m[2]}/${m[3]}`);
    const perCpu = Array.from({ length: possible }, (_, n) => ["_STA/0/NotSerialized", "_OST/3/NotSerialized", ...(n === 0 ? [] : ["_EJ0/1/NotSerialized"])]).flat();
    expect(methods).toEqual([
      "_INI/0/Serialized",
      "CSTA/1/Serialized",
      "CEJ0/1/Serialized",
      "CTFY/2/NotSerialized",
      "CSCN/0/Serialized",
      "COST/3/Serialized",
      ...perCpu,
      "_E02/0/NotSerialized",
    ]);

    // one ACPI0007 device per possible CPU, C000.., with its _UID, _STA, _MAT (enabled LAPIC entry) and _EJ0
    const names = [...src.matchAll(/Device \((\w+)\)/g)].map((m) => m[1]);
    expect(names).toEqual(["CPUS", ...Array.from({ length: possible }, (_, n) => cpuDeviceName(n))]);
    const blocks = src.split(/Device \(C[0-9A-F]{3}\)/).slice(1);
    blocks[blocks.length - 1] = blocks.at(-1)!.split("Scope (\\_GPE)")[0]!;
    blocks.forEach((block, n) => {
      expect(block).toContain('Name (_HID, "ACPI0007" /* Processor Device */)');
      expect(block).toContain(`Name (_UID, ${asl(n)})`);
      expect(block).toContain(`Return (CSTA (${asl(n)}))`);
      expect(block).toContain(`0x00, 0x08, ${hexByte(n)}, ${hexByte(n)}, 0x01, 0x00, 0x00, 0x00`);
      expect(block).toContain(`COST (${asl(n)}, Arg0, Arg1)`);
      if (n === 0) expect(block).not.toContain("_EJ0");
      else expect(block).toContain(`CEJ0 (${asl(n)})`);
    });
    // CTFY notifies each CPU's device by number; CSCN reports inserts (1) and ejects (3)
    for (let n = 0; n < possible; n++) expect(src.replace(/\s+/g, " ")).toContain(`If ((Arg0 == ${asl(n)})) { Notify (${cpuDeviceName(n)}, Arg1) }`);
    expect(src).toContain("CTFY (CDAT, One)");
    expect(src).toContain("CTFY (CDAT, 0x03)");
    expect(src).toContain("Scope (\\_GPE)");
    expect(src.replace(/\s+/g, " ")).toContain("Method (_E02, 0, NotSerialized) // _Exx: Edge-Triggered GPE, xx=0x00-0xFF { \\_SB.CPUS.CSCN () }");

    // iasl compiles its disassembly back (no optimisations, so it keeps our name forms) to our AML
    const comp = iasl(["-oa", "-p", `${base}-re`, `${base}.dsl`], dir);
    expect(comp.status, comp.out).toBe(0);
    expect(comp.out).toMatch(/Compilation successful\. 0 Errors, 0 Warnings/);
    const again = readFileSync(join(dir, `${base}-re.aml`));
    expect(again.length).toBe(dsdt.length);
    expect(Buffer.from(again.subarray(36)).equals(Buffer.from(dsdt.subarray(36))), "AML body after disassembly and recompilation").toBe(true);
  });
});
