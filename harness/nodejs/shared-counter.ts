// N vCPUs in N worker threads run the guest's "lockshared" scenario: they share the counter and
// noise pages through a simulated page manager on this thread (migratory, single owner: each
// fault takes the page from its holder and grants it read-write). Used by the blocking test and
// the bench.
import { Worker } from "node:worker_threads";
import { COUNTER_PAGE, NOISE_PAGE } from "../../guests/enginetest/layout.ts";
import { createMailbox, PagerLink, type PagerMessage } from "../../src/engine/blocking.ts";
import type { DsmWorkerData, DsmWorkerMessage } from "./shared-counter-worker.ts";

const C = COUNTER_PAGE >>> 12;
export const SHARED_PAGES = [C, NOISE_PAGE >>> 12, (NOISE_PAGE >>> 12) + 1];

export interface SharedCounterResult {
  counts: { xadd: number; cmpxchg: number; inc: number };
  failures: number[];
  transfers: number;
  /** Revocations sent to a vCPU that was blocked inside a fault at the time. */
  blockedRevocations: number;
  /** From the first vCPU passing the start barrier to the last one finishing. */
  seconds: number;
}

export async function runSharedCounter(n: number, iterations: number): Promise<SharedCounterResult> {
  const owner = new Map<number, number>(SHARED_PAGES.map((p) => [p, 0])); // vCPU 0 holds them at start
  const queue = new Map<number, number[]>(SHARED_PAGES.map((p) => [p, []]));
  const inTransit = new Set<number>();
  const blocked = new Set<number>();
  const workers: Worker[] = [];
  const links: PagerLink[] = [];
  const done: Extract<DsmWorkerMessage, { type: "done" }>[] = [];
  const barrier = new SharedArrayBuffer(8);
  new Int32Array(barrier)[1] = n;
  let transfers = 0;
  let blockedRevocations = 0;
  let start = 0;
  let end = 0;
  let finalBytes: Uint8Array | undefined;
  let finish!: () => void;
  let fail!: (e: unknown) => void;
  const finished = new Promise<void>((res, rej) => ((finish = res), (fail = rej)));

  const advance = (page: number) => {
    if (inTransit.has(page)) return;
    if (queue.get(page)!.length === 0) return;
    const holder = owner.get(page)!;
    inTransit.add(page);
    if (blocked.has(holder)) blockedRevocations++;
    links[holder].command({ op: "revoke", page, to: "none" });
  };
  const onPager = (w: number, msg: PagerMessage) => {
    switch (msg.type) {
      case "fault":
        if (!SHARED_PAGES.includes(msg.page)) throw new Error(`vCPU ${w} faulted on private page ${msg.page}`);
        if (!start) start = performance.now();
        blocked.add(w);
        queue.get(msg.page)!.push(w);
        advance(msg.page);
        break;
      case "revoked": {
        links[w].acknowledge();
        if (done.length === n && msg.page === C && queue.get(C)!.length === 0) {
          finalBytes = msg.bytes;
          finish();
          break;
        }
        const next = queue.get(msg.page)!.shift()!;
        owner.set(msg.page, next);
        transfers++;
        links[next].command({ op: "grant", page: msg.page, state: "write", bytes: msg.bytes });
        break;
      }
      case "granted":
        links[w].acknowledge();
        blocked.delete(w);
        inTransit.delete(msg.page);
        advance(msg.page);
        break;
    }
  };

  for (let w = 0; w < n; w++) {
    const mailbox = createMailbox();
    const worker = new Worker(new URL("./shared-counter-worker.mjs", import.meta.url), {
      workerData: { scenario: "lockshared", mailbox, notHeld: w === 0 ? [] : SHARED_PAGES, barrier, iterations } satisfies DsmWorkerData,
    });
    workers.push(worker);
    links.push(new PagerLink(mailbox, () => worker.postMessage("poke")));
    worker.on("error", fail);
    worker.on("message", (m: DsmWorkerMessage) => {
      try {
        if (m.type === "pager") onPager(w, m.msg);
        else {
          done.push(m);
          if (done.length === n) {
            end = performance.now();
            // Every guest finished: fetch the counter page from whoever holds it.
            const fetch = () => {
              if (inTransit.has(C)) return void setTimeout(fetch, 1);
              inTransit.add(C);
              links[owner.get(C)!].command({ op: "revoke", page: C, to: "none" });
            };
            fetch();
          }
        }
      } catch (e) {
        fail(e);
      }
    });
  }
  try {
    await finished;
  } finally {
    for (const w of workers) w.postMessage("exit");
    await Promise.all(workers.map((w) => new Promise((r) => w.once("exit", r))));
  }
  const dv = new DataView(finalBytes!.buffer, finalBytes!.byteOffset);
  return {
    counts: { xadd: dv.getUint32(0, true), cmpxchg: dv.getUint32(64, true), inc: dv.getUint32(128, true) },
    failures: done.map((d) => d.failures),
    transfers,
    blockedRevocations,
    seconds: (end - start) / 1000,
  };
}
