// A multiboot guest (the SMP self-test) on a node: v86 loads the ELF itself (no BIOS), and since
// nothing then describes the CPUs, node 0 (which owns guest RAM at the start) writes an MP table
// and ACPI tables listing every vCPU where an OS scans for them. Its v86 options are in
// ../guest-setup.ts with the other guests'.

import { buildAcpiTables } from "./acpi.ts";
import { FW_TABLES_BASE } from "./layout.ts";
import { buildMpTable } from "./mptable.ts";
import { describePlatform } from "./platform.ts";

/** MP and ACPI tables for every vCPU, where Linux and the self-test look for them (0xF0000..). */
export function multibootTables(cpus: number): { address: number; bytes: Uint8Array }[] {
  const platform = describePlatform({ cpus });
  const mp = buildMpTable(platform, { address: FW_TABLES_BASE });
  const acpiAt = Math.ceil((FW_TABLES_BASE + mp.length) / 16) * 16;
  return [
    { address: FW_TABLES_BASE, bytes: mp },
    { address: acpiAt, bytes: buildAcpiTables(platform, { address: acpiAt }).bytes },
  ];
}
