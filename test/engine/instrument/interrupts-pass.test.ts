// The interrupt instrumentation pass: applies to the pinned v86.wasm, and refuses a binary whose
// shape differs from the one it was written against.
import fs from "node:fs";
import binaryen from "binaryen";
import { describe, expect, it } from "vitest";
import { STOCK_WASM } from "../../../src/engine/instrument/ensure.ts";
import { INTERRUPT_FUNCS, instrumentInterrupts, InterruptsShapeError } from "../../../src/engine/instrument/interrupts-pass.ts";

const read = () => binaryen.readBinary(fs.readFileSync(STOCK_WASM));

describe("interrupt pass", () => {
  it("wraps the functions it names and leaves a valid module with the new imports and exports", () => {
    const m = read();
    try {
      const report = instrumentInterrupts(m);
      expect(report.wrapped).toEqual(Object.values(INTERRUPT_FUNCS).filter((n) => n !== INTERRUPT_FUNCS.route && n !== INTERRUPT_FUNCS.deliver && n !== INTERRUPT_FUNCS.callInterruptVector));
      expect(m.validate()).toBeTruthy();
      const exports = new Set(Array.from({ length: m.getNumExports() }, (_, i) => binaryen.getExportInfo(m.getExportByIndex(i)).name));
      for (const e of ["gw_route", "gw_bsp", "gw_apic_clock", "gw_apic_deliver", "gw_call_interrupt_vector", "gw_ioapic_eoi", "instr_0FA2", "instr_0F32"]) expect(exports.has(e), e).toBe(true);
    } finally {
      m.dispose();
    }
  });

  it("fails loudly when a function it relies on is gone", () => {
    const m = read();
    try {
      m.removeFunction(INTERRUPT_FUNCS.checkIrq);
      expect(() => instrumentInterrupts(m)).toThrow(InterruptsShapeError);
      expect(() => instrumentInterrupts(m)).toThrow(/checkIrq .* is missing|function .*check_irq is missing/);
    } finally {
      m.dispose();
    }
  });
});
