import { expect, it } from "vitest";
import { type V86Loop, yieldInThisThread } from "../../src/engine/v86-yield.ts";

function fakeLoop(worker: unknown) {
  const calls = { helper: [] as [number, number][], callbacks: [] as number[], unregistered: 0 };
  const loop: V86Loop = {
    worker: worker as Worker | null,
    yield: (ms, tick) => void calls.helper.push([ms, tick]),
    yield_callback: (tick) => void calls.callbacks.push(tick),
    unregister_yield: () => void calls.unregistered++,
  };
  return { loop, calls };
}

it("runs the next slice through a message to this thread when v86 asks for no delay, and leaves real delays to v86's helper worker", async () => {
  const { loop, calls } = fakeLoop({});
  yieldInThisThread(loop);
  loop.yield(0, 7);
  loop.yield(0.5, 8);
  loop.yield(20, 9);
  expect(calls.helper).toEqual([[20, 9]]);
  await new Promise((r) => setTimeout(r, 20));
  expect(calls.callbacks).toEqual([7, 8]);
  loop.unregister_yield();
  expect(calls.unregistered).toBe(1);
  loop.yield(0, 10); // the channel is closed: nothing runs
  await new Promise((r) => setTimeout(r, 20));
  expect(calls.callbacks).toEqual([7, 8]);
});

it("leaves v86 alone where it has no helper worker (Node: setImmediate)", () => {
  const { loop, calls } = fakeLoop(null);
  const before = loop.yield;
  yieldInThisThread(loop);
  expect(loop.yield).toBe(before);
  loop.yield(0, 1);
  expect(calls.helper).toEqual([[0, 1]]);
});
