// A Clock whose timers run in a worker (see timer-worker.ts for why), for links in a page.

import type { Clock } from "../link.ts";
import { realClock } from "../link.ts";

let shared: Clock | undefined;

/** One worker serves every link of the page; falls back to the page's timers without Worker. */
export function workerClock(): Clock {
  if (shared) return shared;
  if (typeof Worker !== "function") return (shared = realClock);
  let worker: Worker;
  try {
    worker = new Worker(new URL("./timer-worker.ts", import.meta.url), { type: "module" });
  } catch {
    return (shared = realClock);
  }
  const callbacks = new Map<number, () => void>();
  let nextId = 1;
  worker.onmessage = (e: MessageEvent<number>) => {
    const cb = callbacks.get(e.data);
    callbacks.delete(e.data);
    cb?.();
  };
  shared = {
    now: () => performance.now(),
    setTimeout(cb, ms) {
      const id = nextId++;
      callbacks.set(id, cb);
      worker.postMessage({ id, ms });
      return id;
    },
    clearTimeout(handle) {
      if (typeof handle !== "number" || !callbacks.delete(handle)) return;
      worker.postMessage({ id: handle, cancel: true });
    },
  };
  return shared;
}
