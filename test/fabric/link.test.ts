import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FabricError } from "../../src/fabric/errors.ts";
import { decodeLinkMessage, encodeLinkMessage, Reassembler, splitFrame } from "../../src/fabric/link-codec.ts";
import { Link } from "../../src/fabric/link.ts";
import { percentile } from "../../src/fabric/stats.ts";
import { channelPair, ManualClock } from "../../src/fabric/adapters/memory.ts";

const frameOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
const flush = () => new Promise((r) => setTimeout(r, 0));

describe("chunking", () => {
  it("splits any frame into messages within the limit and reassembles it exactly", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 64, max: 2048 }), (frame, max) => {
        const msgs = splitFrame(frame, max);
        for (const m of msgs) expect(m.length).toBeLessThanOrEqual(max);
        const r = new Reassembler();
        const out: Uint8Array[] = [];
        for (const m of msgs) {
          const d = decodeLinkMessage(m);
          if (d.kind !== "frame" && d.kind !== "first" && d.kind !== "more") throw new Error(d.kind);
          const f = r.push(d);
          if (f) out.push(f);
        }
        expect(out).toEqual([frame]);
        expect(r.pending).toBe(false);
      }),
    );
  });

  it("uses one message when the frame fits and the fewest chunks otherwise", () => {
    expect(splitFrame(new Uint8Array(63), 64)).toHaveLength(1);
    expect(splitFrame(new Uint8Array(64), 64)).toHaveLength(2);
    // 1 MiB over 64 KiB messages: 59 + 65535 * 16 >= 1 MiB, so 17 messages.
    expect(splitFrame(new Uint8Array(1 << 20), 65536)).toHaveLength(17);
    expect(() => splitFrame(new Uint8Array(10), 10)).toThrow(/below 64/);
    expect(() => splitFrame(new Uint8Array(100), 64, 99)).toThrow(/exceeds the 99-byte frame limit/);
  });

  it("rejects chunk sequences a correct peer never sends", () => {
    const more = { kind: "more", payload: new Uint8Array(4) } as const;
    const first = { kind: "first", total: 10, payload: new Uint8Array(4) } as const;
    expect(() => new Reassembler().push(more)).toThrow(/no chunked frame begun/);
    const r = new Reassembler();
    r.push(first);
    expect(() => r.push({ kind: "frame", payload: new Uint8Array(1) })).toThrow(/inside a chunked frame/);
    const r2 = new Reassembler();
    r2.push(first);
    expect(() => r2.push({ kind: "more", payload: new Uint8Array(7) })).toThrow(/overrun/);
    expect(() => new Reassembler(100).push({ kind: "first", total: 101, payload: new Uint8Array(1) })).toThrow(/at most 100/);
    expect(() => new Reassembler().push({ kind: "first", total: 4, payload: new Uint8Array(4) })).toThrow(/not a chunked frame/);
    expect(() => decodeLinkMessage(new Uint8Array([9]))).toThrow(/unknown kind 9/);
    expect(() => decodeLinkMessage(new Uint8Array([4, 1, 2]))).toThrow(/expected 13/);
    expect(() => decodeLinkMessage(new Uint8Array(0))).toThrow(FabricError);
  });

  it("encodes control messages", () => {
    for (const m of [{ kind: "ping", seq: 7, at: 123.5 }, { kind: "pong", seq: 0xffffffff, at: 0 }, { kind: "bye", reason: "tab closed" }] as const)
      expect(decodeLinkMessage(encodeLinkMessage(m))).toEqual(m);
  });
});

describe("link over a channel", () => {
  it("delivers frames of every size intact and in order, including a 1 MiB frame in chunks", async () => {
    const [a, b] = channelPair(16 * 1024);
    const la = new Link(a);
    const lb = new Link(b);
    const got: Uint8Array[] = [];
    lb.onFrame((f) => got.push(f));
    const sizes = [0, 1, 4096, 16 * 1024 - 1, 16 * 1024, 1 << 20, 3, 70_000];
    const frames = sizes.map((n, i) => frameOf(n, i));
    for (const f of frames) la.send(f);
    for (let i = 0; i < 200 && got.length < frames.length; i++) await flush();
    expect(got.map((f) => f.length)).toEqual(sizes);
    // Byte-exact (Buffer.equals: a deep toEqual over 1 MiB element by element is very slow).
    expect(got.map((f, i) => Buffer.from(f).equals(Buffer.from(frames[i]!)))).toEqual(sizes.map(() => true));
    expect(Math.max(...a.sent.map((m) => m.length))).toBeLessThanOrEqual(16 * 1024);
    expect(lb.framesReceived).toBe(frames.length);
  });

  it("stops handing messages to a full channel and resumes on bufferedamountlow", () => {
    const [a, b] = channelPair(1024, true, 2048);
    const la = new Link(a, { highWaterBytes: 8192 });
    new Link(b);
    la.send(new Uint8Array(100 * 1024)); // 101 messages of <= 1 KiB
    // It fills the buffer past the high-water mark by at most one message, then waits.
    expect(a.bufferedAmount).toBeGreaterThan(8192);
    expect(a.bufferedAmount).toBeLessThanOrEqual(8192 + 1024);
    expect(la.queuedBytes).toBeGreaterThan(90 * 1024);
    const queuedBefore = la.queuedBytes;
    a.drain(3); // still above the low threshold: nothing more moves
    expect(la.queuedBytes).toBe(queuedBefore);
    for (let i = 0; i < 200 && la.queuedBytes > 0; i++) a.drain(8);
    expect(la.queuedBytes).toBe(0);
    expect(a.maxBuffered).toBeLessThanOrEqual(8192 + 1024);
    expect(a.sent.reduce((n, m) => n + m.length, 0)).toBeGreaterThan(100 * 1024);
  });

  it("never waits for a bufferedamountlow that cannot come (high-water mark below the threshold)", () => {
    // The event fires only on a fall from above the threshold; a link that stopped below it
    // would wait forever. This hung in Chromium before the high-water mark was clamped.
    const [a, b] = channelPair(1024, true, 4096);
    const la = new Link(a, { highWaterBytes: 1024 });
    new Link(b);
    la.send(new Uint8Array(20 * 1024));
    for (let i = 0; i < 200 && la.queuedBytes > 0; i++) a.drain(2);
    expect(la.queuedBytes).toBe(0);
  });

  it("adds the configured one-way delay at the send side and keeps order when it changes", () => {
    const clock = new ManualClock();
    const [a, b] = channelPair(1024, true);
    const la = new Link(a, { clock });
    new Link(b, { clock });
    la.setDelay(20);
    la.send(frameOf(10, 1));
    clock.advance(19);
    expect(a.sent).toHaveLength(0);
    clock.advance(1);
    expect(a.sent).toHaveLength(1);
    la.send(frameOf(10, 2)); // due at 40
    la.setDelay(0);
    la.send(frameOf(10, 3)); // would be due now, but must not overtake the previous frame
    expect(a.sent).toHaveLength(1);
    clock.advance(20);
    expect(a.sent.map((m) => m[2])).toEqual([frameOf(10, 1)[1], frameOf(10, 2)[1], frameOf(10, 3)[1]]);
    expect(() => la.setDelay(51)).toThrow(/0\.\.50/);
    expect(() => la.setDelay(-1)).toThrow(RangeError);
    expect(() => la.setDelay(Number.NaN)).toThrow(RangeError);
  });

  it("measures the round trip of a ping, including both sides' added delay", async () => {
    const clock = new ManualClock();
    const [a, b] = channelPair(1024, true);
    const la = new Link(a, { clock });
    const lb = new Link(b, { clock });
    la.setDelay(5);
    lb.setDelay(7);
    const rtt = la.ping();
    clock.advance(5);
    a.drain(); // the ping reaches b, which queues its pong with its own 7 ms
    clock.advance(7);
    b.drain();
    expect(await rtt).toBe(12);
    expect(la.rtt.last).toBe(12);
    expect(la.rtt.percentile(50)).toBe(12);
  });

  it("reports the peer's goodbye and fails on a malformed message", async () => {
    const [a, b] = channelPair(1024);
    const la = new Link(a);
    const lb = new Link(b);
    const closed = new Promise<string | undefined>((r) => lb.onClose((info) => r(info.byeReason)));
    la.close("tab closed");
    expect(await closed).toMatch(/goodbye: tab closed/);
    expect(() => la.send(new Uint8Array(1))).toThrow(/link is closed/);

    const [c, d] = channelPair(1024);
    const ld = new Link(d);
    const err = new Promise<FabricError | undefined>((r) => ld.onClose((info) => r(info.error)));
    c.send(new Uint8Array([3, 1, 2])); // a continuation with nothing begun
    expect((await err)?.message).toMatch(/no chunked frame begun/);
    expect(d.closed).toBe(true);
  });

  it("closes a link whose peer stays silent, and only then", async () => {
    const clock = new ManualClock();
    const [a, b] = channelPair(1024, true);
    const la = new Link(a, { clock });
    new Link(b, { clock });
    const closed = new Promise<FabricError | undefined>((r) => la.onClose((i) => r(i.error)));
    clock.advance(3000);
    expect(la.checkSilence(5000, "tab 1")).toBe(false);
    b.send(encodeLinkMessage({ kind: "pong", seq: 1, at: 0 })); // anything heard resets the count
    b.drain();
    clock.advance(4000);
    expect(la.checkSilence(5000, "tab 1")).toBe(false);
    clock.advance(1001);
    expect(la.checkSilence(5000, "tab 1")).toBe(true);
    expect((await closed)?.message).toMatch(/tab 1 has been silent for 5001 ms \(limit 5000 ms\)/);
    expect(la.closed).toBe(true);
  });

  it("rejects a pending ping when the link closes", async () => {
    const [a, b] = channelPair(1024, true);
    const la = new Link(a);
    new Link(b);
    const p = la.ping();
    b.close();
    await expect(p).rejects.toThrow(/closed before the pong/);
  });
});

describe("percentile", () => {
  it("is the nearest-rank percentile", () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(xs, 50)).toBe(5);
    expect(percentile(xs, 99)).toBe(10);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([], 50)).toBeUndefined();
  });
});
