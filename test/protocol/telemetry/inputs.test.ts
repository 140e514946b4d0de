// The live view's inputs are validated where they arrive: the elastic VM's `hosts` input.
import { describe, expect, it } from "vitest";
import { checkViewInput, type ViewInput, ViewInputError } from "../../../src/protocol/telemetry/inputs.ts";

describe("hosts input", () => {
  const ok: ViewInput = { kind: "hosts", hosts: [0, null, 3], changing: "tab 3 joins with vCPU 2", receivedMs: 12.5 };

  it("takes a tab or null per possible vCPU and the change under way", () => {
    expect(() => checkViewInput(ok)).not.toThrow();
    expect(() => checkViewInput({ ...ok, changing: "" })).not.toThrow();
  });

  it.each([
    [{ hosts: [] }, /1\.\.255 entries/],
    [{ hosts: "0,1" }, /not an array/],
    [{ hosts: [0, 1.5] }, /vCPU 1's tab is 1.5/],
    [{ hosts: [0, undefined] }, /vCPU 1's tab is undefined/],
    [{ hosts: [-1] }, /vCPU 0's tab is -1/],
    [{ changing: null }, /changing is not a string/],
    [{ receivedMs: Number.NaN }, /receivedMs/],
  ])("refuses %j naming the field", (bad, why) => {
    expect(() => checkViewInput({ ...ok, ...bad } as unknown as ViewInput)).toThrow(ViewInputError);
    expect(() => checkViewInput({ ...ok, ...bad } as unknown as ViewInput)).toThrow(why);
  });
});
