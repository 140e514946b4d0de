// The firmware's browser-safe surface (no Node modules): table builders and the direct-boot plan.
// Starting v86 from it is the runtime's (runtime/node/v86-direct.ts); building the image, booting
// the default guest and QEMU are Node.js-only (runtime/nodejs/).

export { buildAcpiTables, buildDsdt, buildMadt, V86_PM, type AcpiOptions, type AcpiRevision, type AcpiTables } from "./acpi.ts";
export * as aml from "./aml.ts";
export { checkFirmwareImage } from "./bios-build-check.ts";
export { buildCpuHotplugAml, cpuDeviceName } from "./cpu-hotplug-aml.ts";
export { buildBootParams, parseSetupHeader, type SetupHeader } from "./bootparams.ts";
export { planDirectBoot, type DirectBootInput, type DirectBootPlan, type MemoryWrite } from "./direct-boot.ts";
export { buildE820, checkE820, E820, type E820Entry } from "./e820.ts";
export { FirmwareError } from "./errors.ts";
export * as layout from "./layout.ts";
export { buildMpTable } from "./mptable.ts";
export { describePlatform, MAX_CPUS, MAX_POSSIBLE_CPUS, type IsaWiring, type Platform, type PlatformSpec } from "./platform.ts";
