// Paths on the page's server that the cluster panel fetches (vite.config.ts serves and emits them).
// A module of its own, free of the DOM and of Vite's import.meta.env, so tests and the bench can
// name them too.

/** Our firmware (built by the setup): it boots Linux directly with tables for every vCPU. */
export const FIRMWARE_URL = "engine/firmware.bin";
/** The instrumented v86 engine. */
export const ENGINE_URL = "engine/v86-giantweb.wasm";
/** The SMP self-test guest (multiboot ELF, built by the setup from guests/selftest). */
export const SELFTEST_URL = "engine/selftest.elf";
