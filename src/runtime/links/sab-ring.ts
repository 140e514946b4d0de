// A single-producer, single-consumer ring of binary frames in a SharedArrayBuffer.
//
// Why: a vCPU that faults blocks its worker (Atomics.wait) until the page comes, and while it waits
// it must still read and answer other nodes' messages, or two waiting vCPUs could deadlock. Worker
// message events cannot be read by a blocked worker; shared memory can. So every link between two
// nodes in one tab is a pair of these rings, and a blocked worker polls them synchronously.
//
// Layout: Int32 [0] = head (bytes written, mod 2^32), [1] = tail (bytes read, mod 2^32), [2] = 1
// while the writer keeps frames the ring had no room for, [3] unused, then the data region. A frame
// is a 4-byte little-endian length and its bytes, wrapping around the end.
// The writer never blocks: a full ring makes tryWrite return false and the caller keeps the frame.

const HEADER_BYTES = 16;
const HEAD = 0;
const TAIL = 1;
const WRITER_WAITING = 2;

export class RingError extends Error {
  override name = "RingError";
}

export function createRingBuffer(capacity: number): SharedArrayBuffer {
  if (!Number.isInteger(Math.log2(capacity)) || capacity < 64)
    throw new RingError(`ring capacity ${capacity} must be a power of two of at least 64 bytes`);
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

abstract class RingEnd {
  protected readonly ctl: Int32Array;
  protected readonly data: Uint8Array;
  protected readonly capacity: number;
  protected readonly mask: number;

  constructor(sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 3);
    this.data = new Uint8Array(sab, HEADER_BYTES);
    this.capacity = this.data.length;
    this.mask = this.capacity - 1;
    if (this.capacity & this.mask) throw new RingError(`ring buffer of ${sab.byteLength} bytes has a bad size`);
  }

  /** Bytes waiting to be read. */
  get used(): number {
    return (Atomics.load(this.ctl, HEAD) - Atomics.load(this.ctl, TAIL)) >>> 0;
  }
}

export class RingWriter extends RingEnd {
  /** The largest frame this ring can ever hold. */
  get maxFrame(): number {
    return this.capacity - 4;
  }

  /**
   * Writes the frame, or returns false when the ring lacks room. Then the reader's next `read`
   * reports (`writerWaiting`) that the writer wants to hear when room was made.
   */
  tryWrite(frame: Uint8Array): boolean {
    if (frame.length > this.maxFrame) throw new RingError(`frame of ${frame.length} bytes exceeds the ring's ${this.maxFrame}`);
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    let tail = Atomics.load(this.ctl, TAIL) >>> 0;
    if (this.capacity - ((head - tail) >>> 0) < frame.length + 4) {
      // Flag first, then look again: a read that made room before the flag was set is seen now,
      // one after it sees the flag, so a waiting writer is never forgotten.
      Atomics.store(this.ctl, WRITER_WAITING, 1);
      tail = Atomics.load(this.ctl, TAIL) >>> 0;
      if (this.capacity - ((head - tail) >>> 0) < frame.length + 4) return false;
    }
    const len = frame.length;
    this.copyIn(head, Uint8Array.of(len & 0xff, (len >>> 8) & 0xff, (len >>> 16) & 0xff, len >>> 24));
    this.copyIn(head + 4, frame);
    // The store of head publishes the bytes (Atomics are sequentially consistent).
    Atomics.store(this.ctl, HEAD, (head + 4 + len) | 0);
    return true;
  }

  private copyIn(pos: number, bytes: Uint8Array): void {
    const start = pos & this.mask;
    const first = Math.min(bytes.length, this.capacity - start);
    this.data.set(bytes.subarray(0, first), start);
    if (first < bytes.length) this.data.set(bytes.subarray(first), 0);
  }
}

export class RingReader extends RingEnd {
  /** True (once) when the writer found the ring full since the last call: wake it after reading. */
  takeWriterWaiting(): boolean {
    return Atomics.load(this.ctl, WRITER_WAITING) !== 0 && Atomics.exchange(this.ctl, WRITER_WAITING, 0) !== 0;
  }

  /** The next frame (a copy), or null when the ring is empty. */
  read(): Uint8Array | null {
    const tail = Atomics.load(this.ctl, TAIL) >>> 0;
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    if (head === tail) return null;
    const lenBytes = this.copyOut(tail, 4);
    const len = (lenBytes[0]! | (lenBytes[1]! << 8) | (lenBytes[2]! << 16) | (lenBytes[3]! << 24)) >>> 0;
    if (len + 4 > ((head - tail) >>> 0)) throw new RingError(`ring corrupted: frame length ${len} exceeds the ${(head - tail) >>> 0} bytes written`);
    const frame = this.copyOut(tail + 4, len);
    Atomics.store(this.ctl, TAIL, (tail + 4 + len) | 0);
    return frame;
  }

  private copyOut(pos: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    const start = pos & this.mask;
    const first = Math.min(length, this.capacity - start);
    out.set(this.data.subarray(start, start + first), 0);
    if (first < length) out.set(this.data.subarray(0, length - first), first);
    return out;
  }
}

/**
 * A node's doorbell: writers ring it after writing to any of the node's inbound rings, so a node
 * blocked in `wait` wakes up. Works across workers; the page's main thread may ring but not wait.
 */
export class Doorbell {
  readonly cell: Int32Array;
  constructor(sab: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.cell = new Int32Array(sab, 0, 1);
  }
  get buffer(): SharedArrayBuffer {
    return this.cell.buffer as SharedArrayBuffer;
  }
  /** The current count; pass it to `wait` to sleep only if nothing rang since. */
  get count(): number {
    return Atomics.load(this.cell, 0);
  }
  ring(): void {
    Atomics.add(this.cell, 0, 1);
    Atomics.notify(this.cell, 0);
  }
  /** Blocks (worker threads only) until rung after `seen` was read, or `timeoutMs` passes. */
  wait(seen: number, timeoutMs: number): "ok" | "not-equal" | "timed-out" {
    return Atomics.wait(this.cell, 0, seen, timeoutMs);
  }
}
