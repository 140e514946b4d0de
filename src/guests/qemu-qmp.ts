// A minimal client for QEMU's machine protocol (QMP) on a unix socket (Node only): one command at a
// time with its reply, and every asynchronous event kept in order so a test can wait for one
// (DEVICE_DELETED, ACPI_DEVICE_OST). Started with `-qmp unix:PATH,server=on,wait=off`; QEMU creates
// the socket while it starts, so connecting retries until it exists.

import { connect, type Socket } from "node:net";

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  override name = "QmpError";
}

export interface QmpClient {
  /** Runs a command; resolves with its "return" value, rejects with QEMU's error. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T>;
  /** Every event received so far, in order. */
  events(): QmpEvent[];
  /** Resolves with the first event past index `from` that `match` accepts; rejects after `timeoutMs`. */
  waitForEvent(match: (e: QmpEvent) => boolean, timeoutMs: number, from?: number): Promise<QmpEvent>;
  close(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connectWithRetry(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once("connect", () => {
          s.off("error", reject);
          resolve(s);
        });
        s.once("error", reject);
      });
    } catch (e) {
      if (Date.now() > deadline) throw new QmpError(`cannot connect to QMP at ${path} within ${timeoutMs / 1000} s: ${String(e)}`);
      await sleep(100);
    }
  }
}

/** Connects, reads the greeting and leaves capabilities negotiation mode. */
export async function connectQmp(path: string, timeoutMs = 30_000): Promise<QmpClient> {
  const socket = await connectWithRetry(path, timeoutMs);
  const events: QmpEvent[] = [];
  const waiters = new Set<() => void>();
  let pending: { resolve: (v: unknown) => void; reject: (e: Error) => void; command: string } | undefined;
  let greeted: () => void;
  const greeting = new Promise<void>((r) => (greeted = r));
  let buf = "";
  let closed = false;
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as Record<string, unknown>;
      if ("QMP" in msg) greeted();
      else if ("event" in msg) {
        events.push(msg as unknown as QmpEvent);
        for (const w of waiters) w();
      } else if ("return" in msg || "error" in msg) {
        const p = pending;
        pending = undefined;
        if (!p) continue;
        if ("error" in msg) {
          const err = msg.error as { class?: string; desc?: string };
          p.reject(new QmpError(`QMP ${p.command} failed: ${err.class ?? "?"}: ${err.desc ?? JSON.stringify(err)}`));
        } else p.resolve(msg.return);
      }
    }
  });
  // a reset (QEMU exiting) ends the connection like a close; the pending command learns of it there
  socket.on("error", () => undefined);
  socket.on("close", () => {
    closed = true;
    pending?.reject(new QmpError(`QMP connection closed during ${pending.command}`));
    pending = undefined;
  });
  await greeting;

  let chain: Promise<unknown> = Promise.resolve();
  const execute = <T>(command: string, args?: Record<string, unknown>): Promise<T> => {
    const run = () =>
      new Promise<T>((resolve, reject) => {
        if (closed) return reject(new QmpError(`QMP connection is closed; cannot run ${command}`));
        pending = { resolve: resolve as (v: unknown) => void, reject, command };
        socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + "\n");
      });
    const result = chain.then(run, run);
    chain = result.catch(() => undefined);
    return result;
  };
  await execute("qmp_capabilities");

  return {
    execute,
    events: () => events.slice(),
    waitForEvent(match, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const e = events.slice(from).find(match);
          if (!e) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(e);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new QmpError(`no matching QMP event within ${timeoutMs / 1000} s; events so far: ${JSON.stringify(events.map((e) => e.event))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => socket.destroy(),
  };
}
