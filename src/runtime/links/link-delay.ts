// The latency knob on a node's own links: every frame this node sends is held back by the added
// one-way delay (0..50 ms) before it enters the shared-memory ring, so a class can watch what
// "distance" costs. It is the one place the knob applies, on one tab and on a cluster of tabs alike
// (the fabric's own link delay stays 0 for a VM's traffic).
// Frames keep their order: one FIFO for all peers, each frame due no earlier than the one before.

import { MAX_ADDED_DELAY_MS } from "../../protocol/types.ts";

/** The part of a node's links the delay wraps (LocalLinks has these). */
export interface DelayableLinks {
  send(to: number, frame: Uint8Array): void;
  flush(): boolean;
  waitForTraffic(timeoutMs: number): void;
}


export class SendDelay implements DelayableLinks {
  private queue: { to: number; frame: Uint8Array; due: number }[] = [];
  private head = 0;
  private lastDue = -Infinity;

  constructor(
    private readonly inner: DelayableLinks,
    /** The added one-way delay now (ms); read on every send, so the knob acts at once. */
    private readonly delayMs: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Frames held back, not yet in the ring. */
  get held(): number {
    return this.queue.length - this.head;
  }

  send(to: number, frame: Uint8Array): void {
    const delay = this.delayMs();
    // Without delay and with nothing held, a frame goes straight on (the knob costs one read).
    if (this.held === 0 && !(delay > 0)) return this.inner.send(to, frame);
    const due = Math.max(this.now() + Math.min(Math.max(delay, 0), MAX_ADDED_DELAY_MS), this.lastDue);
    this.lastDue = due;
    this.queue.push({ to, frame, due });
  }

  /** Hands every frame whose time has come to the links. */
  release(): void {
    if (this.held === 0) return;
    const t = this.now();
    while (this.head < this.queue.length && this.queue[this.head]!.due <= t) {
      const f = this.queue[this.head++]!;
      this.inner.send(f.to, f.frame);
    }
    if (this.head === this.queue.length) (this.queue = []), (this.head = 0);
    else if (this.head > 1024) (this.queue = this.queue.slice(this.head)), (this.head = 0);
  }

  flush(): boolean {
    this.release();
    return this.inner.flush() && this.held === 0;
  }

  /** Waits no longer than until the next held frame is due (then `flush` releases it). */
  waitForTraffic(timeoutMs: number): void {
    this.release();
    if (this.held > 0) {
      const untilDue = this.queue[this.head]!.due - this.now();
      if (untilDue <= 0) return;
      timeoutMs = Math.min(timeoutMs, untilDue);
    }
    this.inner.waitForTraffic(timeoutMs);
  }
}

/**
 * Routes a LocalLinks object's send/flush/wait through a SendDelay (the DSM agent, the router and
 * I/O forwarding all send through that one object, so all of the node's traffic is delayed alike).
 */
export function delayLinks(links: DelayableLinks, delayMs: () => number, now?: () => number): SendDelay {
  const inner: DelayableLinks = {
    send: links.send.bind(links),
    flush: links.flush.bind(links),
    waitForTraffic: links.waitForTraffic.bind(links),
  };
  const delay = new SendDelay(inner, delayMs, now);
  links.send = (to, frame) => delay.send(to, frame);
  links.flush = () => delay.flush();
  links.waitForTraffic = (ms) => delay.waitForTraffic(ms);
  return delay;
}
