// What a vCPU's local APIC timer counts (VcpuNodeConfig.apicTimer). Its own module so that a
// configuration can be checked without loading the engine.

/**
 * "wall": every millisecond. "running": every millisecond but those the vCPU spent waiting for a
 * page or an I/O read (DsmAgent.waitedMs).
 *
 * Why: Debian's kernels tick periodically (250 Hz). Across tabs a tick's handler waits for ~5
 * remote pages (the timekeeping and run-queue pages other CPUs write), ~11 ms for a 4 ms period,
 * so on "wall" the timer fires again as the handler returns and a CPU does little but tick. On
 * "running" each tick is followed by a period of the vCPU's own work. What the guest sees: a timer
 * interrupt comes late by the time its CPU waited meanwhile, as on a host that steals time from a
 * VM; its clocks do not change (the TSC stays on wall time, and once Linux runs on the TSC
 * clocksource its jiffies and timers follow it). README-interrupts.md, "Guest time", has the figures.
 */
export type ApicTimerClock = "wall" | "running";

export const DEFAULT_APIC_TIMER: ApicTimerClock = "running";

/** An APIC timer clock from configuration (undefined: the default), checked. */
export function checkApicTimerClock(value: unknown): ApicTimerClock {
  if (value === undefined) return DEFAULT_APIC_TIMER;
  if (value === "wall" || value === "running") return value;
  throw new RangeError(`apicTimer must be "wall" or "running", got ${JSON.stringify(value)}`);
}
