// What a vCPU's local APIC timer counts (VcpuNodeConfig.apicTimer). Its own module so that a
// configuration can be checked without loading the engine.

/**
 * "wall": every millisecond. "running": every millisecond but those the vCPU spent waiting for a
 * page or an I/O read (DsmAgent.waitedMs), so a tick whose handler waits on remote pages cannot
 * leave its CPU nothing to do but the next tick. The TSC stays on wall time either way.
 */
export type ApicTimerClock = "wall" | "running";

export const DEFAULT_APIC_TIMER: ApicTimerClock = "running";

/** An APIC timer clock from configuration (undefined: the default), checked. */
export function checkApicTimerClock(value: unknown): ApicTimerClock {
  if (value === undefined) return DEFAULT_APIC_TIMER;
  if (value === "wall" || value === "running") return value;
  throw new RangeError(`apicTimer must be "wall" or "running", got ${JSON.stringify(value)}`);
}
