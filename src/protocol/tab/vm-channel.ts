// Node frames on a VM channel: the data channel between two tabs' net workers (issue 15). Each
// channel message is one chunk: [flags][from][to][bytes]; a node frame larger than the channel's
// message limit goes as several chunks in a row, the last without the MORE flag. A PING or PONG
// message ([flag][0][0][u32 id]) measures the channel's round trip between the two net workers
// while the VM runs (the bench's reference: same tabs, same load), and is never inside a frame. The channel is
// ordered and reliable and one net worker writes each direction, so chunks of two frames never
// interleave. Pure: bytes in, frames out; the net worker checks who may send which node's frames.

/** Flag: more chunks of this frame follow. */
const MORE = 1;
const PING = 2;
const PONG = 4;
const HEADER = 3;
/** Node ids fit one byte (a VM has at most 64 nodes: planTab). */
const MAX_NODE = 255;

export class VmChannelError extends Error {
  override name = "VmChannelError";
}

/** The channel messages carrying one node frame, each at most `maxMessage` bytes. */
export function encodeVmFrame(from: number, to: number, frame: Uint8Array, maxMessage: number): Uint8Array[] {
  if (!Number.isInteger(from) || from < 0 || from > MAX_NODE) throw new RangeError(`node ${from} is not 0..${MAX_NODE}`);
  if (!Number.isInteger(to) || to < 0 || to > MAX_NODE) throw new RangeError(`node ${to} is not 0..${MAX_NODE}`);
  if (!Number.isInteger(maxMessage) || maxMessage <= HEADER) throw new RangeError(`a channel message of ${maxMessage} bytes cannot hold a chunk`);
  const room = maxMessage - HEADER;
  const chunks: Uint8Array[] = [];
  let at = 0;
  do {
    const n = Math.min(room, frame.length - at);
    const c = new Uint8Array(HEADER + n);
    c[0] = at + n < frame.length ? MORE : 0;
    c[1] = from;
    c[2] = to;
    c.set(frame.subarray(at, at + n), HEADER);
    chunks.push(c);
    at += n;
  } while (at < frame.length);
  return chunks;
}

export interface VmFrame {
  kind: "frame";
  from: number;
  to: number;
  frame: Uint8Array;
}

/** A round-trip probe between two net workers: a ping is answered at once with a pong of its id. */
export interface VmProbe {
  kind: "ping" | "pong";
  id: number;
}

export function encodeVmProbe(kind: VmProbe["kind"], id: number): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`probe id ${id} is not a u32`);
  const m = new Uint8Array(HEADER + 4);
  m[0] = kind === "ping" ? PING : PONG;
  new DataView(m.buffer).setUint32(HEADER, id, true);
  return m;
}

/** Joins one channel's chunks back into node frames, refusing what a well-behaved peer never sends. */
export class VmFrameReader {
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private head: { from: number; to: number } | null = null;

  constructor(private readonly maxFrame: number) {}

  /** One channel message; a whole frame when it was the last chunk, a probe, else null. */
  read(message: Uint8Array): VmFrame | VmProbe | null {
    if (message.length < HEADER) throw new VmChannelError(`a VM channel message of ${message.length} bytes is shorter than its ${HEADER}-byte header`);
    const flags = message[0]!;
    const from = message[1]!;
    const to = message[2]!;
    if (flags === PING || flags === PONG) {
      if (this.head) throw new VmChannelError(`a ${flags === PING ? "ping" : "pong"} came inside a frame from node ${this.head.from} to node ${this.head.to}`);
      if (message.length !== HEADER + 4 || from !== 0 || to !== 0) throw new VmChannelError(`a VM channel probe must be ${HEADER + 4} bytes with zero node bytes`);
      return { kind: flags === PING ? "ping" : "pong", id: new DataView(message.buffer, message.byteOffset, message.byteLength).getUint32(HEADER, true) };
    }
    if (flags & ~MORE) throw new VmChannelError(`a VM channel message has unknown flags 0x${flags.toString(16)}`);
    if (this.head && (this.head.from !== from || this.head.to !== to))
      throw new VmChannelError(`a chunk from node ${from} to node ${to} came inside a frame from node ${this.head.from} to node ${this.head.to}`);
    this.head = { from, to };
    this.bytes += message.length - HEADER;
    if (this.bytes > this.maxFrame) throw new VmChannelError(`a node frame from node ${from} to node ${to} exceeds ${this.maxFrame} bytes`);
    const body = message.subarray(HEADER);
    if (flags & MORE) {
      this.parts.push(body.slice());
      return null;
    }
    let frame: Uint8Array;
    if (this.parts.length === 0) frame = body.slice();
    else {
      frame = new Uint8Array(this.bytes);
      let at = 0;
      for (const p of [...this.parts, body]) {
        frame.set(p, at);
        at += p.length;
      }
    }
    this.parts = [];
    this.bytes = 0;
    this.head = null;
    return { kind: "frame", from, to, frame };
  }
}
