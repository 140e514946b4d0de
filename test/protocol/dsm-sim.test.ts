// Deterministic simulation of the DSM protocol (see harness/protocol/dsm-sim.ts for the model and the checker).
// Default: SIM_SEEDS=10000 random configurations; raise it for a soak, e.g. SIM_SEEDS=100000.

import { describe, expect, it } from "vitest";
import { type DsmCounters, zeroDsmCounters } from "../../src/protocol/dsm/node.ts";
import { runSimulation, simOptionsForSeed } from "../../harness/protocol/dsm-sim.ts";
import type { Mutation, SimOptions, SimResult } from "../../harness/protocol/dsm-sim.ts";

const SEEDS = Number(process.env.SIM_SEEDS ?? 10000);
if (!Number.isInteger(SEEDS) || SEEDS < 1) throw new Error(`SIM_SEEDS must be a positive integer, got ${process.env.SIM_SEEDS}`);
const FIRST_SEED = Number(process.env.SIM_FIRST_SEED ?? 1);
// Pure CPU work; generous so a busy machine or a large SIM_SEEDS never times out.
const LONG = 30 * 60_000;

function describeFailure(r: SimResult): string {
  return `seed ${r.options.seed} ${JSON.stringify(r.options)}:\n  ${r.violations.slice(0, 5).join("\n  ")}`;
}

function runMany(count: number, first: number, overrides: Partial<SimOptions> = {}) {
  const failures: string[] = [];
  const totals: DsmCounters & {
    ops: number;
    multiPageOps: number;
    events: number;
    mutations: number;
    detected: number;
    joins: number;
    leaves: number;
    rejoins: number;
    midRunChanges: number;
    pagesHandedOver: number;
    holds: number;
    holdsWaited: number;
  } = {
    ...zeroDsmCounters(),
    ops: 0,
    multiPageOps: 0,
    events: 0,
    mutations: 0,
    detected: 0,
    joins: 0,
    leaves: 0,
    rejoins: 0,
    midRunChanges: 0,
    pagesHandedOver: 0,
    holds: 0,
    holdsWaited: 0,
  };
  const nodeCounts = new Set<number>();
  /** Node ids that managed a page in some run (page p is managed by node p mod N). */
  const managers = new Set<number>();
  for (let seed = first; seed < first + count; seed++) {
    const options = simOptionsForSeed(seed, overrides);
    nodeCounts.add(options.nodes);
    for (let p = 0; p < Math.min(options.pages, options.nodes); p++) managers.add(p);
    const r = runSimulation(options);
    if (r.violations.length > 0) {
      if (failures.length < 5) failures.push(describeFailure(r));
      if (r.mutationsApplied > 0) totals.detected++;
    }
    for (const key of Object.keys(r.counters) as (keyof DsmCounters)[]) totals[key] += r.counters[key];
    totals.ops += r.opsDone;
    totals.multiPageOps += r.multiPageOps;
    totals.events += r.events;
    totals.joins += r.joins;
    totals.leaves += r.leaves;
    totals.rejoins += r.rejoins;
    totals.midRunChanges += r.midRunChanges;
    totals.pagesHandedOver += r.pagesHandedOver;
    totals.holds += r.holds;
    totals.holdsWaited += r.holdsWaited;
    if (r.mutationsApplied > 0) totals.mutations++;
  }
  return { failures, totals, nodeCounts, managers };
}

describe("DSM simulation", () => {
  it(`${SEEDS} seeded runs (2..8 node slots, nodes joining and leaving, random delays and interleavings) are sequentially consistent and finish`, () => {
    const { failures, totals, nodeCounts, managers } = runMany(SEEDS, FIRST_SEED);
    expect(failures).toEqual([]);
    // The runs must really exercise the protocol's paths, or passing would mean little.
    if (SEEDS >= 1000) {
      expect([...nodeCounts].sort()).toEqual([2, 3, 4, 5, 6, 7, 8]);
      expect([...managers].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(totals.multiPageOps).toBeGreaterThan(0);
      // Membership changes really happened, in the middle of workloads, and slots came back.
      expect(totals.joins).toBeGreaterThan(SEEDS / 10);
      expect(totals.leaves).toBeGreaterThan(SEEDS / 10);
      expect(totals.rejoins).toBeGreaterThan(0);
      expect(totals.midRunChanges).toBeGreaterThan(SEEDS / 10);
      expect(totals.pagesHandedOver).toBeGreaterThan(0);
      // Half the runs hold pages for a window (Mirage's delta), and requests did wait for windows.
      expect(totals.holdsWaited).toBeGreaterThan(SEEDS / 10);
      for (const key of [
        "readFaults",
        "writeFaults",
        "upgrades",
        "forwardsServed",
        "pagesSentBytes",
        "pagesSentZero",
        "pagesSentCurrent",
        "invalidationsReceived",
      ] as const)
        expect(totals[key], key).toBeGreaterThan(0);
    }
  }, LONG);

  it("runs in both ownership modes", () => {
    for (const readTakesOwnership of [false, true]) {
      const { failures } = runMany(Math.min(SEEDS, 500), 1_000_000, { readTakesOwnership });
      expect(failures).toEqual([]);
    }
  }, LONG);

  it("hold windows: long windows, in both ownership modes, with membership changes, stay correct and finish", () => {
    for (const readTakesOwnership of [false, true]) {
      const { failures, totals } = runMany(Math.min(SEEDS, 500), 4_000_000, { holdGrants: true, holdWindow: 200, readTakesOwnership });
      expect(failures).toEqual([]);
      // Reads that do not take ownership never open a window; writes always do.
      expect(totals.holdsWaited).toBeGreaterThan(0);
    }
  }, LONG);

  it("works with every message going through the binary codec", () => {
    const { failures, totals } = runMany(Math.min(SEEDS, 300), 2_000_000, { codec: true });
    expect(failures).toEqual([]);
    expect(totals.ops).toBeGreaterThan(0);
  }, LONG);

  it("statistics deltas (through the codec) keep a viewer's page map equal to the nodes' states", () => {
    const { failures } = runMany(Math.min(SEEDS, 300), 3_000_000, { snapshotEvery: 7 });
    expect(failures).toEqual([]);
  }, LONG);

  it("is deterministic: a seed replays to the same run", () => {
    const a = runSimulation(simOptionsForSeed(42));
    const b = runSimulation(simOptionsForSeed(42));
    expect(b.events).toBe(a.events);
    expect(b.messages).toBe(a.messages);
    expect(b.counters).toEqual(a.counters);
    expect(a.opsDone).toBe(a.opsTotal);
  });
});

describe("engine discipline for instructions that need several pages", () => {
  it("releasing every grant before faulting again can livelock, and the step bound catches it", () => {
    // The default runs pin the lower pages of a multi-page instruction while faulting on the next
    // (ordered pinning) and never livelock. Without pinning, lockstep timing starves some runs.
    let livelocks = 0;
    for (let seed = 1; seed <= 1000; seed++) {
      const r = runSimulation(simOptionsForSeed(seed, { discipline: "release" }));
      // The protocol stays safe either way: the only failure is lack of progress.
      for (const v of r.violations) expect(v).toMatch(/livelock/);
      if (r.violations.length > 0) livelocks++;
    }
    expect(livelocks).toBeGreaterThan(0);
  }, LONG);
});

describe("the checker catches injected protocol bugs", () => {
  const cases: { mutation: Mutation; checkSwmr: boolean; expect: RegExp; overrides?: Partial<SimOptions> }[] = [
    { mutation: "skip-invalidate", checkSwmr: true, expect: /while node \d+'s engine has (read|write) access/ },
    // With the single-writer check off, the read checks alone must still see the stale copy.
    { mutation: "skip-invalidate", checkSwmr: false, expect: /read \d+ at page .* the latest write in global order is/ },
    { mutation: "zero-data", checkSwmr: true, expect: /read \d+ at page .* the latest write in global order is/ },
    // Membership: a node not told of a leave keeps the leaver in its copysets (and member list).
    {
      mutation: "skip-forget",
      checkSwmr: true,
      expect: /copyset \[.*\] still holds node \d+, which left/,
      overrides: { membershipChanges: 3 },
    },
    // Membership: node 0 adopts a leaver's pages without their copysets, so copies survive its writes.
    {
      mutation: "handoff-drops-copyset",
      checkSwmr: true,
      expect: /while node \d+'s engine has read access|copyset \[.*\] but copies at/,
      overrides: { membershipChanges: 3 },
    },
    // A driver that never ends a hold window: a request waits forever, and the run is a deadlock.
    { mutation: "hold-forever", checkSwmr: true, expect: /deadlock/, overrides: { holdGrants: true, membershipChanges: 0 } },
  ];
  for (const c of cases) {
    it(`${c.mutation}${c.checkSwmr ? "" : " (read checks only)"}`, () => {
      let fired = 0;
      let detected = 0;
      let matched = 0;
      for (let seed = 1; seed <= 300; seed++) {
        const r = runSimulation(simOptionsForSeed(seed, { mutation: c.mutation, checkSwmr: c.checkSwmr, ...c.overrides }));
        if (r.mutationsApplied === 0) continue;
        fired++;
        if (r.violations.length > 0) detected++;
        if (r.violations.some((v) => c.expect.test(v))) matched++;
      }
      expect(fired).toBeGreaterThan(c.overrides ? 50 : 100);
      // Not every injected bug is observable (a stale copy may never be read again), but most are.
      expect(detected / fired).toBeGreaterThan(0.5);
      expect(matched).toBeGreaterThan(0);
    }, LONG);
  }
});
