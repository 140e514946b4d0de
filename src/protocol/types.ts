// Basic vocabulary shared by the protocol messages, the codec and the DSM state machine.

/** Bumped whenever the wire format or the meaning of a message changes. Carried in every frame. */
export const PROTOCOL_VERSION = 1;

/** DSM granule: one x86 page. */
export const PAGE_SIZE = 4096;

/** Node ids travel as one byte. Node 0 hosts the devices and starts owning every page. */
export const MAX_NODES = 255;

/** vCPU ids are the xAPIC ids (8 bits), 0xff is the xAPIC broadcast id and never a vCPU. */
export const MAX_VCPUS = 255;

/** Guest-physical page numbers travel as u32 (covers the whole 32-bit and PAE physical space). */
export const MAX_PAGE = 0xffff_ffff;

export type NodeId = number;
export type VcpuId = number;
export type PageNumber = number;
/** Version of a page's contents; 0 means "no copy known", node 0 starts every page at 1. */
export type PageVersion = number;

/**
 * The latency knob's range: added one-way delay on every link of a VM, in whole ms. One limit for
 * every place that takes it (the page's knob, the tab envelope, node links, fabric links).
 */
export const MAX_ADDED_DELAY_MS = 50;
/** The longest DSM hold window a node accepts (VcpuNodeConfig.holdMs): beyond it a peer waits longer than any fault should. */
export const MAX_HOLD_MS = 100;

/** A hold window from configuration (undefined: none), checked: a number of ms in 0..MAX_HOLD_MS. */
export function checkHoldMs(value: unknown): number {
  const ms = value === undefined ? 0 : value;
  if (!(typeof ms === "number" && Number.isFinite(ms) && ms >= 0 && ms <= MAX_HOLD_MS))
    throw new RangeError(`holdMs must be a number of ms in 0..${MAX_HOLD_MS}, got ${JSON.stringify(value)}`);
  return ms;
}

/** What the local engine may do with a page. */
export type Access = "none" | "read" | "write";

/** Access a fault asks for (there is no fault for "none"). */
export type FaultAccess = "read" | "write";

/**
 * A node's view of one page, as shown by the live view: invalid here, a shared copy,
 * a shared copy that is also the owner, or modified (always the owner).
 */
export type PageState = "invalid" | "shared" | "shared-owner" | "modified";
export const PAGE_STATES: readonly PageState[] = ["invalid", "shared", "shared-owner", "modified"];
