// The whole engine + DSM + links stack under a real kernel: Linux boots on a vCPU that holds no
// page at all; every page it touches (BIOS, kernel, initramfs, page tables, stacks) is fetched
// through the DSM from another worker, which owns guest RAM. Any RAM path the engine failed to
// hook would read stale or zero bytes and the boot would crash instead of reaching the shell.

import { afterAll, expect, it } from "vitest";
import type { Worker } from "node:worker_threads";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { planLocalLinks } from "../../src/platform/channel/local-links.ts";
import { startTsWorker } from "../support/ts-worker.ts";

const workers: Worker[] = [];
afterAll(async () => Promise.all(workers.map((w) => w.terminate())));

it("Linux boots to a working shell with all of its memory supplied by another worker through the DSM", async () => {
  const wasmPath = await ensureInstrumentedWasm();
  const guest = ensureGuestImages();
  const plan = planLocalLinks(2);
  const stop = new SharedArrayBuffer(4);
  let out = "";
  const outputListeners: (() => void)[] = [];
  const start = (self: number, runCpu: boolean) => {
    const w = startTsWorker(new URL("./node-worker.ts", import.meta.url), { plan: { ...plan, self }, wasmPath, guest, memoryMiB: 128, runCpu, stop });
    workers.push(w);
    return w;
  };
  const owner = start(0, false); // owns every page, never runs its CPU
  const cpu = start(1, true); // runs Linux, starts with no page
  const errors: Error[] = [];
  for (const w of [owner, cpu]) w.on("error", (e) => errors.push(e));
  cpu.on("message", (m) => {
    if (m.kind === "serial") {
      out += Buffer.from(m.bytes).toString("latin1");
      outputListeners.forEach((l) => l());
    }
  });
  const waitFor = (re: RegExp, ms: number) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${re} within ${ms / 1000} s; errors: ${errors.map(String)}; output:\n${out.slice(-2000)}`)), ms);
      const check = () => {
        if (re.test(out)) (clearTimeout(t), resolve());
        if (errors.length) (clearTimeout(t), reject(errors[0]));
      };
      outputListeners.push(check);
      check();
    });

  await waitFor(/giantweb:\/root# /, 400_000);
  const mark = out.length;
  cpu.postMessage({ kind: "send", text: "echo sum=$((123456+654321)); md5sum /bin/busybox | cut -c1-8\n" });
  await waitFor(/sum=777777\r?\n[0-9a-f]{8}\r?\n/, 120_000);
  expect(out.slice(mark)).toMatch(/sum=777777/);

  const stats = new Promise<{ engine: { faults: number; faultsByCause: Record<string, number> }; agent: { faults: number } }>((resolve) =>
    cpu.once("message", (m) => m.kind === "stats" && resolve(m)),
  );
  cpu.postMessage({ kind: "stats" });
  const s = await stats;
  // Thousands of pages came over the links.
  console.log(`remote-memory boot: ${JSON.stringify(s)}`);
  expect(s.agent.faults).toBeGreaterThan(1000);
  expect(s.engine.faultsByCause.tlb).toBeGreaterThan(0);
  Atomics.store(new Int32Array(stop), 0, 1);
});
