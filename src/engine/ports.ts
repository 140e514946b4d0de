// v86's JavaScript port dispatcher (`emulator.v86.cpu.io`): the wasm calls these for every IN/OUT
// that v86's JS devices serve (the 8259 PICs are inside the wasm and never get here). A Vcpu hands
// it out as `vcpu.ports`; replacing its methods sends every such port access elsewhere (what
// machine/devices/io-forwarding.ts's forwardPorts does on a node without devices).

export interface PortDispatcher {
  port_read8(port: number): number;
  port_read16(port: number): number;
  port_read32(port: number): number;
  port_write8(port: number, value: number): void;
  port_write16(port: number, value: number): void;
  port_write32(port: number, value: number): void;
}

/** One port's handlers, one per access size (what v86's IO keeps for each port). */
export interface PortHandlers {
  read8(): number;
  read16(): number;
  read32(): number;
  write8(value: number): void;
  write16(value: number): void;
  write32(value: number): void;
}

/** A table of port handlers (node 0's v86 `cpu.io`); installing at a port replaces whatever served it. */
export interface PortTable {
  install(port: number, handlers: PortHandlers): void;
}

/** v86's IO object (src/io.js) beyond the dispatcher: its per-port registration. */
interface V86Io extends PortDispatcher {
  register_read(port: number, device: object, r8?: () => number, r16?: () => number, r32?: () => number): void;
  register_write(port: number, device: object, w8?: (v: number) => void, w16?: (v: number) => void, w32?: (v: number) => void): void;
}

/**
 * v86's port dispatcher (a Vcpu's `ports`) as a PortTable. `register_read`/`register_write` simply
 * overwrite the port's slots, so this also takes ports v86's own devices hold (0xAFE0-0xAFE3, its
 * GPE0 bytes). Handlers serve the local vCPU and, through portSpaceOf, the forwarded accesses of
 * remote ones; on a node whose ports are forwarded (forwardPorts) they are never reached.
 */
export function portTableOf(io: PortDispatcher): PortTable {
  const v86 = io as Partial<V86Io>;
  if (typeof v86.register_read !== "function" || typeof v86.register_write !== "function") {
    throw new TypeError("portTableOf needs v86's IO object (cpu.io, with register_read and register_write)");
  }
  const table = v86 as V86Io;
  return {
    install(port, h) {
      if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`a port must be an integer from 0 to 0xffff, got ${port}`);
      const device = { name: `giantweb port 0x${port.toString(16)}` };
      table.register_read(port, device, () => h.read8() & 0xff, () => h.read16() & 0xffff, () => h.read32() | 0);
      table.register_write(port, device, (v) => h.write8(v & 0xff), (v) => h.write16(v & 0xffff), (v) => h.write32(v >>> 0));
    },
  };
}
