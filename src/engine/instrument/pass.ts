// The build-time instrumentation of v86's release wasm (see src/engine/README.md).
//
// Two rewrites, both guarded by shape checks that fail loudly when the pinned binary changes:
//
// 1. "Is this physical address outside RAM" (`in_mapped_range`, inlined at hundreds of places as
//    `addr >= memory_size`) also becomes true when the page's byte in our map is non-zero. Every
//    physical access v86 makes through its memory module (page-table reads, accessed/dirty
//    updates, slow paths of virtual accesses, rep-string fast-path guards) then leaves the fast
//    path and reaches the `mmap_*` imports, which the engine wraps.
// 2. `do_page_walk` (the TLB fill) is wrapped: its own mapped-range site uses the rule
//    "map[page] + for_writing >= 2" (no-access pages always, read-only pages for writes), and when
//    the resulting TLB entry is marked mapped the wrapper calls the `gw_tlb_fault` import and walks
//    again. A clean TLB entry therefore exists only for pages the node holds (writable entries
//    only for read-write pages), which is what makes instruction fetch, JIT-compiled accesses and
//    locked read-modify-write see the map: v86 reads code and does RMW directly through the TLB.

import binaryen from "binaryen";
import { sha256 } from "./hash.ts";
import {
  EXPORT_GET_MAP_BASE,
  EXPORT_QUIET,
  EXPORT_RESTART,
  EXPORT_SET_MAP_BASE,
  EXPORT_WALKING,
  IMPORT_TLB_FAULT,
  MEMORY_SIZE_ADDR,
  TLB_IN_MAPPED_RANGE,
} from "../abi.ts";
import { EXPECTED } from "./expected.ts";
import { instrumentInterrupts, type InterruptsReport } from "./interrupts-pass.ts";
import { instrumentAudit, type AuditReport } from "./audit-pass.ts";
import { fixV86Bugs, type FixesReport } from "./fixes-pass.ts";
import { boundJitLoops, type JitLoopReport } from "./jit-loop-pass.ts";

export { PASS_VERSION } from "./expected.ts";

export class InstrumentShapeError extends Error {
  constructor(message: string) {
    super(
      `v86.wasm does not have the shape the engine's instrumentation expects: ${message}. ` +
        `The pinned v86 (${EXPECTED.v86Version}) must not change without re-auditing src/engine/instrument/.`,
    );
    this.name = "InstrumentShapeError";
  }
}

export interface InstrumentReport {
  inputSha256: string;
  /** Generic `addr >= memory_size` sites rewritten to also consult the page map. */
  genericSites: number;
  /** Loads of memory_size in other shapes, left alone (reported for auditing). */
  otherMemorySizeLoads: number;
  /** Sites inside do_page_walk (page-table accesses and the two tests of the translated page). */
  pageWalkSites: number;
  /** `addr < memory_size` sites outside do_page_walk per function (left alone, see below). */
  inverseSites: Record<string, number>;
  /** The interrupt hooks (interrupts-pass.ts). */
  interrupts: InterruptsReport;
  /** Fixes of v86 bugs that only the map's MMIO detours expose (fixes-pass.ts). */
  fixes: FixesReport;
  /** Compiled loops look at in_hlt every JIT_LOOP_BOUND instructions, so kicks land (jit-loop-pass.ts). */
  jitLoop: JitLoopReport;
  /** The coherence audit (audit-pass.ts), in audit builds only. */
  audit?: AuditReport;
}

export interface InstrumentOptions {
  /** Also add the coherence audit (a debug build: every guest-RAM access checked against the map). */
  audit?: boolean;
  /** Leave v86's bugs in (fixes-pass.ts): only for the tests that show what each fix prevents. */
  withoutFixes?: boolean;
}

const B = binaryen as unknown as BinaryenRuntime;

// binaryen.js has setters that its .d.ts does not declare.
interface BinaryenRuntime {
  Binary: {
    setOp(e: number, op: number): void;
    setLeft(e: number, v: number): void;
    setRight(e: number, v: number): void;
  };
}

type Info = binaryen.ExpressionInfo & Record<string, unknown>;

/** Child expressions of `expr`, for the expression kinds that occur in v86.wasm. */
export function children(expr: number): number[] {
  const id = binaryen.getExpressionId(expr);
  // getExpressionInfo has no case for these two and throws.
  if (id === binaryen.UnreachableId || id === binaryen.NopId) return [];
  const info = binaryen.getExpressionInfo(expr) as Info;
  const out: number[] = [];
  const push = (v: unknown) => {
    if (typeof v === "number" && v !== 0) out.push(v);
  };
  switch (info.id) {
    case binaryen.BlockId:
      for (const c of info.children as number[]) push(c);
      break;
    case binaryen.IfId:
      push(info.condition);
      push(info.ifTrue);
      push(info.ifFalse);
      break;
    case binaryen.LoopId:
      push(info.body);
      break;
    case binaryen.BreakId:
    case binaryen.SwitchId:
      push(info.condition);
      push(info.value);
      break;
    case binaryen.CallId:
      for (const c of info.operands as number[]) push(c);
      break;
    case binaryen.CallIndirectId:
      push(info.target);
      for (const c of info.operands as number[]) push(c);
      break;
    case binaryen.LocalSetId:
    case binaryen.GlobalSetId:
    case binaryen.UnaryId:
    case binaryen.DropId:
    case binaryen.ReturnId:
      push(info.value);
      break;
    case binaryen.LoadId:
      push(info.ptr);
      break;
    case binaryen.StoreId:
      push(info.ptr);
      push(info.value);
      break;
    case binaryen.BinaryId:
      push(info.left);
      push(info.right);
      break;
    case binaryen.SelectId:
      push(info.ifTrue);
      push(info.ifFalse);
      push(info.condition);
      break;
    case binaryen.MemoryGrowId:
      push(info.delta);
      break;
    case binaryen.MemoryCopyId:
      push(info.dest);
      push(info.source);
      push(info.size);
      break;
    case binaryen.MemoryFillId:
      push(info.dest);
      push(info.value);
      push(info.size);
      break;
    case binaryen.SIMDExtractId:
      push(info.vec);
      break;
    case binaryen.SIMDReplaceId:
      push(info.vec);
      push(info.value);
      break;
    case binaryen.SIMDShuffleId:
      push(info.left);
      push(info.right);
      break;
    case binaryen.SIMDTernaryId:
      push(info.a);
      push(info.b);
      push(info.c);
      break;
    case binaryen.SIMDShiftId:
      push(info.vec);
      push(info.shift);
      break;
    case binaryen.SIMDLoadId:
      push(info.ptr);
      break;
    case binaryen.SIMDLoadStoreLaneId:
      push(info.ptr);
      push(info.vec);
      break;
    case binaryen.LocalGetId:
    case binaryen.GlobalGetId:
    case binaryen.ConstId:
    case binaryen.NopId:
    case binaryen.UnreachableId:
    case binaryen.MemorySizeId:
      break;
    default:
      throw new InstrumentShapeError(`unexpected expression kind ${info.id} in a function body`);
  }
  return out;
}

function isMemorySizeLoad(expr: number): boolean {
  const info = binaryen.getExpressionInfo(expr) as Info;
  if (info.id !== binaryen.LoadId || info.offset !== MEMORY_SIZE_ADDR || info.bytes !== 4) return false;
  const ptr = binaryen.getExpressionInfo(info.ptr as number) as Info;
  return ptr.id === binaryen.ConstId && ptr.value === 0;
}

interface Site {
  expr: number; // the comparison Binary
  local: number; // index of the local compared against memory_size
  /** true: `addr >= memory_size` (mapped when true); false: `addr < memory_size` (RAM when true). */
  ge: boolean;
}

/**
 * Finds `(i32.ge_u (local.get N) (i32.load offset=812 (i32.const 0)))`, its inverse `i32.lt_u`,
 * and counts other loads of memory_size.
 */
function scan(body: number): { sites: Site[]; otherLoads: number } {
  const sites: Site[] = [];
  let otherLoads = 0;
  const siteLoads = new Set<number>();
  const stack = [body];
  // Depth-first, children pushed in reverse so sites come out in text order.
  while (stack.length) {
    const e = stack.pop()!;
    const id = binaryen.getExpressionId(e);
    if (id === binaryen.UnreachableId || id === binaryen.NopId) continue;
    const info = binaryen.getExpressionInfo(e) as Info;
    if (info.id === binaryen.BinaryId && (info.op === binaryen.GeUInt32 || info.op === binaryen.LtUInt32)) {
      const l = binaryen.getExpressionInfo(info.left as number) as Info;
      if (l.id === binaryen.LocalGetId && isMemorySizeLoad(info.right as number)) {
        sites.push({ expr: e, local: l.index as number, ge: info.op === binaryen.GeUInt32 });
        siteLoads.add(info.right as number);
      }
    }
    if (info.id === binaryen.LoadId && isMemorySizeLoad(e) && !siteLoads.has(e)) otherLoads++;
    const cs = children(e);
    for (let i = cs.length - 1; i >= 0; i--) stack.push(cs[i]);
  }
  return { sites, otherLoads };
}

function sortKeys(o: Record<string, number>): [string, number][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}


const MAP_BASE = "gw$map_base";
const WALK_WRITE = "gw$walk_write";
const INNER_WALK = "gw$do_page_walk_inner";
const TLB_FAULT_FN = "gw$tlb_fault";
const QUIET = "gw$quiet";
const RESTART = "gw$restart";
const DELIVERING = "gw$delivering";
const WALKING = "gw$walking";
const CIV_INNER = "gw$call_interrupt_vector_inner";
// src/rust/cpu/global_pointers.rs
const INSTRUCTION_POINTER = 556;
const PREVIOUS_IP = 560;
// JitExitReason's discriminant as exit_jit reads it: 0/1 CpuException (the Option tag of its
// error code), 2 None, 3 SelfModifyingCodeBail; exit_jit raises nothing for values above 1.
const JIT_EXIT_SMC_BAIL = 3;

/**
 * The address of v86's `jit_exit_reason` static, read from exported `exit_jit`, whose body is
 * `r = [X]; [X] = 2 (None); if r <= 1 { call_interrupt_vector(...) }`.
 */
function findJitExitReason(m: binaryen.Module): number {
  const f = m.getFunction("exit_jit");
  const body = f ? binaryen.emitText(binaryen.getFunctionInfo(f).body) : "";
  const load = /\(local\.set \$0\s+\(i32\.load \$0 offset=(\d+)\s+\(i32\.const 0\)/.exec(body);
  const addr = load ? Number(load[1]) : -1;
  const reset = new RegExp(`\\(i32\\.store \\$0 offset=${addr}\\s+\\(i32\\.const 0\\)\\s+\\(i32\\.const 2\\)`);
  const test = /\(i32\.gt_u\s+\(local\.get \$0\)\s+\(i32\.const 1\)/;
  if (addr <= 0 || !reset.test(body) || !test.test(body) || !body.includes("call_interrupt_vector")) {
    throw new InstrumentShapeError("exit_jit does not read and reset jit_exit_reason in the expected way");
  }
  return addr;
}

export function instrumentV86Wasm(input: Uint8Array, options: InstrumentOptions = {}): { output: Uint8Array; report: InstrumentReport } {
  const inputSha256 = sha256(input);
  if (inputSha256 !== EXPECTED.inputSha256) {
    throw new InstrumentShapeError(`sha256 is ${inputSha256}, expected ${EXPECTED.inputSha256}`);
  }
  // Keep the name section, so traps in the instrumented module still show v86's function names.
  const hadDebugInfo = binaryen.getDebugInfo();
  binaryen.setDebugInfo(true);
  const m = binaryen.readBinary(input);
  try {
    for (const name of EXPECTED.exports) {
      if (!m.getExport(name)) throw new InstrumentShapeError(`export "${name}" is missing`);
    }
    const walk = m.getFunction(EXPECTED.doPageWalk);
    if (!walk) throw new InstrumentShapeError(`function ${EXPECTED.doPageWalk} (do_page_walk) is missing`);
    const walkInfo = binaryen.getFunctionInfo(walk);
    const walkParams = binaryen.expandType(walkInfo.params);
    if (walkParams.length !== 5 || walkParams.some((t) => t !== binaryen.i32) || walkInfo.results !== binaryen.i32) {
      throw new InstrumentShapeError("do_page_walk is not (i32 addr, i32 for_writing, i32 user, i32 jit, i32 side_effects) -> i32");
    }

    m.addGlobal(MAP_BASE, binaryen.i32, true, m.i32.const(0));
    m.addGlobal(WALK_WRITE, binaryen.i32, true, m.i32.const(0));
    // map[(addr >>> 12)] as an i32
    const mapByte = (local: number) =>
      m.i32.load8_u(0, 0, m.i32.add(m.global.get(MAP_BASE, binaryen.i32), m.i32.shr_u(m.local.get(local, binaryen.i32), m.i32.const(12))));
    const memSizeGe = (local: number) =>
      m.i32.ge_u(m.local.get(local, binaryen.i32), m.i32.load(MEMORY_SIZE_ADDR, 4, m.i32.const(0)));
    // Turn site `e` into `or(original comparison, extra)` in place, so no parent pointer is needed.
    const extend = (site: Site, extra: number) => {
      B.Binary.setOp(site.expr, binaryen.OrInt32);
      B.Binary.setLeft(site.expr, memSizeGe(site.local));
      B.Binary.setRight(site.expr, extra);
    };
    // Turn `addr < memory_size` into `and(original comparison, extra)`.
    const restrict = (site: Site, extra: number) => {
      B.Binary.setOp(site.expr, binaryen.AndInt32);
      B.Binary.setLeft(site.expr, m.i32.lt_u(m.local.get(site.local, binaryen.i32), m.i32.load(MEMORY_SIZE_ADDR, 4, m.i32.const(0))));
      B.Binary.setRight(site.expr, extra);
    };

    let genericSites = 0;
    let otherMemorySizeLoads = 0;
    let pageWalkSites = 0;
    const inverseSites: Record<string, number> = {};
    const funcs: number[] = [];
    for (let i = 0; i < m.getNumFunctions(); i++) funcs.push(m.getFunctionByIndex(i));
    for (const f of funcs) {
      const info = binaryen.getFunctionInfo(f);
      if (!info.body) continue; // import
      const { sites, otherLoads } = scan(info.body);
      otherMemorySizeLoads += otherLoads;
      const ge = sites.filter((s) => s.ge);
      const lt = sites.filter((s) => !s.ge);
      if (info.name === EXPECTED.doPageWalk) {
        // Page-table reads and accessed/dirty writes (generic), then the translated page `high`,
        // tested twice: `>=` guarding the has-code lookup and `<` choosing TLB_IN_MAPPED_RANGE.
        pageWalkSites = sites.length;
        const tlbLocal = ge.length ? ge[ge.length - 1].local : -1;
        const tlbSites = sites.filter((s) => s.local === tlbLocal);
        const walkSites = sites.filter((s) => s.local !== tlbLocal);
        if (sites.length !== EXPECTED.pageWalkSites || tlbSites.length !== 2 || tlbSites.filter((s) => s.ge).length !== 1 || walkSites.some((s) => !s.ge)) {
          throw new InstrumentShapeError(
            `do_page_walk's memory_size sites are ${JSON.stringify(sites.map((s) => [s.ge ? ">=" : "<", s.local]))}, ` +
              `expected ${EXPECTED.pageWalkSites - 2} ">=" page-table sites and one ">=" and one "<" on the translated address`,
          );
        }
        for (const s of walkSites) {
          extend(s, m.i32.ne(mapByte(s.local), m.i32.const(0)));
          genericSites++;
        }
        // Mapped (slow path, and a fault in the wrapper) when map[page] + for_writing >= 2.
        for (const s of tlbSites) {
          const need = m.i32.add(mapByte(s.local), m.global.get(WALK_WRITE, binaryen.i32));
          if (s.ge) extend(s, m.i32.ge_u(need, m.i32.const(2)));
          else restrict(s, m.i32.lt_u(need, m.i32.const(2)));
        }
        continue;
      }
      for (const s of ge) {
        extend(s, m.i32.ne(mapByte(s.local), m.i32.const(0)));
        genericSites++;
      }
      // `addr < memory_size` elsewhere only guards direct access to an address that was just
      // translated through the TLB (rep-string fast paths, safe_write128), and the TLB holds
      // clean entries only for pages the node may access that way. Counted, not rewritten.
      if (lt.length) inverseSites[info.name] = lt.length;
    }
    const expectInverse: Record<string, number> = EXPECTED.inverseSites;
    if (JSON.stringify(sortKeys(inverseSites)) !== JSON.stringify(sortKeys(expectInverse))) {
      throw new InstrumentShapeError(`the "addr < memory_size" sites are ${JSON.stringify(sortKeys(inverseSites))}, expected ${JSON.stringify(sortKeys(expectInverse))}`);
    }
    if (genericSites !== EXPECTED.genericSites) {
      throw new InstrumentShapeError(`found ${genericSites} generic "addr >= memory_size" sites, expected ${EXPECTED.genericSites}`);
    }
    if (otherMemorySizeLoads !== EXPECTED.otherMemorySizeLoads) {
      throw new InstrumentShapeError(`found ${otherMemorySizeLoads} other loads of memory_size, expected ${EXPECTED.otherMemorySizeLoads}`);
    }

    // Move do_page_walk's body into a new function and make the original a retrying wrapper.
    const i32 = binaryen.i32;
    const params = walkInfo.params;
    m.addFunction(INNER_WALK, params, i32, walkInfo.vars, walkInfo.body);
    m.addFunctionImport(TLB_FAULT_FN, "env", IMPORT_TLB_FAULT, binaryen.createType([i32, i32, i32, i32]), i32);
    m.addGlobal(QUIET, i32, true, m.i32.const(0));
    m.addGlobalExport(QUIET, EXPORT_QUIET);
    m.addGlobal(RESTART, i32, true, m.i32.const(0));
    m.addGlobalExport(RESTART, EXPORT_RESTART);
    m.addGlobal(WALKING, i32, true, m.i32.const(0));
    m.addGlobalExport(WALKING, EXPORT_WALKING);
    const jitExitReason = findJitExitReason(m);
    // Count nested call_interrupt_vector activations, so the wrapper never restarts inside one.
    m.addGlobal(DELIVERING, i32, true, m.i32.const(0));
    const civ = m.getFunction(EXPECTED.callInterruptVector);
    if (!civ) throw new InstrumentShapeError(`function ${EXPECTED.callInterruptVector} (call_interrupt_vector) is missing`);
    const civInfo = binaryen.getFunctionInfo(civ);
    const civParams = binaryen.expandType(civInfo.params);
    if (civParams.length !== 4 || civParams.some((t) => t !== i32) || civInfo.results !== binaryen.none) {
      throw new InstrumentShapeError("call_interrupt_vector is not (i32, i32, i32, i32) -> ()");
    }
    m.addFunction(CIV_INNER, civInfo.params, binaryen.none, civInfo.vars, civInfo.body);
    m.removeFunction(EXPECTED.callInterruptVector);
    const bumpDelivering = (d: number) => m.global.set(DELIVERING, m.i32.add(m.global.get(DELIVERING, i32), m.i32.const(d)));
    m.addFunction(
      EXPECTED.callInterruptVector,
      civInfo.params,
      binaryen.none,
      [],
      m.block(null, [bumpDelivering(1), m.call(CIV_INNER, [0, 1, 2, 3].map((k) => m.local.get(k, i32)), binaryen.none), bumpDelivering(-1)]),
    );
    const arg = (k: number) => m.local.get(k, i32);
    const R = 5; // the TLB entry (0 = v86 raised a page fault)
    const Q = 6; // QUIET on entry, restored after the walk
    const K = 7; // the hook's verdict
    // A walk without side effects (v86's JIT analysing code) runs "quiet": the engine must not call
    // back into v86's JIT then, because the JIT holds its state lock.
    const walkOnce = () =>
      m.block(null, [
        m.global.set(WALK_WRITE, arg(1)),
        m.local.set(Q, m.global.get(QUIET, i32)),
        m.if(m.i32.eqz(arg(4)), m.global.set(QUIET, m.i32.const(1))),
        // WALKING counts walks with side effects: their physical byte writes are A/D updates.
        m.global.set(WALKING, m.i32.add(m.global.get(WALKING, i32), m.i32.ne(arg(4), m.i32.const(0)))),
        m.local.set(R, m.call(INNER_WALK, [arg(0), arg(1), arg(2), arg(3), arg(4)], i32)),
        m.global.set(WALKING, m.i32.sub(m.global.get(WALKING, i32), m.i32.ne(arg(4), m.i32.const(0)))),
        m.global.set(QUIET, m.local.get(Q, i32)),
      ]);
    const wrapper = m.block(null, [
      walkOnce(),
      m.loop(
        "gw$retry",
        m.if(
          m.i32.and(
            m.i32.ne(m.local.get(R, i32), m.i32.const(0)),
            m.i32.ne(m.i32.and(m.local.get(R, i32), m.i32.const(TLB_IN_MAPPED_RANGE)), m.i32.const(0)),
          ),
          m.block(null, [
            // 0: keep the entry (MMIO); 1: the page was granted, walk again; 2: fail the walk
            // (a walk without side effects on a page the node does not hold).
            m.local.set(K, m.call(TLB_FAULT_FN, [arg(0), m.local.get(R, i32), arg(1), arg(4)], i32)),
            m.if(m.i32.eq(m.local.get(K, i32), m.i32.const(2)), m.local.set(R, m.i32.const(0))),
            m.if(m.i32.eq(m.local.get(K, i32), m.i32.const(1)), m.block(null, [walkOnce(), m.br("gw$retry")])),
          ]),
        ),
      ),
      // A page this instruction may already have translated was taken away while a hook waited
      // (RESTART set by the engine): abandon the instruction so it re-executes from its start
      // and translates everything again. JIT code exits through exit_jit, for which the
      // self-modifying-code reason means "no exception"; the interpreter only needs eip back
      // at the instruction's start, exactly as a page fault leaves it.
      m.if(
        m.i32.and(m.i32.ne(arg(4), m.i32.const(0)), m.i32.ne(m.global.get(RESTART, i32), m.i32.const(0))),
        m.block(null, [
          m.global.set(RESTART, m.i32.const(0)),
          // Only inside an instruction: JIT code (a3 = jit), or the interpreter once it fetched
          // the opcode (eip moved past previous_ip); never while call_interrupt_vector delivers
          // an interrupt or exception (DELIVERING): failing its walk would lose the interrupt,
          // and after an exception raised by JIT code previous_ip is stale.
          m.if(
            m.i32.and(
              m.i32.and(m.i32.ne(m.local.get(R, i32), m.i32.const(0)), m.i32.eqz(m.global.get(DELIVERING, i32))),
              m.i32.or(
                m.i32.ne(arg(3), m.i32.const(0)),
                m.i32.ne(m.i32.load(0, 4, m.i32.const(INSTRUCTION_POINTER)), m.i32.load(0, 4, m.i32.const(PREVIOUS_IP))),
              ),
            ),
            m.block(null, [
              m.if(
                m.i32.ne(arg(3), m.i32.const(0)),
                m.i32.store(0, 4, m.i32.const(jitExitReason), m.i32.const(JIT_EXIT_SMC_BAIL)),
                m.i32.store(0, 4, m.i32.const(INSTRUCTION_POINTER), m.i32.load(0, 4, m.i32.const(PREVIOUS_IP))),
              ),
              m.local.set(R, m.i32.const(0)),
            ]),
          ),
        ]),
      ),
      m.return(m.local.get(R, i32)),
    ], binaryen.unreachable);
    // The wrapper needs extra locals; binaryen cannot add vars to an existing function, so
    // replace it: calls refer to functions by name, so every call site now reaches the wrapper.
    m.removeFunction(EXPECTED.doPageWalk);
    m.addFunction(EXPECTED.doPageWalk, params, i32, [i32, i32, i32], wrapper);

    m.addFunction("gw$set_map_base", binaryen.createType([i32]), binaryen.none, [], m.global.set(MAP_BASE, arg(0)));
    m.addFunctionExport("gw$set_map_base", EXPORT_SET_MAP_BASE);
    m.addFunction("gw$get_map_base", binaryen.none, i32, [], m.global.get(MAP_BASE, i32));
    m.addFunctionExport("gw$get_map_base", EXPORT_GET_MAP_BASE);

    const interrupts = instrumentInterrupts(m);
    const fixes = options.withoutFixes ? { read64sLowDword: 0 } : fixV86Bugs(m, children);
    const jitLoop = boundJitLoops(m, children);
    const audit = options.audit ? instrumentAudit(m, { children, mapBase: MAP_BASE }) : undefined;

    if (!m.validate()) throw new InstrumentShapeError("the rewritten module does not validate");
    const output = m.emitBinary();
    return { output, report: { inputSha256, genericSites, otherMemorySizeLoads, pageWalkSites, inverseSites, interrupts, fixes, jitLoop, ...(audit ? { audit } : {}) } };
  } finally {
    m.dispose();
    binaryen.setDebugInfo(hadDebugInfo);
  }
}
