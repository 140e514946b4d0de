// The one place where messages become bytes and bytes become messages.
//
// Frame: [protocol version u8][type code u8][payload]. The version is in every frame (one byte)
// so a peer on another version is caught on its first frame, whatever that frame is. Fields are
// little-endian and unpadded (page versions are varints: they never wrap in practice); page data is exactly PAGE_SIZE bytes, and zero pages or copies the
// requester already holds travel without bytes. Decoding validates every field and throws only
// CodecError; encoding validates too, so an invalid message never reaches the wire.

import type {
  Delivery,
  DeliveryMode,
  IoSize,
  Message,
  MessageType,
  PageData,
  PageRun,
  ReportEvent,
  StatCounters,
  ViewReport,
} from "./messages.ts";
import {
  APIC_REGISTERS,
  BYE_REASONS,
  FORWARDED_IO_OPS,
  INTERRUPT_KINDS,
  MAX_HANDOFF_PAGES,
  MAX_MANAGER_RECORDS,
  REPORT_EVENT_TYPES,
  ROLES,
  STAT_COUNTERS,
  VCPU_RUN_STATES,
} from "./messages.ts";
import { MAX_NODES, MAX_PAGE, MAX_VCPUS, PAGE_SIZE, PAGE_STATES, PROTOCOL_VERSION } from "./types.ts";
import type { FaultAccess } from "./types.ts";
import { checkInt, CodecError, Reader, Writer } from "./wire.ts";

export { CodecError } from "./wire.ts";
export type { CodecErrorReason } from "./wire.ts";

const TYPE_CODES: Record<MessageType, number> = {
  hello: 1,
  config: 2,
  bye: 3,
  ping: 4,
  pong: 5,
  "dsm-request": 16,
  "dsm-forward": 17,
  "dsm-grant": 18,
  "dsm-invalidate": 19,
  "dsm-invalidate-ack": 20,
  "dsm-confirm": 21,
  "dsm-handoff": 22,
  "dsm-records": 23,
  ipi: 32,
  irq: 33,
  eoi: 34,
  "apic-reg": 35,
  "port-read": 48,
  "port-write": 49,
  "mmio-read": 50,
  "mmio-write": 51,
  "io-reply": 52,
  "console-input": 64,
  "console-output": 65,
  "vcpu-start": 80,
  "vcpu-stop": 81,
  "vcpu-state": 82,
  stats: 96,
  "view-report": 97,
};

/** Every message type the codec knows, in code order (the fuzz checks it generates each one). */
export const MESSAGE_TYPES = Object.keys(TYPE_CODES) as readonly MessageType[];
const TYPE_BY_CODE = new Map<number, MessageType>(
  Object.entries(TYPE_CODES).map(([name, code]) => [code, name as MessageType]),
);

/** Largest console chunk and text field; the fabric chunks anything bigger than its channel limit. */
export const MAX_CONSOLE_BYTES = 65536;
const MAX_TEXT_BYTES = 1024;
const MAX_PAGE_RUNS = 1 << 20;
/** Limits of one live-view report (a node reports 4 times a second and keeps at most this many events). */
export const MAX_REPORT_EVENTS = 65536;
export const MAX_REPORT_MOVES = 65536;
export const MAX_REPORT_IPI_COUNTS = 65536;

const ACCESSES: readonly FaultAccess[] = ["read", "write"];
const TRIGGERS = ["edge", "level"] as const;
const DATA_FORMS: readonly PageData["form"][] = ["bytes", "zero", "current"];
// x86 delivery-mode encodings (ICR / redirection entry bits 8..10); INIT de-assert gets 8.
const DELIVERY_CODES: Record<DeliveryMode, number> = {
  fixed: 0,
  lowest: 1,
  smi: 2,
  nmi: 4,
  init: 5,
  startup: 6,
  extint: 7,
  "init-deassert": 8,
};
const DELIVERY_BY_CODE = new Map<number, DeliveryMode>(
  Object.entries(DELIVERY_CODES).map(([mode, code]) => [code, mode as DeliveryMode]),
);

function enumCode<T>(list: readonly T[], value: T, field: string): number {
  const i = list.indexOf(value);
  if (i < 0) throw new CodecError("bad-value", `${field} is ${String(value)}, expected one of ${list.join(", ")}`);
  return i;
}

function enumValue<T>(list: readonly T[], code: number, field: string): T {
  const value = list[code];
  if (value === undefined) throw new CodecError("bad-value", `${field} code ${code} is not one of ${list.join(", ")}`);
  return value;
}

// Field helpers shared by encoder and decoder, so each range is written down once.
const node = (v: number, f: string) => checkInt(v, 0, MAX_NODES - 1, f);
const vcpu = (v: number, f: string) => checkInt(v, 0, MAX_VCPUS - 1, f);
const ioSize = (v: number, f: string): IoSize => {
  if (v !== 1 && v !== 2 && v !== 4) throw new CodecError("bad-value", `${f} is ${v}, expected 1, 2 or 4`);
  return v;
};
const fitsSize = (value: number, size: IoSize, f: string) => checkInt(value, 0, 2 ** (size * 8) - 1, f);

// ---------------------------------------------------------------- encoding

export function encode(msg: Message): Uint8Array {
  if (msg === null || typeof msg !== "object") throw new CodecError("bad-value", "message is not an object");
  const code = TYPE_CODES[msg.type];
  if (code === undefined) throw new CodecError("unknown-type", `message type ${String(msg.type)} is not known`);
  const w = new Writer(msg.type === "dsm-grant" ? PAGE_SIZE + 64 : msg.type === "dsm-handoff" ? 256 : 32);
  w.u8(PROTOCOL_VERSION, "protocol version");
  w.u8(code, "type");
  switch (msg.type) {
    case "hello":
      w.u8(node(msg.node, "hello.node"), "hello.node");
      w.u8(enumCode(ROLES, msg.role, "hello.role"), "hello.role");
      writeList(w, msg.vcpus, MAX_VCPUS, "hello.vcpus", (v, f) => w.u8(vcpu(v, f), f));
      w.text(msg.build, "hello.build", MAX_TEXT_BYTES);
      break;
    case "config":
      checkConfig(msg.nodes, msg.memoryPages, msg.vcpuHome);
      w.u8(msg.nodes, "config.nodes");
      w.u32(msg.memoryPages, "config.memoryPages");
      writeList(w, msg.vcpuHome, MAX_VCPUS, "config.vcpuHome", (v, f) => w.u8(v, f));
      w.u8(msg.readTakesOwnership ? 1 : 0, "config.readTakesOwnership");
      w.text(msg.guest, "config.guest", MAX_TEXT_BYTES);
      break;
    case "bye":
      w.u8(enumCode(BYE_REASONS, msg.reason, "bye.reason"), "bye.reason");
      w.text(msg.detail, "bye.detail", MAX_TEXT_BYTES);
      break;
    case "ping":
    case "pong":
      w.u32(msg.seq, `${msg.type}.seq`);
      w.f64(msg.atMs, `${msg.type}.atMs`);
      break;
    case "dsm-request":
      w.u32(msg.page, "dsm-request.page");
      w.u8(enumCode(ACCESSES, msg.access, "dsm-request.access"), "dsm-request.access");
      w.varint(msg.have, "dsm-request.have");
      break;
    case "dsm-forward":
      w.u32(msg.page, "dsm-forward.page");
      w.u8(enumCode(ACCESSES, msg.access, "dsm-forward.access"), "dsm-forward.access");
      w.u8(node(msg.requester, "dsm-forward.requester"), "dsm-forward.requester");
      w.varint(msg.have, "dsm-forward.have");
      break;
    case "dsm-grant": {
      enumCode(ACCESSES, msg.access, "dsm-grant.access");
      if (!Array.isArray(msg.copyset)) throw new CodecError("bad-value", "dsm-grant.copyset is not an array");
      checkGrant(msg.access, msg.owner, msg.copyset.length, msg.version);
      w.u32(msg.page, "dsm-grant.page");
      // flags: bit0 write access, bit1 ownership; bits 2..3 the data form
      const form = enumCode(DATA_FORMS, msg.data?.form, "dsm-grant.data.form");
      w.u8((msg.access === "write" ? 1 : 0) | (msg.owner ? 2 : 0) | (form << 2), "dsm-grant.flags");
      w.varint(msg.version, "dsm-grant.version");
      w.u8(node(msg.acks, "dsm-grant.acks"), "dsm-grant.acks");
      writeList(w, msg.copyset, MAX_NODES, "dsm-grant.copyset", (v, f) => w.u8(node(v, f), f));
      if (msg.data.form === "bytes") {
        const bytes = msg.data.bytes;
        if (!(bytes instanceof Uint8Array) || bytes.length !== PAGE_SIZE)
          throw new CodecError("bad-length", `dsm-grant.data.bytes must be ${PAGE_SIZE} bytes`);
        w.raw(bytes);
      }
      break;
    }
    case "dsm-invalidate":
      w.u32(msg.page, "dsm-invalidate.page");
      w.varint(checkInt(msg.version, 1, Number.MAX_SAFE_INTEGER, "dsm-invalidate.version"), "dsm-invalidate.version");
      w.u8(node(msg.ackTo, "dsm-invalidate.ackTo"), "dsm-invalidate.ackTo");
      break;
    case "dsm-invalidate-ack":
      w.u32(msg.page, "dsm-invalidate-ack.page");
      w.varint(checkInt(msg.version, 1, Number.MAX_SAFE_INTEGER, "dsm-invalidate-ack.version"), "dsm-invalidate-ack.version");
      break;
    case "dsm-confirm":
      w.u32(msg.page, "dsm-confirm.page");
      w.u8(enumCode(ACCESSES, msg.access, "dsm-confirm.access"), "dsm-confirm.access");
      break;
    case "dsm-handoff": {
      if (!Array.isArray(msg.pages)) throw new CodecError("bad-value", "dsm-handoff.pages is not an array");
      if (msg.pages.length === 0 && msg.last !== true)
        throw new CodecError("bad-value", "dsm-handoff carries no pages and is not the last batch");
      w.u8(msg.last === true ? 1 : 0, "dsm-handoff.flags");
      let prev = -1;
      writeList(w, msg.pages, MAX_HANDOFF_PAGES, "dsm-handoff.pages", (hp, f) => {
        w.u32(hp.page, `${f}.page`);
        prev = ascending(prev, hp.page, `${f}.page`);
        const form = enumCode(DATA_FORMS, hp.data?.form, `${f}.data.form`);
        w.u8(form, `${f}.data.form`);
        w.varint(checkInt(hp.version, 1, Number.MAX_SAFE_INTEGER, `${f}.version`), `${f}.version`);
        writeList(w, hp.copyset, MAX_NODES, `${f}.copyset`, (v, g) => w.u8(node(v, g), g));
        if (hp.data.form === "bytes") {
          const bytes = hp.data.bytes;
          if (!(bytes instanceof Uint8Array) || bytes.length !== PAGE_SIZE)
            throw new CodecError("bad-length", `${f}.data.bytes must be ${PAGE_SIZE} bytes`);
          w.raw(bytes);
        }
      });
      break;
    }
    case "dsm-records": {
      if (!Array.isArray(msg.records) || msg.records.length === 0)
        throw new CodecError("bad-value", "dsm-records.records must be a non-empty array");
      let prev = -1;
      writeWideList(w, msg.records, MAX_MANAGER_RECORDS, "dsm-records.records", (rec, f) => {
        w.u32(rec.page, `${f}.page`);
        prev = ascending(prev, rec.page, `${f}.page`);
        w.u8(node(rec.owner, `${f}.owner`), `${f}.owner`);
      });
      break;
    }
    case "ipi":
      w.u8(vcpu(msg.src, "ipi.src"), "ipi.src");
      w.u8(vcpu(msg.dest, "ipi.dest"), "ipi.dest");
      writeDelivery(w, msg.delivery, "ipi.delivery");
      break;
    case "irq":
      w.u8(vcpu(msg.dest, "irq.dest"), "irq.dest");
      w.u8(msg.pin, "irq.pin");
      writeDelivery(w, msg.delivery, "irq.delivery");
      break;
    case "eoi":
      w.u8(vcpu(msg.vcpu, "eoi.vcpu"), "eoi.vcpu");
      w.u8(msg.vector, "eoi.vector");
      break;
    case "apic-reg":
      w.u8(vcpu(msg.vcpu, "apic-reg.vcpu"), "apic-reg.vcpu");
      w.u8(enumCode(APIC_REGISTERS, msg.reg, "apic-reg.reg"), "apic-reg.reg");
      w.u32(msg.value, "apic-reg.value");
      break;
    case "port-read":
      w.u32(msg.id, "port-read.id");
      w.u8(vcpu(msg.vcpu, "port-read.vcpu"), "port-read.vcpu");
      w.u16(msg.port, "port-read.port");
      w.u8(ioSize(msg.size, "port-read.size"), "port-read.size");
      break;
    case "port-write":
      w.u8(vcpu(msg.vcpu, "port-write.vcpu"), "port-write.vcpu");
      w.u16(msg.port, "port-write.port");
      w.u8(ioSize(msg.size, "port-write.size"), "port-write.size");
      w.u32(fitsSize(msg.value, msg.size, "port-write.value"), "port-write.value");
      break;
    case "mmio-read":
      w.u32(msg.id, "mmio-read.id");
      w.u8(vcpu(msg.vcpu, "mmio-read.vcpu"), "mmio-read.vcpu");
      w.u32(msg.addr, "mmio-read.addr");
      w.u8(ioSize(msg.size, "mmio-read.size"), "mmio-read.size");
      break;
    case "mmio-write":
      w.u8(vcpu(msg.vcpu, "mmio-write.vcpu"), "mmio-write.vcpu");
      w.u32(msg.addr, "mmio-write.addr");
      w.u8(ioSize(msg.size, "mmio-write.size"), "mmio-write.size");
      w.u32(fitsSize(msg.value, msg.size, "mmio-write.value"), "mmio-write.value");
      break;
    case "io-reply":
      w.u32(msg.id, "io-reply.id");
      w.u32(msg.value, "io-reply.value");
      break;
    case "console-input":
    case "console-output":
      w.bytes(msg.bytes, `${msg.type}.bytes`, MAX_CONSOLE_BYTES);
      break;
    case "vcpu-start":
    case "vcpu-stop":
      w.u8(vcpu(msg.vcpu, `${msg.type}.vcpu`), `${msg.type}.vcpu`);
      break;
    case "vcpu-state":
      w.u8(vcpu(msg.vcpu, "vcpu-state.vcpu"), "vcpu-state.vcpu");
      w.u8(enumCode(VCPU_RUN_STATES, msg.state, "vcpu-state.state"), "vcpu-state.state");
      w.varint(msg.instructions, "vcpu-state.instructions");
      break;
    case "stats":
      w.u8(node(msg.node, "stats.node"), "stats.node");
      w.u32(msg.seq, "stats.seq");
      w.f64(msg.atMs, "stats.atMs");
      for (const name of STAT_COUNTERS) w.varint(msg.counters[name], `stats.counters.${name}`);
      writeList(w, msg.vcpus, MAX_VCPUS, "stats.vcpus", (v, f) => {
        w.u8(vcpu(v.vcpu, `${f}.vcpu`), `${f}.vcpu`);
        w.u8(enumCode(VCPU_RUN_STATES, v.state, `${f}.state`), `${f}.state`);
        w.varint(v.instructions, `${f}.instructions`);
      });
      writeList(w, msg.links, MAX_NODES, "stats.links", (l, f) => {
        w.u8(node(l.peer, `${f}.peer`), `${f}.peer`);
        w.varint(l.rttUs, `${f}.rttUs`);
      });
      writePageRuns(w, msg.pages);
      break;
    case "view-report":
      writeViewReport(w, msg);
      break;
    default: {
      const never: never = msg;
      throw new CodecError("unknown-type", `message type ${String((never as Message).type)} is not known`);
    }
  }
  return w.finish();
}

function writeList<T>(w: Writer, items: readonly T[], max: number, field: string, each: (v: T, f: string) => void) {
  if (!Array.isArray(items)) throw new CodecError("bad-value", `${field} is not an array`);
  if (items.length > max) throw new CodecError("bad-length", `${field} has ${items.length} items, at most ${max}`);
  w.u8(items.length, `${field} count`);
  items.forEach((v, i) => each(v, `${field}[${i}]`));
}

function writeDelivery(w: Writer, d: Delivery, field: string): void {
  const code = DELIVERY_CODES[d?.mode];
  if (code === undefined) throw new CodecError("bad-value", `${field}.mode is ${String(d?.mode)}`);
  w.u8(code, `${field}.mode`);
  switch (d.mode) {
    case "fixed":
    case "lowest":
      w.u8(d.vector, `${field}.vector`);
      w.u8(enumCode(TRIGGERS, d.trigger, `${field}.trigger`), `${field}.trigger`);
      break;
    case "startup":
      w.u8(d.vector, `${field}.vector`);
      break;
    default:
      break;
  }
}

/** Runs as (gap from the previous run's end, count - 1, state): small numbers, mostly one byte each. */
function writePageRuns(w: Writer, runs: readonly PageRun[]): void {
  if (!Array.isArray(runs)) throw new CodecError("bad-value", "stats.pages is not an array");
  if (runs.length > MAX_PAGE_RUNS) throw new CodecError("bad-length", `stats.pages has ${runs.length} runs`);
  w.varint(runs.length, "stats.pages count");
  let next = 0; // first page the next run may start at
  runs.forEach((run, i) => {
    const f = `stats.pages[${i}]`;
    checkInt(run.first, 0, MAX_PAGE, `${f}.first`);
    checkInt(run.count, 1, MAX_PAGE - run.first + 1, `${f}.count`);
    if (run.first < next)
      throw new CodecError("bad-value", `${f} starts at page ${run.first}, before the end of the previous run`);
    w.varint(run.first - next, `${f}.gap`);
    w.varint(run.count - 1, `${f}.count`);
    w.u8(enumCode(PAGE_STATES, run.state, `${f}.state`), `${f}.state`);
    next = run.first + run.count;
  });
}

/** Pages in handoffs and record batches are strictly ascending (one canonical encoding, no duplicates). */
function ascending(prev: number, page: number, field: string): number {
  if (page <= prev) throw new CodecError("bad-value", `${field} is ${page}, not above the previous page ${prev}`);
  return page;
}

function checkConfig(nodes: number, memoryPages: number, vcpuHome: readonly number[]): void {
  checkInt(nodes, 1, MAX_NODES, "config.nodes");
  checkInt(memoryPages, 1, MAX_PAGE, "config.memoryPages");
  if (!Array.isArray(vcpuHome) || vcpuHome.length === 0)
    throw new CodecError("bad-length", "config.vcpuHome must list at least one vCPU");
  vcpuHome.forEach((n, i) => checkInt(n, 0, nodes - 1, `config.vcpuHome[${i}]`));
}

function checkGrant(access: FaultAccess, owner: boolean, copysetLength: number, version: number): void {
  checkInt(version, 1, Number.MAX_SAFE_INTEGER, "dsm-grant.version");
  // A writer owns the page and, its copies all invalidated, has an empty copyset; non-owners track none.
  if (access === "write" && !owner) throw new CodecError("bad-value", "dsm-grant gives write access without ownership");
  if (access === "write" && copysetLength !== 0)
    throw new CodecError("bad-value", "dsm-grant gives write access with a non-empty copyset");
  if (!owner && copysetLength !== 0) throw new CodecError("bad-value", "dsm-grant without ownership carries a copyset");
}

// A view report: its lists as (varint count, items); events carry no node (all are the reporter's).
function writeViewReport(w: Writer, msg: ViewReport): void {
  const self = node(msg.node, "view-report.node");
  w.u8(self, "view-report.node");
  w.u32(msg.movesSeq, "view-report.movesSeq");
  writeWideList(w, msg.moves, MAX_REPORT_MOVES, "view-report.moves", (m, f) => {
    w.u32(m.page, `${f}.page`);
    w.u8(node(m.to, `${f}.to`), `${f}.to`);
    w.varint(checkInt(m.count, 1, Number.MAX_SAFE_INTEGER, `${f}.count`), `${f}.count`);
  });
  writeWideList(w, msg.ipiCounts, MAX_REPORT_IPI_COUNTS, "view-report.ipiCounts", (c, f) => {
    w.u8(vcpu(c.src, `${f}.src`), `${f}.src`);
    w.u8(vcpu(c.dest, `${f}.dest`), `${f}.dest`);
    w.u8(enumCode(INTERRUPT_KINDS, c.kind, `${f}.kind`), `${f}.kind`);
    w.varint(c.count, `${f}.count`);
  });
  writeWideList(w, msg.events, MAX_REPORT_EVENTS, "view-report.events", (e, f) => {
    if (e?.node !== self) throw new CodecError("bad-value", `${f}.node is ${String(e?.node)}, but node ${self} reports it (a node reports only its own events)`);
    w.u8(enumCode(REPORT_EVENT_TYPES, e.type, `${f}.type`), `${f}.type`);
    switch (e.type) {
      case "fault":
        w.u8(vcpu(e.vcpu, `${f}.vcpu`), `${f}.vcpu`);
        w.u32(e.page, `${f}.page`);
        w.u8(enumCode(ACCESSES, e.access, `${f}.access`), `${f}.access`);
        writeSpan(w, e.startMs, e.endMs, f);
        break;
      case "page-sent":
        w.u8(node(e.to, `${f}.to`), `${f}.to`);
        w.u32(e.page, `${f}.page`);
        w.u8(enumCode(DATA_FORMS, e.form, `${f}.form`), `${f}.form`);
        w.f64(e.atMs, `${f}.atMs`);
        break;
      case "invalidate":
        w.u32(e.page, `${f}.page`);
        w.u8(node(e.by, `${f}.by`), `${f}.by`);
        w.f64(e.atMs, `${f}.atMs`);
        break;
      case "ipi":
        w.u8(vcpu(e.src, `${f}.src`), `${f}.src`);
        w.u8(vcpu(e.dest, `${f}.dest`), `${f}.dest`);
        w.u8(enumCode(INTERRUPT_KINDS, e.kind, `${f}.kind`), `${f}.kind`);
        // vector: 0 = none, else vector + 1 (a u16 keeps "none" apart from vector 0)
        w.u16(e.vector === undefined ? 0 : checkInt(e.vector, 0, 0xff, `${f}.vector`) + 1, `${f}.vector`);
        w.f64(e.atMs, `${f}.atMs`);
        break;
      case "io":
        w.u8(vcpu(e.vcpu, `${f}.vcpu`), `${f}.vcpu`);
        w.u8(enumCode(FORWARDED_IO_OPS, e.op, `${f}.op`), `${f}.op`);
        w.u32(e.addr, `${f}.addr`);
        writeSpan(w, e.startMs, e.endMs, f);
        break;
    }
  });
  w.varint(msg.droppedEvents, "view-report.droppedEvents");
}

function writeWideList<T>(w: Writer, items: readonly T[], max: number, field: string, each: (v: T, f: string) => void) {
  if (!Array.isArray(items)) throw new CodecError("bad-value", `${field} is not an array`);
  if (items.length > max) throw new CodecError("bad-length", `${field} has ${items.length} items, at most ${max}`);
  w.varint(items.length, `${field} count`);
  items.forEach((v, i) => each(v, `${field}[${i}]`));
}

function writeSpan(w: Writer, startMs: number, endMs: number, f: string): void {
  w.f64(startMs, `${f}.startMs`);
  w.f64(endMs, `${f}.endMs`);
  checkSpan(startMs, endMs, f);
}

function checkSpan(startMs: number, endMs: number, f: string): void {
  if (!(endMs >= startMs)) throw new CodecError("bad-value", `${f} ends (${endMs}) before it starts (${startMs})`);
}

// ---------------------------------------------------------------- decoding

export function decode(frame: Uint8Array): Message {
  if (!(frame instanceof Uint8Array)) throw new CodecError("bad-value", "frame is not a Uint8Array");
  const r = new Reader(frame);
  const version = r.u8("protocol version");
  if (version !== PROTOCOL_VERSION)
    throw new CodecError(
      "version",
      `frame is protocol version ${version}, this node speaks version ${PROTOCOL_VERSION}`,
      version,
    );
  const code = r.u8("type");
  const type = TYPE_BY_CODE.get(code);
  if (type === undefined) throw new CodecError("unknown-type", `message type code ${code} is not known`);
  const msg = decodeBody(r, type);
  r.end();
  return msg;
}

/**
 * The type a frame says it carries, without decoding or checking the rest (null: not one of ours):
 * for diagnostics that sort frames they only pass along (the hop trace). decode() is still what
 * accepts a frame.
 */
export function frameType(frame: Uint8Array): MessageType | null {
  if (frame.length < 2 || frame[0] !== PROTOCOL_VERSION) return null;
  return TYPE_BY_CODE.get(frame[1]!) ?? null;
}

function readList<T>(r: Reader, max: number, minItemBytes: number, field: string, each: (f: string) => T): T[] {
  const n = r.count(`${field} count`, max, minItemBytes);
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(each(`${field}[${i}]`));
  return out;
}

function readDelivery(r: Reader, field: string): Delivery {
  const code = r.u8(`${field}.mode`);
  const mode = DELIVERY_BY_CODE.get(code);
  if (mode === undefined) throw new CodecError("bad-value", `${field}.mode code ${code} is not a delivery mode`);
  switch (mode) {
    case "fixed":
    case "lowest": {
      const vector = r.u8(`${field}.vector`);
      const trigger = enumValue(TRIGGERS, r.u8(`${field}.trigger`), `${field}.trigger`);
      return { mode, vector, trigger };
    }
    case "startup":
      return { mode, vector: r.u8(`${field}.vector`) };
    default:
      return { mode };
  }
}

function decodeBody(r: Reader, type: MessageType): Message {
  switch (type) {
    case "hello": {
      const n = node(r.u8("hello.node"), "hello.node");
      const role = enumValue(ROLES, r.u8("hello.role"), "hello.role");
      const vcpus = readList(r, MAX_VCPUS, 1, "hello.vcpus", (f) => vcpu(r.u8(f), f));
      return { type, node: n, role, vcpus, build: r.text("hello.build", MAX_TEXT_BYTES) };
    }
    case "config": {
      const nodes = r.u8("config.nodes");
      const memoryPages = r.u32("config.memoryPages");
      const vcpuHome = readList(r, MAX_VCPUS, 1, "config.vcpuHome", (f) => r.u8(f));
      checkConfig(nodes, memoryPages, vcpuHome);
      const flag = r.u8("config.readTakesOwnership");
      if (flag > 1) throw new CodecError("bad-value", `config.readTakesOwnership is ${flag}, expected 0 or 1`);
      return {
        type,
        nodes,
        memoryPages,
        vcpuHome,
        readTakesOwnership: flag === 1,
        guest: r.text("config.guest", MAX_TEXT_BYTES),
      };
    }
    case "bye": {
      const reason = enumValue(BYE_REASONS, r.u8("bye.reason"), "bye.reason");
      return { type, reason, detail: r.text("bye.detail", MAX_TEXT_BYTES) };
    }
    case "ping":
    case "pong": {
      const seq = r.u32(`${type}.seq`);
      return { type, seq, atMs: r.f64(`${type}.atMs`) };
    }
    case "dsm-request": {
      const page = r.u32("dsm-request.page");
      const access = enumValue(ACCESSES, r.u8("dsm-request.access"), "dsm-request.access");
      return { type, page, access, have: r.varint("dsm-request.have") };
    }
    case "dsm-forward": {
      const page = r.u32("dsm-forward.page");
      const access = enumValue(ACCESSES, r.u8("dsm-forward.access"), "dsm-forward.access");
      const requester = node(r.u8("dsm-forward.requester"), "dsm-forward.requester");
      return { type, page, access, requester, have: r.varint("dsm-forward.have") };
    }
    case "dsm-grant": {
      const page = r.u32("dsm-grant.page");
      const flags = r.u8("dsm-grant.flags");
      if (flags > 0b1111) throw new CodecError("bad-value", `dsm-grant.flags ${flags} has unknown bits set`);
      const access: FaultAccess = flags & 1 ? "write" : "read";
      const owner = (flags & 2) !== 0;
      const form = enumValue(DATA_FORMS, flags >> 2, "dsm-grant.data.form");
      const version = r.varint("dsm-grant.version");
      const acks = node(r.u8("dsm-grant.acks"), "dsm-grant.acks");
      const copyset = readList(r, MAX_NODES, 1, "dsm-grant.copyset", (f) => node(r.u8(f), f));
      checkGrant(access, owner, copyset.length, version);
      let data: PageData;
      if (form === "bytes") {
        if (r.remaining !== PAGE_SIZE)
          throw new CodecError("bad-length", `dsm-grant page data is ${r.remaining} bytes, expected ${PAGE_SIZE}`);
        data = { form, bytes: r.raw(PAGE_SIZE, "dsm-grant.data") };
      } else data = { form };
      return { type, page, access, owner, version, copyset, acks, data };
    }
    case "dsm-invalidate": {
      const page = r.u32("dsm-invalidate.page");
      const version = checkInt(r.varint("dsm-invalidate.version"), 1, Number.MAX_SAFE_INTEGER, "dsm-invalidate.version");
      return { type, page, version, ackTo: node(r.u8("dsm-invalidate.ackTo"), "dsm-invalidate.ackTo") };
    }
    case "dsm-invalidate-ack": {
      const page = r.u32("dsm-invalidate-ack.page");
      const version = checkInt(r.varint("dsm-invalidate-ack.version"), 1, Number.MAX_SAFE_INTEGER, "dsm-invalidate-ack.version");
      return { type, page, version };
    }
    case "dsm-confirm": {
      const page = r.u32("dsm-confirm.page");
      return { type, page, access: enumValue(ACCESSES, r.u8("dsm-confirm.access"), "dsm-confirm.access") };
    }
    case "dsm-handoff": {
      const flags = r.u8("dsm-handoff.flags");
      if (flags > 1) throw new CodecError("bad-value", `dsm-handoff.flags ${flags} has unknown bits set`);
      let prev = -1;
      // smallest page entry: page u32, form, version, empty copyset
      const pages = readList(r, MAX_HANDOFF_PAGES, 7, "dsm-handoff.pages", (f) => {
        const page = r.u32(`${f}.page`);
        prev = ascending(prev, page, `${f}.page`);
        const form = enumValue(DATA_FORMS, r.u8(`${f}.data.form`), `${f}.data.form`);
        const version = checkInt(r.varint(`${f}.version`), 1, Number.MAX_SAFE_INTEGER, `${f}.version`);
        const copyset = readList(r, MAX_NODES, 1, `${f}.copyset`, (g) => node(r.u8(g), g));
        const data: PageData = form === "bytes" ? { form, bytes: r.raw(PAGE_SIZE, `${f}.data`) } : { form };
        return { page, version, copyset, data };
      });
      if (pages.length === 0 && flags === 0)
        throw new CodecError("bad-value", "dsm-handoff carries no pages and is not the last batch");
      return { type, pages, last: flags === 1 };
    }
    case "dsm-records": {
      let prev = -1;
      const records = readWideList(r, MAX_MANAGER_RECORDS, 5, "dsm-records.records", (f) => {
        const page = r.u32(`${f}.page`);
        prev = ascending(prev, page, `${f}.page`);
        return { page, owner: node(r.u8(`${f}.owner`), `${f}.owner`) };
      });
      if (records.length === 0) throw new CodecError("bad-value", "dsm-records.records must be a non-empty array");
      return { type, records };
    }
    case "ipi": {
      const src = vcpu(r.u8("ipi.src"), "ipi.src");
      const dest = vcpu(r.u8("ipi.dest"), "ipi.dest");
      return { type, src, dest, delivery: readDelivery(r, "ipi.delivery") };
    }
    case "irq": {
      const dest = vcpu(r.u8("irq.dest"), "irq.dest");
      const pin = r.u8("irq.pin");
      return { type, dest, pin, delivery: readDelivery(r, "irq.delivery") };
    }
    case "eoi": {
      const v = vcpu(r.u8("eoi.vcpu"), "eoi.vcpu");
      return { type, vcpu: v, vector: r.u8("eoi.vector") };
    }
    case "apic-reg": {
      const v = vcpu(r.u8("apic-reg.vcpu"), "apic-reg.vcpu");
      const reg = enumValue(APIC_REGISTERS, r.u8("apic-reg.reg"), "apic-reg.reg");
      return { type, vcpu: v, reg, value: r.u32("apic-reg.value") };
    }
    case "port-read": {
      const id = r.u32("port-read.id");
      const v = vcpu(r.u8("port-read.vcpu"), "port-read.vcpu");
      const port = r.u16("port-read.port");
      return { type, id, vcpu: v, port, size: ioSize(r.u8("port-read.size"), "port-read.size") };
    }
    case "port-write": {
      const v = vcpu(r.u8("port-write.vcpu"), "port-write.vcpu");
      const port = r.u16("port-write.port");
      const size = ioSize(r.u8("port-write.size"), "port-write.size");
      return { type, vcpu: v, port, size, value: fitsSize(r.u32("port-write.value"), size, "port-write.value") };
    }
    case "mmio-read": {
      const id = r.u32("mmio-read.id");
      const v = vcpu(r.u8("mmio-read.vcpu"), "mmio-read.vcpu");
      const addr = r.u32("mmio-read.addr");
      return { type, id, vcpu: v, addr, size: ioSize(r.u8("mmio-read.size"), "mmio-read.size") };
    }
    case "mmio-write": {
      const v = vcpu(r.u8("mmio-write.vcpu"), "mmio-write.vcpu");
      const addr = r.u32("mmio-write.addr");
      const size = ioSize(r.u8("mmio-write.size"), "mmio-write.size");
      return { type, vcpu: v, addr, size, value: fitsSize(r.u32("mmio-write.value"), size, "mmio-write.value") };
    }
    case "io-reply": {
      const id = r.u32("io-reply.id");
      return { type, id, value: r.u32("io-reply.value") };
    }
    case "console-input":
    case "console-output":
      return { type, bytes: r.bytes(`${type}.bytes`, MAX_CONSOLE_BYTES) };
    case "vcpu-start":
    case "vcpu-stop":
      return { type, vcpu: vcpu(r.u8(`${type}.vcpu`), `${type}.vcpu`) };
    case "vcpu-state": {
      const v = vcpu(r.u8("vcpu-state.vcpu"), "vcpu-state.vcpu");
      const state = enumValue(VCPU_RUN_STATES, r.u8("vcpu-state.state"), "vcpu-state.state");
      return { type, vcpu: v, state, instructions: r.varint("vcpu-state.instructions") };
    }
    case "stats": {
      const n = node(r.u8("stats.node"), "stats.node");
      const seq = r.u32("stats.seq");
      const atMs = r.f64("stats.atMs");
      const counters = {} as StatCounters;
      for (const name of STAT_COUNTERS) counters[name] = r.varint(`stats.counters.${name}`);
      const vcpus = readList(r, MAX_VCPUS, 3, "stats.vcpus", (f) => {
        const v = vcpu(r.u8(`${f}.vcpu`), `${f}.vcpu`);
        const state = enumValue(VCPU_RUN_STATES, r.u8(`${f}.state`), `${f}.state`);
        return { vcpu: v, state, instructions: r.varint(`${f}.instructions`) };
      });
      const links = readList(r, MAX_NODES, 2, "stats.links", (f) => {
        const peer = node(r.u8(`${f}.peer`), `${f}.peer`);
        return { peer, rttUs: r.varint(`${f}.rttUs`) };
      });
      return { type, node: n, seq, atMs, counters, vcpus, links, pages: readPageRuns(r) };
    }
    case "view-report":
      return readViewReport(r);
  }
}

function readViewReport(r: Reader): ViewReport {
  const self = node(r.u8("view-report.node"), "view-report.node");
  const movesSeq = r.u32("view-report.movesSeq");
  const moves = readWideList(r, MAX_REPORT_MOVES, 6, "view-report.moves", (f) => {
    const page = r.u32(`${f}.page`);
    const to = node(r.u8(`${f}.to`), `${f}.to`);
    return { page, to, count: checkInt(r.varint(`${f}.count`), 1, Number.MAX_SAFE_INTEGER, `${f}.count`) };
  });
  const ipiCounts = readWideList(r, MAX_REPORT_IPI_COUNTS, 4, "view-report.ipiCounts", (f) => {
    const src = vcpu(r.u8(`${f}.src`), `${f}.src`);
    const dest = vcpu(r.u8(`${f}.dest`), `${f}.dest`);
    const kind = enumValue(INTERRUPT_KINDS, r.u8(`${f}.kind`), `${f}.kind`);
    return { src, dest, kind, count: r.varint(`${f}.count`) };
  });
  const events = readWideList(r, MAX_REPORT_EVENTS, 13, "view-report.events", (f): ReportEvent => {
    const type = enumValue(REPORT_EVENT_TYPES, r.u8(`${f}.type`), `${f}.type`);
    switch (type) {
      case "fault": {
        const v = vcpu(r.u8(`${f}.vcpu`), `${f}.vcpu`);
        const page = r.u32(`${f}.page`);
        const access = enumValue(ACCESSES, r.u8(`${f}.access`), `${f}.access`);
        const [startMs, endMs] = readSpan(r, f);
        return { type, node: self, vcpu: v, page, access, startMs, endMs };
      }
      case "page-sent": {
        const to = node(r.u8(`${f}.to`), `${f}.to`);
        const page = r.u32(`${f}.page`);
        const form = enumValue(DATA_FORMS, r.u8(`${f}.form`), `${f}.form`);
        return { type, node: self, to, page, form, atMs: r.f64(`${f}.atMs`) };
      }
      case "invalidate": {
        const page = r.u32(`${f}.page`);
        const by = node(r.u8(`${f}.by`), `${f}.by`);
        return { type, node: self, page, by, atMs: r.f64(`${f}.atMs`) };
      }
      case "ipi": {
        const src = vcpu(r.u8(`${f}.src`), `${f}.src`);
        const dest = vcpu(r.u8(`${f}.dest`), `${f}.dest`);
        const kind = enumValue(INTERRUPT_KINDS, r.u8(`${f}.kind`), `${f}.kind`);
        const vector = checkInt(r.u16(`${f}.vector`), 0, 0x100, `${f}.vector`);
        const atMs = r.f64(`${f}.atMs`);
        return vector === 0 ? { type, node: self, src, dest, kind, atMs } : { type, node: self, src, dest, kind, vector: vector - 1, atMs };
      }
      case "io": {
        const v = vcpu(r.u8(`${f}.vcpu`), `${f}.vcpu`);
        const op = enumValue(FORWARDED_IO_OPS, r.u8(`${f}.op`), `${f}.op`);
        const addr = r.u32(`${f}.addr`);
        const [startMs, endMs] = readSpan(r, f);
        return { type, node: self, vcpu: v, op, addr, startMs, endMs };
      }
    }
  });
  return { type: "view-report", node: self, movesSeq, moves, ipiCounts, events, droppedEvents: r.varint("view-report.droppedEvents") };
}

function readWideList<T>(r: Reader, max: number, minItemBytes: number, field: string, each: (f: string) => T): T[] {
  const n = r.count(`${field} count`, max, minItemBytes, true);
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(each(`${field}[${i}]`));
  return out;
}

function readSpan(r: Reader, f: string): [number, number] {
  const startMs = r.f64(`${f}.startMs`);
  const endMs = r.f64(`${f}.endMs`);
  checkSpan(startMs, endMs, f);
  return [startMs, endMs];
}

function readPageRuns(r: Reader): PageRun[] {
  const n = r.count("stats.pages count", MAX_PAGE_RUNS, 3, true);
  const runs: PageRun[] = [];
  let next = 0;
  for (let i = 0; i < n; i++) {
    const f = `stats.pages[${i}]`;
    const first = next + r.varint(`${f}.gap`);
    const count = r.varint(`${f}.count`) + 1;
    if (first > MAX_PAGE || count > MAX_PAGE - first + 1)
      throw new CodecError("out-of-range", `${f} (pages ${first}+${count}) goes past the largest page number`);
    runs.push({ first, count, state: enumValue(PAGE_STATES, r.u8(`${f}.state`), `${f}.state`) });
    next = first + count;
  }
  return runs;
}
