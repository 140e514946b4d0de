// MP and ACPI tables decoded back by an independent reader (decode.ts) and compared with the
// platform they describe, for every CPU count and wiring the builders accept.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildAcpiTables, V86_PM } from "../../../src/machine/firmware/acpi.ts";
import { FirmwareError } from "../../../src/machine/firmware/errors.ts";
import { buildMpTable } from "../../../src/machine/firmware/mptable.ts";
import { describePlatform, MAX_CPUS, type IsaWiring } from "../../../src/machine/firmware/platform.ts";
import { decodeAcpi, decodeFadt, decodeMadt, decodeMp, decodeSdt, Memory, scanMp, scanRsdp } from "./decode.ts";

const BASE = 0xf0000;
const load = (address: number, bytes: Uint8Array) => {
  const mem = new Memory(0x100000);
  mem.write(address, bytes);
  return mem;
};
const cpusArb = fc.integer({ min: 1, max: MAX_CPUS });
const wiringArb = fc.constantFrom<IsaWiring>("pc", "identity");
const ISA_IRQS_BUT_CASCADE = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

describe("MP table", () => {
  it("lists N enabled processors with APIC ID = CPU number, the ISA bus, one IOAPIC and the PC interrupt wiring", () => {
    fc.assert(
      fc.property(cpusArb, wiringArb, fc.integer({ min: 0, max: 0xd00 }), (cpus, wiring, slot) => {
        const address = BASE + slot * 16;
        const mem = load(address, buildMpTable(describePlatform({ cpus, isaWiring: wiring }), { address }));
        expect(scanMp(mem, 0xf0000, 0x100000)).toBe(address);
        const mp = decodeMp(mem, address);
        expect(mp.specRev).toBe(4);
        expect(mp.oemId).toBe("GIANTWEB");
        expect(mp.lapicAddress).toBe(0xfee00000);
        expect(mp.processors).toEqual(Array.from({ length: cpus }, (_, i) => ({ apicId: i, version: 0x14, enabled: true, bsp: i === 0 })));
        expect(mp.buses).toEqual([{ id: 0, type: "ISA" }]);
        expect(mp.ioapics).toEqual([{ id: cpus, version: 0x11, enabled: true, address: 0xfec00000 }]);
        for (const i of mp.ioInts) expect([i.bus, i.ioapic]).toEqual([0, cpus]);

        const ints = mp.ioInts.filter((i) => i.type === 0);
        expect(ints.map((i) => i.irq)).toEqual(ISA_IRQS_BUT_CASCADE);
        for (const i of ints) expect(i.pin).toBe(i.irq === 0 && wiring === "pc" ? 2 : i.irq);
        // the SCI (IRQ 9) is level-triggered, active high; the rest conform to the ISA bus
        for (const i of ints) expect([i.polarity, i.trigger]).toEqual(i.irq === 9 ? [1, 3] : [0, 0]);
        const extInt = mp.ioInts.filter((i) => i.type === 3);
        expect(extInt).toEqual(wiring === "pc" ? [{ type: 3, polarity: 0, trigger: 0, bus: 0, irq: 0, ioapic: cpus, pin: 0 }] : []);
        expect(mp.localInts).toEqual([
          { type: 3, bus: 0, irq: 0, lapic: 0xff, lint: 0 },
          { type: 1, bus: 0, irq: 0, lapic: 0xff, lint: 1 },
        ]);
      }),
      { numRuns: 200 },
    );
  });

  it("is rejected by the decoder when any byte of it is changed (the checksums cover everything)", () => {
    const bytes = buildMpTable(describePlatform({ cpus: 4 }), { address: BASE });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, delta) => {
        const bad = bytes.slice();
        bad[at] = (bad[at]! + delta) & 0xff;
        expect(() => decodeMp(load(BASE, bad), BASE)).toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it("refuses an unaligned floating pointer", () => {
    expect(() => buildMpTable(describePlatform({ cpus: 2 }), { address: BASE + 8 })).toThrow(/16-byte aligned/);
  });
});

describe("ACPI tables", () => {
  it("chain RSDP -> RSDT/XSDT -> MADT (and FADT -> FACS, DSDT) with valid checksums and the platform's CPUs", () => {
    fc.assert(
      fc.property(cpusArb, wiringArb, fc.constantFrom<0 | 2>(0, 2), fc.boolean(), (cpus, wiring, revision, fadt) => {
        const platform = describePlatform({ cpus, isaWiring: wiring });
        const acpi = buildAcpiTables(platform, { address: BASE, revision, fadt });
        const mem = load(BASE, acpi.bytes);
        expect(scanRsdp(mem, 0xe0000, 0x100000)).toBe(BASE);
        const d = decodeAcpi(mem, BASE);
        expect(d.revision).toBe(revision);
        if (revision === 2) expect(d.xsdt).toEqual(d.rsdt);
        else expect(d.xsdt).toBeNull();
        expect([...d.tables.keys()].sort()).toEqual(fadt ? ["APIC", "FACP"] : ["APIC"]);

        const madt = decodeMadt(d.tables.get("APIC")!);
        expect(madt.lapicAddress).toBe(0xfee00000);
        expect(madt.pcatCompat).toBe(true);
        expect(madt.lapics).toEqual(Array.from({ length: cpus }, (_, i) => ({ processorId: i, apicId: i, enabled: true })));
        expect(madt.ioapics).toEqual([{ id: cpus, address: 0xfec00000, gsiBase: 0 }]);
        const sci = { bus: 0, irq: 9, gsi: 9, polarity: 1, trigger: 3 };
        expect(madt.overrides).toEqual(wiring === "pc" ? [{ bus: 0, irq: 0, gsi: 2, polarity: 0, trigger: 0 }, sci] : [sci]);
        expect(madt.lapicNmis).toEqual([{ processorId: 0xff, lint: 1 }]);

        if (fadt) {
          const f = decodeFadt(d.tables.get("FACP")!);
          expect(f).toMatchObject({ sciInt: 9, smiCmd: 0, pm1aEvt: V86_PM.pm1aEvt, pm1aCnt: V86_PM.pm1aCnt, pmTmr: V86_PM.pmTmr, gpe0: V86_PM.gpe0 });
          expect([f.pm1EvtLen, f.pm1CntLen, f.pmTmrLen, f.gpe0Len]).toEqual([4, 2, 4, 4]);
          const dsdt = decodeSdt(mem, f.dsdt);
          expect(dsdt.signature).toBe("DSDT");
          expect(f.facs % 64, "FACS is 64-byte aligned").toBe(0);
          expect(mem.text(f.facs, 4)).toBe("FACS");
          expect(mem.u32(f.facs + 4)).toBe(64);
        }
        // every table lies inside the bytes returned, none overlap
        const spans = acpi.tables.map((t) => [t.address, t.address + t.length] as const).sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
        expect(spans.at(-1)![1]).toBeLessThanOrEqual(BASE + acpi.bytes.length);
      }),
      { numRuns: 200 },
    );
  });

  it("is rejected by the decoder when a byte of the MADT changes", () => {
    const acpi = buildAcpiTables(describePlatform({ cpus: 2 }), { address: BASE, revision: 2 });
    const madt = acpi.tables.find((t) => t.signature === "APIC")!;
    const bad = acpi.bytes.slice();
    bad[madt.address - BASE + 44 + 3]! ^= 1; // the first local APIC's ID
    expect(() => decodeAcpi(load(BASE, bad), BASE)).toThrow(/APIC checksum/);
  });
});

describe("platform description", () => {
  it.each([0, MAX_CPUS + 1, 1.5, Number.NaN])("rejects %s CPUs with a FirmwareError", (cpus) => {
    expect(() => describePlatform({ cpus })).toThrow(FirmwareError);
    expect(() => describePlatform({ cpus })).toThrow(/cpus must be an integer from 1 to 15/);
  });
  it("rejects an unknown wiring and an impossible SCI", () => {
    expect(() => describePlatform({ cpus: 1, isaWiring: "eisa" as IsaWiring })).toThrow(/isaWiring/);
    expect(() => describePlatform({ cpus: 1, sciIrq: 2 })).toThrow(/sciIrq/);
  });
  it("refuses an unaligned RSDP and an unknown ACPI revision", () => {
    const p = describePlatform({ cpus: 1 });
    expect(() => buildAcpiTables(p, { address: BASE + 4 })).toThrow(/16-byte aligned/);
    expect(() => buildAcpiTables(p, { address: BASE, revision: 1 as 0 })).toThrow(/revision must be 0 or 2/);
  });
});
