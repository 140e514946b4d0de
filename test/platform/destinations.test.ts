import { expect, it } from "vitest";
import { destinations, lowestPriorityTarget, type ApicView } from "../../src/platform/interrupts/destinations.ts";

// Linux on a small machine: flat logical mode, LDR = 1 << cpu.
const flat: ApicView[] = [0, 1, 2, 3].map((i) => ({ id: i, ldr: 1 << i, dfr: 0xf }));

it("physical destinations address one APIC ID, or all with 0xFF", () => {
  expect(destinations(flat, { shorthand: "none", mode: "physical", dest: 2, source: 0 })).toEqual([2]);
  expect(destinations(flat, { shorthand: "none", mode: "physical", dest: 7, source: 0 })).toEqual([]);
  expect(destinations(flat, { shorthand: "none", mode: "physical", dest: 0xff, source: null })).toEqual([0, 1, 2, 3]);
});

it("logical flat destinations are a bitmask of LDRs", () => {
  expect(destinations(flat, { shorthand: "none", mode: "logical", dest: 0b1010, source: 0 })).toEqual([1, 3]);
  expect(destinations(flat, { shorthand: "none", mode: "logical", dest: 0, source: 0 })).toEqual([]);
});

it("logical cluster destinations match the cluster nibble and the member bits", () => {
  const cluster: ApicView[] = [0x11, 0x12, 0x21, 0x22].map((ldr, i) => ({ id: i, ldr, dfr: 0x0 }));
  expect(destinations(cluster, { shorthand: "none", mode: "logical", dest: 0x13, source: 0 })).toEqual([0, 1]);
  expect(destinations(cluster, { shorthand: "none", mode: "logical", dest: 0x22, source: 0 })).toEqual([3]);
});

it("shorthands ignore the destination field", () => {
  expect(destinations(flat, { shorthand: "self", mode: "physical", dest: 3, source: 1 })).toEqual([1]);
  expect(destinations(flat, { shorthand: "all", mode: "physical", dest: 3, source: 1 })).toEqual([0, 1, 2, 3]);
  expect(destinations(flat, { shorthand: "all-but-self", mode: "physical", dest: 3, source: 1 })).toEqual([0, 2, 3]);
});

it("lowest priority picks the first CPU of the set", () => {
  expect(lowestPriorityTarget([2, 3])).toBe(2);
  expect(lowestPriorityTarget([])).toBeNull();
});
