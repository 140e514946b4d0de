// Bugs of v86 0.5.462 that stock v86 never meets and our page map does: the map sends every
// physical access to a page the node does not hold read-write down v86's MMIO path (`mmap_*`),
// which stock v86 takes only for real devices. Each fix is a minimal rewrite with a shape check.
//
// memory::read64s, MMIO branch: `read32s(addr) as i64 | (read32s(addr + 4) as i64) << 32`
// sign-extends the low dword, so when its bit 31 is set the high dword reads as 0xffffffff. v86
// reads segment descriptors with read64s, so a descriptor whose base has bit 15 set, in a GDT page
// held read-only or not at all, loads with base bits 16-31 all ones and access byte 0xff. Linux
// loads its per-CPU segment (FS) that way on an AP: the AP then reads its CPU number from the wrong
// place, fills in another CPU's TSS descriptor, and `ltr` finds its own zero (v86 panics:
// "#GP | ltr: invalid type (type = 0x0)"). Whether bit 15 is set depends on where the kernel put
// its per-CPU areas, so it came and went with the kernel version and the initramfs size.

import binaryen from "binaryen";

export class FixesShapeError extends Error {
  constructor(message: string) {
    super(`v86.wasm does not have the shape the v86 fixes expect: ${message}. Re-audit src/engine/instrument/fixes-pass.ts.`);
    this.name = "FixesShapeError";
  }
}

export const READ64S = "_RNvNtNtCslOG1uufA09K_3v863cpu6memory7read64s";

interface UnaryRuntime {
  Unary: { getOp(e: number): number; setOp(e: number, op: number): void; getValue(e: number): number };
}
const U = binaryen as unknown as UnaryRuntime;

export interface FixesReport {
  /** read64s: sign extensions of the MMIO branch's low dword made zero extensions. */
  read64sLowDword: number;
}

/** Applies the fixes to a module the caller owns. */
export function fixV86Bugs(m: binaryen.Module, children: (e: number) => number[]): FixesReport {
  const f = m.getFunction(READ64S);
  if (!f) throw new FixesShapeError(`function ${READ64S} (memory::read64s) is missing`);
  const body = binaryen.getFunctionInfo(f).body;
  const extends_: number[] = [];
  const stack = [body];
  while (stack.length) {
    const e = stack.pop()!;
    if (binaryen.getExpressionId(e) === binaryen.UnaryId && U.Unary.getOp(e) === binaryen.ExtendSInt32) extends_.push(e);
    stack.push(...children(e));
  }
  // The one sign extension is the MMIO branch's low dword (the high dword is zero-extended and shifted).
  if (extends_.length !== 1 || binaryen.getExpressionId(U.Unary.getValue(extends_[0])) !== binaryen.LocalGetId) {
    throw new FixesShapeError(`read64s has ${extends_.length} i64.extend_i32_s, expected exactly one, of a local (the low dword of its MMIO branch)`);
  }
  U.Unary.setOp(extends_[0], binaryen.ExtendUInt32);
  return { read64sLowDword: 1 };
}
