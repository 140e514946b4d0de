// Helpers for statistics snapshots (issue 7's live view): empty counters, and applying a node's
// page-state deltas (runs) to a mirror of that node's page states.

import type { DsmNode } from "./dsm/node.ts";
import type { LinkStat, PageRun, StatCounters, StatsSnapshot, VcpuStat } from "./messages.ts";
import { STAT_COUNTERS } from "./messages.ts";
import type { PageState } from "./types.ts";
import { PAGE_STATES } from "./types.ts";

export function emptyCounters(): StatCounters {
  return Object.fromEntries(STAT_COUNTERS.map((name) => [name, 0])) as StatCounters;
}

/** Index of a PageState in PAGE_STATES; mirrors store these in a Uint8Array. */
export function pageStateCode(state: PageState): number {
  return PAGE_STATES.indexOf(state);
}

/**
 * A viewer's copy of one node's page states, kept up to date from the `pages` deltas of that node's
 * snapshots. Node 0 starts with every page modified, the others with every page invalid.
 */
export class PageStateMirror {
  readonly codes: Uint8Array;

  constructor(
    readonly node: number,
    pages: number,
  ) {
    if (!Number.isInteger(pages) || pages < 1) throw new RangeError(`pages is ${pages}, expected a positive integer`);
    this.codes = new Uint8Array(pages).fill(pageStateCode(node === 0 ? "modified" : "invalid"));
  }

  /** Applies a snapshot's runs; runs naming pages outside guest RAM are an error (not silently cut). */
  apply(runs: readonly PageRun[]): void {
    for (const run of runs) {
      if (run.first + run.count > this.codes.length)
        throw new RangeError(
          `page run ${run.first}+${run.count} from node ${this.node} goes past guest RAM (${this.codes.length} pages)`,
        );
      this.codes.fill(pageStateCode(run.state), run.first, run.first + run.count);
    }
  }

  state(page: number): PageState {
    const s = PAGE_STATES[this.codes[page]!];
    if (s === undefined) throw new RangeError(`page ${page} is outside guest RAM (${this.codes.length} pages)`);
    return s;
  }
}

/** What a node reports beyond the DSM: counters kept by the engine and fabric, vCPUs, links. */
export interface SnapshotInputs {
  node: number;
  seq: number;
  atMs: number;
  dsm: DsmNode;
  /** Counters kept elsewhere (ipisSent, ioForwarded, bytesSent, ...); DSM counters come from `dsm`. */
  counters?: Partial<StatCounters>;
  vcpus?: VcpuStat[];
  links?: LinkStat[];
}

/** One node's statistics message; takes (and so resets) the DSM's page-state changes. */
export function buildSnapshot(inputs: SnapshotInputs): StatsSnapshot {
  return {
    type: "stats",
    node: inputs.node,
    seq: inputs.seq,
    atMs: inputs.atMs,
    counters: { ...emptyCounters(), ...inputs.counters, ...inputs.dsm.counters },
    vcpus: inputs.vcpus ?? [],
    links: inputs.links ?? [],
    pages: inputs.dsm.takePageChanges(),
  };
}
