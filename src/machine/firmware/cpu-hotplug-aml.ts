// The DSDT's CPU hotplug part, for a platform in hotplug mode (possibleCpus > cpus): a processor
// container \_SB.CPUS over the register block of devices/cpu-hotplug-interface.ts (QEMU's "modern"
// CPU hotplug interface at PIIX4's ports), one ACPI0007 processor device per possible CPU, and the
// GPE handler \_GPE._E02 that turns the block's insert/remove events into Notify()s. Written from
// the register description (README-hotplug.md, Appendix), in our encoder's terms (aml.ts).
//
// In ASL, roughly:
//   Scope (\_SB) { Device (CPUS) {
//     Name (_HID, "ACPI0010")  Name (_CID, EisaId ("PNP0A05"))
//     OperationRegion (PRST, SystemIO, 0xAF00, 12)
//     Field (PRST, ByteAcc, NoLock, WriteAsZeros) { Offset (4), CPEN,1, CINS,1, CRMV,1, CEJF,1, Offset (5), CCMD,8 }
//     Field (PRST, DWordAcc, NoLock, Preserve) { CSEL,32, ,32, CDAT,32 }
//     Mutex (CPLK, 0)
//     Method (_INI) { Store (Zero, CSEL) }   // QEMU: leaves the legacy interface
//     Method (CSTA, 1, Serialized) / CEJ0 / CTFY / CSCN / COST ...
//     Device (C000) { Name (_HID, "ACPI0007") Name (_UID, 0) Method (_STA) ... Name (_MAT, ...) Method (_OST, 3) ... }
//     Device (C001) { ... Method (_EJ0, 1) { CEJ0 (1) } } ... } }
//   Scope (\_GPE) { Method (_E02) { \_SB.CPUS.CSCN () } }

import * as A from "./aml.ts";
import { check } from "./errors.ts";
import type { Platform } from "./platform.ts";
import {
  CPU_HOTPLUG_BASE,
  CPU_HOTPLUG_CMD,
  CPU_HOTPLUG_GPE_BIT,
  CPU_HOTPLUG_LENGTH,
  CPU_HOTPLUG_REG,
  MAX_POSSIBLE_CPUS,
} from "../devices/cpu-hotplug-interface.ts";

/** Path of the processor container. */
export const CPUS_PATH = "\\_SB.CPUS";

/** The name of CPU n's processor device under \_SB.CPUS: C000, C001, ... C01F. */
export function cpuDeviceName(n: number): string {
  return `C${n.toString(16).toUpperCase().padStart(3, "0")}`;
}

/** The GPE method that announces CPU hotplug events: _E02 (edge-triggered, bit 2). */
export const GPE_METHOD = `_E${CPU_HOTPLUG_GPE_BIT.toString(16).toUpperCase().padStart(2, "0")}`;

/** Notify values (ACPI 5.6.6): device check (a CPU was added), eject request (one is to go). */
const NOTIFY_DEVICE_CHECK = 1;
const NOTIFY_EJECT_REQUEST = 3;

/** The 8-byte MADT Processor Local APIC entry of CPU n, enabled (what _MAT returns once it is present). */
export function lapicEntry(n: number): number[] {
  return [0, 8, n, n, 1, 0, 0, 0];
}

const { local, arg, ref, store, call, lEqual, ifThen } = A;

export function buildCpuHotplugAml(p: Platform): A.Aml {
  check(p.possibleCpus >= 1 && p.possibleCpus <= MAX_POSSIBLE_CPUS, `possibleCpus ${p.possibleCpus} is outside 1..${MAX_POSSIBLE_CPUS}`);
  check(CPU_HOTPLUG_REG.flags === 4 && CPU_HOTPLUG_REG.command === 5 && CPU_HOTPLUG_REG.selector === 0 && CPU_HOTPLUG_REG.data === 8,
    "the Fields below are laid out for selector 0, flags 4, command 5, data 8");

  const CSEL = ref("CSEL");
  const CPEN = ref("CPEN");
  const CINS = ref("CINS");
  const CRMV = ref("CRMV");
  // The eject bit is CEJF, not QEMU's CEJ0: QEMU keeps its fields in another device (PCI0.PRES),
  // ours share \_SB.CPUS with the method CEJ0, and one scope cannot hold both names.
  const CEJF = ref("CEJF");
  const CCMD = ref("CCMD");
  const CDAT = ref("CDAT");
  const locked = (...body: A.Aml[]) => [A.acquire("CPLK"), ...body, A.release("CPLK")];

  // The register block. Flags byte: WriteAsZeros, so setting one bit (clear an event, eject)
  // writes only that bit and never echoes back an event bit just read.
  const region = A.aml(
    A.operationRegion("PRST", A.RegionSpace.SystemIO, CPU_HOTPLUG_BASE, CPU_HOTPLUG_LENGTH),
    A.field("PRST", { access: A.AccessType.ByteAcc, update: A.UpdateRule.WriteAsZeros },
      { offset: CPU_HOTPLUG_REG.flags },
      { name: "CPEN", bits: 1 }, { name: "CINS", bits: 1 }, { name: "CRMV", bits: 1 }, { name: "CEJF", bits: 1 },
      { offset: CPU_HOTPLUG_REG.command },
      { name: "CCMD", bits: 8 }),
    A.field("PRST", { access: A.AccessType.DWordAcc, update: A.UpdateRule.Preserve },
      { name: "CSEL", bits: 32 },
      { skip: 32 },
      { name: "CDAT", bits: 32 }),
    A.mutex("CPLK", 0),
  );

  // On QEMU's PIIX4 the block starts as the legacy interface (a present-CPU bitmap); writing 0 to
  // its first dword switches to this one. On our own device it just selects CPU 0.
  const ini = A.method("_INI", { serialized: true }, ...locked(store(0, CSEL)));

  // CSTA (n): 0xF (present, enabled, shown, functioning) when CPU n is enabled, else 0.
  const csta = A.method("CSTA", { args: 1, serialized: true },
    ...locked(
      store(arg(0), CSEL),
      store(0, local(0)),
      ifThen(lEqual(CPEN, 1), [store(0x0f, local(0))]),
    ),
    A.ret(local(0)));

  // CEJ0 (n): the OS has offlined CPU n; eject it.
  const cej0 = A.method("CEJ0", { args: 1, serialized: true }, ...locked(store(arg(0), CSEL), store(1, CEJF)));

  // CTFY (n, event): Notify (CPU n's device, event).
  const ctfy = A.method("CTFY", { args: 2 },
    ...Array.from({ length: p.possibleCpus }, (_, n) => ifThen(lEqual(arg(0), n), [A.notify(ref(cpuDeviceName(n)), arg(1))])));

  // CSCN: while the block reports a CPU with an insert or remove event, notify its device and
  // acknowledge the event. Bounded (two events per CPU, plus one) so a stuck register cannot hang
  // the OS's GPE worker; a later event raises the GPE again.
  const rounds = 2 * p.possibleCpus + 1;
  const cscn = A.method("CSCN", { serialized: true },
    ...locked(
      store(1, local(0)), // maybe an event pending
      store(0, local(1)), // rounds so far
      A.whileLoop(A.lAnd(local(0), A.lLess(local(1), rounds)),
        store(0, local(0)),
        A.increment(local(1)),
        store(CPU_HOTPLUG_CMD.selectNextEvent, CCMD),
        ifThen(lEqual(CINS, 1),
          [call("CTFY", CDAT, NOTIFY_DEVICE_CHECK), store(1, CINS), store(1, local(0))],
          [ifThen(lEqual(CRMV, 1), [call("CTFY", CDAT, NOTIFY_EJECT_REQUEST), store(1, CRMV), store(1, local(0))])]),
      ),
    ));

  // COST (n, event, status): the OS's _OST report for CPU n, handed to the platform (the status
  // information buffer, _OST's third argument, is not passed on).
  const cost = A.method("COST", { args: 3, serialized: true },
    ...locked(
      store(arg(0), CSEL),
      store(CPU_HOTPLUG_CMD.ostEvent, CCMD),
      store(arg(1), CDAT),
      store(CPU_HOTPLUG_CMD.ostStatus, CCMD),
      store(arg(2), CDAT),
    ));

  const cpus = Array.from({ length: p.possibleCpus }, (_, n) =>
    A.device(cpuDeviceName(n),
      A.name("_HID", A.string("ACPI0007")),
      A.name("_UID", n), // = the MADT entry's ACPI processor UID (and APIC ID)
      A.method("_STA", {}, A.ret(call("CSTA", n))),
      A.name("_MAT", A.buffer(lapicEntry(n))),
      A.method("_OST", { args: 3 }, call("COST", n, arg(0), arg(1))),
      // the boot CPU cannot be ejected
      ...(n === 0 ? [] : [A.method("_EJ0", { args: 1 }, call("CEJ0", n))]),
    ));

  return A.aml(
    A.scope("\\_SB",
      A.device("CPUS",
        A.name("_HID", A.string("ACPI0010")),
        A.name("_CID", A.eisaId("PNP0A05")),
        region, ini, csta, cej0, ctfy, cscn, cost,
        ...cpus)),
    A.scope("\\_GPE", A.method(GPE_METHOD, {}, call(`${CPUS_PATH}.CSCN`))),
  );
}
