// Timers for the link's added delay, run in a dedicated worker. Why: a page's own setTimeout is
// throttled when its tab is hidden (Chromium: about once a second for background tabs; late by
// several ms even with throttling switched off), which would turn a 10 ms knob into 1 s. Worker
// timers are not throttled, and their message back to the page is delivered at once.
// Protocol: page -> worker { id, ms } arms, { id, cancel: true } disarms; worker -> page: id.

const timers = new Map<number, ReturnType<typeof setTimeout>>();

self.onmessage = (e: MessageEvent<{ id: number; ms?: number; cancel?: boolean }>) => {
  const { id, ms, cancel } = e.data;
  if (typeof id !== "number") return;
  const old = timers.get(id);
  if (old !== undefined) clearTimeout(old);
  timers.delete(id);
  if (cancel || typeof ms !== "number" || !(ms >= 0)) return;
  timers.set(
    id,
    setTimeout(() => {
      timers.delete(id);
      self.postMessage(id);
    }, ms),
  );
};
