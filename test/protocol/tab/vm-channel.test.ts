// Node frames on a VM channel between two tabs' net workers (issue 15): chunked to the channel's
// message limit and joined back, and what a well-behaved peer never sends is refused by name.

import { describe, expect, it } from "vitest";
import { encodeVmFrame, encodeVmProbe, VmChannelError, VmFrameReader } from "../../../src/protocol/tab/vm-channel.ts";

const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe("VM channel frames", () => {
  it("round-trips frames of every size around the chunk boundary, in order, on one reader", () => {
    const reader = new VmFrameReader(1 << 20);
    const max = 64;
    for (const n of [0, 1, 60, 61, 62, 122, 123, 1000, 4096]) {
      const frame = bytes(n, n);
      const chunks = encodeVmFrame(3, 7, frame, max);
      expect(chunks.every((c) => c.length <= max)).toBe(true);
      expect(chunks.length).toBe(Math.max(1, Math.ceil(n / (max - 3))));
      const got = chunks.map((c) => reader.read(c));
      expect(got.slice(0, -1).every((g) => g === null)).toBe(true);
      expect(got.at(-1)).toEqual({ kind: "frame", from: 3, to: 7, frame });
    }
  });

  it("refuses a short message, unknown flags, a chunk of another frame inside one, and a frame over the limit", () => {
    expect(() => new VmFrameReader(100).read(new Uint8Array([0, 1]))).toThrow(/shorter than its 3-byte header/);
    expect(() => new VmFrameReader(100).read(new Uint8Array([8, 1, 2]))).toThrow(/unknown flags 0x8/);
    expect(() => new VmFrameReader(100).read(new Uint8Array([2, 1, 0, 0, 0, 0, 0]))).toThrow(/probe must be 7 bytes with zero node bytes/);
    const r = new VmFrameReader(100);
    const [first] = encodeVmFrame(1, 0, bytes(50), 20);
    r.read(first!);
    expect(() => r.read(encodeVmFrame(2, 0, bytes(5), 20)[0]!)).toThrow(/chunk from node 2 to node 0 came inside a frame from node 1 to node 0/);
    const big = new VmFrameReader(100);
    expect(() => encodeVmFrame(1, 0, bytes(101), 40).forEach((c) => big.read(c))).toThrow(VmChannelError);
  });

  it("carries round-trip probes, never inside a frame", () => {
    const r = new VmFrameReader(100);
    expect(r.read(encodeVmProbe("ping", 42))).toEqual({ kind: "ping", id: 42 });
    expect(r.read(encodeVmProbe("pong", 0xffffffff))).toEqual({ kind: "pong", id: 0xffffffff });
    r.read(encodeVmFrame(1, 0, bytes(50), 20)[0]!);
    expect(() => r.read(encodeVmProbe("ping", 1))).toThrow(/a ping came inside a frame from node 1 to node 0/);
    expect(() => encodeVmProbe("ping", -1)).toThrow(RangeError);
  });

  it("refuses to encode node ids that do not fit or a message too small for a chunk", () => {
    expect(() => encodeVmFrame(256, 0, bytes(1), 64)).toThrow(RangeError);
    expect(() => encodeVmFrame(0, -1, bytes(1), 64)).toThrow(RangeError);
    expect(() => encodeVmFrame(0, 1, bytes(1), 3)).toThrow(/cannot hold a chunk/);
  });
});
