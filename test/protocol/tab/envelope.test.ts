// The envelope tabs of one VM exchange: everything encoded decodes to the same message, and every
// malformed or hostile envelope is refused with an error naming the problem.

import fc from "fast-check";
import { expect, it } from "vitest";
import { encode } from "../../../src/protocol/codec.ts";
import type { StatsSnapshot } from "../../../src/protocol/messages.ts";
import { emptyCounters } from "../../../src/protocol/stats.ts";
import { viewReport } from "../arbitraries.ts";
import { type ControlMessage, decodeWire, encodeWire, type WireMessage, WireError } from "../../../src/protocol/tab/envelope.ts";

const sha = "ab".repeat(32);
const config: ControlMessage = {
  t: "config",
  guest: "linux",
  vcpus: 2,
  memoryMiB: 128,
  cmdline: "console=ttyS0 tsc=reliable",
  images: [
    { what: "engine", url: "engine/v86-giantweb.wasm", bytes: 2_000_000, sha256: sha },
    { what: "firmware", url: "guests/firmware/build/bios.bin", bytes: 4096, sha256: sha },
    { what: "kernel", url: "guest/linux/bzImage", bytes: 8_000_000, sha256: sha },
    { what: "initramfs", url: "guest/linux/initramfs.cpio.gz", bytes: 900_000, sha256: sha },
  ],
};
const selftest: ControlMessage = {
  t: "config",
  guest: "selftest",
  vcpus: 3,
  memoryMiB: 64,
  cmdline: "",
  images: [
    { what: "engine", url: "engine/v86-giantweb.wasm", bytes: 2_000_000, sha256: sha },
    { what: "elf", url: "guests/selftest/build/selftest.elf", bytes: 60_000, sha256: sha },
  ],
};

const nodeFailed: ControlMessage = {
  t: "node-failed",
  failure: { node: 1, vcpu: 1, tab: 1, cause: "engine", message: "the engine panicked at src/rust/cpu/cpu.rs:2731:9: #GP | ltr: invalid type (type = 0x0)", atMs: 1_700_000_000_000.5 },
};

it("refuses a node-failed message with a field out of its type", () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ cause: "meteor" }, /cause must be one of engine, serve, worker, start/],
    [{ node: 255 }, /failure.node must be a whole number from 0 to 254/],
    [{ vcpu: "1" }, /failure.vcpu must be a whole number/],
    [{ tab: null }, /failure.tab must be a whole number/],
    [{ message: "x".repeat(1501) }, /failure.message must be a string of at most 1500/],
    [{ atMs: -1 }, /failure.atMs must be a time in ms/],
  ];
  for (const [change, why] of bad) {
    const msg = { t: "node-failed", failure: { ...(nodeFailed as { failure: object }).failure, ...change } };
    const bytes = new Uint8Array([4, ...new TextEncoder().encode(JSON.stringify(msg))]);
    expect(() => decodeWire(bytes)).toThrow(why);
  }
  expect(() => decodeWire(new Uint8Array([4, ...new TextEncoder().encode('{"t":"node-failed","failure":[]}')]))).toThrow(/failure is not an object/);
  // A memory-only node has no vCPU.
  const noCpu = { t: "node-failed", failure: { ...(nodeFailed as { failure: object }).failure, vcpu: null } };
  expect(decodeWire(encodeWire({ kind: "control", msg: noCpu as ControlMessage }))).toEqual({ kind: "control", msg: noCpu });
});

it("round-trips node frames, console bytes and control messages", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 254 }), fc.integer({ min: 0, max: 254 }), fc.uint8Array({ minLength: 1, maxLength: 9000 }), (from, to, payload) => {
      fc.pre(from !== to);
      const m = decodeWire(encodeWire({ kind: "node-frame", from, to, payload }));
      expect(m).toEqual({ kind: "node-frame", from, to, payload });
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), fc.boolean(), (bytes, out) => {
      const m: WireMessage = { kind: out ? "console-out" : "console-in", bytes };
      expect(decodeWire(encodeWire(m))).toEqual(m);
    }),
  );
  for (const msg of [config, selftest, { t: "hello" }, { t: "ready", vcpus: [1, 2] }, { t: "refuse", reason: "no" }, { t: "stop", reason: "tab 1 left" }, { t: "link-delay", ms: 50 }, { t: "tracing", on: true }, nodeFailed, { t: "rights", rights: { type: true, control: false } }] as ControlMessage[])
    expect(decodeWire(encodeWire({ kind: "control", msg }))).toEqual({ kind: "control", msg });
});

const statsOf = (node: number): StatsSnapshot => ({
  type: "stats",
  node,
  seq: 2,
  atMs: 12.5,
  counters: emptyCounters(),
  vcpus: [{ vcpu: node, state: "running", instructions: 9 }],
  links: [],
  pages: [{ first: 0, count: 3, state: "shared" }],
});

it("carries live-view frames unchanged: the codec's bytes in, the decoded message and the same bytes out", () => {
  fc.assert(
    fc.property(viewReport, (msg) => {
      const frame = encode(msg);
      const m = decodeWire(encodeWire({ kind: "view", msg, frame }));
      expect(m).toEqual({ kind: "view", msg, frame });
    }),
    { numRuns: 300 },
  );
  const frame = encode(statsOf(1));
  expect(decodeWire(encodeWire({ kind: "view", msg: statsOf(1), frame }))).toEqual({ kind: "view", msg: statsOf(1), frame });
});

it("refuses malformed envelopes, naming the problem", () => {
  const bad = (bytes: number[] | Uint8Array, pattern: RegExp) => {
    expect(() => decodeWire(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes))).toThrow(WireError);
    expect(() => decodeWire(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes))).toThrow(pattern);
  };
  bad([], /empty envelope/);
  bad([9, 1, 2], /unknown envelope kind 9/);
  bad([1, 0, 1], /shorter than its header/);
  bad([1, 255, 1, 0], /node 255>1/);
  bad([1, 3, 3, 0], /from node 3 to itself/);
  bad(new Uint8Array(5000).fill(3), /console input of 4999 bytes/);
  const control = (v: unknown) => encodeWire({ kind: "control", msg: v as ControlMessage });
  bad([4, 0xff, 0xfe], /not UTF-8 JSON/);
  bad(control([1]), /not an object/);
  bad(control({ t: "reboot" }), /unknown control message "reboot"/);
  bad(control({ t: "rights", rights: { type: 1, control: false } }), /rights.rights.type and .control must be true or false/);
  bad(control({ t: "rights" }), /rights.rights is not an object/);
  bad(control({ ...config, vcpus: 0 }), /config.vcpus must be a whole number from 1 to 255/);
  bad(control({ ...config, memoryMiB: 1.5 }), /config.memoryMiB/);
  bad(control({ ...config, cmdline: "a\nb" }), /printable ASCII/);
  bad(control({ ...config, images: [] }), /config.images must list 1..8 images/);
  bad(control({ ...config, guest: "windows" }), /config.guest must be one of linux, selftest/);
  bad(control({ ...config, guest: undefined }), /config.guest must be one of linux, selftest/);
  // Each kind's images exactly, each once: none missing, none doubled, none of another kind.
  bad(control({ ...config, images: config.images.slice(1) }), /config.images lists firmware, initramfs, kernel, but the linux guest needs exactly engine, firmware, kernel, initramfs/);
  bad(control({ ...selftest, images: [selftest.images[0], selftest.images[0]] }), /config.images lists engine, engine, but the selftest guest needs exactly engine, elf/);
  bad(control({ ...selftest, images: [...selftest.images, { ...selftest.images[0], what: "kernel" }] }), /config.images\[2\].what "kernel" is not an image of the selftest guest \(engine, elf\)/);
  bad(control({ ...config, images: [{ ...config.images[0]!, sha256: "xyz" }] }), /sha256/);
  // A peer must not make other tabs fetch from elsewhere: image URLs are paths on the page's server.
  bad(control({ ...config, images: [{ ...config.images[0]!, url: "https://evil.example/k" }] }), /must be a path on the page's server/);
  bad(control({ ...config, images: [{ ...config.images[0]!, url: "//evil.example/k" }] }), /must be a path on the page's server/);
  // Paths a prefix test passes but a URL parser resolves to another host (or that a browser trims).
  for (const url of ["/\\evil.example/k", "\\\\evil.example/k", " /guest/k", "\t/guest/k", "/guest/k ", "/gu est", "", "/guest\\..\\k", "javascript:alert(1)"])
    bad(control({ ...config, images: [{ ...config.images[0]!, url }] }), /must be a path on the page's server/);
  bad(control({ t: "ready", vcpus: [300] }), /ready.vcpus\[0\]/);
  bad(control({ t: "stop", reason: 5 }), /stop.reason must be a string/);
  bad(control({ t: "link-delay", ms: 51 }), /link-delay.ms must be a whole number from 0 to 50/);
  bad(control({ t: "link-delay", ms: 2.5 }), /link-delay.ms/);
  bad(control({ t: "tracing", on: 1 }), /tracing.on must be true or false/);
  // Live-view frames: the codec validates them, and only stats and view reports are taken.
  bad([5], /live-view frame: .*protocol version/);
  bad([5, ...encode({ type: "ping", seq: 1, atMs: 0 })], /live-view frame holds a ping message/);
  const st = encode(statsOf(3));
  bad([5, ...st, 0], /live-view frame: .*unexpected byte/);
  expect(() => encodeWire({ kind: "node-frame", from: 300, to: 1, payload: new Uint8Array(1) })).toThrow(/0..254/);
});
