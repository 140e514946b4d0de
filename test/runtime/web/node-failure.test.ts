// How a node failure is described and how the page hears of it (watchNode): before the node
// started it fails the start; after, it goes to the layout's onFailure (a cluster of tabs) or, on a
// layout without one, to the VM's events as an error; the status line words it "VM stopped: ...".

import { expect, it } from "vitest";
import type { VmEvent } from "../../../src/runtime/web/vm-api.ts";
import { type NodeToPage, watchNode } from "../../../src/runtime/web/node-protocol.ts";
import { describeFailure, MAX_FAILURE_MESSAGE, makeFailure, type NodeFailure } from "../../../src/protocol/tab/node-failure.ts";
import { statusText } from "../../../src/ui/page/status-text.ts";
import { wallClockMs } from "../../../src/runtime/node/wall-clock.ts";

const panic = "the engine panicked at src/rust/cpu/cpu.rs:2731:9: #GP | ltr: invalid type (type = 0x0) (RuntimeError: unreachable)";

it("names the node, its vCPU (or none) and its tab when it has one", () => {
  const f = makeFailure(1, 1, "engine", panic, wallClockMs());
  expect(describeFailure(f)).toBe(`node 1 (vCPU 1) failed: ${panic}`);
  expect(describeFailure({ ...f, tab: 2 })).toBe(`node 1 (vCPU 1, tab 2) failed: ${panic}`);
  expect(describeFailure({ ...f, node: 0, vcpu: null })).toBe(`node 0 (no vCPU) failed: ${panic}`);
  expect(f.atMs).toBeGreaterThan(Date.UTC(2020, 0, 1)); // the runtime stamps wall clock, comparable across tabs
  expect(Math.abs(f.atMs - Date.now())).toBeLessThan(60_000);
  expect(makeFailure(1, 1, "serve", "x".repeat(5000), 1_000).message).toHaveLength(MAX_FAILURE_MESSAGE);
});

/** A Worker as watchNode sees it: messages and error events. */
class FakeWorker extends EventTarget {
  post(m: NodeToPage) {
    this.dispatchEvent(new MessageEvent("message", { data: m }));
  }
  fail(message: string) {
    this.dispatchEvent(Object.assign(new Event("error"), { message }));
  }
}

const watch = (reports: { onFailure?(f: NodeFailure): void } = {}) => {
  const w = new FakeWorker();
  const events: VmEvent[] = [];
  const started = watchNode(w as unknown as Worker, { self: 1, vcpu: 1 }, 60_000, (e) => events.push(e), reports);
  return { w, events, started };
};

it("a failure before the node is ready fails its start", async () => {
  const { w, started } = watch();
  w.post({ kind: "failed", failure: makeFailure(1, 1, "start", "v86 failed to start: out of memory", 1_000) });
  await expect(started).rejects.toThrow("node 1 (vCPU 1) failed: v86 failed to start: out of memory");
  const load = watch();
  load.w.fail("Failed to fetch a dynamically imported module");
  await expect(load.started).rejects.toThrow("node 1 (vCPU 1) failed: its worker failed: Failed to fetch a dynamically imported module");
});

it("after the start, a failure goes to onFailure once, typed; without onFailure it is the VM's error event", async () => {
  const got: NodeFailure[] = [];
  const { w, events, started } = watch({ onFailure: (f) => got.push(f) });
  w.post({ kind: "ready", node: 1 });
  await started;
  const f = makeFailure(1, 1, "engine", panic, 1_000);
  w.post({ kind: "failed", failure: f });
  w.fail("a second report of the same death"); // later errors of a failed node add nothing
  expect(got).toEqual([f]);
  expect(events).toEqual([]);

  const plain = watch();
  plain.w.post({ kind: "ready", node: 1 });
  await plain.started;
  plain.w.fail("Uncaught TypeError: x is not a function");
  expect(plain.events).toEqual([{ kind: "error", message: "node 1 (vCPU 1) failed: Uncaught TypeError: x is not a function" }]);
});

it("the one-tab page's status line says the VM stopped, without an 'Error:' in front", () => {
  const message = `VM stopped: ${describeFailure(makeFailure(1, 1, "engine", panic, 1_000))}`;
  expect(statusText({ phase: "error", message })).toBe(message);
  expect(statusText({ phase: "error", message: "cannot fetch the BIOS" })).toBe("Error: cannot fetch the BIOS");
});
