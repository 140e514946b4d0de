// The coherence audit: an optional, debug-only rewrite that checks *every* guest-RAM access the
// wasm makes against the page map, at the access itself.
//
// The main pass (pass.ts) makes v86 consult the map where v86 decides "RAM or MMIO" and where it
// fills its TLB; everything else is argued, not checked: that every other path reaches RAM only
// through a translation the map allowed. A path that breaks the argument (a descriptor-table load,
// a task switch, a string fast path, a stale translation) reads bytes the node does not hold, or
// writes a page it does not hold read-write, and the guest only notices much later, if ever. This
// pass turns such an access into a report at the very load or store that makes it: each
// load/store/memory.copy/memory.fill of v86's own functions first calls `gw$audit_check`, which
// computes the guest-physical address and, when the map forbids the access (a read of a no-access
// page, a write of a page not read-write), calls the `gw_audit` import with the address, the access
// and a site number that names the v86 function (the site table comes back in the report).
//
// Cost: a call per non-constant memory access, so several times slower; the JIT must be off
// (v86's `disable_jit`), because JIT-compiled guest code is generated at run time and not audited.

import binaryen from "binaryen";
import { EXPORT_AUDIT_SET_RAM, IMPORT_AUDIT, MEMORY_SIZE_ADDR } from "../abi.ts";
import type { AuditReport } from "../audit-sites.ts";

export type { AuditReport } from "../audit-sites.ts";

export class AuditShapeError extends Error {
  constructor(message: string) {
    super(`the audit pass cannot instrument this module: ${message}`);
    this.name = "AuditShapeError";
  }
}

const CHECK = "gw$audit_check";
const SPAN_DEST = "gw$audit_span_dest";
const SPAN_SRC = "gw$audit_span_src";
const SPAN_SIZE = "gw$audit_span_size";
const RAM_BASE = "gw$audit_ram_base";
const LAST_DEST = "gw$audit_last_dest";
const LAST_SRC = "gw$audit_last_src";
const IMPORT_FN = "gw$audit_import";
// Access info word: bits 0-7 the bytes accessed (0 for a bulk span, reported per page), bit 8 a write.
const WRITE = 1 << 8;

// binaryen.js has expression accessors that its .d.ts does not declare.
type Get = (e: number) => number;
type Set = (e: number, v: number) => void;
interface Accessors {
  Load: { getPtr: Get; setPtr: Set; getOffset: Get; getBytes: Get };
  Store: { getPtr: Get; setPtr: Set; getOffset: Get; getBytes: Get };
  SIMDLoad: { getPtr: Get; setPtr: Set; getOffset: Get; getOp: Get };
  SIMDLoadStoreLane: { getPtr: Get; setPtr: Set; getOffset: Get; getOp: Get; isStore: (e: number) => boolean };
  MemoryCopy: { getDest: Get; setDest: Set; getSource: Get; setSource: Set; getSize: Get; setSize: Set };
  MemoryFill: { getDest: Get; setDest: Set; getSize: Get; setSize: Set };
}
const X = binaryen as unknown as Accessors;

/** Byte width of a SIMD load by its op, for the ops v86.wasm uses. */
function simdLoadBytes(op: number): number {
  const B = binaryen as unknown as Record<string, number>;
  if (op === B.Load32ZeroVec128 || op === B.Load32SplatVec128) return 4;
  if (op === B.Load64ZeroVec128 || op === B.Load64SplatVec128) return 8;
  if (op === B.Load8SplatVec128) return 1;
  if (op === B.Load16SplatVec128) return 2;
  if (op === B.Load8x8SVec128 || op === B.Load8x8UVec128 || op === B.Load16x4SVec128 || op === B.Load16x4UVec128 || op === B.Load32x2SVec128 || op === B.Load32x2UVec128) return 8;
  throw new AuditShapeError(`unknown SIMD load op ${op}`);
}

function simdLaneBytes(op: number): number {
  const B = binaryen as unknown as Record<string, number>;
  if (op === B.Load8LaneVec128 || op === B.Store8LaneVec128) return 1;
  if (op === B.Load16LaneVec128 || op === B.Store16LaneVec128) return 2;
  if (op === B.Load32LaneVec128 || op === B.Store32LaneVec128) return 4;
  if (op === B.Load64LaneVec128 || op === B.Store64LaneVec128) return 8;
  throw new AuditShapeError(`unknown SIMD lane op ${op}`);
}

/** Every expression below `body`, each yielded before its children are read (so it may be rewritten). */
function* walk(body: number, children: (e: number) => number[]): Generator<number> {
  const stack = [body];
  while (stack.length) {
    const e = stack.pop()!;
    yield e;
    stack.push(...children(e));
  }
}

/** A constant address (v86's statics: registers, flags, memory_size) is never guest RAM. */
function isConst(e: number): boolean {
  return binaryen.getExpressionId(e) === binaryen.ConstId;
}

/**
 * Adds the audit to a module the caller owns. Call it last: it instruments every function but
 * those named `gw$…` (the instrumentation's own, which touch only the page map and v86's statics).
 * `ir` comes from pass.ts (its expression walker and the page map global), which calls this.
 */
export function instrumentAudit(m: binaryen.Module, ir: { children: (e: number) => number[]; mapBase: string }): AuditReport {
  const i32 = binaryen.i32;
  m.addGlobal(RAM_BASE, i32, true, m.i32.const(0));
  m.addGlobal(LAST_DEST, i32, true, m.i32.const(0));
  m.addGlobal(LAST_SRC, i32, true, m.i32.const(0));
  m.addFunctionImport(IMPORT_FN, "env", IMPORT_AUDIT, binaryen.createType([i32, i32, i32]), binaryen.none);
  const mapBase = ir.mapBase;
  if (!m.getGlobal(mapBase)) throw new AuditShapeError(`the page-map global ${mapBase} is missing (run the main pass first)`);

  const get = (k: number) => m.local.get(k, i32);
  const mapAt = (addr: number) => m.i32.load8_u(0, 1, m.i32.add(m.global.get(mapBase, i32), m.i32.shr_u(addr, m.i32.const(12))));
  // check(addr, len, write, site): the access [addr, addr+len) of linear memory, len >= 1.
  // Locals of the check: 4 the offset into guest RAM, 5 and 6 the map bytes of the first and last byte's pages.
  const checkBody = (addr: number, len: number, write: number, site: number) =>
    m.if(
      m.i32.ne(m.global.get(RAM_BASE, i32), m.i32.const(0)),
      m.block(null, [
        m.local.set(4, m.i32.sub(addr, m.global.get(RAM_BASE, i32))),
        m.if(
          m.i32.lt_u(get(4), m.i32.load(MEMORY_SIZE_ADDR, 4, m.i32.const(0))),
          m.block(null, [
            m.local.set(5, mapAt(get(4))),
            m.local.set(6, mapAt(m.i32.add(get(4), m.i32.sub(len, m.i32.const(1))))),
            m.local.set(5, m.select(m.i32.gt_u(get(6), get(5)), get(6), get(5))),
            // read: forbidden on no-access (2); write: forbidden unless read-write (0)
            m.if(
              m.i32.ge_u(m.i32.add(get(5), write), m.i32.const(2)),
              m.call(IMPORT_FN, [get(4), m.i32.or(len, m.i32.shl(write, m.i32.const(8))), site], binaryen.none),
            ),
          ]),
        ),
      ]),
    );
  // gw$audit_check(ptr, offset, info, site) -> ptr
  m.addFunction(
    CHECK,
    binaryen.createType([i32, i32, i32, i32]),
    i32,
    [i32, i32, i32],
    m.block(null, [
      checkBody(m.i32.add(get(0), get(1)), m.i32.and(get(2), m.i32.const(0xff)), m.i32.shr_u(get(2), m.i32.const(8)), get(3)),
      m.return(get(0)),
    ]),
  );
  // Bulk copy/fill: dest and source are remembered (evaluated first), the size call checks both spans.
  m.addFunction(SPAN_DEST, binaryen.createType([i32]), i32, [], m.block(null, [m.global.set(LAST_DEST, get(0)), m.return(get(0))]));
  m.addFunction(SPAN_SRC, binaryen.createType([i32]), i32, [], m.block(null, [m.global.set(LAST_SRC, get(0)), m.return(get(0))]));
  // gw$audit_span_size(size, hasSource, site) -> size; locals 3.. as in checkBody shifted
  const spanCheck = (addr: number, write: number, loop: string) =>
    m.if(
      m.i32.ne(get(0), m.i32.const(0)),
      m.block(null, [
        m.local.set(3, addr),
        m.local.set(4, m.i32.sub(get(3), m.global.get(RAM_BASE, i32))),
        m.if(
          m.i32.and(m.i32.ne(m.global.get(RAM_BASE, i32), m.i32.const(0)), m.i32.lt_u(get(4), m.i32.load(MEMORY_SIZE_ADDR, 4, m.i32.const(0)))),
          // every page of the span (spans are short: rep-string chunks within a page, or page copies)
          m.block(null, [
            m.local.set(5, m.i32.shr_u(get(4), m.i32.const(12))),
            m.local.set(6, m.i32.shr_u(m.i32.add(get(4), m.i32.sub(get(0), m.i32.const(1))), m.i32.const(12))),
            m.loop(
              loop,
              m.block(null, [
                m.if(
                  m.i32.ge_u(m.i32.add(m.i32.load8_u(0, 1, m.i32.add(m.global.get(mapBase, i32), get(5))), m.i32.const(write)), m.i32.const(2)),
                  m.call(IMPORT_FN, [m.i32.shl(get(5), m.i32.const(12)), m.i32.const(write << 8), get(2)], binaryen.none),
                ),
                m.local.set(5, m.i32.add(get(5), m.i32.const(1))),
                m.br(loop, m.i32.le_u(get(5), get(6))),
              ]),
            ),
          ]),
        ),
      ]),
    );
  m.addFunction(
    SPAN_SIZE,
    binaryen.createType([i32, i32, i32]),
    i32,
    [i32, i32, i32, i32],
    m.block(null, [
      spanCheck(m.global.get(LAST_DEST, i32), 1, "gw$audit_dest_pages"),
      m.if(get(1), spanCheck(m.global.get(LAST_SRC, i32), 0, "gw$audit_src_pages")),
      m.return(get(0)),
    ]),
  );
  m.addFunction(
    "gw$audit_set_ram",
    binaryen.createType([i32]),
    binaryen.none,
    [],
    m.global.set(RAM_BASE, get(0)),
  );
  m.addFunctionExport("gw$audit_set_ram", EXPORT_AUDIT_SET_RAM);

  let site = 0;
  const functions: [number, string][] = [];
  const call = (ptr: number, offset: number, bytes: number, write: boolean) =>
    m.call(CHECK, [ptr, m.i32.const(offset), m.i32.const(bytes | (write ? WRITE : 0)), m.i32.const(site++)], i32);
  const funcs: number[] = [];
  for (let i = 0; i < m.getNumFunctions(); i++) funcs.push(m.getFunctionByIndex(i));
  for (const f of funcs) {
    const info = binaryen.getFunctionInfo(f);
    if (!info.body || info.name.startsWith("gw$")) continue;
    const first = site;
    for (const e of walk(info.body, ir.children)) {
      const id = binaryen.getExpressionId(e);
      if (id === binaryen.LoadId) {
        const ptr = X.Load.getPtr(e);
        if (!isConst(ptr)) X.Load.setPtr(e, call(ptr, X.Load.getOffset(e), X.Load.getBytes(e), false));
      } else if (id === binaryen.StoreId) {
        const ptr = X.Store.getPtr(e);
        if (!isConst(ptr)) X.Store.setPtr(e, call(ptr, X.Store.getOffset(e), X.Store.getBytes(e), true));
      } else if (id === binaryen.SIMDLoadId) {
        const ptr = X.SIMDLoad.getPtr(e);
        if (!isConst(ptr)) X.SIMDLoad.setPtr(e, call(ptr, X.SIMDLoad.getOffset(e), simdLoadBytes(X.SIMDLoad.getOp(e)), false));
      } else if (id === binaryen.SIMDLoadStoreLaneId) {
        const ptr = X.SIMDLoadStoreLane.getPtr(e);
        const store = X.SIMDLoadStoreLane.isStore(e);
        if (!isConst(ptr)) X.SIMDLoadStoreLane.setPtr(e, call(ptr, X.SIMDLoadStoreLane.getOffset(e), simdLaneBytes(X.SIMDLoadStoreLane.getOp(e)), store));
      } else if (id === binaryen.MemoryCopyId) {
        X.MemoryCopy.setDest(e, m.call(SPAN_DEST, [X.MemoryCopy.getDest(e)], i32));
        X.MemoryCopy.setSource(e, m.call(SPAN_SRC, [X.MemoryCopy.getSource(e)], i32));
        X.MemoryCopy.setSize(e, m.call(SPAN_SIZE, [X.MemoryCopy.getSize(e), m.i32.const(1), m.i32.const(site++)], i32));
      } else if (id === binaryen.MemoryFillId) {
        X.MemoryFill.setDest(e, m.call(SPAN_DEST, [X.MemoryFill.getDest(e)], i32));
        X.MemoryFill.setSize(e, m.call(SPAN_SIZE, [X.MemoryFill.getSize(e), m.i32.const(0), m.i32.const(site++)], i32));
      }
    }
    if (site > first) functions.push([first, info.name]);
  }
  return { sites: site, functions };
}
