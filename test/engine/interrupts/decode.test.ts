// Decoding ICR / redirection entries and evaluating destinations (pure functions).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeIcr, decodeRedirection, destinationIncludes, InterruptDecodeError, isInitDeassert, toIncoming, type ApicAddressing, type Destination } from "../../../src/engine/interrupts/index.ts";

const apic = (id: number, ldr = 0, dfr = 0xffffffff): ApicAddressing => ({ id: id << 24, ldr: ldr << 24, dfr });
const dest = (mode: Destination["mode"], value: number, shorthand: Destination["shorthand"] = "none"): Destination => ({ mode, value, shorthand });

describe("ICR decoding", () => {
  it("decodes every field", () => {
    const m = decodeIcr(0x000c4931 | (1 << 15), 0x05000000, 0x02000000);
    expect(m).toMatchObject({ source: "ipi", vector: 0x31, mode: "lowest", trigger: "level", assert: true, from: 2 });
    expect(m.destination).toEqual({ mode: "logical", value: 5, shorthand: "all-but-self" });
  });

  it("recognises SIPI and INIT de-assert", () => {
    expect(decodeIcr(0x4608, 0x01000000, 0)).toMatchObject({ mode: "startup", vector: 8 });
    expect(toIncoming(decodeIcr(0x4608, 0x01000000, 0))).toEqual({ kind: "startup", vector: 8 });
    const deassert = decodeIcr(0x8500, 0x01000000, 0);
    expect(isInitDeassert(deassert)).toBe(true);
    expect(toIncoming(deassert)).toEqual({ kind: "init-deassert" });
    expect(toIncoming(decodeIcr(0xc500, 0x01000000, 0))).toEqual({ kind: "init" });
  });

  it("rejects the reserved delivery mode with a message naming it", () => {
    expect(() => decodeIcr(0x0300, 0, 0)).toThrow(InterruptDecodeError);
    expect(() => decodeRedirection(4, 0x0300, 0)).toThrow(/redirection entry 4 .* reserved delivery mode 3/);
  });

  it("an IOAPIC entry's fields land where the ICR's do", () => {
    expect(decodeRedirection(2, 0x8830 | (1 << 16), 0x03000000)).toMatchObject({
      irq: 2,
      vector: 0x30,
      mode: "fixed",
      trigger: "level",
      destination: { mode: "logical", value: 3, shorthand: "none" },
    });
  });
});

describe("destinations", () => {
  it("physical: the ID or broadcast", () => {
    expect(destinationIncludes(dest("physical", 3), 0, apic(3))).toBe(true);
    expect(destinationIncludes(dest("physical", 3), 0, apic(4))).toBe(false);
    expect(destinationIncludes(dest("physical", 0xff), 0, apic(4))).toBe(true);
  });

  it("shorthands", () => {
    expect(destinationIncludes(dest("physical", 9, "self"), 2, apic(2))).toBe(true);
    expect(destinationIncludes(dest("physical", 9, "self"), 2, apic(3))).toBe(false);
    expect(destinationIncludes(dest("physical", 9, "all"), 2, apic(2))).toBe(true);
    expect(destinationIncludes(dest("physical", 9, "all-but-self"), 2, apic(2))).toBe(false);
    expect(destinationIncludes(dest("physical", 9, "all-but-self"), 2, apic(3))).toBe(true);
  });

  it("logical flat: LDR bit intersects the mask", () => {
    expect(destinationIncludes(dest("logical", 0x06), 0, apic(1, 0x04))).toBe(true);
    expect(destinationIncludes(dest("logical", 0x06), 0, apic(1, 0x08))).toBe(false);
  });

  it("logical cluster: same cluster (or 0xF) and intersecting member bits", () => {
    const cluster = 0x0fffffff;
    expect(destinationIncludes(dest("logical", 0x21), 0, apic(1, 0x21, cluster))).toBe(true);
    expect(destinationIncludes(dest("logical", 0x21), 0, apic(1, 0x31, cluster))).toBe(false);
    expect(destinationIncludes(dest("logical", 0x22), 0, apic(1, 0x21, cluster))).toBe(false);
    expect(destinationIncludes(dest("logical", 0xf1), 0, apic(1, 0x31, cluster))).toBe(true);
  });

  it("physical delivery to a set of CPUs reaches exactly the one with that ID", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 254 }), { minLength: 1, maxLength: 16 }), fc.nat(), (ids, pick) => {
        const target = ids[pick % ids.length];
        const hit = ids.filter((id) => destinationIncludes(dest("physical", target), 0, apic(id)));
        expect(hit).toEqual([target]);
      }),
    );
  });
});
