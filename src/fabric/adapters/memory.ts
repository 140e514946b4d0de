// In-memory stand-ins for a data channel and for WebRTC connection set-up, so the link and the
// mesh logic run in Node.js. Delivery is asynchronous (like a real channel) and ordered.

import type { ConnectorFactory, PeerConnector } from "../connector.ts";
import { FabricError } from "../errors.ts";
import type { Clock, RawChannel } from "../link.ts";
import type { SignalData } from "../messages.ts";

/**
 * One end of a channel pair. `bufferedAmount` counts bytes sent but not yet delivered; with
 * `manualDrain` nothing is delivered until drain() is called, so tests can hold the buffer full.
 */
export class MemoryChannel implements RawChannel {
  peer!: MemoryChannel;
  bufferedAmount = 0;
  readonly sent: Uint8Array[] = [];
  private inFlight: Uint8Array[] = [];
  private readonly msgCbs: ((d: Uint8Array) => void)[] = [];
  private readonly lowCbs: (() => void)[] = [];
  private readonly closeCbs: ((e?: FabricError) => void)[] = [];
  closed = false;
  /** Largest bufferedAmount ever seen: what backpressure must bound. */
  maxBuffered = 0;

  constructor(
    readonly maxMessageSize: number,
    private readonly manualDrain = false,
    readonly lowThreshold = 0,
  ) {}

  send(data: Uint8Array): void {
    if (this.closed) throw new Error("send on a closed channel");
    if (data.length > this.maxMessageSize) throw new Error(`message of ${data.length} bytes exceeds ${this.maxMessageSize}`);
    const copy = data.slice();
    this.sent.push(copy);
    this.inFlight.push(copy);
    this.bufferedAmount += copy.length;
    this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount);
    if (!this.manualDrain) queueMicrotask(() => this.drain(1));
  }

  /** Delivers up to `n` in-flight messages to the other end. */
  drain(n = Infinity): void {
    const before = this.bufferedAmount;
    while (n-- > 0 && this.inFlight.length > 0 && !this.closed) {
      const m = this.inFlight.shift()!;
      this.bufferedAmount -= m.length;
      for (const cb of this.peer.msgCbs) cb(m);
    }
    // Like the browser: only a fall from above the threshold to at or below it fires the event.
    if (before > this.lowThreshold && this.bufferedAmount <= this.lowThreshold) for (const cb of this.lowCbs) cb();
  }

  onBufferedAmountLow(cb: () => void): void {
    this.lowCbs.push(cb);
  }
  onMessage(cb: (d: Uint8Array) => void): void {
    this.msgCbs.push(cb);
  }
  onClose(cb: (e?: FabricError) => void): void {
    this.closeCbs.push(cb);
  }
  close(): void {
    if (this.closed) return;
    // Like SCTP: what was sent before close still arrives, then the other end sees the close.
    if (!this.manualDrain) this.drain();
    this.closed = true;
    for (const cb of this.closeCbs) cb();
    queueMicrotask(() => this.peer.remoteClosed());
  }
  private remoteClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.closeCbs) cb();
  }
}

export function channelPair(maxMessageSize = 1024, manualDrain = false, lowThreshold = 0): [MemoryChannel, MemoryChannel] {
  const a = new MemoryChannel(maxMessageSize, manualDrain, lowThreshold);
  const b = new MemoryChannel(maxMessageSize, manualDrain, lowThreshold);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  t = 0;
  private timers: { at: number; cb: () => void; id: number }[] = [];
  private nextId = 1;
  now(): number {
    return this.t;
  }
  setTimeout(cb: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, cb, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.cb();
    }
    this.t = end;
  }
  get pendingTimers(): number {
    return this.timers.length;
  }
}

/** Offers waiting for their answer, shared by every factory (so tabs with different options still connect). */
const rendezvous = new Map<string, (remote: MemoryChannel) => void>();
let nextOffer = 0;

/**
 * Connection set-up without WebRTC: the initiator's "offer" names a rendezvous; the responder's
 * signal() with it creates the channel pair and both sides connect. `failWith` makes every
 * attempt fail at a chosen step, to test error reporting; `hang` makes the attempts to the tabs it
 * picks never connect nor fail (a link that never comes up, like ICE that never finds a path).
 */
export function memoryConnectors(
  opts: { maxMessageSize?: number; failWith?: FabricError; hang?: (remoteTab: number) => boolean } = {},
): ConnectorFactory & { open: MemoryChannel[] } {
  const open: MemoryChannel[] = [];
  const factory = (({ initiator, remoteTab }) => {
    const signalCbs: ((d: SignalData) => void)[] = [];
    const connectCbs: ((raw: MemoryChannel) => void)[] = [];
    const errorCbs: ((e: FabricError) => void)[] = [];
    let destroyed = false;
    const connect = (ch: MemoryChannel) => {
      open.push(ch);
      for (const cb of connectCbs) cb(ch);
    };
    const c: PeerConnector = {
      signal(data) {
        if (destroyed) return;
        if (data.type !== "offer") return;
        const done = rendezvous.get(data.sdp);
        if (!done) return;
        rendezvous.delete(data.sdp);
        const [mine, theirs] = channelPair(opts.maxMessageSize ?? 1024);
        queueMicrotask(() => {
          for (const cb of signalCbs) cb({ type: "answer", sdp: data.sdp });
          connect(mine);
          done(theirs);
        });
      },
      onSignal: (cb) => void signalCbs.push(cb),
      onConnect: (cb) => void connectCbs.push(cb as (raw: unknown) => void),
      onError: (cb) => void errorCbs.push(cb),
      destroy: () => void (destroyed = true),
    };
    if (opts.hang?.(remoteTab)) {
      // Says nothing, ever.
    } else if (opts.failWith) {
      const err = opts.failWith;
      setTimeout(() => errorCbs.forEach((cb) => cb(err)), 0);
    } else if (initiator) {
      const id = `mem:${nextOffer++}`;
      rendezvous.set(id, (ch) => !destroyed && connect(ch));
      queueMicrotask(() => signalCbs.forEach((cb) => cb({ type: "offer", sdp: id })));
    }
    return c;
  }) as ConnectorFactory & { open: MemoryChannel[] };
  factory.open = open;
  return factory;
}
