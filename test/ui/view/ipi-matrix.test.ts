import { describe, expect, it } from "vitest";
import { IpiMatrix } from "../../../src/ui/view/model/ipi-matrix.ts";

describe("IPI matrix", () => {
  it("sums nodes' cumulative reports by sender, receiver and kind", () => {
    const m = new IpiMatrix();
    m.report(0, [
      { src: 0, dest: 1, kind: "fixed", count: 40 },
      { src: 0, dest: 1, kind: "init", count: 1 },
      { src: 0, dest: 1, kind: "startup", count: 2 },
    ]);
    m.report(1, [{ src: 1, dest: 0, kind: "fixed", count: 12 }, { src: 1, dest: 1, kind: "fixed", count: 0 }]);
    expect(m.cells()).toEqual([
      { src: 0, dest: 1, total: 43, byKind: { fixed: 40, init: 1, startup: 2 } },
      { src: 1, dest: 0, total: 12, byKind: { fixed: 12 } },
    ]);
    expect(m.count(0, 1, "startup")).toBe(2);
    expect(m.count(1, 0)).toBe(12);
    expect(m.count(1, 1)).toBe(0);
  });

  it("does not double-count a repeated report and follows a restarted node", () => {
    const m = new IpiMatrix();
    const r = [{ src: 2, dest: 3, kind: "fixed" as const, count: 5 }];
    m.report(1, r);
    m.report(1, r);
    expect(m.count(2, 3)).toBe(5);
    m.report(1, [{ src: 2, dest: 3, kind: "fixed", count: 1 }]);
    expect(m.count(2, 3)).toBe(1);
  });
});
