// I/O routing: ports and an MMIO window answered by a TypeScript handler instead of v86's devices.
import { describe, expect, it } from "vitest";
import { HC_CMD_PORT, IO_MMIO, IO_PORT } from "../../guests/enginetest/layout.ts";
import { routeMmio, routePorts, type IoSize } from "../../src/engine/io-routing.ts";
import type { Vcpu } from "../../src/engine/vcpu.ts";
import { bootEngineTest } from "../../harness/nodejs/engine-guest.ts";

describe("engine I/O routing", () => {
  it("sends routed port and MMIO accesses, with their sizes, to the handler and returns its answers", { timeout: 120_000 }, async () => {
    const log: string[] = [];
    const answers = new Map<string, number>([
      [`${IO_PORT}/1`, 0xa5],
      [`${IO_PORT + 2}/2`, 0xbeef],
      [`${IO_PORT + 4}/4`, 0xdeadbeef],
      [`${IO_MMIO + 0x40}/4`, 0x600df00d],
      [`${IO_MMIO + 0x41}/1`, 0x5a],
    ]);
    const handler = {
      read(a: number, size: IoSize) {
        log.push(`r ${a.toString(16)}/${size}`);
        const v = answers.get(`${a}/${size}`);
        if (v === undefined) throw new Error(`unexpected read ${a.toString(16)}/${size}`);
        return v;
      },
      write(a: number, size: IoSize, v: number) {
        log.push(`w ${a.toString(16)}/${size}=${v.toString(16)}`);
      },
    };
    let vcpu!: Vcpu;
    const run = await bootEngineTest("io", () => 0, undefined, (v) => {
      vcpu = v;
      routePorts(v, IO_PORT, IO_PORT + 7, handler);
      routeMmio(v, IO_MMIO, 0x20000, handler);
    });
    try {
      expect(await run.done).toBe(0);
    } finally {
      await vcpu.destroy();
    }
    expect(log).toEqual([
      "w 510/1=12",
      "w 512/2=3456",
      "w 514/4=789abcde",
      "r 510/1",
      "r 512/2",
      "r 514/4",
      "w d0000010/4=cafebabe",
      "w d0000020/1=77",
      "r d0000040/4",
      "r d0000041/1",
    ]);
    expect(run.output()).toContain("mmio read8 got=0000005a want=0000005a ok");
  });

  it("refuses ranges it cannot route", { timeout: 120_000 }, async () => {
    const run = await bootEngineTest("io", () => 0);
    const h = { read: () => 0, write: () => {} };
    try {
      expect(() => routePorts(run.vcpu, 0x1f, 0x22, h)).toThrow(/port 0x20 \(PIC\)/);
      expect(() => routePorts(run.vcpu, 5, 4, h)).toThrow(/first <= last/);
      expect(() => routeMmio(run.vcpu, IO_MMIO + 0x1000, 0x20000, h)).toThrow(/128 KiB aligned/);
      expect(() => routeMmio(run.vcpu, 0x100000, 0x20000, h)).toThrow(/overlaps guest RAM/);
      expect(() => routeMmio(run.vcpu, 0xfee00000, 0x20000, h)).toThrow(/local APIC window/);
      expect(() => routePorts(run.vcpu, HC_CMD_PORT, HC_CMD_PORT, {} as typeof h)).toThrow(/needs read/);
    } finally {
      await run.done.catch(() => {});
      await run.vcpu.destroy();
    }
  });

  it("hands out v86's port dispatcher and the first UART (ports, sendSerial, onSerialOutput)", { timeout: 120_000 }, async () => {
    const COM1 = 0x3f8;
    const seen: number[] = [];
    let stop = () => {};
    const run = await bootEngineTest("io", () => 0, undefined, (v) => {
      stop = v.onSerialOutput((b) => seen.push(b));
      routePorts(v, IO_PORT, IO_PORT + 7, { read: (port, size) => port + size, write: () => {} });
    });
    try {
      await run.done.catch(() => {});
      expect(run.output().length, "the guest printed on COM1").toBeGreaterThan(0);
      expect(String.fromCharCode(...seen)).toBe(run.output());
      // The dispatcher v86's wasm calls for IN/OUT: a routed port answers through it, and a write
      // to COM1's transmit register comes out as output (not to a listener that stopped).
      expect(run.vcpu.ports.port_read16(IO_PORT + 2)).toBe(IO_PORT + 2 + 2);
      stop();
      run.vcpu.ports.port_write8(COM1, 0x41);
      expect(run.output().endsWith("A")).toBe(true);
      expect(String.fromCharCode(...seen)).toBe(run.output().slice(0, -1));
      // Text and bytes sent to the guest wait in COM1's receive buffer, one byte per character.
      run.vcpu.sendSerial("hi");
      run.vcpu.sendSerial(Uint8Array.of(0x00, 0xff));
      const received: number[] = [];
      while (run.vcpu.ports.port_read8(COM1 + 5) & 1) received.push(run.vcpu.ports.port_read8(COM1));
      expect(received).toEqual([0x68, 0x69, 0x00, 0xff]);
    } finally {
      await run.vcpu.destroy();
    }
  });
});
