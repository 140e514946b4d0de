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
