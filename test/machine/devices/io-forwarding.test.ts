// The device node's I/O server: a remote CPU's port write must reach the device before anything
// that CPU did after it. Deferring writes to the next run slice lost the UART's transmit interrupt
// (a stale IER write from CPU 1 landed after CPU 0's newer one) and froze the console.

import { expect, it } from "vitest";
import type { Message } from "../../../src/protocol/messages.ts";
import { IO_SERVER_MAX_QUEUE, IoServer, type PortSpace, QueueOverflowError } from "../../../src/machine/devices/io-forwarding.ts";

function recorder() {
  const log: string[] = [];
  const regs = new Map<number, number>();
  const ports: PortSpace = {
    read: (port) => (log.push(`r${port.toString(16)}`), regs.get(port) ?? 0xff),
    write: (port, _size, value) => (log.push(`w${port.toString(16)}=${value}`), void regs.set(port, value)),
  };
  return { log, regs, ports };
}

it("applies a remote port write as it arrives, before the node's own later accesses", () => {
  const { log, regs, ports } = recorder();
  const server = new IoServer(ports, () => {});
  // CPU 1 clears IER.THRI (0x3f9 = 5) ...
  server.onRequest(1, { type: "port-write", vcpu: 1, port: 0x3f9, size: 1, value: 5 });
  // ... then hands the port lock over; CPU 0 sets THRI itself, directly.
  ports.write(0x3f9, 1, 7);
  server.drain(); // node 0's next slice boundary must find nothing stale left to apply
  expect(log).toEqual(["w3f9=5", "w3f9=7"]);
  expect(regs.get(0x3f9)).toBe(7);
});

it("answers reads in arrival order, after the writes that came before them", () => {
  const { log, ports } = recorder();
  const sent: { to: number; msg: Message }[] = [];
  const server = new IoServer(ports, (to, msg) => void sent.push({ to, msg }));
  server.onRequest(1, { type: "port-write", vcpu: 1, port: 0x3f8, size: 1, value: 65 });
  server.onRequest(1, { type: "port-read", id: 9, vcpu: 1, port: 0x3f8, size: 1 });
  server.onRequest(2, { type: "mmio-read", id: 3, vcpu: 2, addr: 0xfec00000, size: 4 });
  expect(log).toEqual(["w3f8=65", "r3f8"]);
  expect(sent).toEqual([
    { to: 1, msg: { type: "io-reply", id: 9, value: 65 } },
    // a device node without an IOAPIC reads as an unclaimed bus cycle
    { to: 2, msg: { type: "io-reply", id: 3, value: 0xffffffff } },
  ]);
  expect(server.counters).toEqual({ reads: 2, writes: 1 });
});

it("queues a request that arrives while another runs, and runs it right after, in order", () => {
  const log: string[] = [];
  let server!: IoServer;
  const ports: PortSpace = {
    read: () => 0,
    write: (port, _size, value) => {
      log.push(`start ${value}`);
      // A device handler that ends up handling the next frame (re-entrancy).
      if (value === 1) server.onRequest(1, { type: "port-write", vcpu: 1, port, size: 1, value: 2 });
      log.push(`end ${value}`);
    },
  };
  server = new IoServer(ports, () => {});
  server.onRequest(1, { type: "port-write", vcpu: 1, port: 0x80, size: 1, value: 1 });
  expect(log).toEqual(["start 1", "end 1", "start 2", "end 2"]);
});

// Issue 13: the queue of accesses waiting behind a running one is bounded. It grows only while an
// access runs and frames are handled meanwhile (re-entrancy); a peer that floods the device node
// then must not grow it without end: the request that would pass the bound is refused with a
// QueueOverflowError, thrown to whoever handles the frame (the node's serving code, which fails it).
it("refuses a forwarded access that would pass the queue's bound, naming the queue, the nodes and the limit", () => {
  let server!: IoServer;
  let queued = 0;
  const ports: PortSpace = {
    read: () => 0,
    write: (port, _size, value) => {
      // The first write's handler ends up handling a flood from node 2 (10,000 writes, far past the bound).
      if (value === 1) for (let i = 0; i < 10_000; i++) server.onRequest(2, { type: "port-write", vcpu: 2, port, size: 1, value: 2 + queued++ });
    },
  };
  server = new IoServer(ports, () => {}, null, { maxQueue: 50 });
  let thrown: unknown;
  try {
    server.onRequest(1, { type: "port-write", vcpu: 1, port: 0x80, size: 1, value: 1 });
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(QueueOverflowError);
  const err = thrown as QueueOverflowError;
  expect(err.name).toBe("QueueOverflowError");
  expect({ queue: err.queue, from: err.from, to: err.to, limit: err.limit, unit: err.unit }).toEqual({ queue: "io-server", from: 2, to: 0, limit: 50, unit: "requests" });
  expect(err.message).toMatch(/I\/O server's queue .* node 0 .* node 2.* limit of 50 requests/);
  // Exactly the bound was accepted; the 51st was refused.
  expect(queued).toBe(51);
});

it("bounds the queue by default (16 per vCPU the cluster can have), and accepts exactly that many", () => {
  expect(IO_SERVER_MAX_QUEUE).toBe(16 * 255);
  let server!: IoServer;
  let served = 0;
  let refused: unknown = null;
  const ports: PortSpace = {
    read: () => 0,
    write: (port, _size, value) => {
      served++;
      if (value !== 1) return;
      for (let i = 0; i < IO_SERVER_MAX_QUEUE; i++) server.onRequest(3, { type: "port-write", vcpu: 3, port, size: 1, value: 2 });
      try {
        server.onRequest(3, { type: "port-write", vcpu: 3, port, size: 1, value: 2 });
      } catch (err) {
        refused = err;
      }
    },
  };
  server = new IoServer(ports, () => {}, null, { node: 0 });
  server.onRequest(3, { type: "port-write", vcpu: 3, port: 0x80, size: 1, value: 1 });
  expect(refused).toBeInstanceOf(QueueOverflowError);
  expect((refused as QueueOverflowError).limit).toBe(IO_SERVER_MAX_QUEUE);
  // Everything accepted still ran, in order, after the access that was running.
  expect(served).toBe(1 + IO_SERVER_MAX_QUEUE);
});
