// I/O routing: a port range or an MMIO range handled by a TypeScript handler instead of the local
// v86 devices (for a vCPU whose devices live on another node). The handler is called
// synchronously in the middle of the guest's in/out or MMIO instruction; it may block (for
// example Atomics.wait in the vCPU's worker) until the owning node answers a read.
//
// Reach: every port v86 dispatches to JavaScript. The PIC ports (0x20, 0x21, 0xA0, 0xA1, 0x4D0,
// 0x4D1) are handled inside v86's wasm and never get here; the APIC and IOAPIC MMIO windows are
// handled inside the wasm too (see interrupts/). MMIO ranges must be 128 KiB aligned, the
// granularity of v86's memory map, and lie above guest RAM.

import { EngineError, type Vcpu } from "./vcpu.ts";

export type IoSize = 1 | 2 | 4;

export interface IoHandler {
  read(address: number, size: IoSize): number;
  write(address: number, size: IoSize, value: number): void;
}

interface PortEntry {
  read8: () => number;
  read16: () => number;
  read32: () => number;
  write8: (v: number) => void;
  write16: (v: number) => void;
  write32: (v: number) => void;
  device: unknown;
}

interface V86Io {
  ports: PortEntry[];
}

interface V86CpuMaps {
  io: V86Io;
  memory_map_read8: ((addr: number) => number)[];
  memory_map_write8: ((addr: number, v: number) => void)[];
  memory_map_read32: ((addr: number) => number)[];
  memory_map_write32: ((addr: number, v: number) => void)[];
}

const MMAP_BLOCK_BITS = 17; // v86 src/const.js
const MMAP_BLOCK = 1 << MMAP_BLOCK_BITS;

function cpuOf(vcpu: Vcpu): V86CpuMaps {
  return (vcpu.emulator as unknown as { v86: { cpu: V86CpuMaps } }).v86.cpu;
}

function checkHandler(handler: IoHandler): void {
  if (!handler || typeof handler.read !== "function" || typeof handler.write !== "function") {
    throw new EngineError("an I/O handler needs read(address, size) and write(address, size, value)");
  }
}

/** Routes ports [first, last] to `handler`; returns a function that restores v86's devices. */
export function routePorts(vcpu: Vcpu, first: number, last: number, handler: IoHandler): () => void {
  if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last > 0xffff || first > last) {
    throw new EngineError(`port range must be integers with 0 <= first <= last <= 0xFFFF, got ${first}..${last}`);
  }
  for (const p of [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1]) {
    if (p >= first && p <= last) throw new EngineError(`port 0x${p.toString(16)} (PIC) is handled inside v86's wasm and cannot be routed`);
  }
  checkHandler(handler);
  const ports = cpuOf(vcpu).io.ports;
  const saved: PortEntry[] = [];
  for (let port = first; port <= last; port++) {
    saved.push(ports[port]);
    ports[port] = {
      device: handler,
      read8: () => handler.read(port, 1) & 0xff,
      read16: () => handler.read(port, 2) & 0xffff,
      read32: () => handler.read(port, 4) | 0,
      write8: (v) => handler.write(port, 1, v & 0xff),
      write16: (v) => handler.write(port, 2, v & 0xffff),
      write32: (v) => handler.write(port, 4, v >>> 0),
    };
  }
  return () => saved.forEach((entry, i) => (ports[first + i] = entry));
}

/** Routes MMIO [start, start + size) to `handler`; returns a function that restores v86's map. */
export function routeMmio(vcpu: Vcpu, start: number, size: number, handler: IoHandler): () => void {
  if (!Number.isInteger(start) || !Number.isInteger(size) || start % MMAP_BLOCK || size <= 0 || size % MMAP_BLOCK || start + size > 2 ** 32) {
    throw new EngineError(`MMIO range must be 128 KiB aligned and sized within 4 GiB, got start 0x${start.toString(16)} size 0x${size.toString(16)}`);
  }
  if (start < vcpu.memorySize) throw new EngineError(`MMIO range at 0x${start.toString(16)} overlaps guest RAM (0..0x${vcpu.memorySize.toString(16)})`);
  for (const [base, name] of [[0xfec00000, "IOAPIC"], [0xfee00000, "local APIC"]] as const) {
    if (base >= start && base < start + size) throw new EngineError(`MMIO range covers the ${name} window, which v86 handles inside its wasm`);
  }
  checkHandler(handler);
  const cpu = cpuOf(vcpu);
  const saved: [number, (typeof cpu.memory_map_read8)[0], (typeof cpu.memory_map_write8)[0], (typeof cpu.memory_map_read32)[0], (typeof cpu.memory_map_write32)[0]][] = [];
  for (let block = start >>> MMAP_BLOCK_BITS; block < (start + size) / MMAP_BLOCK; block++) {
    saved.push([block, cpu.memory_map_read8[block], cpu.memory_map_write8[block], cpu.memory_map_read32[block], cpu.memory_map_write32[block]]);
    cpu.memory_map_read8[block] = (addr) => handler.read(addr >>> 0, 1) & 0xff;
    cpu.memory_map_write8[block] = (addr, v) => handler.write(addr >>> 0, 1, v & 0xff);
    cpu.memory_map_read32[block] = (addr) => handler.read(addr >>> 0, 4) | 0;
    cpu.memory_map_write32[block] = (addr, v) => handler.write(addr >>> 0, 4, v >>> 0);
  }
  return () => {
    for (const [b, r8, w8, r32, w32] of saved) {
      cpu.memory_map_read8[b] = r8;
      cpu.memory_map_write8[b] = w8;
      cpu.memory_map_read32[b] = r32;
      cpu.memory_map_write32[b] = w32;
    }
  };
}
