// The interrupt part of the build-time instrumentation (see src/engine/README-interrupts.md).
//
// v86 0.5.462 emulates one local APIC and one IOAPIC as static Rust structs inside the wasm. Its
// apic::route ignores the destination, so every IPI and IOAPIC interrupt lands on the one CPU, and
// the ICR write path, the IOAPIC delivery and the APIC register writes are inlined. This pass wraps
// the few non-inlined functions those paths go through, so a JS import decides first:
//
// - memory::mmap_write32 (every MMIO dword write outside RAM): writes of the APIC's ID/LDR/DFR are
//   reported after v86 stored them; an ICR write asks the import before v86 acts and, when the
//   import says "not local", v86 is handed the same value with shorthand "all but self" (which v86
//   implements as "deliver nothing") and ICR low is restored afterwards. IOAPIC window writes go to
//   an import while the IOAPIC is routed away.
// - ioapic::check_irq (the only place the IOAPIC sends; inlines route+deliver): when it is about to
//   send, the import sees the redirection entry; "not local" undoes v86's IRR/TMR update.
// - ioapic::remote_eoi: the import sees the EOI of a level-triggered vector first.
// - ioapic::read32, cpu::io_port_read8/write8 (the PIC, which v86 implements in Rust and never
//   passes through cpu.io): routed to imports while a route flag is set.
// - apic::read32 and mmap_write32's write of the APIC timer's initial count run with the
//   gw_apic_clock global set, so the runtime's microtick import can give them the APIC timer's
//   clock (the current count read and that write are where they read it; apic_timer(now) is given
//   it by the runtime).
// - instr_0FA2 (cpuid): leaf 1 EBX[31:24] reports the APIC ID register's bits 31:24.
// - instr_0F32 (rdmsr): IA32_APIC_BASE carries the BSP flag when the gw_bsp global says so.
// Wrapping works by name: the original body moves to a new function, and a wrapper under the old
// name calls it, so every call site, export and table entry reaches the wrapper.

import binaryen from "binaryen";
// The wasm import/export names through the namespace, so this list is not a copy of the runtime's.
import * as abi from "../interrupts/abi.ts";
import { APIC, APIC_MMIO_BASE, IOAPIC_MMIO_BASE, MEM, PIC_PORTS, ROUTE_IOAPIC, ROUTE_PIC } from "../interrupts/abi.ts";

export { INTERRUPTS_PASS_VERSION } from "../interrupts/abi.ts";

const P = "_RNvNtNtCslOG1uufA09K_3v863cpu";
export const INTERRUPT_FUNCS = {
  mmapWrite32: `${P}6memory12mmap_write32`,
  checkIrq: `${P}6ioapic9check_irq`,
  remoteEoi: `${P}6ioapic10remote_eoi`,
  ioapicRead32: `${P}6ioapic6read32`,
  route: `${P}4apic5route`,
  apicRead32: `${P}4apic6read32`,
  deliver: `${P}4apic7deliver`,
  callInterruptVector: `${P}3cpu21call_interrupt_vector`,
  ioPortRead8: `${P}3cpu13io_port_read8`,
  ioPortWrite8: `${P}3cpu14io_port_write8`,
  cpuid: "instr_0FA2",
  rdmsr: "instr_0F32",
} as const;

/** [param count, has i32 result] of each function the pass relies on. */
const SIGNATURES: Record<keyof typeof INTERRUPT_FUNCS, [number, boolean]> = {
  mmapWrite32: [2, false],
  checkIrq: [3, false],
  remoteEoi: [2, false],
  ioapicRead32: [1, true],
  route: [4, false],
  apicRead32: [1, true],
  deliver: [4, false],
  callInterruptVector: [4, false],
  ioPortRead8: [1, true],
  ioPortWrite8: [2, false],
  cpuid: [0, false],
  rdmsr: [0, false],
};

export class InterruptsShapeError extends Error {
  constructor(message: string) {
    super(`v86.wasm does not have the shape the interrupt instrumentation expects: ${message}. Re-audit src/engine/instrument/interrupts-pass.ts.`);
    this.name = "InterruptsShapeError";
  }
}

export interface InterruptsReport {
  wrapped: string[];
  apicAddr: number;
  ioapicAddr: number;
}

const ORIG = (name: string) => `gw$orig$${name}`;

/** Applies the interrupt instrumentation to a module the caller owns (and validates and emits). */
export function instrumentInterrupts(m: binaryen.Module): InterruptsReport {
  const i32 = binaryen.i32;
  for (const [key, name] of Object.entries(INTERRUPT_FUNCS) as [keyof typeof INTERRUPT_FUNCS, string][]) {
    const f = m.getFunction(name);
    if (!f) throw new InterruptsShapeError(`function ${name} is missing`);
    const info = binaryen.getFunctionInfo(f);
    const [n, result] = SIGNATURES[key];
    const params = binaryen.expandType(info.params);
    if (!info.body || params.length !== n || params.some((t) => t !== i32) || info.results !== (result ? i32 : binaryen.none)) {
      throw new InterruptsShapeError(`${key} (${name}) is not a defined function (${n} x i32) -> ${result ? "i32" : "none"}`);
    }
  }
  // The static APIC and IOAPIC structs: their addresses appear as constants in the calls of the
  // inlined ICR and IOAPIC write paths. The runtime uses MEM.apic/MEM.ioapic, so they must agree.
  const w32 = binaryen.emitText(binaryen.getFunctionInfo(m.getFunction(INTERRUPT_FUNCS.mmapWrite32)).body);
  const callArg = (fn: string) => {
    const re = new RegExp(`\\(call \\$${fn.replace(/\$/g, "\\$")}\\s+\\(i32\\.const (\\d+)\\)(?:\\s+\\(i32\\.const (\\d+)\\))?`, "g");
    return [...w32.matchAll(re)].map((x) => [Number(x[1]), x[2] === undefined ? undefined : Number(x[2])]);
  };
  const routeCalls = callArg(INTERRUPT_FUNCS.route);
  const deliverCalls = callArg(INTERRUPT_FUNCS.deliver);
  const eoiCalls = callArg(INTERRUPT_FUNCS.remoteEoi);
  const checkCalls = callArg(INTERRUPT_FUNCS.checkIrq);
  const apicAddrs = new Set([...routeCalls, ...deliverCalls, ...eoiCalls].map((c) => c[0]));
  if (routeCalls.length !== 1 || deliverCalls.length !== 2 || eoiCalls.length !== 1 || apicAddrs.size !== 1 || !apicAddrs.has(MEM.apic)) {
    throw new InterruptsShapeError(
      `mmap_write32 should call route once, deliver twice and remote_eoi once, all on the APIC at ${MEM.apic}; found ` +
        JSON.stringify({ routeCalls, deliverCalls, eoiCalls }),
    );
  }
  if (checkCalls.length !== 1 || checkCalls[0][0] !== MEM.ioapic || checkCalls[0][1] !== MEM.apic) {
    throw new InterruptsShapeError(`mmap_write32 should call check_irq(${MEM.ioapic}, ${MEM.apic}, irq) once; found ${JSON.stringify(checkCalls)}`);
  }
  for (const [off, what] of [[MEM.apic + APIC.icr1, "ICR high"], [MEM.apic + APIC.destinationFormat, "DFR"], [MEM.apic + APIC.localDestination, "LDR"], [MEM.acpiEnabled, "acpi_enabled"]] as const) {
    if (!w32.includes(`offset=${off}`)) throw new InterruptsShapeError(`mmap_write32 no longer touches ${what} at ${off}`);
  }

  m.addGlobal("gw$route", i32, true, m.i32.const(0));
  m.addGlobalExport("gw$route", abi.EXPORT_ROUTE);
  m.addGlobal("gw$bsp", i32, true, m.i32.const(0));
  m.addGlobalExport("gw$bsp", abi.EXPORT_BSP);
  m.addGlobal("gw$defer_irqs", i32, true, m.i32.const(0));
  m.addGlobalExport("gw$defer_irqs", abi.EXPORT_DEFER_IRQS);
  m.addGlobal("gw$apic_clock", i32, true, m.i32.const(0));
  m.addGlobalExport("gw$apic_clock", abi.EXPORT_APIC_CLOCK);
  const imp = (internal: string, name: string, params: number[], result: number) =>
    m.addFunctionImport(internal, "env", name, binaryen.createType(params), result);
  imp("gw$apic_write", abi.IMPORT_APIC_WRITE, [i32, i32], i32);
  imp("gw$ioapic_send", abi.IMPORT_IOAPIC_SEND, [i32, i32, i32], i32);
  imp("gw$eoi", abi.IMPORT_EOI, [i32], i32);
  imp("gw$mmio_read", abi.IMPORT_MMIO_READ, [i32, i32], i32);
  imp("gw$mmio_write", abi.IMPORT_MMIO_WRITE, [i32, i32, i32], binaryen.none);
  imp("gw$pio_read8", abi.IMPORT_PIO_READ8, [i32], i32);
  imp("gw$pio_write8", abi.IMPORT_PIO_WRITE8, [i32, i32], binaryen.none);
  imp("gw$irq_check", abi.IMPORT_IRQ_CHECK, [], binaryen.none);

  const get = (k: number) => m.local.get(k, i32);
  const set = (k: number, v: number) => m.local.set(k, v);
  const c = (v: number) => m.i32.const(v | 0);
  const load = (addr: number) => m.i32.load(0, 4, addr);
  const loadAt = (offset: number) => m.i32.load(offset, 4, c(0));
  const store = (addr: number, v: number) => m.i32.store(0, 4, addr, v);
  const routed = (flag: number) => m.i32.ne(m.i32.and(m.global.get("gw$route", i32), c(flag)), c(0));
  const wrapped: string[] = [];
  const apicClock = (on: 0 | 1) => m.global.set("gw$apic_clock", c(on));

  /** Moves `name`'s body to ORIG(name) and installs `body` (with `vars` extra locals) under `name`. */
  const wrap = (name: string, vars: number[], body: (orig: (...args: number[]) => number) => number) => {
    const info = binaryen.getFunctionInfo(m.getFunction(name));
    m.addFunction(ORIG(name), info.params, info.results, info.vars, info.body);
    const orig = (...args: number[]) => m.call(ORIG(name), args, info.results);
    const b = body(orig);
    m.removeFunction(name);
    m.addFunction(name, info.params, info.results, vars, b);
    wrapped.push(name);
  };

  // mmap_write32(addr, value); locals: 2 = offset in the APIC page, 3 = verdict, 4 = IF while deferring
  //
  // v86 checks for interrupts right after every APIC/IOAPIC write (an inlined handle_irqs) and may
  // enter a handler in the middle of the writing instruction. From JIT-compiled code that is wrong:
  // the compiled block goes on with its own next instruction, leaving the handler unrun with IF
  // clear and the vector in service (seen with the self-test's "all including self" broadcast).
  // While gw_defer_irqs is set, the wrapper hides IF around those writes and then calls
  // gw_irq_check, so the runtime takes pending interrupts at the end of the block instead.
  wrap(INTERRUPT_FUNCS.mmapWrite32, [i32, i32, i32], (orig) => {
    const addr = get(0);
    const value = get(1);
    const IF_BYTE = MEM.flags + 1; // EFLAGS.IF is bit 9
    // (functions: a binaryen expression must not appear twice in the tree)
    const hideIf = () =>
      m.block(null, [
      // IF (bit 1 of the byte) when deferring (the global is 0 or 1, so shift it onto bit 1)
      set(4, m.i32.and(m.i32.load8_u(IF_BYTE, 1, c(0)), m.i32.shl(m.global.get("gw$defer_irqs", i32), c(1)))),
      m.i32.store8(IF_BYTE, 1, c(0), m.i32.and(m.i32.load8_u(IF_BYTE, 1, c(0)), m.i32.xor(get(4), c(0xff)))),
    ]);
    const restoreIf = () =>
      m.block(null, [
      m.i32.store8(IF_BYTE, 1, c(0), m.i32.or(m.i32.load8_u(IF_BYTE, 1, c(0)), get(4))),
      m.if(get(4), m.call("gw$irq_check", [], binaryen.none)),
    ]);
    const apicWrite = m.block(null, [
      set(2, m.i32.and(addr, c(0xfff))),
      hideIf(),
      m.if(
        m.i32.eq(get(2), c(0x300)),
        m.block(null, [
          set(3, m.call("gw$apic_write", [c(0x300), value], i32)),
          m.if(
            m.i32.eqz(get(3)),
            // Not local: v86 stores ICR low but delivers nothing for shorthand 3; then restore ICR low.
            m.block(null, [
              orig(addr, m.i32.or(value, c(3 << 18))),
              m.i32.store(APIC.icr0, 4, c(MEM.apic), m.i32.and(value, c(~(1 << 12)))),
            ]),
            orig(addr, value),
          ),
        ]),
        m.block(null, [
          // The initial count write (0x380) starts the timer at the APIC timer's clock.
          m.if(m.i32.eq(get(2), c(0x380)), m.block(null, [apicClock(1), orig(addr, value), apicClock(0)]), orig(addr, value)),
          m.if(
            m.i32.or(m.i32.or(m.i32.eq(get(2), c(0x20)), m.i32.eq(get(2), c(0xd0))), m.i32.eq(get(2), c(0xe0))),
            m.drop(m.call("gw$apic_write", [get(2), value], i32)),
          ),
        ]),
      ),
      restoreIf(),
      m.return(),
    ]);
    const inIoapic = m.i32.eq(m.i32.and(addr, c(~31)), c(IOAPIC_MMIO_BASE));
    return m.block(null, [
      m.if(
        m.i32.and(m.i32.eq(m.i32.and(addr, c(~0xfff)), c(APIC_MMIO_BASE)), m.i32.load8_u(MEM.acpiEnabled, 1, c(0))),
        apicWrite,
      ),
      m.if(
        inIoapic,
        m.if(
          routed(ROUTE_IOAPIC),
          m.block(null, [m.call("gw$mmio_write", [addr, c(4), value], binaryen.none), m.return()]),
          m.block(null, [hideIf(), orig(addr, value), restoreIf(), m.return()]),
        ),
      ),
      orig(addr, value),
    ]);
  });

  // check_irq(ioapic*, apic*, irq); locals: 3 = mask, 4 = config, 5 = IRR/TMR word offset, 6 = saved IRR word, 7 = saved TMR word
  wrap(INTERRUPT_FUNCS.checkIrq, [i32, i32, i32, i32, i32], (orig) => {
    const ioapic = get(0);
    const apic = get(1);
    const irq = m.i32.and(get(2), c(0xff));
    const willSend = m.i32.and(
      m.i32.and(m.i32.ne(m.i32.and(m.i32.load(200, 4, ioapic), get(3)), c(0)), m.i32.eqz(m.i32.and(get(4), c(1 << 16)))),
      m.i32.ne(m.i32.and(get(4), c((1 << 15) | (1 << 14))), c((1 << 15) | (1 << 14))),
    );
    return m.block(null, [
      m.if(
        m.i32.lt_u(irq, c(24)),
        m.block(null, [
          set(3, m.i32.shl(c(1), irq)),
          set(4, load(m.i32.add(ioapic, m.i32.shl(irq, c(2))))),
          // Nested ifs: i32.and would evaluate (call) the hook even when nothing is sent.
          m.if(
            willSend,
            m.if(
              m.i32.eqz(m.call("gw$ioapic_send", [irq, get(4), load(m.i32.add(m.i32.add(ioapic, c(96)), m.i32.shl(irq, c(2))))], i32)),
              m.block(null, [
              // Suppress v86's local delivery: keep the APIC's IRR/TMR word for this vector as it was.
              set(5, m.i32.shl(m.i32.shr_u(m.i32.and(get(4), c(0xff)), c(5)), c(2))),
              set(6, m.i32.load(APIC.irr, 4, m.i32.add(apic, get(5)))),
              set(7, m.i32.load(APIC.tmr, 4, m.i32.add(apic, get(5)))),
              orig(ioapic, apic, get(2)),
              m.i32.store(APIC.irr, 4, m.i32.add(apic, get(5)), get(6)),
              m.i32.store(APIC.tmr, 4, m.i32.add(apic, get(5)), get(7)),
              m.return(),
            ]),
            ),
          ),
        ]),
      ),
      orig(ioapic, apic, get(2)),
    ]);
  });

  // remote_eoi(apic*, vector)
  wrap(INTERRUPT_FUNCS.remoteEoi, [], (orig) =>
    m.if(m.call("gw$eoi", [m.i32.and(get(1), c(0xff))], i32), orig(get(0), get(1))),
  );

  // ioapic::read32(offset) -> value
  wrap(INTERRUPT_FUNCS.ioapicRead32, [], (orig) =>
    m.if(routed(ROUTE_IOAPIC), m.call("gw$mmio_read", [m.i32.add(c(IOAPIC_MMIO_BASE), get(0)), c(4)], i32), orig(get(0))),
  );

  // apic::read32(address) -> value, with the APIC timer's clock (see gw_apic_clock); local 1 = the value
  wrap(INTERRUPT_FUNCS.apicRead32, [i32], (orig) =>
    m.block(null, [apicClock(1), set(1, orig(get(0))), apicClock(0), get(1)], i32),
  );

  const isPicPort = (port: number) => PIC_PORTS.map((p) => m.i32.eq(port, c(p))).reduce((a, b) => m.i32.or(a, b));
  wrap(INTERRUPT_FUNCS.ioPortRead8, [], (orig) =>
    m.if(m.i32.and(routed(ROUTE_PIC), isPicPort(get(0))), m.call("gw$pio_read8", [get(0)], i32), orig(get(0))),
  );
  wrap(INTERRUPT_FUNCS.ioPortWrite8, [], (orig) =>
    m.if(m.i32.and(routed(ROUTE_PIC), isPicPort(get(0))), m.call("gw$pio_write8", [get(0), get(1)], binaryen.none), orig(get(0), get(1))),
  );

  // cpuid: leaf 1 EBX[31:24] = initial APIC ID. local 0 = the leaf asked for
  const EAX = MEM.reg32;
  const ECX = MEM.reg32 + 4;
  const EBX = MEM.reg32 + 12;
  wrap(INTERRUPT_FUNCS.cpuid, [i32], (orig) =>
    m.block(null, [
      set(0, loadAt(EAX)),
      orig(),
      m.if(
        m.i32.eq(get(0), c(1)),
        store(c(EBX), m.i32.or(m.i32.and(loadAt(EBX), c(0x00ffffff)), m.i32.and(loadAt(MEM.apic + APIC.id), c(0xff000000)))),
      ),
    ]),
  );

  // rdmsr: IA32_APIC_BASE (0x1B) gets the BSP flag (bit 8) on the vCPU marked as BSP.
  wrap(INTERRUPT_FUNCS.rdmsr, [i32], (orig) =>
    m.block(null, [
      set(0, loadAt(ECX)),
      orig(),
      m.if(
        m.i32.and(m.i32.eq(get(0), c(0x1b)), m.i32.and(m.i32.load8_u(MEM.acpiEnabled, 1, c(0)), m.global.get("gw$bsp", i32))),
        store(c(EAX), m.i32.or(loadAt(EAX), c(1 << 8))),
      ),
    ]),
  );

  m.addFunctionExport(INTERRUPT_FUNCS.deliver, abi.EXPORT_APIC_DELIVER);
  m.addFunctionExport(INTERRUPT_FUNCS.callInterruptVector, abi.EXPORT_CALL_INTERRUPT_VECTOR);
  // v86's own remote_eoi (without the hook), for EOIs that other nodes forward to this IOAPIC.
  m.addFunctionExport(ORIG(INTERRUPT_FUNCS.remoteEoi), abi.EXPORT_IOAPIC_EOI);
  // v86's own PIC port handlers, so node 0 can serve the PIC accesses other nodes forward.
  m.addFunctionExport(ORIG(INTERRUPT_FUNCS.ioPortRead8), abi.EXPORT_PIC_READ8);
  m.addFunctionExport(ORIG(INTERRUPT_FUNCS.ioPortWrite8), abi.EXPORT_PIC_WRITE8);
  return { wrapped, apicAddr: MEM.apic, ioapicAddr: MEM.ioapic };
}
