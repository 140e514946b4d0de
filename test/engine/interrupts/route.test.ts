// routeInterrupt: the deliveries of an outgoing interrupt across a table of APICs.
import { describe, expect, it } from "vitest";
import { decodeIcr, decodeRedirection, routeInterrupt, type ApicAddressing } from "../../../src/engine/interrupts/index.ts";

const flat = (id: number): ApicAddressing => ({ id: id << 24, ldr: (1 << id) << 24, dfr: 0xffffffff });
const cpus = [0, 1, 2, 3].map(flat);

describe("routeInterrupt", () => {
  it("fixed physical: the one CPU with that ID", () => {
    expect(routeInterrupt(decodeIcr(0x4031, 2 << 24, 0), cpus)).toEqual([{ cpu: 2, incoming: { kind: "fixed", vector: 0x31, trigger: "edge" } }]);
  });

  it("all but self from CPU 1 reaches 0, 2 and 3", () => {
    expect(routeInterrupt(decodeIcr(0xc4031, 0, 1 << 24), cpus).map((t) => t.cpu)).toEqual([0, 2, 3]);
  });

  it("logical flat mask 0b1010 reaches CPUs 1 and 3; lowest priority only the first of them", () => {
    expect(routeInterrupt(decodeIcr(0x4831, 0x0a << 24, 0), cpus).map((t) => t.cpu)).toEqual([1, 3]);
    expect(routeInterrupt(decodeIcr(0x4931, 0x0a << 24, 0), cpus).map((t) => t.cpu)).toEqual([1]);
  });

  it("INIT, SIPI and NMI become the matching incoming kinds; SMI delivers nothing", () => {
    expect(routeInterrupt(decodeIcr(0x4500, 3 << 24, 0), cpus)).toEqual([{ cpu: 3, incoming: { kind: "init" } }]);
    expect(routeInterrupt(decodeIcr(0x4609, 3 << 24, 0), cpus)).toEqual([{ cpu: 3, incoming: { kind: "startup", vector: 9 } }]);
    expect(routeInterrupt(decodeIcr(0x4400, 3 << 24, 0), cpus)).toEqual([{ cpu: 3, incoming: { kind: "nmi" } }]);
    expect(routeInterrupt(decodeIcr(0x4200, 3 << 24, 0), cpus)).toEqual([]);
  });

  it("an IOAPIC entry, level-triggered, to logical broadcast 0xFF reaches everyone", () => {
    const targets = routeInterrupt(decodeRedirection(4, 0x8830, 0xff000000), cpus);
    expect(targets.map((t) => t.cpu)).toEqual([0, 1, 2, 3]);
    expect(targets[0].incoming).toEqual({ kind: "fixed", vector: 0x30, trigger: "level" });
  });
});
