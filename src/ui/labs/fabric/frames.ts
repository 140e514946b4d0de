// The lab's own frames (the fabric itself carries opaque bytes): numbered data frames whose
// content is a function of their number, so the receiver can check every byte without a copy of
// what was sent, and echo requests/replies for round-trip measurements.
//   [kind u8][seq u32 LE][payload]

export const LAB_DATA = 1;
export const LAB_ECHO_REQUEST = 2;
export const LAB_ECHO_REPLY = 3;
const HEADER = 5;

/** Byte i of frame `seq`: cheap, different for every frame and position. */
const byteAt = (seq: number, i: number) => (Math.imul(i + 1, 2654435761) ^ Math.imul(seq + 1, 40503)) >>> 24;

export function dataFrame(seq: number, size: number): Uint8Array {
  if (size < HEADER) throw new RangeError(`a lab frame needs at least ${HEADER} bytes`);
  const f = new Uint8Array(size);
  f[0] = LAB_DATA;
  new DataView(f.buffer).setUint32(1, seq, true);
  for (let i = HEADER; i < size; i++) f[i] = byteAt(seq, i);
  return f;
}

export interface CheckedFrame {
  seq: number;
  size: number;
  intact: boolean;
}

export function checkDataFrame(f: Uint8Array): CheckedFrame | undefined {
  if (f.length < HEADER || f[0] !== LAB_DATA) return undefined;
  const seq = new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(1, true);
  let intact = true;
  for (let i = HEADER; i < f.length; i++)
    if (f[i] !== byteAt(seq, i)) {
      intact = false;
      break;
    }
  return { seq, size: f.length, intact };
}

export function echoFrame(kind: typeof LAB_ECHO_REQUEST | typeof LAB_ECHO_REPLY, seq: number, size: number): Uint8Array {
  const f = new Uint8Array(Math.max(HEADER, size));
  f[0] = kind;
  new DataView(f.buffer).setUint32(1, seq, true);
  return f;
}

export const frameKind = (f: Uint8Array) => f[0];
export const frameSeq = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(1, true);
