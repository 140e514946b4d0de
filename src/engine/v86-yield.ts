// How v86 waits between its run slices in a browser worker (see yieldInThisThread).

/** v86's run loop object (src/main.js): how it waits between slices. */
export interface V86Loop {
  worker: Worker | null;
  yield(ms: number, tick: number): void;
  yield_callback(tick: number): void;
  unregister_yield(): void;
}

/**
 * In a browser worker v86 waits between run slices through a helper Worker it spawns (a timer
 * thread): every slice end, including each one a kick causes, is a round trip to that thread, which
 * must itself get a core. On a loaded machine that hop took up to 4 ms (traced in Chromium). "Run
 * again now" becomes a message to this thread (a MessageChannel task, behind whatever events wait,
 * such as the doorbell's); a real delay (a halted vCPU until its next timer) stays with the helper,
 * whose timers are not clamped as a chain of this thread's own would be. Node (setImmediate) is
 * left alone.
 */
export function yieldInThisThread(v86: V86Loop): void {
  if (!v86.worker || typeof MessageChannel === "undefined") return;
  const later = v86.yield.bind(v86);
  const channel = new MessageChannel();
  channel.port1.onmessage = (e: MessageEvent<number>) => v86.yield_callback(e.data);
  v86.yield = (ms, tick) => (ms < 1 ? channel.port2.postMessage(tick) : later(ms, tick));
  const unregister = v86.unregister_yield.bind(v86);
  v86.unregister_yield = () => {
    channel.port1.close();
    unregister();
  };
}
