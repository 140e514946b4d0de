// One DSM node in a worker_thread, with a JS stand-in for the engine: local memory is a byte array
// with per-page access states; an "instruction" that lacks access faults through the DsmAgent, just
// as the v86 engine's fault handler will. Each node performs `ops` atomic increments (read-modify-
// write while holding the page writable) on counters spread over a few shared pages.

import { parentPort, workerData } from "node:worker_threads";
import { DsmNode } from "../../../src/protocol/dsm/node.ts";
import { LocalLinks, type LocalLinksPlan } from "../../../src/runtime/links/local-links.ts";
import { DsmAgent, type PageMemory } from "../../../src/runtime/node/dsm-agent.ts";

interface Data {
  plan: LocalLinksPlan;
  pages: number;
  ops: number;
  counters: number;
  seed: number;
  done: SharedArrayBuffer;
  /** The nodes' hold window in ms (0: none). */
  holdMs: number;
}
const { plan, pages, ops, counters, seed, done, holdMs } = workerData.data as Data;
const doneCount = new Int32Array(done);
const PAGE = 4096;

const ram = new Uint8Array(pages * PAGE);
const state = new Array<"write" | "read" | "none">(pages).fill(plan.self === 0 ? "write" : "none");
let revokes = 0;
const memory: PageMemory = {
  setPageAccess: (p, s) => void (state[p] = s),
  revoke: (p, to) => {
    revokes++;
    state[p] = to;
    return ram.slice(p * PAGE, (p + 1) * PAGE);
  },
  writePage: (p, bytes) => ram.set(bytes, p * PAGE),
};
const links = new LocalLinks(plan);
const agent = new DsmAgent(new DsmNode({ self: plan.self, nodes: plan.nodes, pages, holdGrants: holdMs > 0 }), memory, links, undefined, undefined, holdMs);

const view = new DataView(ram.buffer);
// Counter k lives at a fixed address; several counters share a page so false sharing happens too.
const addr = (k: number) => ((k * 5) % pages) * PAGE + ((k * 40) % PAGE);
const ensure = (page: number, access: "read" | "write") => {
  if (state[page] === "write" || (access === "read" && state[page] === "read")) return;
  agent.fault(page, access);
};

let x = seed * 2654435761 + plan.self * 97;
const rand = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8);
const lastSeen = new Array(counters).fill(0);
let monotonicViolations = 0;
for (let i = 0; i < ops; i++) {
  const k = rand() % counters;
  const a = addr(k);
  if (rand() % 4 === 0) {
    // A plain read: counters only grow, so a read may never go back in time.
    ensure(Math.floor(a / PAGE), "read");
    const v = view.getUint32(a, true);
    if (v < lastSeen[k]) monotonicViolations++;
    lastSeen[k] = v;
  } else {
    // The engine upgrades to write before a locked RMW's read, so read and write see one state.
    ensure(Math.floor(a / PAGE), "write");
    view.setUint32(a, view.getUint32(a, true) + 1, true);
  }
  if (i % 16 === 0) agent.poll(); // instruction boundaries between slices
}

// Keep serving the others until every node is done with its operations.
Atomics.add(doneCount, 0, 1);
while (Atomics.load(doneCount, 0) < plan.nodes) {
  agent.poll();
  links.waitForTraffic(5);
}
let totals: number[] = [];
if (plan.self === 0) {
  // Node 0 reads every counter back through the DSM once all others finished writing.
  totals = Array.from({ length: counters }, (_, k) => {
    ensure(Math.floor(addr(k) / PAGE), "read");
    return view.getUint32(addr(k), true);
  });
}
Atomics.add(doneCount, 1, 1);
while (Atomics.load(doneCount, 1) < plan.nodes) {
  agent.poll();
  links.waitForTraffic(5);
}
parentPort!.postMessage({ self: plan.self, totals, monotonicViolations, revokes, counters: agent.counters });
