// The firmware's browser-safe surface (no Node modules): table builders, the direct-boot plan and
// the v86 starter. Node-only helpers (building the image, booting the default guest, QEMU) are
// imported from their own modules.

export { buildAcpiTables, buildMadt, V86_PM, type AcpiOptions, type AcpiRevision, type AcpiTables } from "./acpi.ts";
export { checkFirmwareImage } from "./bios-build-check.ts";
export { buildBootParams, parseSetupHeader, type SetupHeader } from "./bootparams.ts";
export { planDirectBoot, type DirectBootInput, type DirectBootPlan, type MemoryWrite } from "./direct-boot.ts";
export { buildE820, checkE820, E820, type E820Entry } from "./e820.ts";
export { FirmwareError } from "./errors.ts";
export * as layout from "./layout.ts";
export { buildMpTable } from "./mptable.ts";
export { describePlatform, MAX_CPUS, type IsaWiring, type Platform, type PlatformSpec } from "./platform.ts";
export { startDirectBootV86, type DirectBootV86Options, type V86Emulator } from "../../runtime/node/v86-direct.ts";
