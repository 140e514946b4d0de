// How many instructions v86's JIT-compiled code runs before it looks at the world again.
//
// v86 compiles hot guest code into wasm functions whose loops run inside the function: each loop
// head checks only the function's own instruction count against LOOP_COUNTER (100,003,
// "JIT_USE_LOOP_SAFETY" in jit.rs), never `in_hlt`. The engine's kick (set in_hlt so the slice ends
// after the current block: interrupts/vcpu-interrupts.ts) therefore waited for up to 100k guest
// instructions in a compiled loop. In a loop that reads the TSC, that is 25k calls out of the wasm:
// 5-50 ms measured in Chromium between a kick and the end of its slice, which every IPI and page
// request to a vCPU spinning that way paid. With the bound lowered, a compiled loop returns to
// v86's interpreter loop (which checks in_hlt) every JIT_LOOP_BOUND instructions; the interpreter
// re-enters the same compiled code at once when nothing happened.
//
// The rewrite: jit_generate_module emits that check with `i64.const 100003` (the LEB writer takes
// an i64) at exactly two places (the function's entry loop and every compiled guest loop).

import binaryen from "binaryen";

export class JitLoopShapeError extends Error {
  constructor(message: string) {
    super(`v86.wasm does not have the shape the JIT loop bound expects: ${message}. Re-audit src/engine/instrument/jit-loop-pass.ts.`);
    this.name = "JitLoopShapeError";
  }
}

export const JIT_GENERATE_MODULE = "_RNvNtCslOG1uufA09K_3v863jit19jit_generate_module";
/** v86's cpu::LOOP_COUNTER. */
export const V86_LOOP_COUNTER = 100_003;
/**
 * Instructions a compiled loop runs between two looks at in_hlt. Small enough that a kick lands
 * within tens of µs even in a loop that calls out of the wasm; large enough that leaving and
 * re-entering compiled code (a cache lookup) is noise next to the instructions run in between.
 */
export const JIT_LOOP_BOUND = 4_001;

interface ConstRuntime {
  Const: { getValueI64(e: number): bigint | number; setValueI64(e: number, v: bigint | number): void };
}
const C = binaryen as unknown as ConstRuntime;

export interface JitLoopReport {
  /** The LOOP_COUNTER constants rewritten in jit_generate_module. */
  sites: number;
  bound: number;
}

/** Lowers the JIT's loop bound in a module the caller owns. */
export function boundJitLoops(m: binaryen.Module, children: (e: number) => number[]): JitLoopReport {
  const f = m.getFunction(JIT_GENERATE_MODULE);
  if (!f) throw new JitLoopShapeError(`function ${JIT_GENERATE_MODULE} (jit::jit_generate_module) is missing`);
  const sites: number[] = [];
  const stack = [binaryen.getFunctionInfo(f).body];
  while (stack.length) {
    const e = stack.pop()!;
    if (binaryen.getExpressionId(e) === binaryen.ConstId && binaryen.getExpressionType(e) === binaryen.i64) {
      if (BigInt(C.Const.getValueI64(e)) === BigInt(V86_LOOP_COUNTER)) sites.push(e);
    }
    stack.push(...children(e));
  }
  if (sites.length !== 2) throw new JitLoopShapeError(`jit_generate_module has ${sites.length} i64.const ${V86_LOOP_COUNTER}, expected exactly two (the loop-safety checks)`);
  for (const e of sites) C.Const.setValueI64(e, BigInt(JIT_LOOP_BOUND));
  return { sites: sites.length, bound: JIT_LOOP_BOUND };
}
