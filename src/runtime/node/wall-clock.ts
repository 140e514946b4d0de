// Wall-clock ms as every thread of the VM reads it: performance.timeOrigin is wall time and shared
// by a process' threads (a page and its workers), so stamps from different nodes compare directly.
export const wallClockMs = (): number => performance.timeOrigin + performance.now();
