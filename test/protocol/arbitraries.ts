// fast-check generators for every protocol message (valid ones: the codec must round-trip them).

import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import type { Delivery, Message, PageData, PageRun, ReportEvent, StatCounters, ViewReport } from "../../src/protocol/messages.ts";
import {
  APIC_REGISTERS,
  BYE_REASONS,
  FORWARDED_IO_OPS,
  INTERRUPT_KINDS,
  ROLES,
  STAT_COUNTERS,
  VCPU_RUN_STATES,
} from "../../src/protocol/messages.ts";
import { MAX_PAGE, PAGE_SIZE, PAGE_STATES } from "../../src/protocol/types.ts";

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const version = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const nodeId = fc.integer({ min: 0, max: 254 });
const vcpuId = fc.integer({ min: 0, max: 254 });
const safe = fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.maxSafeNat());
const text = fc.string({ unit: "grapheme", maxLength: 40 });
const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
const access = fc.constantFrom("read" as const, "write" as const);
const ioSize = fc.constantFrom(1 as const, 2 as const, 4 as const);
const trigger = fc.constantFrom("edge" as const, "level" as const);

const pageBytes = fc.oneof(
  fc.uint8Array({ minLength: PAGE_SIZE, maxLength: PAGE_SIZE }),
  // mostly-zero pages with a few set bytes, as real pages often are
  fc.array(fc.tuple(fc.integer({ min: 0, max: PAGE_SIZE - 1 }), u8), { maxLength: 5 }).map((sets) => {
    const b = new Uint8Array(PAGE_SIZE);
    for (const [i, v] of sets) b[i] = v;
    return b;
  }),
);

const pageData: Arbitrary<PageData> = fc.oneof(
  pageBytes.map((bytes) => ({ form: "bytes" as const, bytes })),
  fc.constant({ form: "zero" as const }),
  fc.constant({ form: "current" as const }),
);

/** Strictly ascending page numbers (handoffs and manager records are sorted, without duplicates). */
const ascendingPages = (max: number, minLength: number) =>
  fc.uniqueArray(u32, { minLength, maxLength: max }).map((pages) => pages.sort((a, b) => a - b));

const handoff = fc
  .tuple(ascendingPages(4, 0), fc.boolean())
  .chain(([pages, last]) =>
    fc
      .tuple(...pages.map(() => fc.record({ version, copyset: fc.array(nodeId, { maxLength: 4 }), data: pageData })))
      .map((entries) => ({
        type: "dsm-handoff" as const,
        pages: entries.map((e, i) => ({ page: pages[i]!, ...e })),
        last: last || pages.length === 0,
      })),
  );

const records = ascendingPages(20, 1).chain((pages) =>
  fc.tuple(...pages.map(() => nodeId)).map((owners) => ({
    type: "dsm-records" as const,
    records: owners.map((owner, i) => ({ page: pages[i]!, owner })),
  })),
);

export const delivery: Arbitrary<Delivery> = fc.oneof(
  fc.record({ mode: fc.constant("fixed" as const), vector: u8, trigger }),
  fc.record({ mode: fc.constant("lowest" as const), vector: u8, trigger }),
  fc.constant({ mode: "smi" as const }),
  fc.constant({ mode: "nmi" as const }),
  fc.constant({ mode: "init" as const }),
  fc.constant({ mode: "init-deassert" as const }),
  fc.record({ mode: fc.constant("startup" as const), vector: u8 }),
  fc.constant({ mode: "extint" as const }),
);

const pageRuns: Arbitrary<PageRun[]> = fc
  .array(
    fc.record({
      gap: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 100_000 })),
      count: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 100_000 })),
      state: fc.constantFrom(...PAGE_STATES),
    }),
    { maxLength: 30 },
  )
  .map((items) => {
    const runs: PageRun[] = [];
    let next = 0;
    for (const { gap, count, state } of items) {
      const first = next + gap;
      if (first + count - 1 > MAX_PAGE) break;
      runs.push({ first, count, state });
      next = first + count;
    }
    return runs;
  });

const counters: Arbitrary<StatCounters> = fc
  .array(safe, { minLength: STAT_COUNTERS.length, maxLength: STAT_COUNTERS.length })
  .map((values) => Object.fromEntries(STAT_COUNTERS.map((name, i) => [name, values[i]!])) as StatCounters);

const grant = fc.oneof(
  fc.record({ access: fc.constant("write" as const), owner: fc.constant(true), copyset: fc.constant<number[]>([]) }),
  fc.record({ access: fc.constant("read" as const), owner: fc.constant(false), copyset: fc.constant<number[]>([]) }),
  fc.record({
    access: fc.constant("read" as const),
    owner: fc.constant(true),
    copyset: fc.uniqueArray(nodeId, { maxLength: 8 }),
  }),
);

const configArb = fc.integer({ min: 1, max: 255 }).chain((nodes) =>
  fc.record({
    type: fc.constant("config" as const),
    nodes: fc.constant(nodes),
    memoryPages: fc.integer({ min: 1, max: 0xffff_ffff }),
    vcpuHome: fc.array(fc.integer({ min: 0, max: nodes - 1 }), { minLength: 1, maxLength: 64 }),
    readTakesOwnership: fc.boolean(),
    guest: text,
  }),
);

const valueFor = (size: 1 | 2 | 4) => fc.integer({ min: 0, max: 2 ** (size * 8) - 1 });

/** A span: start, and an end no earlier (events that last). */
const span = fc.tuple(finite, fc.double({ min: 0, max: 1e6, noNaN: true })).map(([startMs, d]) => ({ startMs, endMs: startMs + d })).filter((s) => Number.isFinite(s.endMs));

/** Events recorded by `node` (a report carries only its node's events). */
const reportEvent = (node: number): Arbitrary<ReportEvent> =>
  fc.oneof(
    fc.record({ vcpu: vcpuId, page: u32, access, s: span }).map(({ s, ...e }) => ({ type: "fault" as const, node, ...e, ...s })),
    fc.record({ to: nodeId, page: u32, form: fc.constantFrom("bytes" as const, "zero" as const, "current" as const), atMs: finite }).map((e) => ({ type: "page-sent" as const, node, ...e })),
    fc.record({ page: u32, by: nodeId, atMs: finite }).map((e) => ({ type: "invalidate" as const, node, ...e })),
    fc.record({ src: vcpuId, dest: vcpuId, kind: fc.constantFrom(...INTERRUPT_KINDS), vector: fc.option(u8, { nil: undefined }), atMs: finite }).map(({ vector, ...e }) => ({
      type: "ipi" as const,
      node,
      ...e,
      ...(vector === undefined ? {} : { vector }),
    })),
    fc.record({ vcpu: vcpuId, op: fc.constantFrom(...FORWARDED_IO_OPS), addr: u32, s: span }).map(({ s, ...e }) => ({ type: "io" as const, node, ...e, ...s })),
  );

export const viewReport: Arbitrary<ViewReport> = nodeId.chain((node) =>
  fc.record({
    type: fc.constant("view-report" as const),
    node: fc.constant(node),
    movesSeq: u32,
    moves: fc.array(fc.record({ page: u32, to: nodeId, count: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })) }), { maxLength: 8 }),
    ipiCounts: fc.array(fc.record({ src: vcpuId, dest: vcpuId, kind: fc.constantFrom(...INTERRUPT_KINDS), count: safe }), { maxLength: 8 }),
    events: fc.array(reportEvent(node), { maxLength: 12 }),
    droppedEvents: safe,
  }),
);

export const message: Arbitrary<Message> = fc.oneof(
  viewReport,
  fc.record({
    type: fc.constant("hello" as const),
    node: nodeId,
    role: fc.constantFrom(...ROLES),
    vcpus: fc.array(vcpuId, { maxLength: 16 }),
    build: text,
  }),
  configArb,
  fc.record({ type: fc.constant("bye" as const), reason: fc.constantFrom(...BYE_REASONS), detail: text }),
  fc.record({ type: fc.constant("ping" as const), seq: u32, atMs: finite }),
  fc.record({ type: fc.constant("pong" as const), seq: u32, atMs: finite }),
  fc.record({ type: fc.constant("dsm-request" as const), page: u32, access, have: safe }),
  fc.record({ type: fc.constant("dsm-forward" as const), page: u32, access, requester: nodeId, have: safe }),
  fc
    .tuple(grant, u32, version, nodeId, pageData)
    .map(([g, page, v, acks, data]) => ({ type: "dsm-grant" as const, page, ...g, version: v, acks, data })),
  fc.record({ type: fc.constant("dsm-invalidate" as const), page: u32, version, ackTo: nodeId }),
  fc.record({ type: fc.constant("dsm-invalidate-ack" as const), page: u32, version }),
  fc.record({ type: fc.constant("dsm-confirm" as const), page: u32, access }),
  handoff,
  records,
  fc.record({ type: fc.constant("ipi" as const), src: vcpuId, dest: vcpuId, delivery }),
  fc.record({ type: fc.constant("irq" as const), dest: vcpuId, pin: u8, delivery }),
  fc.record({ type: fc.constant("eoi" as const), vcpu: vcpuId, vector: u8 }),
  fc.record({ type: fc.constant("apic-reg" as const), vcpu: vcpuId, reg: fc.constantFrom(...APIC_REGISTERS), value: u32 }),
  fc.record({ type: fc.constant("port-read" as const), id: u32, vcpu: vcpuId, port: u16, size: ioSize }),
  ioSize.chain((size) =>
    fc.record({ type: fc.constant("port-write" as const), vcpu: vcpuId, port: u16, size: fc.constant(size), value: valueFor(size) }),
  ),
  fc.record({ type: fc.constant("mmio-read" as const), id: u32, vcpu: vcpuId, addr: u32, size: ioSize }),
  ioSize.chain((size) =>
    fc.record({ type: fc.constant("mmio-write" as const), vcpu: vcpuId, addr: u32, size: fc.constant(size), value: valueFor(size) }),
  ),
  fc.record({ type: fc.constant("io-reply" as const), id: u32, value: u32 }),
  fc.record({ type: fc.constant("console-input" as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constant("console-output" as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constant("vcpu-start" as const), vcpu: vcpuId }),
  fc.record({ type: fc.constant("vcpu-stop" as const), vcpu: vcpuId }),
  fc.record({
    type: fc.constant("vcpu-state" as const),
    vcpu: vcpuId,
    state: fc.constantFrom(...VCPU_RUN_STATES),
    instructions: safe,
  }),
  fc.record({
    type: fc.constant("stats" as const),
    node: nodeId,
    seq: u32,
    atMs: finite,
    counters,
    vcpus: fc.array(fc.record({ vcpu: vcpuId, state: fc.constantFrom(...VCPU_RUN_STATES), instructions: safe }), {
      maxLength: 8,
    }),
    links: fc.array(fc.record({ peer: nodeId, rttUs: safe }), { maxLength: 8 }),
    pages: pageRuns,
  }),
);
