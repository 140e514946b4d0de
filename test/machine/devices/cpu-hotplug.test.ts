// Node 0's CPU hotplug device without v86: the guest's side is played by hand through port
// accesses, in the order the AML (\_GPE._E02 → CSCN, _STA → CSTA, _EJ0, _OST) and ACPICA's GPE
// dispatch make them.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { IoSize } from "../../../src/protocol/messages.ts";
import { portTableOf, type PortDispatcher, type PortHandlers, type PortTable } from "../../../src/engine/ports.ts";
import { CpuHotplugDevice, CpuHotplugRefused } from "../../../src/machine/devices/cpu-hotplug.ts";
import { connectSci, CPU_HOTPLUG_PORTS, installCpuHotplug } from "../../../src/machine/devices/cpu-hotplug-ports.ts";
import {
  CPU_HOTPLUG_BASE as BASE,
  CPU_HOTPLUG_CMD as CMD,
  CPU_HOTPLUG_FLAG as FLAG,
  CPU_HOTPLUG_GPE_BIT,
  CPU_HOTPLUG_LENGTH,
  CPU_HOTPLUG_REG as REG,
  CPU_HOTPLUG_SCI_IRQ,
  GPE0_BASE,
  GPE0_LENGTH,
} from "../../../src/machine/devices/cpu-hotplug-interface.ts";

const GPE_STATUS = GPE0_BASE; // status bytes GPE0_BASE, +1; enable bytes +2, +3
const GPE_ENABLE = GPE0_BASE + 2;
const HP_BIT = 1 << CPU_HOTPLUG_GPE_BIT;

/** A device plus everything it reported. */
function setup(possibleCpus = 4, present: number[] = [0]) {
  const dev = new CpuHotplugDevice({ possibleCpus, present });
  const ejects: number[] = [];
  const osts: [number, number, number][] = [];
  const sci: boolean[] = [];
  dev.onEject((cpu) => ejects.push(cpu));
  dev.onOst((cpu, event, status) => osts.push([cpu, event, status]));
  dev.onSciChange((level) => sci.push(level));
  return { dev, ejects, osts, sci, guest: guest(dev) };
}

/** The guest's register accesses, with the widths the AML's Fields use (dword CSEL/CDAT, byte flags/command). */
function guest(dev: CpuHotplugDevice) {
  const g = {
    select: (cpu: number) => dev.write(BASE + REG.selector, 4, cpu),
    flags: () => dev.read(BASE + REG.flags, 1),
    writeFlags: (v: number) => dev.write(BASE + REG.flags, 1, v),
    command: (c: number) => dev.write(BASE + REG.command, 1, c),
    data: () => dev.read(BASE + REG.data, 4),
    writeData: (v: number) => dev.write(BASE + REG.data, 4, v),
    /** CSTA: select, 0xF if CPEN else 0. */
    sta: (cpu: number) => (g.select(cpu), g.flags() & FLAG.enabled ? 0xf : 0),
    /** CEJ0: select, write the eject bit. */
    ej0: (cpu: number) => (g.select(cpu), g.writeFlags(FLAG.eject)),
    /** COST: event, then status, for the CPU. */
    ost: (cpu: number, event: number, status: number) => {
      g.select(cpu);
      g.command(CMD.ostEvent);
      g.writeData(event);
      g.command(CMD.ostStatus);
      g.writeData(status);
    },
    /** CSCN: command 0 until no CPU has an event; Notify(cpu, 1) for an insert, 3 for a remove, then acknowledge. */
    scan: () => {
      const notified: [number, number][] = [];
      for (let guard = 0; guard < 100; guard++) {
        g.command(CMD.selectNextEvent);
        const f = g.flags();
        if (f & FLAG.insert) {
          notified.push([g.data(), 1]);
          g.writeFlags(FLAG.insert);
        } else if (f & FLAG.remove) {
          notified.push([g.data(), 3]);
          g.writeFlags(FLAG.remove);
        } else return notified;
      }
      throw new Error("the scan did not end");
    },
    /** ACPICA on an SCI for an edge GPE: disable it, clear its status, run _E02, enable it again. */
    sciHandler: () => {
      const status = dev.read(GPE_STATUS, 1) & dev.read(GPE_ENABLE, 1);
      if (!(status & HP_BIT)) return null;
      dev.write(GPE_ENABLE, 1, dev.read(GPE_ENABLE, 1) & ~HP_BIT);
      dev.write(GPE_STATUS, 1, HP_BIT);
      const notified = g.scan();
      dev.write(GPE_ENABLE, 1, dev.read(GPE_ENABLE, 1) | HP_BIT);
      return notified;
    },
    /** ACPICA at init: every GPE with a method (_E02) enabled. */
    enableGpe: () => dev.write(GPE_ENABLE, 1, HP_BIT),
  };
  return g;
}

describe("construction", () => {
  it("refuses bad possible counts and present sets", () => {
    expect(() => new CpuHotplugDevice({ possibleCpus: 0, present: [0] })).toThrow("possibleCpus must be an integer from 1 to 32, got 0");
    expect(() => new CpuHotplugDevice({ possibleCpus: 33, present: [0] })).toThrow(RangeError);
    expect(() => new CpuHotplugDevice({ possibleCpus: 2.5, present: [0] })).toThrow(RangeError);
    expect(() => new CpuHotplugDevice({ possibleCpus: 4, present: [0, 4] })).toThrow("a CPU present at boot must be an integer from 0 to 3, got 4");
    expect(() => new CpuHotplugDevice({ possibleCpus: 4, present: [1] })).toThrow("CPU 0 (the boot CPU) must be present at boot");
    expect(new CpuHotplugDevice({ possibleCpus: 32, present: [0, 31] }).snapshot().filter((c) => c.enabled).map((c) => c.cpu)).toEqual([0, 31]);
  });

  it("starts with the present CPUs enabled, no events, the GPE block clear and the SCI low", () => {
    const { dev, guest: g } = setup(4, [0, 2]);
    expect(dev.snapshot()).toEqual([0, 1, 2, 3].map((cpu) => ({ cpu, enabled: cpu === 0 || cpu === 2, insertPending: false, removePending: false, ostEvent: 0, ostStatus: 0 })));
    expect(dev.read(GPE0_BASE, 4)).toBe(0);
    expect(dev.sciLevel()).toBe(false);
    expect([0, 1, 2, 3].map(g.sta)).toEqual([0xf, 0, 0xf, 0]);
    // the modern-interface probe of QEMU's spec: selector 0, command 0, command data 2 reads 0
    g.select(0);
    g.command(0);
    expect(dev.read(BASE, 4)).toBe(0);
  });
});

describe("hot-add", () => {
  it("plug → GPE status and SCI → the scan finds the insert → acknowledged, SCI low once the status is cleared", () => {
    const { dev, guest: g, sci } = setup(4);
    g.enableGpe();
    expect(sci).toEqual([]);
    dev.plug(1);
    expect(dev.read(GPE_STATUS, 1)).toBe(HP_BIT);
    expect(dev.sciLevel()).toBe(true);
    expect(sci).toEqual([true]);
    expect(dev.snapshot()[1]).toMatchObject({ enabled: true, insertPending: true, removePending: false });

    // by hand, as ACPICA and CSCN do it
    dev.write(GPE_ENABLE, 1, 0); // the dispatcher disables the GPE: the line drops
    expect(sci).toEqual([true, false]);
    dev.write(GPE_STATUS, 1, HP_BIT); // edge GPE: status cleared before the method runs
    expect(dev.read(GPE_STATUS, 1)).toBe(0);
    g.command(CMD.selectNextEvent);
    expect(g.data()).toBe(1);
    expect(g.flags()).toBe(FLAG.enabled | FLAG.insert);
    g.writeFlags(FLAG.insert);
    expect(g.flags()).toBe(FLAG.enabled);
    g.command(CMD.selectNextEvent); // none left: the selector stays
    expect(g.flags() & (FLAG.insert | FLAG.remove)).toBe(0);
    expect(g.data()).toBe(1);
    g.enableGpe();
    expect(dev.sciLevel()).toBe(false);
    expect(sci).toEqual([true, false]);

    // the kernel's _STA on the new CPU, then its _OST "success"
    expect(g.sta(1)).toBe(0xf);
    g.ost(1, 1, 0);
    expect(dev.snapshot()[1]).toEqual({ cpu: 1, enabled: true, insertPending: false, removePending: false, ostEvent: 1, ostStatus: 0 });
  });

  it("the SCI waits for the enable bit: a pending status raises it when the GPE is enabled", () => {
    const { dev, guest: g, sci } = setup(2);
    dev.plug(1);
    expect(dev.sciLevel()).toBe(false);
    expect(sci).toEqual([]);
    g.enableGpe();
    expect(sci).toEqual([true]);
    expect(g.sciHandler()).toEqual([[1, 1]]);
    expect(sci).toEqual([true, false]);
    expect(dev.read(GPE0_BASE, 4)).toBe(HP_BIT << 16);
  });

  it("several CPUs queued: the scan takes them from the selector on, wrapping, and notifies each once", () => {
    const { dev, guest: g, sci } = setup(8, [0, 5]);
    g.enableGpe();
    g.select(4);
    dev.plug(6);
    dev.plug(2);
    dev.requestUnplug(5);
    dev.plug(7);
    expect(sci).toEqual([true]); // one level, however many events
    // the order command 0 finds them in: 4 (none), 5, 6, 7, then wrapping to 2
    expect(g.sciHandler()).toEqual([[5, 3], [6, 1], [7, 1], [2, 1]]);
    expect(sci).toEqual([true, false]);
    expect(dev.snapshot().map((c) => [c.insertPending, c.removePending])).toEqual(Array.from({ length: 8 }, () => [false, false]));
    expect(g.sciHandler()).toBeNull();
  });

  it("an event that arrives while the method runs raises the SCI again and is found by the next scan", () => {
    const { dev, guest: g, sci } = setup(4);
    g.enableGpe();
    dev.plug(1);
    dev.write(GPE_ENABLE, 1, 0);
    dev.write(GPE_STATUS, 1, HP_BIT);
    expect(g.scan()).toEqual([[1, 1]]);
    dev.plug(2); // during the method, after its scan
    g.enableGpe();
    expect(sci).toEqual([true, false, true]);
    expect(g.sciHandler()).toEqual([[2, 1]]);
  });

  it("command 0 starts at the current selector itself", () => {
    const { dev, guest: g } = setup(4);
    dev.plug(1);
    dev.plug(3);
    g.select(3);
    g.command(CMD.selectNextEvent);
    expect(g.data()).toBe(3);
    g.select(2);
    g.command(CMD.selectNextEvent);
    expect(g.data()).toBe(3);
  });
});

describe("hot-remove", () => {
  it("requestUnplug → remove event → Notify(3) → _EJ0 → onEject, the CPU is no longer enabled; it can be plugged again", () => {
    const { dev, guest: g, ejects, osts, sci } = setup(4, [0, 1, 2]);
    g.enableGpe();
    dev.requestUnplug(2);
    expect(sci).toEqual([true]);
    expect(g.sta(2)).toBe(0xf); // still there until the guest ejects it
    expect(g.flags()).toBe(FLAG.enabled | FLAG.remove);
    expect(g.sciHandler()).toEqual([[2, 3]]);
    expect(ejects).toEqual([]);
    g.ost(2, 3, 0x80); // "eject in progress", as Linux reports while it offlines the CPU
    g.ej0(2);
    expect(ejects).toEqual([2]);
    expect(g.sta(2)).toBe(0);
    expect(dev.snapshot()[2]).toEqual({ cpu: 2, enabled: false, insertPending: false, removePending: false, ostEvent: 3, ostStatus: 0x80 });
    expect(osts).toEqual([[2, 3, 0x80]]);
    g.ej0(2); // a second eject of a CPU that is gone: nothing
    expect(ejects).toEqual([2]);
    dev.plug(2);
    expect(g.sciHandler()).toEqual([[2, 1]]);
    expect(g.sta(2)).toBe(0xf);
  });

  it("a busy _OST leaves the CPU enabled, and the platform may ask again", () => {
    const { dev, guest: g, ejects, osts } = setup(2, [0, 1]);
    g.enableGpe();
    dev.requestUnplug(1);
    g.sciHandler();
    g.ost(1, 3, 3); // ACPI_OST_SC_DEVICE_BUSY
    expect(osts).toEqual([[1, 3, 3]]);
    expect(ejects).toEqual([]);
    expect(g.sta(1)).toBe(0xf);
    dev.requestUnplug(1);
    expect(dev.snapshot()[1]!.removePending).toBe(true);
  });

  it("the guest may eject on its own (sysfs eject), but never CPU 0", () => {
    const { dev, guest: g, ejects } = setup(3, [0, 1]);
    g.ej0(1);
    expect(ejects).toEqual([1]);
    g.ej0(0);
    expect(ejects).toEqual([1]);
    expect(g.sta(0)).toBe(0xf);
    expect(dev.snapshot()[0]!.enabled).toBe(true);
  });

  it("flag writes: bits 1 and 2 clear only their own event, bit 0 and bits 4-7 do nothing", () => {
    const { dev, guest: g } = setup(3, [0, 1]);
    dev.plug(2);
    dev.requestUnplug(1);
    g.select(2);
    g.writeFlags(FLAG.remove | FLAG.enabled | 0xf0);
    expect(g.flags()).toBe(FLAG.enabled | FLAG.insert);
    g.writeFlags(FLAG.insert);
    expect(g.flags()).toBe(FLAG.enabled);
    g.select(1);
    g.writeFlags(FLAG.insert);
    expect(g.flags()).toBe(FLAG.enabled | FLAG.remove);
    g.writeFlags(FLAG.remove);
    expect(g.flags()).toBe(FLAG.enabled);
  });
});

describe("_OST and command data", () => {
  it("command 1 then a data write sets the event, command 2 then a data write the status and reports both", () => {
    const { dev, guest: g, osts } = setup(4, [0, 1, 3]);
    g.select(3);
    g.command(CMD.ostEvent);
    g.writeData(0x103); // ACPI_OST_EC_OSPM_EJECT
    expect(osts).toEqual([]);
    g.command(CMD.ostStatus);
    g.writeData(0x84);
    g.writeData(0); // each status write is a report
    expect(osts).toEqual([[3, 0x103, 0x84], [3, 0x103, 0]]);
    expect(dev.snapshot()[3]).toMatchObject({ ostEvent: 0x103, ostStatus: 0 });
    expect(dev.snapshot()[1]).toMatchObject({ ostEvent: 0, ostStatus: 0 });
    g.command(CMD.ostEvent);
    expect(g.data()).toBe(0); // command data reads 0 under commands 1 and 2
  });

  it("command 3 reads the APIC ID in data and 0 in data 2; data writes under commands 0 and 3 are ignored", () => {
    const { dev, guest: g, osts } = setup(8);
    g.select(6);
    g.command(CMD.archId);
    expect(g.data()).toBe(6);
    expect(dev.read(BASE, 4)).toBe(0);
    g.writeData(99);
    g.command(CMD.selectNextEvent);
    g.writeData(99);
    expect(g.data()).toBe(6);
    expect(osts).toEqual([]);
    expect(dev.snapshot().every((c) => c.ostEvent === 0 && c.ostStatus === 0)).toBe(true);
  });

  it("reserved bytes read 0 and ignore writes; the command byte reads 0", () => {
    const { dev, guest: g } = setup(2);
    g.select(0);
    for (const off of [5, 6, 7]) expect(dev.read(BASE + off, 1)).toBe(0);
    dev.write(BASE + 6, 2, 0xffff);
    expect(dev.read(BASE, 4)).toBe(0);
    expect(g.flags()).toBe(FLAG.enabled);
  });
});

describe("a selector that names no possible CPU", () => {
  it("reads 0 everywhere and ignores writes to other registers until a valid one is stored", () => {
    const { dev, guest: g, ejects, osts } = setup(4, [0, 1, 2, 3]);
    dev.requestUnplug(3);
    g.command(CMD.archId);
    for (const bad of [4, 0x100, 0xffffffff]) {
      g.select(bad);
      for (let off = 0; off < CPU_HOTPLUG_LENGTH; off++) expect(dev.read(BASE + off, 1)).toBe(0);
      g.writeFlags(FLAG.eject | FLAG.remove);
      g.command(CMD.selectNextEvent); // ignored: no search, and command 3 stays
      g.command(CMD.ostStatus);
      g.writeData(7);
    }
    expect(ejects).toEqual([]);
    expect(osts).toEqual([]);
    g.select(2);
    expect(g.data()).toBe(2); // still command 3: the APIC ID of CPU 2
    expect(dev.snapshot()[3]!.removePending).toBe(true);
  });

  it("QEMU's enumeration loop ends at possibleCpus and counts the enabled CPUs", () => {
    const { guest: g } = setup(5, [0, 3]);
    let present = 0;
    let it = 0;
    g.select(0);
    g.command(CMD.selectNextEvent);
    for (;;) {
      if (g.flags() & FLAG.enabled) present++;
      it++;
      g.select(it);
      if (g.data() === 0) break;
    }
    g.select(0);
    expect({ present, it }).toEqual({ present: 2, it: 5 });
  });

  it("non-integer and negative CPUs are refused by the platform side", () => {
    const { dev } = setup(4);
    for (const cpu of [-1, 4, 1.5, Number.NaN]) {
      expect(() => dev.plug(cpu)).toThrow(CpuHotplugRefused);
      expect(() => dev.requestUnplug(cpu)).toThrow(/not a possible CPU \(0 to 3\)/);
    }
  });
});

describe("refusals", () => {
  function refusal(f: () => void): CpuHotplugRefused {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(CpuHotplugRefused);
      return e as CpuHotplugRefused;
    }
    throw new Error("not refused");
  }

  it("name the action, the CPU and the reason, and change nothing", () => {
    const { dev, sci } = setup(4, [0, 1]);
    dev.write(GPE_ENABLE, 1, HP_BIT);
    const before = dev.snapshot();
    const cases: [() => void, string, string][] = [
      [() => dev.plug(4), "out-of-range", "cannot plug CPU 4: it is not a possible CPU (0 to 3)"],
      [() => dev.plug(1), "already-enabled", "cannot plug CPU 1: it is already enabled"],
      [() => dev.plug(0), "already-enabled", "cannot plug CPU 0: it is already enabled"],
      [() => dev.requestUnplug(0), "boot-cpu", "cannot unplug CPU 0: CPU 0 is the boot CPU and cannot be removed"],
      [() => dev.requestUnplug(2), "not-enabled", "cannot unplug CPU 2: it is not enabled"],
      [() => dev.requestUnplug(7), "out-of-range", "cannot unplug CPU 7: it is not a possible CPU (0 to 3)"],
    ];
    for (const [f, reason, message] of cases) {
      const e = refusal(f);
      expect([e.reason, e.message, e.name]).toEqual([reason, message, "CpuHotplugRefused"]);
    }
    expect(dev.snapshot()).toEqual(before);
    expect(sci).toEqual([]);
  });

  it("refuse a second event for a CPU whose first the guest has not taken", () => {
    const { dev, guest: g } = setup(4, [0, 1]);
    dev.plug(2);
    expect(refusal(() => dev.plug(2))).toMatchObject({ reason: "event-pending", message: "cannot plug CPU 2: the guest has not yet taken its pending insert event" });
    expect(refusal(() => dev.requestUnplug(2))).toMatchObject({ reason: "event-pending", message: "cannot unplug CPU 2: the guest has not yet taken its pending insert event" });
    dev.requestUnplug(1);
    expect(refusal(() => dev.requestUnplug(1))).toMatchObject({ reason: "event-pending", message: "cannot unplug CPU 1: the guest has not yet taken its pending remove event", action: "unplug", cpu: 1 });
    expect(refusal(() => dev.plug(1)).reason).toBe("event-pending");
    g.enableGpe();
    g.sciHandler();
    dev.requestUnplug(2);
  });
});

describe("GPE0 block", () => {
  it("status bits clear on a written 1 and cannot be set by the guest; enable bytes store; SCI = any(status & enable)", () => {
    const { dev, sci } = setup(2);
    dev.write(GPE_STATUS, 2, 0xffff); // writing 1s to clear bits that are clear sets nothing
    expect(dev.read(GPE0_BASE, 4)).toBe(0);
    dev.plug(1);
    expect(dev.read(GPE_STATUS, 2)).toBe(HP_BIT);
    dev.write(GPE_STATUS, 1, ~HP_BIT & 0xff); // other bits: status stays
    expect(dev.read(GPE_STATUS, 1)).toBe(HP_BIT);
    dev.write(GPE_ENABLE, 2, 0xff00 | (~HP_BIT & 0xff)); // every enable but ours: no SCI
    expect(dev.read(GPE_ENABLE, 2)).toBe(0xff00 | (~HP_BIT & 0xff));
    expect(dev.sciLevel()).toBe(false);
    dev.write(GPE_ENABLE, 1, 0xff);
    expect(dev.sciLevel()).toBe(true);
    dev.write(GPE_STATUS, 1, HP_BIT);
    expect(dev.read(GPE_STATUS, 2)).toBe(0);
    expect(dev.sciLevel()).toBe(false);
    expect(dev.read(GPE_ENABLE, 2)).toBe(0xffff);
    expect(sci).toEqual([true, false]);
  });

  it("a dword write clears status and sets enables in one access, with one SCI change", () => {
    const { dev, sci } = setup(2);
    dev.write(GPE_ENABLE, 1, HP_BIT);
    dev.plug(1);
    expect(sci).toEqual([true]);
    dev.write(GPE0_BASE, 4, (0xffff << 16) | HP_BIT); // clear ours, enable all: low
    expect(dev.read(GPE0_BASE, 4)).toBe(0xffff0000);
    expect(sci).toEqual([true, false]);
  });

  it("onSciChange and the other listeners can be removed", () => {
    const dev = new CpuHotplugDevice({ possibleCpus: 2, present: [0] });
    const seen: string[] = [];
    const off = [dev.onSciChange((l) => seen.push(`sci ${l}`)), dev.onEject((c) => seen.push(`eject ${c}`)), dev.onOst((c) => seen.push(`ost ${c}`))];
    for (const f of off) f();
    dev.write(GPE_ENABLE, 1, HP_BIT);
    dev.plug(1);
    guest(dev).ost(1, 1, 0);
    guest(dev).ej0(1);
    expect(seen).toEqual([]);
  });
});

describe("byte, word and dword accesses", () => {
  /** A device in some reachable state, built from a list of operations. */
  const ops = fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant("plug" as const), cpu: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ kind: fc.constant("unplug" as const), cpu: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ kind: fc.constant("write" as const), port: fc.integer({ min: BASE - 1, max: BASE + CPU_HOTPLUG_LENGTH }), size: fc.constantFrom<IoSize>(1, 2, 4), value: fc.integer({ min: 0, max: 0xffffffff }) }),
      fc.record({ kind: fc.constant("gpe" as const), port: fc.integer({ min: GPE0_BASE, max: GPE0_BASE + GPE0_LENGTH - 1 }), size: fc.constantFrom<IoSize>(1, 2, 4), value: fc.integer({ min: 0, max: 0xffffffff }) }),
      fc.record({ kind: fc.constant("select" as const), cpu: fc.integer({ min: 0, max: 7 }) }),
    ),
    { maxLength: 25 },
  );
  type Op = typeof ops extends fc.Arbitrary<(infer T)[]> ? T : never;
  function build(list: Op[]): CpuHotplugDevice {
    const dev = new CpuHotplugDevice({ possibleCpus: 6, present: [0, 2] });
    for (const op of list) {
      try {
        if (op.kind === "plug") dev.plug(op.cpu);
        else if (op.kind === "unplug") dev.requestUnplug(op.cpu);
        else if (op.kind === "select") dev.write(BASE, 4, op.cpu);
        else dev.write(op.port, op.size, op.value);
      } catch (e) {
        if (!(e instanceof CpuHotplugRefused)) throw e;
      }
    }
    return dev;
  }
  /** Everything a guest or the platform can observe, without side effects. */
  function observe(dev: CpuHotplugDevice) {
    const bytes = [...Array.from({ length: CPU_HOTPLUG_LENGTH }, (_, i) => dev.read(BASE + i, 1)), ...Array.from({ length: GPE0_LENGTH }, (_, i) => dev.read(GPE0_BASE + i, 1))];
    return { bytes, cpus: dev.snapshot(), sci: dev.sciLevel() };
  }
  const ports = [...Array.from({ length: CPU_HOTPLUG_LENGTH + 2 }, (_, i) => BASE - 1 + i), ...Array.from({ length: GPE0_LENGTH + 1 }, (_, i) => GPE0_BASE + i)];

  it("a read of 2 or 4 bytes is the bytes read one by one, little-endian (0xFF outside the blocks)", () => {
    fc.assert(
      fc.property(ops, fc.constantFrom(...ports), fc.constantFrom<IoSize>(2, 4), (list, port, size) => {
        const dev = build(list);
        let composed = 0;
        for (let i = 0; i < size; i++) composed |= dev.read(port + i, 1) << (8 * i);
        expect(dev.read(port, size)).toBe(composed >>> 0);
      }),
      { numRuns: 400 },
    );
  });

  it("a write of 2 or 4 bytes leaves the state that its bytes written one by one, lowest port first, leave", () => {
    fc.assert(
      fc.property(ops, fc.constantFrom(...ports), fc.constantFrom<IoSize>(2, 4), fc.integer({ min: 0, max: 0xffffffff }), (list, port, size, value) => {
        const wide = build(list);
        const bytewise = build(list);
        const ejects: [number[], number[]] = [[], []];
        wide.onEject((c) => ejects[0].push(c));
        bytewise.onEject((c) => ejects[1].push(c));
        wide.write(port, size, value);
        for (let i = 0; i < size; i++) bytewise.write(port + i, 1, (value >>> (8 * i)) & 0xff);
        expect(observe(wide)).toEqual(observe(bytewise));
        expect(ejects[0]).toEqual(ejects[1]);
      }),
      { numRuns: 400 },
    );
  });

  it("examples: dword read at the flags, word and byte selector writes, a dword OST status reported once", () => {
    const { dev, guest: g, osts } = setup(32, [0]);
    dev.plug(0x12);
    dev.write(BASE + 1, 1, 0); // selector stays 0
    dev.write(BASE, 1, 0x12);
    expect(g.flags()).toBe(FLAG.enabled | FLAG.insert);
    expect(dev.read(BASE + REG.flags, 4)).toBe(FLAG.enabled | FLAG.insert); // flags, command (0), reserved (0, 0)
    expect(dev.read(BASE + REG.flags, 2)).toBe(FLAG.enabled | FLAG.insert);
    g.command(CMD.selectNextEvent);
    expect(dev.read(BASE + REG.data, 1)).toBe(0x12);
    expect(dev.read(BASE + REG.data + 1, 2)).toBe(0);
    expect(dev.read(BASE + REG.data, 2)).toBe(0x12);
    dev.write(BASE, 2, 0x0100); // selector 0x100: invalid
    expect(dev.read(BASE + REG.flags, 1)).toBe(0);
    dev.write(BASE + 1, 1, 0); // back to 0x00: CPU 0
    expect(g.flags()).toBe(FLAG.enabled);
    // one access: selector bytes 2-3 (stay 0), flags (clear insert of CPU 0: nothing), command 2
    dev.write(BASE + 2, 4, (CMD.ostStatus << 24) | (FLAG.insert << 16));
    dev.write(BASE + REG.data, 4, 0x01020304);
    expect(osts).toEqual([[0, 0, 0x01020304]]);
    dev.write(BASE + REG.data + 2, 2, 0xaaaa); // merged into the upper half, reported once
    expect(osts.at(-1)).toEqual([0, 0, 0xaaaa0304]);
    dev.write(BASE + REG.data, 1, 0xff);
    expect(osts.at(-1)).toEqual([0, 0, 0xaaaa03ff]);
    expect(osts).toHaveLength(3);
    // a word access at the last port reaches past the block: the high byte reads as unclaimed
    expect(dev.read(BASE + CPU_HOTPLUG_LENGTH - 1, 2)).toBe(0xff00 | dev.read(BASE + CPU_HOTPLUG_LENGTH - 1, 1));
  });
});

describe("on a port table", () => {
  /** A stand-in for v86's IO (src/io.js): per-port slots that register_* overwrite, dispatch with `this` = device. */
  function fakeV86Io() {
    type Entry = { read8: () => number; read16: () => number; read32: () => number; write8: (v: number) => void; write16: (v: number) => void; write32: (v: number) => void; device?: object };
    const empty = (): Entry => ({ read8: () => 0xff, read16: () => 0xffff, read32: () => -1, write8: () => {}, write16: () => {}, write32: () => {} });
    const slots = new Map<number, Entry>();
    const slot = (p: number) => slots.get(p) ?? (slots.set(p, empty()), slots.get(p)!);
    const io = {
      register_read(p: number, device: object, r8?: () => number, r16?: () => number, r32?: () => number) {
        const e = slot(p);
        if (r8) e.read8 = r8;
        if (r16) e.read16 = r16;
        if (r32) e.read32 = r32;
        e.device = device;
      },
      register_write(p: number, device: object, w8?: (v: number) => void, w16?: (v: number) => void, w32?: (v: number) => void) {
        const e = slot(p);
        if (w8) e.write8 = w8;
        if (w16) e.write16 = w16;
        if (w32) e.write32 = w32;
        e.device = device;
      },
      port_read8: (p: number) => slot(p).read8.call(slot(p).device),
      port_read16: (p: number) => slot(p).read16.call(slot(p).device),
      port_read32: (p: number) => slot(p).read32.call(slot(p).device),
      port_write8: (p: number, v: number) => slot(p).write8.call(slot(p).device, v),
      port_write16: (p: number, v: number) => slot(p).write16.call(slot(p).device, v),
      port_write32: (p: number, v: number) => slot(p).write32.call(slot(p).device, v),
    };
    return io;
  }

  it("installCpuHotplug serves all 16 ports at every size, replacing v86's plain GPE0 bytes", () => {
    const io = fakeV86Io();
    const v86Gpe = new Uint8Array(4); // what v86's acpi.js does at 0xAFE0-0xAFE3: a write stores
    for (let i = 0; i < 4; i++) io.register_read(GPE0_BASE + i, {}, () => v86Gpe[i]!), io.register_write(GPE0_BASE + i, {}, (v) => void (v86Gpe[i] = v));
    const dev = new CpuHotplugDevice({ possibleCpus: 4, present: [0] });
    installCpuHotplug(portTableOf(io), dev);
    expect(CPU_HOTPLUG_PORTS).toEqual([...Array.from({ length: 12 }, (_, i) => BASE + i), GPE0_BASE, GPE0_BASE + 1, GPE0_BASE + 2, GPE0_BASE + 3]);

    io.port_write8(GPE_ENABLE, HP_BIT);
    dev.plug(3);
    expect(io.port_read8(GPE_STATUS)).toBe(HP_BIT);
    expect(io.port_read32(GPE0_BASE)).toBe((HP_BIT << 16) | HP_BIT);
    io.port_write8(GPE_STATUS, HP_BIT); // write 1 to clear, as v86's own bytes never did
    expect(io.port_read8(GPE_STATUS)).toBe(0);
    expect(v86Gpe).toEqual(new Uint8Array(4));

    io.port_write32(BASE, 0);
    io.port_write8(BASE + REG.command, CMD.selectNextEvent);
    expect(io.port_read32(BASE + REG.data)).toBe(3);
    expect(io.port_read8(BASE + REG.flags)).toBe(FLAG.enabled | FLAG.insert);
    expect(io.port_read16(BASE + REG.flags)).toBe(FLAG.enabled | FLAG.insert);
    io.port_write16(BASE + REG.flags, FLAG.insert);
    expect(io.port_read8(BASE + REG.flags)).toBe(FLAG.enabled);
    io.port_write8(BASE + REG.command, CMD.archId);
    io.port_write32(BASE, 0xffffffff);
    expect(io.port_read32(BASE + REG.data)).toBe(0);
    expect(io.port_read32(BASE + CPU_HOTPLUG_LENGTH)).toBe(-1); // the port after the block is not ours
  });

  it("portTableOf needs v86's IO object and a valid port; it masks values to the access size", () => {
    const plain: PortDispatcher = { port_read8: () => 0, port_read16: () => 0, port_read32: () => 0, port_write8: () => {}, port_write16: () => {}, port_write32: () => {} };
    expect(() => portTableOf(plain)).toThrow("portTableOf needs v86's IO object");
    const io = fakeV86Io();
    const table: PortTable = portTableOf(io);
    const writes: number[] = [];
    const h: PortHandlers = { read8: () => 0x1ff, read16: () => 0x1ffff, read32: () => 0xffffffff, write8: (v) => writes.push(v), write16: (v) => writes.push(v), write32: (v) => writes.push(v) };
    expect(() => table.install(0x10000, h)).toThrow("a port must be an integer from 0 to 0xffff, got 65536");
    table.install(0x80, h);
    expect([io.port_read8(0x80), io.port_read16(0x80), io.port_read32(0x80)]).toEqual([0xff, 0xffff, -1]);
    io.port_write8(0x80, 0x1ab);
    io.port_write16(0x80, 0x1abcd);
    io.port_write32(0x80, -1);
    expect(writes).toEqual([0xab, 0xabcd, 0xffffffff]);
  });

  it(`connectSci drives IRQ ${CPU_HOTPLUG_SCI_IRQ} to the current level, then follows every change until disconnected`, () => {
    const dev = new CpuHotplugDevice({ possibleCpus: 4, present: [0] });
    const line: string[] = [];
    const raise = (irq: number) => line.push(`raise ${irq}`);
    const lower = (irq: number) => line.push(`lower ${irq}`);
    expect(() => connectSci(dev, 16, raise, lower)).toThrow("the SCI must be an ISA IRQ from 0 to 15, got 16");
    const g = guest(dev);
    g.enableGpe();
    dev.plug(1);
    const disconnect = connectSci(dev, CPU_HOTPLUG_SCI_IRQ, raise, lower);
    expect(line).toEqual([`raise ${CPU_HOTPLUG_SCI_IRQ}`]);
    expect(g.sciHandler()).toEqual([[1, 1]]);
    dev.plug(2);
    expect(line).toEqual([`raise ${CPU_HOTPLUG_SCI_IRQ}`, `lower ${CPU_HOTPLUG_SCI_IRQ}`, `raise ${CPU_HOTPLUG_SCI_IRQ}`]);
    disconnect();
    g.sciHandler();
    expect(line).toHaveLength(3);
    const fresh = new CpuHotplugDevice({ possibleCpus: 2, present: [0] });
    const l2: string[] = [];
    connectSci(fresh, 10, (i) => l2.push(`raise ${i}`), (i) => l2.push(`lower ${i}`));
    expect(l2).toEqual(["lower 10"]);
  });
});
