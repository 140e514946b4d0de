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
  for (const msg of [config, selftest, { t: "hello" }, { t: "ready", vcpus: [1, 2] }, { t: "refuse", reason: "no" }, { t: "stop", reason: "tab 1 left" }, { t: "link-delay", ms: 50 }, { t: "tracing", on: true }, { t: "vm-link", direct: true }, { t: "vm-link", direct: false, why: "this tab was asked to relay" }, nodeFailed, { t: "rights", rights: { type: true, control: false } }] as ControlMessage[])
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
  bad(control({ t: "vm-link", direct: "yes" }), /vm-link.direct must be true or false/);
  bad(control({ t: "vm-link", direct: false }), /vm-link.why must be a string/);
  // Live-view frames: the codec validates them, and only stats and view reports are taken.
  bad([5], /live-view frame: .*protocol version/);
  bad([5, ...encode({ type: "ping", seq: 1, atMs: 0 })], /live-view frame holds a ping message/);
  const st = encode(statsOf(3));
  bad([5, ...st, 0], /live-view frame: .*unexpected byte/);
  expect(() => encodeWire({ kind: "node-frame", from: 300, to: 1, payload: new Uint8Array(1) })).toThrow(/0..254/);
});

// ------------------------------------------------------------ the elastic VM's control messages (issue 14)

const control = (v: unknown) => encodeWire({ kind: "control", msg: v as ControlMessage });
/** An envelope built by hand (encodeWire would also take it: the checks are on the receiving side). */
const raw = (v: unknown) => new Uint8Array([4, ...new TextEncoder().encode(JSON.stringify(v))]);
const refused = (bytes: Uint8Array, pattern: RegExp) => {
  let err: unknown;
  try {
    decodeWire(bytes);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${new TextDecoder().decode(bytes.subarray(1))} to be refused`).toBeInstanceOf(WireError);
  expect((err as Error).message).toMatch(pattern);
};

it("round-trips the elastic VM's control messages", () => {
  const elastic: ControlMessage[] = [
    { ...(config as Extract<ControlMessage, { t: "config" }>), vcpus: 4, elastic: true },
    { t: "vm-hosts", hosts: [0], changing: "" },
    { t: "vm-hosts", hosts: [0, null, 1, 254], changing: "tab 1 joins with vCPU 2" },
    { t: "join-refused", reason: "the VM is still booting" },
    { t: "leave-request" },
    { t: "leave-done" },
    { t: "leave-refused", reason: "another change is in progress" },
    { t: "node-start", id: 1, node: 2, vcpuNodes: [0, null, 2, null], members: [0, 2] },
    { t: "node-end", id: Number.MAX_SAFE_INTEGER, node: 254 },
    { t: "node-reply", id: 7, ok: true, value: { node: 2, quiescent: true, sent: [1, 0], received: [0, 3] } },
    { t: "node-reply", id: 8, ok: true, value: null },
    { t: "node-reply", id: 9, ok: false, error: "node 2: the engine stopped" },
  ];
  const requests = [
    { op: "pause" },
    { op: "resume" },
    { op: "set-host", vcpu: 3, node: 3 },
    { op: "set-host", vcpu: 3, node: null },
    { op: "dsm-report" },
    { op: "dsm-add-member", node: 5 },
    { op: "dsm-remove-member", node: 5 },
    { op: "dsm-leave" },
    { op: "drain" },
    { op: "plug", cpu: 1 },
    { op: "unplug", cpu: 7 },
    { op: "hotplug-state" },
  ] as const;
  for (const request of requests) elastic.push({ t: "node-control", id: 3, node: 1, request });
  for (const msg of elastic) expect(decodeWire(encodeWire({ kind: "control", msg }))).toEqual({ kind: "control", msg });
  // A config without `elastic` decodes without the key (not `elastic: undefined`): the non-elastic VM is unchanged.
  const plain = decodeWire(control(config));
  expect(plain.kind === "control" && "elastic" in plain.msg).toBe(false);
  // A successful reply without a value carries null; extra keys of a request are not passed on.
  expect(decodeWire(raw({ t: "node-reply", id: 4, ok: true }))).toEqual({ kind: "control", msg: { t: "node-reply", id: 4, ok: true, value: null } });
  expect(decodeWire(raw({ t: "node-control", id: 4, node: 0, request: { op: "pause", cpu: 3, extra: "x" } }))).toEqual({
    kind: "control",
    msg: { t: "node-control", id: 4, node: 0, request: { op: "pause" } },
  });
  expect(decodeWire(raw({ t: "leave-request", reason: "ignored" }))).toEqual({ kind: "control", msg: { t: "leave-request" } });
});

it("refuses a malformed elastic control message, naming the field", () => {
  const start = { t: "node-start", id: 1, node: 1, vcpuNodes: [0, 1], members: [0, 1] };
  const cases: [unknown, RegExp][] = [
    // config.elastic: true or absent, nothing else
    [{ ...config, elastic: "yes" }, /config\.elastic must be true or absent/],
    [{ ...config, elastic: false }, /config\.elastic must be true or absent/],
    [{ ...config, elastic: 1 }, /config\.elastic must be true or absent/],
    // vm-hosts
    [{ t: "vm-hosts", hosts: [1, 0], changing: "" }, /vm-hosts\.hosts\[0\] must be 0: tab 0 hosts vCPU 0/],
    [{ t: "vm-hosts", hosts: [null, 0], changing: "" }, /vm-hosts\.hosts\[0\] must be 0/],
    [{ t: "vm-hosts", hosts: [], changing: "" }, /vm-hosts\.hosts must list 1\.\.255 vCPUs/],
    [{ t: "vm-hosts", hosts: "0", changing: "" }, /vm-hosts\.hosts must list 1\.\.255 vCPUs/],
    [{ t: "vm-hosts", hosts: new Array(256).fill(0), changing: "" }, /vm-hosts\.hosts must list 1\.\.255 vCPUs/],
    [{ t: "vm-hosts", hosts: [0, 255], changing: "" }, /vm-hosts\.hosts\[1\] must be a whole number from 0 to 254/],
    [{ t: "vm-hosts", hosts: [0, "1"], changing: "" }, /vm-hosts\.hosts\[1\] must be a whole number/],
    [{ t: "vm-hosts", hosts: [0] }, /vm-hosts\.changing must be a string of at most 256 characters/],
    [{ t: "vm-hosts", hosts: [0], changing: "x".repeat(257) }, /vm-hosts\.changing must be a string of at most 256/],
    // refusals and their reasons
    [{ t: "join-refused" }, /join-refused\.reason must be a string/],
    [{ t: "leave-refused", reason: 3 }, /leave-refused\.reason must be a string/],
    // node-start
    [{ ...start, id: 0 }, /node-start\.id must be a whole number from 1 to 9007199254740991/],
    [{ ...start, id: undefined }, /node-start\.id must be a whole number/],
    [{ ...start, node: 255 }, /node-start\.node must be a whole number from 0 to 254/],
    [{ ...start, vcpuNodes: [] }, /node-start\.vcpuNodes must list 1\.\.255 entries/],
    [{ ...start, vcpuNodes: [0, -1] }, /node-start\.vcpuNodes\[1\] must be a whole number from 0 to 254/],
    [{ ...start, members: [0, null] }, /node-start\.members\[1\] must be a whole number/],
    [{ ...start, members: undefined }, /node-start\.members must list 1\.\.255 entries/],
    // node-control: the request is checked by checkControlRequest
    [{ t: "node-control", id: 2, node: 1, request: { op: "reboot" } }, /node-control\.request: unknown control request "reboot"/],
    [{ t: "node-control", id: 2, node: 1 }, /node-control\.request: unknown control request/],
    [{ t: "node-control", id: 2, node: 1, request: { op: "plug", cpu: 256 } }, /node-control\.request: plug needs a CPU number, got 256/],
    [{ t: "node-control", id: 2, node: 1, request: { op: "set-host", vcpu: 1, node: "2" } }, /node-control\.request: set-host needs a vCPU and a node id or null/],
    [{ t: "node-control", id: 2, node: 1, request: { op: "dsm-add-member" } }, /node-control\.request: dsm-add-member needs a node id/],
    [{ t: "node-control", id: 2.5, node: 1, request: { op: "pause" } }, /node-control\.id must be a whole number/],
    [{ t: "node-control", id: 2, node: -1, request: { op: "pause" } }, /node-control\.node must be a whole number from 0 to 254/],
    // node-end
    [{ t: "node-end", id: 2 }, /node-end\.node must be a whole number/],
    [{ t: "node-end", id: -2, node: 1 }, /node-end\.id must be a whole number/],
    // node-reply
    [{ t: "node-reply", id: 3, value: null }, /node-reply\.ok must be true or false/],
    [{ t: "node-reply", id: 3, ok: "true", value: null }, /node-reply\.ok must be true or false/],
    [{ t: "node-reply", id: 3, ok: false }, /node-reply\.error must be a string/],
    [{ t: "node-reply", ok: true, value: null }, /node-reply\.id must be a whole number from 1/],
  ];
  for (const [msg, why] of cases) refused(raw(msg), why);
  // The same messages built with encodeWire (it does not check control messages) are refused the same way.
  refused(control({ t: "node-control", id: 2, node: 1, request: { op: "reboot" } }), /node-control\.request: unknown control request "reboot"/);
  refused(control({ ...config, elastic: "yes" }), /config\.elastic/);
});
