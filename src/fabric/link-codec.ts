// What travels on a data channel: VM frames (opaque bytes), split into chunks when they exceed the
// channel's message size limit, plus the link's own ping/pong/bye and the fabric's control
// messages (JSON, validated by messages.ts; chunked like frames). One kind byte leads every
// channel message. The channel is ordered and reliable, so the chunks of one frame arrive
// consecutively and reassembly needs no sequence numbers, only a declared total to check against.

import { FabricError } from "./errors.ts";
import { type LinkControl, parseLinkControl } from "./messages.ts";

export type LinkMessage =
  | { kind: "frame"; payload: Uint8Array } // a whole frame in one channel message
  | { kind: "first"; total: number; payload: Uint8Array } // first chunk of a frame of `total` bytes
  | { kind: "more"; payload: Uint8Array } // next chunk of the frame being reassembled
  | { kind: "ping"; seq: number; at: number } // `at` is the sender's clock, echoed in the pong
  | { kind: "pong"; seq: number; at: number }
  | { kind: "bye"; reason: string }
  | { kind: "control"; payload: Uint8Array } // a whole control message (UTF-8 JSON of a LinkControl)
  | { kind: "control-first"; total: number; payload: Uint8Array }; // first chunk of a control message

/** The kinds that carry (part of) a frame or a control message, in and out of the Reassembler. */
export type ChunkMessage = Extract<LinkMessage, { kind: "frame" | "first" | "more" | "control" | "control-first" }>;

const CODES = { frame: 1, first: 2, more: 3, ping: 4, pong: 5, bye: 6, control: 7, "control-first": 8 } as const;
const FIRST_HEADER = 5;
/** Smallest channel message size we can work with (a chunk must carry some payload). */
export const MIN_MESSAGE_SIZE = 64;
/** Largest frame a peer may announce; bounds what a bad peer can make us allocate. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Largest control message a peer may announce (a roster of 255 members is well below). */
export const MAX_CONTROL_BYTES = 256 * 1024;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export function encodeLinkMessage(m: LinkMessage): Uint8Array {
  switch (m.kind) {
    case "frame":
    case "more":
    case "control": {
      const out = new Uint8Array(1 + m.payload.length);
      out[0] = CODES[m.kind];
      out.set(m.payload, 1);
      return out;
    }
    case "first":
    case "control-first": {
      const out = new Uint8Array(FIRST_HEADER + m.payload.length);
      out[0] = CODES[m.kind];
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
    case CODES.control:
      return { kind: "control", payload: bytes.subarray(1) };
    case CODES.first:
    case CODES["control-first"]:
      if (bytes.length < FIRST_HEADER) throw bad("first chunk shorter than its header");
      return { kind: bytes[0] === CODES.first ? "first" : "control-first", total: v.getUint32(1, true), payload: bytes.subarray(FIRST_HEADER) };
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
  if (frame.length > maxFrame) throw new RangeError(`frame of ${frame.length} bytes exceeds the ${maxFrame}-byte frame limit`);
  return split(frame, maxMessage, "frame", "first");
}

const utf8Json = (v: unknown) => utf8.encode(JSON.stringify(v));

/** Channel messages carrying one control message, chunked like a frame when it is large. */
export function splitControl(msg: LinkControl, maxMessage: number): Uint8Array[] {
  const bytes = utf8Json(msg);
  if (bytes.length > MAX_CONTROL_BYTES) throw new RangeError(`control message of ${bytes.length} bytes exceeds the ${MAX_CONTROL_BYTES}-byte limit`);
  return split(bytes, maxMessage, "control", "control-first");
}

/** A reassembled control message -> a validated LinkControl (the one place its bytes become one). */
export function decodeControl(bytes: Uint8Array): LinkControl {
  let v: unknown;
  try {
    v = JSON.parse(utf8Strict.decode(bytes));
  } catch {
    throw bad("control message is not UTF-8 JSON");
  }
  return parseLinkControl(v);
}

function split(payload: Uint8Array, maxMessage: number, whole: "frame" | "control", first: "first" | "control-first"): Uint8Array[] {
  if (!Number.isInteger(maxMessage) || maxMessage < MIN_MESSAGE_SIZE) throw new RangeError(`message size limit ${maxMessage} is below ${MIN_MESSAGE_SIZE}`);
  if (payload.length + 1 <= maxMessage) return [encodeLinkMessage({ kind: whole, payload })];
  const out = [encodeLinkMessage({ kind: first, total: payload.length, payload: payload.subarray(0, maxMessage - FIRST_HEADER) })];
  for (let pos = maxMessage - FIRST_HEADER; pos < payload.length; pos += maxMessage - 1)
    out.push(encodeLinkMessage({ kind: "more", payload: payload.subarray(pos, pos + maxMessage - 1) }));
  return out;
}

/** What the Reassembler completed: a VM frame or a control message's bytes. */
export interface Reassembled {
  control: boolean;
  bytes: Uint8Array;
}

/**
 * Rebuilds frames and control messages from their chunks; throws on anything out of sequence.
 * Bounded: a frame may announce at most `maxFrame` bytes, a control message MAX_CONTROL_BYTES.
 */
export class Reassembler {
  private buf: Uint8Array | undefined;
  private control = false;
  private filled = 0;

  constructor(
    private readonly maxFrame = DEFAULT_MAX_FRAME_BYTES,
    private readonly maxControl = MAX_CONTROL_BYTES,
  ) {}

  get pending(): boolean {
    return this.buf !== undefined;
  }

  /** Returns the completed frame or control message, or undefined while a chunked one is still incomplete. */
  push(m: ChunkMessage): Reassembled | undefined {
    switch (m.kind) {
      case "frame":
      case "control":
        if (this.buf) throw bad(`a whole ${m.kind === "frame" ? "frame" : "control message"} arrived inside a chunked ${this.what} (${this.filled} of ${this.buf.length} bytes)`);
        if (m.kind === "control" && m.payload.length > this.maxControl) throw bad(`control message of ${m.payload.length} bytes, at most ${this.maxControl} accepted`);
        return { control: m.kind === "control", bytes: m.payload.slice() };
      case "first":
      case "control-first": {
        const control = m.kind === "control-first";
        if (this.buf) throw bad(`a new chunked ${control ? "control message" : "frame"} began inside a chunked ${this.what} (${this.filled} of ${this.buf.length} bytes)`);
        const max = control ? this.maxControl : this.maxFrame;
        if (m.total > max) throw bad(`${control ? "control message" : "frame"} of ${m.total} bytes announced, at most ${max} accepted`);
        if (m.payload.length >= m.total) throw bad(`first chunk carries ${m.payload.length} of a ${m.total}-byte ${control ? "control message" : "frame"}: not a chunked ${control ? "control message" : "frame"}`);
        this.buf = new Uint8Array(m.total);
        this.buf.set(m.payload);
        this.filled = m.payload.length;
        this.control = control;
        return undefined;
      }
      case "more": {
        const buf = this.buf;
        if (!buf) throw bad("a continuation chunk arrived with no chunked frame begun");
        if (m.payload.length === 0) throw bad("empty continuation chunk");
        if (this.filled + m.payload.length > buf.length)
          throw bad(`chunks overrun the announced ${buf.length}-byte ${this.what}`);
        buf.set(m.payload, this.filled);
        this.filled += m.payload.length;
        if (this.filled < buf.length) return undefined;
        this.buf = undefined;
        this.filled = 0;
        return { control: this.control, bytes: buf };
      }
    }
  }

  private get what(): string {
    return this.control ? "control message" : "frame";
  }
}
