// Blocking page faults inside a vCPU's worker, without deadlock.
//
// The fault handler runs in the middle of a guest instruction, so it cannot return to the event
// loop: it posts the fault to the page manager and waits with Atomics.wait on a shared mailbox.
// While it waits, the manager may ask it to give up other pages (another vCPU, itself blocked,
// needs them); the handler serves those requests from inside the wait. When the vCPU is not
// blocked, the same requests are served at an instruction boundary by `poll()` (call it when
// the manager's "poke" message arrives). Two blocked vCPUs therefore never wait on each other.

import { EngineError, PAGE_SIZE, type FaultAccess, type FaultHandler, type PageGrant, type Vcpu } from "./vcpu.ts";

/** Mailbox layout: an Int32 header, then one page of bytes. */
const SEQ = 0; // bumped by the manager for each command
const OP = 1;
const PAGE = 2;
const STATE = 3;
const HAS_BYTES = 4;
const HEADER_BYTES = 32;
export const MAILBOX_BYTES = HEADER_BYTES + PAGE_SIZE;

const OP_GRANT = 1;
const OP_REVOKE = 2;
const STATES = ["write", "read", "none"] as const;

export type ManagerCommand =
  | { op: "grant"; page: number; state: "read" | "write"; bytes?: Uint8Array }
  | { op: "revoke"; page: number; to: "read" | "none" };

/** What the vCPU side tells the manager (send it with postMessage or any ordered channel). */
export type PagerMessage =
  | { type: "fault"; page: number; access: FaultAccess }
  | { type: "granted"; page: number }
  | { type: "revoked"; page: number; bytes: Uint8Array };

export function createMailbox(): SharedArrayBuffer {
  return new SharedArrayBuffer(MAILBOX_BYTES);
}

/** The vCPU side: its `handler` is the Vcpu's fault handler. */
export class BlockingPager {
  private readonly header: Int32Array;
  private readonly data: Uint8Array;
  private seen = 0;
  private waitingFor = -1;

  constructor(
    private readonly vcpu: Vcpu,
    mailbox: SharedArrayBuffer,
    private readonly send: (msg: PagerMessage) => void,
  ) {
    if (!(mailbox instanceof SharedArrayBuffer) || mailbox.byteLength !== MAILBOX_BYTES) {
      throw new EngineError(`the pager mailbox must be a SharedArrayBuffer of ${MAILBOX_BYTES} bytes`);
    }
    this.header = new Int32Array(mailbox, 0, HEADER_BYTES / 4);
    this.data = new Uint8Array(mailbox, HEADER_BYTES, PAGE_SIZE);
  }

  readonly handler: FaultHandler = (fault) => {
    if (this.waitingFor !== -1) throw new EngineError(`nested fault on page ${fault.page} while waiting for page ${this.waitingFor}`);
    this.waitingFor = fault.page;
    try {
      this.send({ type: "fault", page: fault.page, access: fault.access });
      for (;;) {
        Atomics.wait(this.header, SEQ, this.seen);
        const grant = this.take();
        if (grant) return grant;
      }
    } finally {
      this.waitingFor = -1;
    }
  };

  /** Serves a pending revocation at an instruction boundary; a no-op when there is none. */
  poll(): void {
    if (this.waitingFor !== -1) return; // the wait loop serves it
    if (this.take()) throw new EngineError("the manager granted a page no fault asked for");
  }

  /** Handles the newest command, if unseen; returns the grant when it answers our fault. */
  private take(): PageGrant | undefined {
    const seq = Atomics.load(this.header, SEQ);
    if (seq === this.seen) return undefined;
    this.seen = seq;
    const op = this.header[OP];
    const page = this.header[PAGE];
    const state = STATES[this.header[STATE]];
    if (op === OP_REVOKE) {
      if (state !== "read" && state !== "none") throw new EngineError(`bad revoke target ${state}`);
      const bytes = this.vcpu.revoke(page, state);
      this.send({ type: "revoked", page, bytes });
      return undefined;
    }
    if (op === OP_GRANT) {
      if (page !== this.waitingFor) throw new EngineError(`grant for page ${page}, but the fault is on page ${this.waitingFor}`);
      if (state !== "read" && state !== "write") throw new EngineError(`bad grant access ${state}`);
      const bytes = this.header[HAS_BYTES] ? this.data.slice() : undefined;
      this.send({ type: "granted", page });
      return { access: state, bytes };
    }
    throw new EngineError(`unknown pager command ${op}`);
  }
}

/**
 * The manager's end of one vCPU's mailbox. Commands go one at a time: the next is written only
 * after the vCPU acknowledged the previous one ("granted"/"revoked", passed to `acknowledge`).
 */
export class PagerLink {
  private readonly header: Int32Array;
  private readonly data: Uint8Array;
  private readonly queue: ManagerCommand[] = [];
  private inFlight = false;

  constructor(
    mailbox: SharedArrayBuffer,
    /** Nudges the vCPU's event loop (e.g. postMessage "poke") so a running vCPU polls. */
    private readonly poke: () => void,
  ) {
    this.header = new Int32Array(mailbox, 0, HEADER_BYTES / 4);
    this.data = new Uint8Array(mailbox, HEADER_BYTES, PAGE_SIZE);
  }

  command(cmd: ManagerCommand): void {
    this.queue.push(cmd);
    this.pump();
  }

  acknowledge(): void {
    if (!this.inFlight) throw new EngineError("acknowledgement without a command in flight");
    this.inFlight = false;
    this.pump();
  }

  private pump(): void {
    if (this.inFlight) return;
    const cmd = this.queue.shift();
    if (!cmd) return;
    this.inFlight = true;
    this.header[PAGE] = cmd.page;
    if (cmd.op === "grant") {
      this.header[OP] = OP_GRANT;
      this.header[STATE] = STATES.indexOf(cmd.state);
      this.header[HAS_BYTES] = cmd.bytes ? 1 : 0;
      if (cmd.bytes) this.data.set(cmd.bytes);
    } else {
      this.header[OP] = OP_REVOKE;
      this.header[STATE] = STATES.indexOf(cmd.to);
    }
    Atomics.add(this.header, SEQ, 1);
    Atomics.notify(this.header, SEQ);
    this.poke();
  }
}
