// The APIC timer clock is configuration from outside (the Node cluster's options, the census's
// environment): a bad value is refused, naming it, before any node starts.
import { describe, expect, it } from "vitest";
import { checkApicTimerClock, DEFAULT_APIC_TIMER } from "../../../src/runtime/node/apic-timer-clock.ts";

describe("checkApicTimerClock", () => {
  it("takes the two clocks, and the default when none is given", () => {
    expect(checkApicTimerClock("wall")).toBe("wall");
    expect(checkApicTimerClock("running")).toBe("running");
    expect(checkApicTimerClock(undefined)).toBe(DEFAULT_APIC_TIMER);
  });

  it.each([["Wall"], [""], [null], [1], [{ clock: "wall" }]])("refuses %j, naming it", (bad) => {
    expect(() => checkApicTimerClock(bad)).toThrow(RangeError);
    expect(() => checkApicTimerClock(bad)).toThrow(`apicTimer must be "wall" or "running", got ${JSON.stringify(bad)}`);
  });
});
