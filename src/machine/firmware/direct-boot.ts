// Plans a direct Linux boot: every block of bytes the host writes into guest RAM before the CPU
// starts (kernel, initramfs, command line, boot_params with the e820 map, MP and ACPI tables,
// BIOS data area, firmware handoff). Pure: no I/O, no emulator; the v86 glue applies the plan.

import { type AcpiRevision, buildAcpiTables } from "./acpi.ts";
import { buildBootParams, parseSetupHeader, type SetupHeader } from "./bootparams.ts";
import { TableWriter } from "./bytes.ts";
import { buildE820, type E820Entry } from "./e820.ts";
import { check } from "./errors.ts";
import * as L from "./layout.ts";
import { buildMpTable } from "./mptable.ts";
import { describePlatform, type Platform, type PlatformSpec } from "./platform.ts";
import { PAGE_SIZE } from "../../protocol/types.ts";

export interface DirectBootInput {
  bzImage: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  memoryBytes: number;
  platform: PlatformSpec;
  /** Which CPU tables to provide (default both; Linux prefers ACPI, `acpi=off` makes it use MP). */
  tables?: { mp?: boolean; acpi?: false | { revision?: AcpiRevision; fadt?: boolean } };
}

export interface MemoryWrite {
  address: number;
  bytes: Uint8Array;
  what: string;
}

export interface DirectBootPlan {
  writes: MemoryWrite[];
  platform: Platform;
  header: SetupHeader;
  e820: E820Entry[];
  entry: number;
  bootParams: number;
  initrd?: { address: number; size: number };
  mpAddress?: number;
  rsdpAddress?: number;
}

export function planDirectBoot(input: DirectBootInput): DirectBootPlan {
  const header = parseSetupHeader(input.bzImage);
  const platform = describePlatform(input.platform);
  const e820 = buildE820(input.memoryBytes);
  check(/^[\x20-\x7e]*$/.test(input.cmdline), "the kernel command line must be printable ASCII");
  // we load the protected-mode part at 1 MiB and enter it there; a header asking for another entry was patched by a loader
  check(header.code32Start === L.KERNEL_LOAD_ADDR, `the kernel's code32_start is 0x${header.code32Start.toString(16)}; direct boot enters bzImages at 0x100000`);
  const writes: MemoryWrite[] = [];

  // The protected-mode kernel runs from where it is loaded (1 MiB); a relocatable kernel then
  // decompresses itself to max(load address, pref_address) and needs init_size bytes there.
  const kernel = input.bzImage.subarray(header.kernelOffset);
  writes.push({ address: L.KERNEL_LOAD_ADDR, bytes: kernel, what: "kernel (protected-mode part)" });
  const prefAddress = Number(header.prefAddress);
  const kernelEnd = Math.max(L.KERNEL_LOAD_ADDR + kernel.length, Math.max(L.KERNEL_LOAD_ADDR, prefAddress) + header.initSize);
  check(kernelEnd <= input.memoryBytes, `the kernel needs RAM up to 0x${kernelEnd.toString(16)}; the guest has ${input.memoryBytes} bytes`);

  let initrd: DirectBootPlan["initrd"];
  if (input.initrd && input.initrd.length > 0) {
    // as high as the kernel allows, page-aligned, clear of the kernel's decompression area
    const ceiling = Math.min(input.memoryBytes, header.initrdAddrMax + 1);
    const address = Math.floor((ceiling - input.initrd.length) / PAGE_SIZE) * PAGE_SIZE;
    check(
      address >= kernelEnd,
      `the ${input.initrd.length}-byte initramfs does not fit between the kernel (ends 0x${kernelEnd.toString(16)}) and 0x${ceiling.toString(16)}; give the guest more memory`,
    );
    initrd = { address, size: input.initrd.length };
    writes.push({ address, bytes: input.initrd, what: "initramfs" });
  }

  const cmdline = new TextEncoder().encode(input.cmdline + "\0");
  writes.push({ address: L.CMDLINE_ADDR, bytes: cmdline, what: "kernel command line" });
  writes.push({
    address: L.BOOT_PARAMS_ADDR,
    bytes: buildBootParams({
      image: input.bzImage,
      header,
      cmdlineAddress: L.CMDLINE_ADDR,
      cmdlineLength: cmdline.length - 1,
      ...(initrd ? { initrd } : {}),
      e820,
    }),
    what: "boot_params",
  });

  const bda = new TableWriter(L.BDA_BASE_MEMORY_KIB + 2 - L.BDA_EBDA_SEGMENT);
  bda.u16(0, L.EBDA_BASE >> 4).u16(L.BDA_BASE_MEMORY_KIB - L.BDA_EBDA_SEGMENT, L.EBDA_BASE >> 10);
  writes.push({ address: L.BDA_EBDA_SEGMENT, bytes: bda.bytes, what: "BIOS data area (EBDA segment, base memory)" });

  let next = L.FW_TABLES_BASE;
  let mpAddress: number | undefined;
  let rsdpAddress: number | undefined;
  const tables = input.tables ?? {};
  if (tables.mp ?? true) {
    mpAddress = next;
    const mp = buildMpTable(platform, { address: next });
    writes.push({ address: next, bytes: mp, what: "MP floating pointer and configuration table" });
    next = Math.ceil((next + mp.length) / 16) * 16;
  }
  const acpiOpts = tables.acpi ?? {};
  if (acpiOpts !== false) {
    const acpi = buildAcpiTables(platform, { address: next, ...acpiOpts });
    rsdpAddress = acpi.rsdpAddress;
    writes.push({ address: next, bytes: acpi.bytes, what: `ACPI tables (${acpi.tables.map((t) => t.signature.trim()).join(", ")})` });
    next += acpi.bytes.length;
  }
  check(next <= L.FW_TABLES_END, `firmware tables overflow their area by ${next - L.FW_TABLES_END} bytes`);

  const handoff = new TableWriter(L.FW_HANDOFF_SIZE);
  handoff.u32(0, L.FW_HANDOFF_MAGIC).u32(4, L.FW_HANDOFF_VERSION).u32(8, L.KERNEL_LOAD_ADDR).u32(12, L.BOOT_PARAMS_ADDR);
  handoff.u32(16, platform.ioapic.id).u32(20, platform.ioapic.address);
  writes.push({ address: L.FW_HANDOFF_ADDR, bytes: handoff.bytes, what: "firmware handoff block" });

  return {
    writes,
    platform,
    header,
    e820,
    entry: L.KERNEL_LOAD_ADDR,
    bootParams: L.BOOT_PARAMS_ADDR,
    ...(initrd ? { initrd } : {}),
    ...(mpAddress !== undefined ? { mpAddress } : {}),
    ...(rsdpAddress !== undefined ? { rsdpAddress } : {}),
  };
}
