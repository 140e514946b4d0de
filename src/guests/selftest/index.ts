// The self-test guest: build it, boot it on QEMU or stock v86, parse what it reports.
export * from "./build.ts";
export * from "./report.ts";
export * from "./run-common.ts";
export * from "./run-qemu.ts";
export * from "./run-v86.ts";
