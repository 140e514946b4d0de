import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FabricError } from "../../src/fabric/errors.ts";
import { decodeControl, decodeLinkMessage, encodeLinkMessage, MAX_CONTROL_BYTES, Reassembler, splitControl, splitFrame } from "../../src/fabric/link-codec.ts";
import { Link, MAX_QUEUED_PONGS } from "../../src/fabric/link.ts";
import type { LinkControl } from "../../src/fabric/messages.ts";
import { newPeerId } from "../../src/fabric/ids.ts";
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
          if (f) out.push(f.bytes);
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

  it("carries the fabric's control messages, chunked when large, validated on arrival", () => {
    const members = Array.from({ length: 40 }, (_, i) => ({ tab: i, peer: newPeerId(), role: i === 0 ? "host" : "compute", vcpus: [i], build: "b".repeat(100) }) as const);
    const roster: LinkControl = { t: "roster", epoch: 7, members: members.map((m) => ({ ...m, vcpus: [...m.vcpus] })), gone: [{ tab: 41, peer: newPeerId(), reason: "evicted by tab 0" }] };
    for (const msg of [roster, { t: "ready" } as const]) {
      const msgs = splitControl(msg, 256);
      for (const m of msgs) expect(m.length).toBeLessThanOrEqual(256);
      const r = new Reassembler();
      let done;
      for (const m of msgs) done = r.push(decodeLinkMessage(m) as Parameters<Reassembler["push"]>[0]);
      expect(done?.control).toBe(true);
      expect(decodeControl(done!.bytes)).toEqual(msg);
    }
    expect(splitControl(roster, 256).length).toBeGreaterThan(10);
    // Bounded, and only known, well-formed control messages become messages.
    expect(() => new Reassembler().push({ kind: "control-first", total: MAX_CONTROL_BYTES + 1, payload: new Uint8Array(1) })).toThrow(/control message of \d+ bytes announced, at most/);
    expect(() => decodeControl(new TextEncoder().encode('{"t":"welcome"}'))).toThrow(/body\.t is "welcome", expected one of roster, ready, link-lost/);
    expect(() => decodeControl(new TextEncoder().encode("{not json"))).toThrow(/not UTF-8 JSON/);
    expect(() => decodeControl(new TextEncoder().encode('{"t":"roster","epoch":1,"members":[],"gone":[{"tab":1}]}'))).toThrow(/gone\[0\]\.peer/);
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

  it("does not judge a peer silent at a check that came late (this side was stalled), but at the next one", async () => {
    const clock = new ManualClock();
    const [a, b] = channelPair(1024, true);
    const la = new Link(a, { clock });
    new Link(b, { clock });
    const closed = new Promise<FabricError | undefined>((r) => la.onClose((i) => r(i.error)));
    clock.advance(1000);
    expect(la.checkSilence(5000, "tab 2")).toBe(false);
    clock.advance(6000); // this thread ran nothing for 6 s; the peer's answer may wait in our queue
    expect(la.checkSilence(5000, "tab 2")).toBe(false);
    clock.advance(1000); // a regular check: nothing came in the meantime, so the peer is silent
    expect(la.checkSilence(5000, "tab 2")).toBe(true);
    expect((await closed)?.message).toMatch(/tab 2 has been silent for 8000 ms/);
    // and the case the rule is for: the answer was queued behind the late check and is heard next
    const [c, d] = channelPair(1024, true);
    const lc = new Link(c, { clock });
    new Link(d, { clock });
    expect(lc.checkSilence(5000)).toBe(false);
    clock.advance(6500);
    expect(lc.checkSilence(5000)).toBe(false);
    d.send(encodeLinkMessage({ kind: "pong", seq: 1, at: 0 }));
    d.drain();
    clock.advance(1000);
    expect(lc.checkSilence(5000)).toBe(false);
    expect(lc.closed).toBe(false);
  });

  it("counts a peer heard on another channel (its worker's VM channel) as alive", () => {
    const clock = new ManualClock();
    const [a, b] = channelPair(1024, true);
    const la = new Link(a, { clock });
    new Link(b, { clock });
    for (let t = 1; t <= 8; t++) {
      clock.advance(1000);
      // nothing on this link for 8 s, but the peer's frames came elsewhere 300 ms ago
      expect(la.checkSilence(5000, "tab 1", 300)).toBe(false);
    }
    clock.advance(1000);
    expect(la.checkSilence(5000, "tab 1", 5200)).toBe(true);
    expect(la.closed).toBe(true);
  });

  it("delivers control messages in order with frames, and closes the link on a malformed one", async () => {
    const [a, b] = channelPair(128);
    const la = new Link(a);
    const lb = new Link(b);
    const got: string[] = [];
    lb.onFrame((f) => got.push(`frame ${f.length}`));
    lb.onControl((m) => got.push(`control ${m.t}${m.t === "roster" ? ` ${m.members.length}` : ""}`));
    const members = Array.from({ length: 5 }, (_, i) => ({ tab: i, peer: newPeerId(), role: "compute" as const, vcpus: [i], build: "x" }));
    la.send(frameOf(300, 1));
    la.sendControl({ t: "roster", epoch: 2, members }); // chunked at 128 bytes
    la.send(frameOf(3, 2));
    la.sendControl({ t: "ready" });
    for (let i = 0; i < 50 && got.length < 4; i++) await flush();
    expect(got).toEqual(["frame 300", "control roster 5", "frame 3", "control ready"]);
    expect(lb.framesReceived).toBe(2);

    const closed = new Promise<FabricError | undefined>((r) => lb.onClose((i) => r(i.error)));
    a.send(encodeLinkMessage({ kind: "control", payload: new TextEncoder().encode('{"t":"roster","epoch":-1,"members":[]}') }));
    expect((await closed)?.message).toMatch(/link control message: roster\.epoch is -1/);
  });

  it("bounds the pings the peer leaves unanswered: the link closes with a named error", async () => {
    const [a, b] = channelPair(1024);
    const la = new Link(a, { maxUnansweredPings: 8 });
    const heard: number[] = [];
    b.onMessage((m) => heard.push(m[0]!)); // the peer reads, never answers a ping
    const pending = Array.from({ length: 8 }, () => la.ping());
    for (const p of pending) p.catch(() => {});
    await flush();
    expect(heard).toHaveLength(8);
    expect(la.unansweredPings).toBe(8);
    expect(la.closed).toBe(false);
    const closed = new Promise<FabricError | undefined>((r) => la.onClose((i) => r(i.error)));
    await expect(la.ping()).rejects.toMatchObject({ code: "overflow", message: expect.stringMatching(/8 pings to the peer are unanswered \(at most 8\)/) });
    expect((await closed)?.code).toBe("overflow");
    expect(la.closed).toBe(true);
    expect(la.unansweredPings).toBe(0);
    await expect(pending[0]).rejects.toThrow(/closed before the pong/);
  });

  it("bounds the pongs a peer can make it queue by pinging faster than it reads", async () => {
    const [a, b] = channelPair(1024, true); // nothing a sends reaches b until drained: b does not read
    const la = new Link(a, { highWaterBytes: 64 });
    const closed = new Promise<FabricError | undefined>((r) => la.onClose((i) => r(i.error)));
    for (let i = 0; i < MAX_QUEUED_PONGS + 20; i++) b.send(encodeLinkMessage({ kind: "ping", seq: i, at: 0 }));
    b.drain();
    expect(la.closed).toBe(true);
    const err = await closed;
    expect(err?.code).toBe("overflow");
    expect(err?.message).toMatch(new RegExp(`pings faster than it reads the answers: ${MAX_QUEUED_PONGS} pongs wait`));
    expect(la.queuedBytes).toBe(0);
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
