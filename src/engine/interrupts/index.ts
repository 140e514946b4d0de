// The engine's interrupt and vCPU-control interface (see src/engine/README-interrupts.md).
export { VcpuInterrupts, type InterruptHooks, type InterruptStats, type RoutedMmio, type RoutedPorts, type VcpuInterruptsOptions } from "./vcpu-interrupts.ts";
export { decodeIcr, decodeRedirection, destinationIncludes, includes, isInitDeassert, toIncoming, InterruptDecodeError } from "./decode.ts";
export { readCpuState, writeCpuState, validateCpuState, startupState, CpuStateError, GPRS, SEGMENTS, type CpuState, type SegmentState } from "./cpu-state.ts";
export { PIC_PORTS, IOAPIC_MMIO_BASE, IOAPIC_MMIO_SIZE, APIC_MMIO_BASE } from "./abi.ts";
export type * from "./types.ts";
export { routeInterrupt, type InterruptTarget } from "./route.ts";
