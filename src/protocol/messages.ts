// Every message nodes exchange, as one discriminated union on `type`.
// The codec (codec.ts) is the only place that turns these into bytes and back.

import type { FaultAccess, NodeId, PageNumber, PageState, PageVersion, VcpuId } from "./types.ts";

// ---------------------------------------------------------------- cluster control

/** What a node does in the cluster: node 0 hosts the devices, observers host no vCPU. */
export type Role = "host" | "compute" | "observer";
export const ROLES: readonly Role[] = ["host", "compute", "observer"];

/** First message on every link. The frame header carries the protocol version. */
export interface Hello {
  type: "hello";
  node: NodeId;
  role: Role;
  /** vCPUs this node hosts (its slice). */
  vcpus: VcpuId[];
  /** Free text naming the build, shown when versions disagree. */
  build: string;
}

/** Sent by node 0 before boot: the shape of the machine every node must agree on. */
export interface ClusterConfig {
  type: "config";
  nodes: number;
  /** Guest RAM in 4 KiB pages. */
  memoryPages: number;
  /** vcpuHome[v] is the node hosting vCPU v; its length is the vCPU count. */
  vcpuHome: NodeId[];
  /** DSM variant: a read fault also moves ownership to the reader (GiantVM's choice). */
  readTakesOwnership: boolean;
  guest: string;
}

export type ByeReason = "leaving" | "stopped" | "error" | "version-mismatch";
export const BYE_REASONS: readonly ByeReason[] = ["leaving", "stopped", "error", "version-mismatch"];

export interface Bye {
  type: "bye";
  reason: ByeReason;
  detail: string;
}

/** Link round-trip probes; `atMs` is the sender's clock, echoed back unchanged. */
export interface Ping {
  type: "ping";
  seq: number;
  atMs: number;
}
export interface Pong {
  type: "pong";
  seq: number;
  atMs: number;
}

// ---------------------------------------------------------------- DSM

/** Requester -> manager of the page: "I fault on this page". `have` is the version of the bytes I keep. */
export interface DsmRequest {
  type: "dsm-request";
  page: PageNumber;
  access: FaultAccess;
  have: PageVersion;
}

/** Manager -> current owner: serve this request. */
export interface DsmForward {
  type: "dsm-forward";
  page: PageNumber;
  access: FaultAccess;
  requester: NodeId;
  have: PageVersion;
}

/** The contents of a page in a grant: full bytes, all zero, or "your copy is current". */
export type PageData =
  | { form: "bytes"; bytes: Uint8Array }
  | { form: "zero" }
  | { form: "current" };

/**
 * Owner -> requester: the page, the access granted, and (when `owner` is set) the ownership with
 * the copyset the new owner must track. `acks` invalidation acks will also reach the requester
 * (from the copyset members the old owner invalidated); the grant is complete when all arrived.
 */
export interface DsmGrant {
  type: "dsm-grant";
  page: PageNumber;
  access: FaultAccess;
  owner: boolean;
  version: PageVersion;
  copyset: NodeId[];
  acks: number;
  data: PageData;
}

/** Drop your copy of the page, then ack to `ackTo` (which will hold version `version`). */
export interface DsmInvalidate {
  type: "dsm-invalidate";
  page: PageNumber;
  version: PageVersion;
  ackTo: NodeId;
}

export interface DsmInvalidateAck {
  type: "dsm-invalidate-ack";
  page: PageNumber;
  version: PageVersion;
}

/** Requester -> manager: the transaction is finished (and the engine used the page); serve the next. */
export interface DsmConfirm {
  type: "dsm-confirm";
  page: PageNumber;
  access: FaultAccess;
}

// ---------------------------------------------------------------- DSM membership (join / leave)
// Sent only while the whole VM is quiescent (see dsm/membership.ts): a membership change moves the
// manager role of one node slot's pages (page p is managed by node p mod slots when that slot is a
// member, else by node 0) and, on a leave, the leaving node's pages to node 0.

/** One page a leaving node owned: its version, its copyset without the leaving node, its bytes. */
export interface HandoffPage {
  page: PageNumber;
  version: PageVersion;
  copyset: NodeId[];
  /** `current` only when node 0 is in the copyset (it holds this version already). */
  data: PageData;
}

/** Most pages in one `dsm-handoff` (with bytes: 64 x 4 KiB, the size of a few grants in flight). */
export const MAX_HANDOFF_PAGES = 64;
/** Most records in one `dsm-records` (5 bytes each on the wire). */
export const MAX_MANAGER_RECORDS = 4096;

/** Leaving node -> node 0: pages it owned, in batches (ascending pages); `last` marks the final batch. */
export interface DsmHandoff {
  type: "dsm-handoff";
  pages: HandoffPage[];
  last: boolean;
}

/** A manager's belief of who owns a page it manages. */
export interface ManagerRecord {
  page: PageNumber;
  owner: NodeId;
}

/**
 * Manager records of one slot's pages, in batches (ascending pages): node 0 -> a joining node (the
 * pages it will manage), or a leaving node -> node 0 (the pages it managed). The receiver knows how
 * many to expect (every page of the slot), so no end marker is needed.
 */
export interface DsmRecords {
  type: "dsm-records";
  records: ManagerRecord[];
}

// ---------------------------------------------------------------- interrupts

/** Local APIC / IOAPIC delivery modes; INIT de-assert is the level-deasserted INIT IPI. */
export type Delivery =
  | { mode: "fixed"; vector: number; trigger: Trigger }
  | { mode: "lowest"; vector: number; trigger: Trigger }
  | { mode: "smi" }
  | { mode: "nmi" }
  | { mode: "init" }
  | { mode: "init-deassert" }
  | { mode: "startup"; vector: number }
  | { mode: "extint" };
export type DeliveryMode = Delivery["mode"];
export type Trigger = "edge" | "level";

/** An IPI one vCPU's local APIC sends to a vCPU hosted on another node. */
export interface Ipi {
  type: "ipi";
  src: VcpuId;
  dest: VcpuId;
  delivery: Delivery;
}

/** An interrupt node 0's IOAPIC routed to a vCPU on another node; `pin` identifies its EOI. */
export interface IoApicIrq {
  type: "irq";
  dest: VcpuId;
  pin: number;
  delivery: Delivery;
}

/** A vCPU's EOI of a level-triggered interrupt, sent back to node 0's IOAPIC. */
export interface Eoi {
  type: "eoi";
  vcpu: VcpuId;
  vector: number;
}

/** Broadcast of a write to the registers every node needs to compute interrupt destinations. */
export type ApicRegister = "id" | "ldr" | "dfr";
export const APIC_REGISTERS: readonly ApicRegister[] = ["id", "ldr", "dfr"];
export interface ApicRegWrite {
  type: "apic-reg";
  vcpu: VcpuId;
  reg: ApicRegister;
  value: number;
}

// ---------------------------------------------------------------- I/O forwarded to node 0

export type IoSize = 1 | 2 | 4;

/** Reads block the vCPU until the matching `io-reply` (same `id`) arrives. */
export interface PortRead {
  type: "port-read";
  id: number;
  vcpu: VcpuId;
  port: number;
  size: IoSize;
}
/** Writes are posted: no reply, ordered by the link. */
export interface PortWrite {
  type: "port-write";
  vcpu: VcpuId;
  port: number;
  size: IoSize;
  value: number;
}
export interface MmioRead {
  type: "mmio-read";
  id: number;
  vcpu: VcpuId;
  addr: number;
  size: IoSize;
}
export interface MmioWrite {
  type: "mmio-write";
  vcpu: VcpuId;
  addr: number;
  size: IoSize;
  value: number;
}
export interface IoReply {
  type: "io-reply";
  id: number;
  value: number;
}

// ---------------------------------------------------------------- console

/** Keyboard bytes from any tab, for node 0's UART. */
export interface ConsoleInput {
  type: "console-input";
  bytes: Uint8Array;
}
/** UART output from node 0, shown on every tab. */
export interface ConsoleOutput {
  type: "console-output";
  bytes: Uint8Array;
}

// ---------------------------------------------------------------- vCPU control

export type VcpuRunState = "stopped" | "waiting-sipi" | "running" | "halted" | "waiting-page" | "waiting-io";
export const VCPU_RUN_STATES: readonly VcpuRunState[] = [
  "stopped",
  "waiting-sipi",
  "running",
  "halted",
  "waiting-page",
  "waiting-io",
];

export interface VcpuStart {
  type: "vcpu-start";
  vcpu: VcpuId;
}
export interface VcpuStop {
  type: "vcpu-stop";
  vcpu: VcpuId;
}
export interface VcpuStateMsg {
  type: "vcpu-state";
  vcpu: VcpuId;
  state: VcpuRunState;
  instructions: number;
}

// ---------------------------------------------------------------- statistics (live view)

/** Per-node counters, all monotonically increasing integers. The order is the wire order. */
export const STAT_COUNTERS = [
  "readFaults",
  "writeFaults",
  "upgrades",
  "requestsSent",
  "forwardsServed",
  "pagesSentBytes",
  "pagesSentZero",
  "pagesSentCurrent",
  "invalidationsSent",
  "invalidationsReceived",
  "ipisSent",
  "ipisReceived",
  "irqsForwarded",
  "ioForwarded",
  "bytesSent",
  "bytesReceived",
] as const;
export type StatCounter = (typeof STAT_COUNTERS)[number];
export type StatCounters = Record<StatCounter, number>;

/** `count` consecutive pages from `first` that are now in `state` on the reporting node. */
export interface PageRun {
  first: PageNumber;
  count: number;
  state: PageState;
}

export interface VcpuStat {
  vcpu: VcpuId;
  state: VcpuRunState;
  instructions: number;
}

export interface LinkStat {
  peer: NodeId;
  /** Smoothed round trip in microseconds. */
  rttUs: number;
}

/**
 * One node's snapshot, a few times a second. `pages` holds only the pages whose state on this
 * node changed since the previous snapshot (runs sorted by page, not overlapping).
 */
export interface StatsSnapshot {
  type: "stats";
  node: NodeId;
  seq: number;
  atMs: number;
  counters: StatCounters;
  vcpus: VcpuStat[];
  links: LinkStat[];
  pages: PageRun[];
}

// ---------------------------------------------------------------- live-view report

/** Kinds of interrupt a node counts for the live view: the APIC delivery modes, plus IOAPIC-routed IRQs. */
export type InterruptKind = DeliveryMode | "irq";
export const INTERRUPT_KINDS: readonly InterruptKind[] = ["fixed", "lowest", "smi", "nmi", "init", "init-deassert", "startup", "extint", "irq"];

/** `count` grants of `page` the reporting node served to node `to` since its previous report. */
export interface ReportPageMove {
  page: PageNumber;
  to: NodeId;
  count: number;
}

/** Cumulative count of interrupts vCPU `src` sent to vCPU `dest`, as counted at the sending node. */
export interface ReportIpiCount {
  src: VcpuId;
  dest: VcpuId;
  kind: InterruptKind;
  count: number;
}

export type ForwardedIoOp = "port-read" | "port-write" | "mmio-read" | "mmio-write";
export const FORWARDED_IO_OPS: readonly ForwardedIoOp[] = ["port-read", "port-write", "mmio-read", "mmio-write"];

/**
 * One DSM, interrupt or I/O event a node recorded while a trace records. `node` is the recording
 * node; times are ms on a clock the receiver knows how to align (the nodes use wall-clock ms).
 */
export type ReportEvent =
  /** A vCPU's page fault, from the fault to the retry. */
  | { type: "fault"; node: NodeId; vcpu: VcpuId; page: PageNumber; access: FaultAccess; startMs: number; endMs: number }
  /** A page's bytes (or "current"/"zero") sent by `node` to `to`. */
  | { type: "page-sent"; node: NodeId; to: NodeId; page: PageNumber; form: PageData["form"]; atMs: number }
  /** `node` dropped its copy of `page` because `by` is about to write it. */
  | { type: "invalidate"; node: NodeId; page: PageNumber; by: NodeId; atMs: number }
  /** An interrupt `src` (vCPU) sent to `dest` (vCPU), at the sending node. */
  | { type: "ipi"; node: NodeId; src: VcpuId; dest: VcpuId; kind: InterruptKind; vector?: number; atMs: number }
  /** A port or MMIO access forwarded to the device node (reads block: start..end; `addr` is the port or address). */
  | { type: "io"; node: NodeId; vcpu: VcpuId; op: ForwardedIoOp; addr: number; startMs: number; endMs: number };
export type ReportEventType = ReportEvent["type"];
export const REPORT_EVENT_TYPES: readonly ReportEventType[] = ["fault", "page-sent", "invalidate", "ipi", "io"];

/**
 * What a node reports for the live view beyond its `stats` snapshot, right after it: the pages it
 * sent since the previous report (numbered by `movesSeq`), its cumulative interrupt counts by
 * destination and kind, and, while a trace records, its events (all recorded by `node`).
 */
export interface ViewReport {
  type: "view-report";
  node: NodeId;
  movesSeq: number;
  moves: ReportPageMove[];
  ipiCounts: ReportIpiCount[];
  events: ReportEvent[];
  /** Events the node recorded but could not keep (over its per-report limit). */
  droppedEvents: number;
}

// ---------------------------------------------------------------- the union

export type DsmMessage =
  | DsmRequest
  | DsmForward
  | DsmGrant
  | DsmInvalidate
  | DsmInvalidateAck
  | DsmConfirm
  | DsmHandoff
  | DsmRecords;

export type Message =
  | Hello
  | ClusterConfig
  | Bye
  | Ping
  | Pong
  | DsmMessage
  | Ipi
  | IoApicIrq
  | Eoi
  | ApicRegWrite
  | PortRead
  | PortWrite
  | MmioRead
  | MmioWrite
  | IoReply
  | ConsoleInput
  | ConsoleOutput
  | VcpuStart
  | VcpuStop
  | VcpuStateMsg
  | StatsSnapshot
  | ViewReport;

export type MessageType = Message["type"];
