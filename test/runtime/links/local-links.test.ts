import { expect, it } from "vitest";
import { planLocalLinks } from "../../../src/runtime/links/local-links.ts";
import { startTsWorker } from "../../../src/runtime/nodejs/ts-worker.ts";
import { createRingBuffer, RingError, RingReader, RingWriter } from "../../../src/runtime/links/sab-ring.ts";
import { ringEcho } from "../../../harness/nodejs/ring-echo.ts";

it("a ring keeps frames intact and in order across many wrap-arounds, and refuses when full", () => {
  const sab = createRingBuffer(256);
  const w = new RingWriter(sab);
  const r = new RingReader(sab);
  let next = 0;
  let expect_ = 0;
  for (let round = 0; round < 2000; round++) {
    while (w.tryWrite(new Uint8Array((next % 90) + 1).fill(next & 0xff))) next++;
    // Full: the writer must have refused rather than overwritten unread bytes.
    expect(r.used).toBeGreaterThan(256 - 95);
    for (let k = 0; k < 1 + (round % 3); k++) {
      const f = r.read();
      if (!f) break;
      expect(f.length).toBe((expect_ % 90) + 1);
      expect(f.every((b) => b === (expect_ & 0xff))).toBe(true);
      expect_++;
    }
  }
  while (r.read()) expect_++;
  expect(expect_).toBe(next);
  expect(() => w.tryWrite(new Uint8Array(253))).toThrow(RingError);
  expect(() => createRingBuffer(1000)).toThrow(/power of two/);
});

it("three worker threads exchange 3000 frames each way, intact and in per-link order, through small rings", async () => {
  const nodes = 3;
  const count = 3000;
  // Small rings force the backlog and wrap-around paths. The workers send without waiting for their
  // peers (a peer may start late), so the backlog may hold all 3000 frames: bound it above that.
  const plan = planLocalLinks(nodes, 4096, { frames: 1 << 16, bytes: 1 << 30 });
  const results = await Promise.all(
    Array.from({ length: nodes }, (_, self) => {
      const worker = startTsWorker(new URL("./link-worker.ts", import.meta.url), { plan: { ...plan, self }, count });
      return new Promise<{ self: number; received: number; errors: string[]; perPeer: number[] }>((resolve, reject) => {
        worker.once("message", (m) => {
          resolve(m);
          void worker.terminate();
        });
        worker.once("error", reject);
      });
    }),
  );
  for (const r of results) {
    expect(r.errors).toEqual([]);
    expect(r.received).toBe(count * (nodes - 1));
    expect(r.perPeer.filter((_, i) => i !== r.self)).toEqual([count, count]);
  }
});

it.each(["wait", "watch"] as const)("a node echoes 500 frames in order, blocked on its doorbell or woken from its event loop (%s)", async (mode) => {
  const report = await ringEcho({ count: 500, bytes: 4096, mode });
  expect(report.errors).toEqual([]);
  expect(report.rttsUs).toHaveLength(500);
});
