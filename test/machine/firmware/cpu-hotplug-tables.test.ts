// The tables in CPU hotplug mode (possibleCpus > cpus), read back with the independent decoders:
// absent CPUs in the MADT (disabled, online capable) and the MP table (not enabled), the IOAPIC at
// ID 0, the FADT's GPE0 block where the hotplug AML expects it, the DSDT carrying that AML, and
// everything inside the firmware's table area. Without hotplug mode every table must stay what it
// was before hotplug existed, byte for byte.

import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GPE0_BASE, GPE0_LENGTH, MAX_POSSIBLE_CPUS } from "../../../src/machine/devices/cpu-hotplug-interface.ts";
import { buildAcpiTables, buildDsdt } from "../../../src/machine/firmware/acpi.ts";
import { buildCpuHotplugAml } from "../../../src/machine/firmware/cpu-hotplug-aml.ts";
import { planDirectBoot } from "../../../src/machine/firmware/direct-boot.ts";
import { FirmwareError } from "../../../src/machine/firmware/errors.ts";
import * as L from "../../../src/machine/firmware/layout.ts";
import { buildMpTable } from "../../../src/machine/firmware/mptable.ts";
import { describePlatform, MAX_CPUS, type IsaWiring } from "../../../src/machine/firmware/platform.ts";
import { decodeAcpi, decodeFadt, decodeMadt, decodeMp, decodeSdt, Memory, scanMp, scanRsdp } from "./decode.ts";
import { fakeBzImage } from "./fake-kernel.ts";

const BASE = 0xf0000;
const load = (address: number, bytes: Uint8Array) => {
  const mem = new Memory(0x100000);
  mem.write(address, bytes);
  return mem;
};

/** (cpus, possibleCpus) with possibleCpus > cpus: hotplug mode. */
const hotplugArb = fc.integer({ min: 2, max: MAX_POSSIBLE_CPUS }).chain((possible) => fc.tuple(fc.integer({ min: 1, max: possible - 1 }), fc.constant(possible)));
const wiringArb = fc.constantFrom<IsaWiring>("pc", "identity");

describe("without hotplug mode the tables are unchanged", () => {
  // SHA-256 over the MP table and the ACPI tables (revision 0 and 2, with and without FADT) for
  // cpus 1..15, both wirings, SCI 9 and 11, as the builders of commit 3dbff82 (before CPU hotplug)
  // produced them.
  const BEFORE_HOTPLUG = "146bbf7e9aab4952b8cce7f1948a9c63cd6b24f7ebea68d7c5c0a2ee901c770e";
  const digest = (possible: (cpus: number) => number | undefined) => {
    const h = createHash("sha256");
    for (let cpus = 1; cpus <= 15; cpus++)
      for (const isaWiring of ["identity", "pc"] as const)
        for (const sciIrq of [9, 11]) {
          const possibleCpus = possible(cpus);
          const p = describePlatform({ cpus, isaWiring, sciIrq, ...(possibleCpus !== undefined ? { possibleCpus } : {}) });
          h.update(buildMpTable(p, { address: 0xf0000 }));
          for (const revision of [0, 2] as const) for (const fadt of [true, false]) h.update(buildAcpiTables(p, { address: 0xf0400, revision, fadt }).bytes);
        }
    return h.digest("hex");
  };

  it("byte for byte, when possibleCpus is not given", () => {
    expect(digest(() => undefined)).toBe(BEFORE_HOTPLUG);
  });
  it("byte for byte, when possibleCpus equals cpus", () => {
    expect(digest((cpus) => cpus)).toBe(BEFORE_HOTPLUG);
  });
  it("with the IOAPIC still at ID N and an empty DSDT", () => {
    const p = describePlatform({ cpus: 3, possibleCpus: 3 });
    expect(p.hotplug).toBe(false);
    expect(p.ioapic.id).toBe(3);
    expect(buildDsdt(p).length).toBe(36);
  });
});

describe("MADT in hotplug mode", () => {
  it("lists every possible CPU: present ones enabled, absent ones disabled and online capable; the IOAPIC at ID 0", () => {
    fc.assert(
      fc.property(hotplugArb, wiringArb, fc.constantFrom<0 | 2>(0, 2), ([cpus, possible], wiring, revision) => {
        const p = describePlatform({ cpus, possibleCpus: possible, isaWiring: wiring });
        expect(p).toMatchObject({ cpus, possibleCpus: possible, hotplug: true });
        const acpi = buildAcpiTables(p, { address: BASE, revision });
        const mem = load(BASE, acpi.bytes);
        expect(scanRsdp(mem, 0xe0000, 0x100000)).toBe(BASE);
        const d = decodeAcpi(mem, BASE);
        expect([...d.tables.keys()].sort()).toEqual(["APIC", "FACP"]);
        const madt = decodeMadt(d.tables.get("APIC")!);
        expect(madt.lapics).toEqual(Array.from({ length: possible }, (_, i) => ({ processorId: i, apicId: i, enabled: i < cpus })));
        expect(madt.lapicFlags).toEqual(Array.from({ length: possible }, (_, i) => (i < cpus ? 0b01 : 0b10)));
        expect(madt.ioapics).toEqual([{ id: 0, address: 0xfec00000, gsiBase: 0 }]);
        expect(madt.lapicNmis).toEqual([{ processorId: 0xff, lint: 1 }]);

        const f = decodeFadt(d.tables.get("FACP")!);
        expect([f.gpe0, f.gpe0Len]).toEqual([GPE0_BASE, GPE0_LENGTH]);
        expect([f.gpe0, f.gpe0Len]).toEqual([0xafe0, 4]);
        const dsdt = decodeSdt(mem, f.dsdt);
        expect(dsdt.signature).toBe("DSDT");
        expect(dsdt.revision).toBe(1);
        expect(Array.from(dsdt.body)).toEqual(Array.from(buildCpuHotplugAml(p)));
      }),
      { numRuns: 150 },
    );
  });
});

describe("MP table in hotplug mode", () => {
  it("lists absent CPUs as not enabled, and the IOAPIC (and every interrupt entry) at ID 0", () => {
    fc.assert(
      fc.property(hotplugArb, wiringArb, ([cpus, possible], wiring) => {
        const mem = load(BASE, buildMpTable(describePlatform({ cpus, possibleCpus: possible, isaWiring: wiring }), { address: BASE }));
        expect(scanMp(mem, 0xf0000, 0x100000)).toBe(BASE);
        const mp = decodeMp(mem, BASE);
        expect(mp.processors).toEqual(Array.from({ length: possible }, (_, i) => ({ apicId: i, version: 0x14, enabled: i < cpus, bsp: i === 0 })));
        expect(mp.ioapics).toEqual([{ id: 0, version: 0x11, enabled: true, address: 0xfec00000 }]);
        for (const i of mp.ioInts) expect(i.ioapic).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});

describe("table sizes", () => {
  it("the largest machine (1 of 32 CPUs, MP table and ACPI 2.0) fits the firmware's table area", () => {
    const memoryBytes = 64 << 20;
    const plan = planDirectBoot({ bzImage: fakeBzImage(), cmdline: "", memoryBytes, platform: { cpus: 1, possibleCpus: MAX_POSSIBLE_CPUS } });
    const tables = plan.writes.filter((w) => w.address >= L.FW_TABLES_BASE && w.address < L.FW_TABLES_END);
    expect(tables.map((t) => t.what)).toEqual(["MP floating pointer and configuration table", "ACPI tables (RSD PTR, RSDT, XSDT, FACS, DSDT, FACP, APIC)"]);
    const end = Math.max(...tables.map((t) => t.address + t.bytes.length));
    expect(end).toBeLessThanOrEqual(L.FW_TABLES_END);
    // far from the limit: the area is 56 KiB, the tables about 5 KiB
    expect(end - L.FW_TABLES_BASE).toBeLessThan(8 * 1024);
    const dsdt = buildDsdt(describePlatform({ cpus: 1, possibleCpus: MAX_POSSIBLE_CPUS }));
    expect(dsdt.length).toBeGreaterThan(36 + 32 * 64); // a device per CPU
    expect(dsdt.length).toBeLessThan(5 * 1024);
    // the plan's tables read back from RAM as the guest sees them
    const mem = new Memory(memoryBytes);
    for (const w of plan.writes) if (w.address < 0x100000) mem.write(w.address, w.bytes);
    const madt = decodeMadt(decodeAcpi(mem, scanRsdp(mem, 0xe0000, 0x100000)!).tables.get("APIC")!);
    expect(madt.lapics.filter((l) => l.enabled).map((l) => l.apicId)).toEqual([0]);
    expect(madt.lapics).toHaveLength(32);
    // the firmware gives the IOAPIC the ID the tables announce
    const handoff = plan.writes.find((w) => w.what === "firmware handoff block")!;
    expect(new DataView(handoff.bytes.buffer).getUint32(16, true)).toBe(0);
  });
});

describe("platform description with possible CPUs", () => {
  it("accepts up to 32 possible CPUs, and up to possibleCpus present ones", () => {
    expect(describePlatform({ cpus: 31, possibleCpus: 32 })).toMatchObject({ hotplug: true, ioapic: { id: 0 } });
    // without hotplug mode (possibleCpus = cpus) the IOAPIC takes ID N, so at most 15 CPUs, as before
    expect(() => describePlatform({ cpus: 32, possibleCpus: 32 })).toThrow(/cpus must be an integer from 1 to 15/);
    expect(describePlatform({ cpus: 20, possibleCpus: 32 })).toMatchObject({ cpus: 20, possibleCpus: 32, hotplug: true, apicIds: Array.from({ length: 20 }, (_, i) => i) });
  });
  it.each([
    [{ cpus: 1, possibleCpus: MAX_POSSIBLE_CPUS + 1 }, /possibleCpus must be an integer from 1 to 32/],
    [{ cpus: 1, possibleCpus: 0 }, /possibleCpus must be an integer from 1 to 32/],
    [{ cpus: 1, possibleCpus: 2.5 }, /possibleCpus must be an integer/],
    [{ cpus: 5, possibleCpus: 4 }, /cpus must be an integer from 1 to possibleCpus \(4\)/],
    [{ cpus: 0, possibleCpus: 4 }, /cpus must be an integer from 1 to possibleCpus/],
    [{ cpus: MAX_CPUS + 1 }, /cpus must be an integer from 1 to 15/],
  ])("rejects %j with a FirmwareError", (spec, message) => {
    expect(() => describePlatform(spec)).toThrow(FirmwareError);
    expect(() => describePlatform(spec)).toThrow(message);
  });
  it("refuses hotplug mode without the FADT and DSDT", () => {
    expect(() => buildAcpiTables(describePlatform({ cpus: 1, possibleCpus: 2 }), { address: BASE, fadt: false })).toThrow(/CPU hotplug needs the FADT/);
  });
});
