// The page map: for every guest page, which node owns it and who holds copies, rebuilt from the
// compact page-state deltas every node sends in its snapshots. One protocol PageStateMirror per
// node holds that node's states; this module adds what the view needs on top: the owner per page
// (one byte per page, so a 1 GiB guest costs 256 KiB) and a callback for every page that arrives
// at a node (the page moved there), which feeds the hot-page list.

import { PageStateMirror, pageStateCode } from "../../../protocol/stats.ts";
import type { PageRun } from "../../../protocol/messages.ts";
import type { PageState } from "../../../protocol/types.ts";

export const NO_OWNER = 0xff;
const INVALID = pageStateCode("invalid");
const SHARED_OWNER = pageStateCode("shared-owner");
const MODIFIED = pageStateCode("modified");
const isOwnerCode = (c: number) => c === SHARED_OWNER || c === MODIFIED;

/** A PageStateMirror that reports each page whose state a run changes, before overwriting it. */
export class TrackedPageMirror extends PageStateMirror {
  applyTracked(runs: readonly PageRun[], onChange: (page: number, oldCode: number, newCode: number) => void): void {
    for (const run of runs) {
      // apply() rejects a run past guest RAM; let it throw before any callback runs.
      if (run.first + run.count > this.codes.length) this.apply([run]);
      const code = pageStateCode(run.state);
      for (let p = run.first; p < run.first + run.count; p++) {
        const old = this.codes[p]!;
        if (old !== code) onChange(p, old, code);
      }
      this.apply([run]);
    }
  }
}

/** A page arrived at `node` (it held no copy and now holds one): bytes (or a zero/current grant) moved. */
export type PageArrival = { page: number; node: number; write: boolean };

export interface PageInfo {
  page: number;
  /** Owner node, or null while the deltas disagree (the old owner let go, the new one not yet heard). */
  owner: number | null;
  /** Each node's state for the page, by node id. */
  states: PageState[];
  /** Nodes holding a copy (owner included). */
  holders: number[];
}

export class PageMapModel {
  readonly mirrors: TrackedPageMirror[];
  /** Owner node per page (NO_OWNER while unknown). */
  readonly owner: Uint8Array;
  /** Bumped on every change, so a renderer can skip frames with nothing new. */
  generation = 0;

  constructor(
    readonly nodes: number,
    readonly pages: number,
  ) {
    if (!Number.isInteger(nodes) || nodes < 1 || nodes >= NO_OWNER) throw new RangeError(`nodes is ${nodes}, expected 1..254`);
    this.mirrors = Array.from({ length: nodes }, (_, n) => new TrackedPageMirror(n, pages));
    this.owner = new Uint8Array(pages); // node 0 starts owning every page
  }

  /** Applies one node's page runs; calls `onArrival` for every page that arrived at that node. */
  apply(node: number, runs: readonly PageRun[], onArrival?: (a: PageArrival) => void): void {
    const mirror = this.mirrors[node];
    if (!mirror) throw new RangeError(`page runs from node ${node}, but the cluster has ${this.nodes} nodes`);
    if (runs.length === 0) return;
    mirror.applyTracked(runs, (page, oldCode, newCode) => {
      if (isOwnerCode(newCode)) this.owner[page] = node;
      else if (this.owner[page] === node) this.owner[page] = NO_OWNER; // let go; the new owner's delta may come later
      if (oldCode === INVALID && onArrival) onArrival({ page, node, write: newCode === MODIFIED });
    });
    this.generation++;
  }

  /**
   * Nodes that went away (an elastic VM's vCPU went offline): they hold no copy any more, and a page
   * still shown as theirs is in flight (their pages went back to node 0, whose deltas say so when
   * they come). Returns how many pages that released.
   */
  dropNodes(nodes: readonly number[]): number {
    const gone = new Uint8Array(NO_OWNER + 1);
    for (const n of nodes) {
      const mirror = this.mirrors[n];
      if (!mirror) throw new RangeError(`node ${n} dropped, but the cluster has ${this.nodes} nodes`);
      mirror.codes.fill(INVALID);
      gone[n] = 1;
    }
    let released = 0;
    if (nodes.length)
      for (let p = 0; p < this.pages; p++)
        if (gone[this.owner[p]!]) {
          this.owner[p] = NO_OWNER;
          released++;
        }
    this.generation++;
    return released;
  }

  ownerOf(page: number): number | null {
    this.check(page);
    const o = this.owner[page]!;
    return o === NO_OWNER ? null : o;
  }

  /** How many nodes hold a copy of `page` (1 = only the owner, modified or not). */
  holderCount(page: number): number {
    let n = 0;
    for (const m of this.mirrors) if (m.codes[page] !== INVALID) n++;
    return n;
  }

  info(page: number): PageInfo {
    this.check(page);
    const states = this.mirrors.map((m) => m.state(page));
    const holders = states.flatMap((s, n) => (s === "invalid" ? [] : [n]));
    return { page, owner: this.ownerOf(page), states, holders };
  }

  /** Pages owned per node (index NO_OWNER excluded); for the legend. */
  ownedCounts(): number[] {
    const counts = new Array<number>(this.nodes).fill(0);
    for (let p = 0; p < this.pages; p++) {
      const o = this.owner[p]!;
      if (o !== NO_OWNER) counts[o]!++;
    }
    return counts;
  }

  private check(page: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.pages) throw new RangeError(`page ${page} is outside guest RAM (${this.pages} pages)`);
  }
}
