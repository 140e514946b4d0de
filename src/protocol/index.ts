// Public surface of the protocol core (layer 1): message types, the codec, the DSM state machine.
export * from "./types.ts";
export type * from "./messages.ts";
export { APIC_REGISTERS, BYE_REASONS, FORWARDED_IO_OPS, INTERRUPT_KINDS, MAX_HANDOFF_PAGES, MAX_MANAGER_RECORDS, REPORT_EVENT_TYPES, ROLES, STAT_COUNTERS, VCPU_RUN_STATES } from "./messages.ts";
export { CodecError, decode, encode, MAX_CONSOLE_BYTES, MAX_REPORT_EVENTS } from "./codec.ts";
export type { CodecErrorReason } from "./codec.ts";
export { DsmNode } from "./dsm/node.ts";
export type { DsmConfig, DsmCounters, DsmQuiescenceReport, PageInspection } from "./dsm/node.ts";
export { MembershipCoordinator } from "./dsm/membership.ts";
export type { CoordinatorDecision, MembershipChange } from "./dsm/membership.ts";
export { DsmProtocolError, DsmUsageError } from "./dsm/effects.ts";
export type { DsmEffect } from "./dsm/effects.ts";
export { buildSnapshot, emptyCounters, PageStateMirror, pageStateCode } from "./stats.ts";
export type { SnapshotInputs } from "./stats.ts";
