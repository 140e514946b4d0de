// Two vCPUs in two worker threads share the counter and noise pages through a simulated page
// manager on the main thread. Faults block in Atomics.wait; a blocked vCPU still gives up pages
// it holds (the two regularly wait on each other: each holds the page the other needs).
// Final counts must be exact, and the run must not deadlock.
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { COUNTER_PAGE, NOISE_PAGE } from "../../guests/enginetest/layout.ts";
import { createMailbox, PagerLink, type PagerMessage } from "../../src/engine/blocking.ts";
import type { DsmWorkerData, DsmWorkerMessage } from "./support/dsm-worker.ts";

const C = COUNTER_PAGE >>> 12;
const SHARED = [C, NOISE_PAGE >>> 12, (NOISE_PAGE >>> 12) + 1];

describe("blocking faults in workers", () => {
  it("two vCPUs in workers increment one shared counter exactly, never deadlocking", { timeout: 600_000 }, async () => {
    const n = 2;
    const iterations = 300_000;
    const barrier = new SharedArrayBuffer(8);
    new Int32Array(barrier)[1] = n;
    const owner = new Map<number, number>(SHARED.map((p) => [p, 0])); // vCPU 0 holds them at start
    const queue = new Map<number, number[]>(SHARED.map((p) => [p, []]));
    const inTransit = new Set<number>();
    const workers: Worker[] = [];
    const links: PagerLink[] = [];
    const done: DsmWorkerMessage[] = [];
    let transfers = 0;
    let blockedRevocations = 0;
    const blocked = new Set<number>(); // vCPUs currently waiting inside a fault
    let finalBytes: Uint8Array | undefined;
    let finish!: () => void;
    let fail!: (e: unknown) => void;
    const finished = new Promise<void>((res, rej) => ((finish = res), (fail = rej)));

    // Migratory single-owner pages: a fault takes the page from its holder and grants it read-write.
    const advance = (page: number) => {
      if (inTransit.has(page)) return;
      const q = queue.get(page)!;
      if (q.length === 0) return;
      const holder = owner.get(page)!;
      inTransit.add(page);
      if (blocked.has(holder)) blockedRevocations++;
      links[holder].command({ op: "revoke", page, to: "none" });
    };
    const onPager = (w: number, msg: PagerMessage) => {
      switch (msg.type) {
        case "fault":
          if (!SHARED.includes(msg.page)) throw new Error(`vCPU ${w} faulted on private page ${msg.page}`);
          blocked.add(w);
          queue.get(msg.page)!.push(w);
          advance(msg.page);
          break;
        case "revoked": {
          links[w].acknowledge();
          if (finalBytes === undefined && done.length === n && msg.page === C) {
            finalBytes = msg.bytes;
            finish();
            break;
          }
          const next = queue.get(msg.page)!.shift()!;
          owner.set(msg.page, next);
          transfers++;
          links[next].command({ op: "grant", page: msg.page, state: "rw", bytes: msg.bytes });
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
      const worker = new Worker(new URL("./support/dsm-worker.mjs", import.meta.url), {
        workerData: { scenario: "lockshared", mailbox, notHeld: w === 0 ? [] : SHARED, barrier, iterations } satisfies DsmWorkerData,
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
              // Both guests finished: fetch the counter page from whoever holds it.
              inTransit.add(C);
              links[owner.get(C)!].command({ op: "revoke", page: C, to: "none" });
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
    for (const d of done) expect(d.type === "done" && d.failures).toBe(0);
    const dv = new DataView(finalBytes!.buffer, finalBytes!.byteOffset);
    const want = n * iterations;
    expect({ xadd: dv.getUint32(0, true), cmpxchg: dv.getUint32(64, true), inc: dv.getUint32(128, true) }).toEqual({ xadd: want, cmpxchg: want, inc: want });
    expect(transfers).toBeGreaterThan(100);
    // Requests really reached vCPUs while they were blocked inside a fault.
    expect(blockedRevocations).toBeGreaterThan(10);
    console.log(`blocking: ${transfers} page transfers, ${blockedRevocations} revocations served by blocked vCPUs`);
  });
});
