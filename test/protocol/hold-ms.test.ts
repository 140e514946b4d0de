import { describe, expect, it } from "vitest";
import { MAX_HOLD_MS, checkHoldMs } from "../../src/protocol/types.ts";

describe("checkHoldMs (a node's hold window from configuration)", () => {
  it("takes none as 0 and keeps a valid window", () => {
    expect(checkHoldMs(undefined)).toBe(0);
    expect(checkHoldMs(0)).toBe(0);
    expect(checkHoldMs(0.25)).toBe(0.25);
    expect(checkHoldMs(MAX_HOLD_MS)).toBe(MAX_HOLD_MS);
  });

  it("refuses anything else, naming the value", () => {
    for (const bad of [-1, MAX_HOLD_MS + 1, Number.NaN, Number.POSITIVE_INFINITY, "5", null, {}])
      expect(() => checkHoldMs(bad), String(bad)).toThrow(/holdMs must be a number of ms in 0\.\.100, got/);
    expect(() => checkHoldMs("5")).toThrow('got "5"');
  });
});
