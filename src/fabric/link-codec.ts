// What travels on a data channel: VM frames (opaque bytes), split into chunks when they exceed the
// channel's message size limit, plus the link's own ping/pong/bye. One kind byte leads every
// channel message. The channel is ordered and reliable, so the chunks of one frame arrive
// consecutively and reassembly needs no sequence numbers, only a declared total to check against.

import { FabricError } from "./errors.ts";

export type LinkMessage =
  | { kind: "frame"; payload: Uint8Array } // a whole frame in one channel message
  | { kind: "first"; total: number; payload: Uint8Array } // first chunk of a frame of `total` bytes
  | { kind: "more"; payload: Uint8Array } // next chunk of the frame being reassembled
  | { kind: "ping"; seq: number; at: number } // `at` is the sender's clock, echoed in the pong
  | { kind: "pong"; seq: number; at: number }
  | { kind: "bye"; reason: string };

const CODES = { frame: 1, first: 2, more: 3, ping: 4, pong: 5, bye: 6 } as const;
const FIRST_HEADER = 5;
/** Smallest channel message size we can work with (a chunk must carry some payload). */
export const MIN_MESSAGE_SIZE = 64;
/** Largest frame a peer may announce; bounds what a bad peer can make us allocate. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export function encodeLinkMessage(m: LinkMessage): Uint8Array {
  switch (m.kind) {
    case "frame":
    case "more": {
      const out = new Uint8Array(1 + m.payload.length);
      out[0] = CODES[m.kind];
      out.set(m.payload, 1);
      return out;
    }
    case "first": {
      const out = new Uint8Array(FIRST_HEADER + m.payload.length);
      out[0] = CODES.first;
      new DataView(out.buffer).setUint32(1, m.total, true);
      out.set(m.payload, FIRST_HEADER);
      return out;
    }
    case "ping":
    case "pong": {
      const out = new Uint8Array(13);
      const v = new DataView(out.buffer);
      out[0] = CODES[m.kind];
      v.setUint32(1, m.seq, true);
      v.setFloat64(5, m.at, true);
      return out;
    }
    case "bye": {
      const text = utf8.encode(m.reason.slice(0, 200));
      const out = new Uint8Array(1 + text.length);
      out[0] = CODES.bye;
      out.set(text, 1);
      return out;
    }
  }
}

const bad = (why: string) => new FabricError("bad-message", `data channel message: ${why}`);

/** Decodes one channel message; payloads are views into `bytes` (no copy). */
export function decodeLinkMessage(bytes: Uint8Array): LinkMessage {
  if (bytes.length === 0) throw bad("empty");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[0]) {
    case CODES.frame:
      return { kind: "frame", payload: bytes.subarray(1) };
    case CODES.more:
      return { kind: "more", payload: bytes.subarray(1) };
    case CODES.first:
      if (bytes.length < FIRST_HEADER) throw bad("first chunk shorter than its header");
      return { kind: "first", total: v.getUint32(1, true), payload: bytes.subarray(FIRST_HEADER) };
    case CODES.ping:
    case CODES.pong: {
      if (bytes.length !== 13) throw bad(`ping/pong of ${bytes.length} bytes, expected 13`);
      const at = v.getFloat64(5, true);
      if (!Number.isFinite(at)) throw bad("ping/pong time is not finite");
      return { kind: bytes[0] === CODES.ping ? "ping" : "pong", seq: v.getUint32(1, true), at };
    }
    case CODES.bye:
      try {
        return { kind: "bye", reason: utf8Strict.decode(bytes.subarray(1)) };
      } catch {
        throw bad("bye reason is not UTF-8");
      }
    default:
      throw bad(`unknown kind ${bytes[0]}`);
  }
}

/**
 * Channel messages carrying one frame: itself (kind byte added) when it fits in `maxMessage`,
 * otherwise a "first" chunk announcing the total and "more" chunks, each at most `maxMessage`.
 */
export function splitFrame(frame: Uint8Array, maxMessage: number, maxFrame = DEFAULT_MAX_FRAME_BYTES): Uint8Array[] {
  if (!(frame instanceof Uint8Array)) throw new TypeError("a frame must be a Uint8Array");
  if (!Number.isInteger(maxMessage) || maxMessage < MIN_MESSAGE_SIZE) throw new RangeError(`message size limit ${maxMessage} is below ${MIN_MESSAGE_SIZE}`);
  if (frame.length > maxFrame) throw new RangeError(`frame of ${frame.length} bytes exceeds the ${maxFrame}-byte frame limit`);
  if (frame.length + 1 <= maxMessage) return [encodeLinkMessage({ kind: "frame", payload: frame })];
  const out = [encodeLinkMessage({ kind: "first", total: frame.length, payload: frame.subarray(0, maxMessage - FIRST_HEADER) })];
  for (let pos = maxMessage - FIRST_HEADER; pos < frame.length; pos += maxMessage - 1)
    out.push(encodeLinkMessage({ kind: "more", payload: frame.subarray(pos, pos + maxMessage - 1) }));
  return out;
}

/** Rebuilds frames from "frame"/"first"/"more" messages; throws on anything out of sequence. */
export class Reassembler {
  private buf: Uint8Array | undefined;
  private filled = 0;

  constructor(private readonly maxFrame = DEFAULT_MAX_FRAME_BYTES) {}

  get pending(): boolean {
    return this.buf !== undefined;
  }

  /** Returns the completed frame, or undefined while a chunked frame is still incomplete. */
  push(m: Extract<LinkMessage, { kind: "frame" | "first" | "more" }>): Uint8Array | undefined {
    switch (m.kind) {
      case "frame":
        if (this.buf) throw bad(`a whole frame arrived inside a chunked frame (${this.filled} of ${this.buf.length} bytes)`);
        return m.payload.slice();
      case "first":
        if (this.buf) throw bad(`a new chunked frame began inside another (${this.filled} of ${this.buf.length} bytes)`);
        if (m.total > this.maxFrame) throw bad(`frame of ${m.total} bytes announced, at most ${this.maxFrame} accepted`);
        if (m.payload.length >= m.total) throw bad(`first chunk carries ${m.payload.length} of a ${m.total}-byte frame: not a chunked frame`);
        this.buf = new Uint8Array(m.total);
        this.buf.set(m.payload);
        this.filled = m.payload.length;
        return undefined;
      case "more": {
        const buf = this.buf;
        if (!buf) throw bad("a continuation chunk arrived with no chunked frame begun");
        if (m.payload.length === 0) throw bad("empty continuation chunk");
        if (this.filled + m.payload.length > buf.length)
          throw bad(`chunks overrun the announced ${buf.length}-byte frame`);
        buf.set(m.payload, this.filled);
        this.filled += m.payload.length;
        if (this.filled < buf.length) return undefined;
        this.buf = undefined;
        this.filled = 0;
        return buf;
      }
    }
  }
}
