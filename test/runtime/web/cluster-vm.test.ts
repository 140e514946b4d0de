// ClusterVm's protocol between tabs, with an in-memory fabric and fake nodes: the boot handshake
// (config with image digests, ready), console both ways, node frames to the right tab, refusal of
// a differing image, forged frames dropped, and the VM stopping when a vCPU tab leaves.

import { describe, expect, it } from "vitest";
import type { VmEvent } from "../../../src/runtime/web/vm-api.ts";
import type { FabricEvent, Member } from "../../../src/fabric/adapters/browser.ts";
import type { ClusterGuest } from "../../../src/protocol/tab/guest.ts";
import type { ClusterMachineLayout } from "../../../src/runtime/web/cluster-machine.ts";
import { type ControlMessage, decodeWire, encodeWire, type WatcherRights } from "../../../src/protocol/tab/envelope.ts";
import type { NodeControlRequest } from "../../../src/protocol/tab/node-control.ts";
import type { NodeViewReport } from "../../../src/runtime/web/node-protocol.ts";
import { encode } from "../../../src/protocol/codec.ts";
import type { StatsSnapshot } from "../../../src/protocol/messages.ts";
import { buildSnapshot } from "../../../src/protocol/stats.ts";
import { ClusterVm, type ClusterFabric, type ClusterViewControls, type ClusterVmState, type TabNodes } from "../../../src/runtime/web/cluster-vm.ts";

const members: Member[] = [
  { tab: 0, peer: "p0", role: "host", vcpus: [0], build: "t" },
  { tab: 1, peer: "p1", role: "compute", vcpus: [1], build: "t" },
  { tab: 2, peer: "p2", role: "watcher", vcpus: [], build: "t" },
];

const flush = () => new Promise((r) => setTimeout(r, 0));
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

class FakeNodes implements TabNodes {
  delivered: [number, number, number[]][] = [];
  typed: string[] = [];
  onEvent: ((e: VmEvent) => void) | null = null;
  terminated = false;
  booted: ClusterGuest | null = null;
  delayMs = 0;
  tracing = false;
  /** The local nodes running (an elastic VM's tab other than 0 starts none at boot). */
  running = new Set<number>();
  /** startNode calls (node, vcpuNodes, members), control requests (node, request), endNode calls. */
  startedNodes: [number, (number | null)[], number[]][] = [];
  controls: [number, NodeControlRequest][] = [];
  endedNodes: number[] = [];
  constructor(readonly layout: ClusterMachineLayout) {}
  /** The VM links (issue 15): the routes last set, tabs this end relays to (with why), what each tab said. */
  routes: (number | null)[] = [];
  relays = new Map<number, string>();
  theirs = new Map<number, { direct: boolean; why?: string }>();
  dropped: number[] = [];
  get counters() {
    return { framesOut: 0, framesIn: this.delivered.length, bytesOut: 0, bytesIn: 0, directOut: 0, directIn: 0, nodeOut: 0 };
  }
  setRoutes(hostOf: (number | null)[]) {
    this.routes = [...hostOf];
  }
  /** Tabs whose VM channel this machine's net worker got; with refuseTransfer, it throws as a browser that cannot transfer one. */
  attached: number[] = [];
  static refuseTransfer = false;
  attachChannel(tab: number): void {
    if (FakeNodes.refuseTransfer) throw new Error("Failed to execute 'postMessage' on 'Worker': Value at index 0 does not have a transferable type.");
    this.attached.push(tab);
  }
  /** The receiving ends of remote nodes' own channels: [tab, node, label, id]. */
  nodeEnds: [number, number, string, number][] = [];
  attachNodeChannel(tab: number, node: number, channel: RTCDataChannel): void {
    if (FakeNodes.refuseTransfer) throw new Error("Failed to execute 'postMessage' on 'Worker': Value at index 0 does not have a transferable type.");
    const c = channel as unknown as { label: string; id: number };
    this.nodeEnds.push([tab, node, c.label, c.id]);
  }
  relayTo(tab: number, why: string) {
    this.relays.set(tab, why);
  }
  theirPath(tab: number, direct: boolean, why?: string) {
    this.theirs.set(tab, why === undefined ? { direct } : { direct, why });
  }
  async pingVmLink(): Promise<number[]> {
    throw new Error("the in-memory fabric has no VM channels");
  }
  dropTab(tab: number) {
    this.dropped.push(tab);
  }
  get vmLinks() {
    return [...this.relays.keys()].map((tab) => ({ tab, path: this.theirs.has(tab) ? ("relay" as const) : null }));
  }
  async boot(guest: ClusterGuest, onEvent: (e: VmEvent) => void) {
    await this.layout.prepare?.(guest);
    this.booted = guest;
    this.onEvent = onEvent;
    if (!this.layout.elastic || this.layout.local.includes(0)) this.layout.local.forEach((n) => this.running.add(n));
    onEvent({ kind: "started" });
  }
  runs(node: number) {
    return this.running.has(node);
  }
  /** A node that is always quiescent and balanced (it exchanged no DSM message), and owns nothing after a drain. */
  async control(node: number, request: NodeControlRequest): Promise<unknown> {
    if (!this.running.has(node)) throw new RangeError(`node ${node} does not run in this tab`);
    this.controls.push([node, request]);
    const zeros = () => new Array<number>(this.layout.nodes).fill(0);
    if (request.op === "dsm-report") return { node, quiescent: true, sent: zeros(), received: zeros() };
    if (request.op === "drain" || request.op === "dsm-leave") return { owned: 0 };
    return null;
  }
  async startNode(node: number, vcpuNodes: (number | null)[], members: number[]) {
    if (!this.layout.elastic || !this.layout.local.includes(node)) throw new RangeError(`node ${node} is not this tab's`);
    this.startedNodes.push([node, vcpuNodes, members]);
    this.running.add(node);
  }
  endNode(node: number) {
    if (!this.running.delete(node)) throw new RangeError(`node ${node} does not run in this tab`);
    this.endedNodes.push(node);
  }
  deliver(from: number, to: number, frame: Uint8Array) {
    this.delivered.push([from, to, [...frame]]);
  }
  async serialInput(bytes: Uint8Array) {
    this.typed.push(new TextDecoder().decode(bytes));
  }
  terminate() {
    this.terminated = true;
  }
  setLinkDelay(ms: number) {
    this.delayMs = ms;
  }
  setTracing(on: boolean) {
    this.tracing = on;
  }
}

/** What a tab's live view was given. */
interface ViewLog {
  configs: { vcpus: number; memoryMiB: number; guest: string }[];
  stats: StatsSnapshot[];
  reports: NodeViewReport[];
  controls: ClusterViewControls[];
}

interface Tab {
  vm: ClusterVm;
  fabric: ClusterFabric;
  machines: FakeNodes[];
  out: string;
  states: ClusterVmState[];
  invalid: string[];
  /** The watcher rights this tab heard of from tab 0. */
  rights: WatcherRights[];
  view: ViewLog;
  /** An elastic VM: the vm-hosts this tab was given (onVmHosts). */
  hosts: [(number | null)[], string][];
  /** Every control message this tab received, decoded, with its sender. */
  got: [number, ControlMessage][];
  emit(e: FabricEvent): void;
  frame(from: number, bytes: Uint8Array): void;
  /** A tab of `later`: it enters the roster and its page starts (it says hello). */
  arrive(): void;
}

/** Three tabs (host, compute, watcher) on an in-memory fabric that keeps order per pair. */
function cluster(
  fetched: (tab: number, url: string) => ArrayBuffer | Promise<ArrayBuffer>,
  opts: { rights?: WatcherRights; guestReadyText?: string; later?: number[]; sideChannels?: boolean; vmLink?: "auto" | "pair" | "relay" } = {},
): Tab[] {
  const tabs: Tab[] = [];
  let roster = members.filter((m) => !opts.later?.includes(m.tab));
  for (const me of members) {
    const listeners: ((e: FabricEvent) => void)[] = [];
    const frames: ((from: number, f: Uint8Array) => void)[] = [];
    const fabric: ClusterFabric = {
      tab: me.tab,
      shape: { totalVcpus: 2, maxTabs: 8, protocol: 1 },
      get members() {
        return roster;
      },
      get me() {
        return roster.find((m) => m.tab === me.tab);
      },
      send: (to, bytes) => {
        // As the fabric: no link to a tab that is not (or no longer) in the roster.
        if (!roster.some((m) => m.tab === to)) throw new Error(`no open link to tab ${to}`);
        const copy = bytes.slice();
        setTimeout(() => tabs[to]!.frame(me.tab, copy), 0);
      },
      broadcast: (bytes) => roster.filter((m) => m.tab !== me.tab).forEach((m) => fabric.send(m.tab, bytes)),
      onFrame: (cb) => void frames.push(cb),
      on: (cb) => (listeners.push(cb), () => {}),
      links: () => roster.filter((m) => m.tab !== me.tab).map((m) => ({ tab: m.tab, state: "up" as const, queuedBytes: 0, framesSent: 0, framesReceived: 0 })),
      ...(opts.sideChannels ? { openSideChannel: (tab: number, label: string, id: number) => ({ channel: { label, id, tab } as unknown as RTCDataChannel, maxMessage: 65536 }) } : {}),
    };
    const tab: Tab = {
      fabric,
      machines: [],
      out: "",
      states: [],
      invalid: [],
      rights: [],
      view: { configs: [], stats: [], reports: [], controls: [] },
      hosts: [],
      got: [],
      emit: (e) => {
        if (e.type === "member-left") roster = roster.filter((m) => m.tab !== e.member.tab);
        listeners.forEach((l) => l(e));
      },
      frame: (from, f) => {
        if (frames.length && f[0] === 4) {
          try {
            const m = decodeWire(f);
            if (m.kind === "control") tab.got.push([from, m.msg]);
          } catch {
            // (the ClusterVm reports it)
          }
        }
        frames.forEach((cb) => cb(from, f));
      },
      arrive: () => {
        if (!roster.includes(me)) roster = [...roster, me];
        start();
      },
      vm: undefined as unknown as ClusterVm,
    };
    const start = () => (tab.vm = new ClusterVm({
      fabric,
      ...(opts.rights ? { watcherRights: opts.rights } : {}),
      onRights: (r) => tab.rights.push(r),
      fetchImage: async (url) => fetched(me.tab, url),
      onOutput: (b) => (tab.out += new TextDecoder().decode(b)),
      onState: (s) => tab.states.push(s),
      onInvalid: (why) => tab.invalid.push(why),
      onVmHosts: (hosts, changing) => void tab.hosts.push([hosts, changing]),
      ...(opts.guestReadyText ? { guestReadyText: opts.guestReadyText } : {}),
      ...(opts.vmLink ? { vmLink: opts.vmLink } : {}),
      view: {
        config: (c) => void tab.view.configs.push(c),
        stats: (x) => void tab.view.stats.push(x),
        report: (r) => void tab.view.reports.push(r),
        controls: (c) => void tab.view.controls.push(c),
      },
      makeMachine: (layout) => {
        const m = new FakeNodes(layout);
        tab.machines.push(m);
        return m;
      },
    }));
    if (!opts.later?.includes(me.tab)) start();
    tabs.push(tab);
  }
  return tabs;
}

const bytes = (s: string) => new TextEncoder().encode(s).buffer as ArrayBuffer;
const IMAGES: Record<string, string> = { "engine.wasm": "wasm", "bios.bin": "firmware", "bzImage": "kernel", "initrd.gz": "initramfs" };
const linux: ClusterGuest = { kind: "linux", wasm: bytes("wasm"), firmware: bytes("firmware"), bzImage: bytes("kernel"), initrd: bytes("initramfs"), cmdline: "console=ttyS0", memoryMiB: 64 };
const urls = { engine: "engine.wasm", firmware: "bios.bin", kernel: "bzImage", initramfs: "initrd.gz", elf: "selftest.elf" };

it("boots across tabs: config with digests, ready, then node 0; console and node frames reach the right tabs", async () => {
  const [a, b, w] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => a!.vm.phase === "running", "tab 0 running");
  // Tab B fetched the same images, started its node (vCPU 1 only) and said ready before node 0 booted.
  const mb = b!.machines[0]!;
  expect(mb.layout.local).toEqual([1]);
  expect(mb.layout.nodes).toBe(2);
  const booted = mb.booted!;
  if (booted.kind !== "linux") throw new Error(`tab B booted a ${booted.kind} guest`);
  expect(new TextDecoder().decode(booted.bzImage)).toBe("kernel");
  expect(new TextDecoder().decode(booted.firmware)).toBe("firmware");
  expect(booted.cmdline).toBe("console=ttyS0");
  expect(booted.memoryMiB).toBe(64);
  expect(b!.vm.phase).toBe("running");
  expect(w!.vm.phase).toBe("running"); // the watcher shows the console, runs no node
  expect(w!.machines).toEqual([]);

  // Node 0's serial output appears on every tab; keys from tab B reach node 0's UART.
  a!.machines[0]!.onEvent!({ kind: "serial", bytes: new TextEncoder().encode("login: ") });
  b!.vm.input(new TextEncoder().encode("ls\n"));
  await until(() => a!.machines[0]!.typed.length === 1, "input at node 0");
  expect(a!.out).toBe("login: ");
  expect(b!.out).toBe("login: ");
  expect(w!.out).toBe("login: ");
  expect(a!.machines[0]!.typed).toEqual(["ls\n"]);

  // A frame node 0 writes for node 1 goes to tab B's node 1 intact, and back.
  a!.machines[0]!.layout.sendRemote(0, 1, new Uint8Array([1, 2, 3]));
  b!.machines[0]!.layout.sendRemote(1, 0, new Uint8Array([9]));
  await until(() => mb.delivered.length === 1 && a!.machines[0]!.delivered.length === 1, "node frames");
  expect(mb.delivered).toEqual([[0, 1, [1, 2, 3]]]);
  expect(a!.machines[0]!.delivered).toEqual([[1, 0, [9]]]);
});

it("drops what a watcher forges and frames in the wrong direction; the VM runs on", async () => {
  const [a, b] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => a!.vm.phase === "running", "tab 0 running");
  a!.frame(2, encodeWire({ kind: "node-frame", from: 1, to: 0, payload: new Uint8Array([7]) }));
  a!.frame(2, new Uint8Array([77, 1]));
  a!.frame(1, encodeWire({ kind: "console-out", bytes: new Uint8Array([65]) }));
  b!.frame(0, encodeWire({ kind: "console-in", bytes: new Uint8Array([65]) }));
  expect(a!.invalid).toEqual([
    "from tab 2: a frame claims node 1, which tab 2 does not host",
    "from tab 2: unknown envelope kind 77",
    "from tab 1: console output from a tab other than tab 0",
  ]);
  expect(b!.invalid).toEqual(["from tab 0: console input sent to a tab other than tab 0"]);
  expect(a!.machines[0]!.delivered).toEqual([]);
  expect(a!.out).toBe("");
  expect(a!.vm.phase).toBe("running");
  expect(b!.vm.phase).toBe("running");
});

// Node frames travel in order and are never resent: one lost from a tab hosting vCPUs would leave a
// node waiting for it forever. Before, each of these was logged and dropped, and the VM hung.
for (const [what, frame, why] of [
  ["garbage", new Uint8Array([77, 1]), "unknown envelope kind 77"],
  ["a node frame for a node it does not host", encodeWire({ kind: "node-frame", from: 0, to: 1, payload: new Uint8Array([7]) }), "a frame claims node 0, which tab 1 does not host"],
  ["a node frame cut short", encodeWire({ kind: "node-frame", from: 1, to: 0, payload: new Uint8Array([7, 8, 9]) }).subarray(0, 3), "node frame of 3 bytes is shorter than its header and one byte"],
] as const) {
  it(`a frame from a tab hosting vCPUs that tab 0 cannot use (${what}) stops the VM on every tab, naming the tab and why`, async () => {
    const tabs = cluster((_, url) => bytes(IMAGES[url]!));
    const [a] = tabs;
    await a!.vm.bootHost(linux, urls);
    await until(() => tabs.every((t) => t.vm.phase === "running"), "every tab running");
    a!.frame(1, frame);
    await until(() => tabs.every((t) => t.vm.phase === "error"), "every tab stopped");
    for (const t of tabs) {
      const msg = (t.states.at(-1) as { message: string }).message;
      expect(msg).toMatch(/^tab 1 sent a frame tab 0 cannot use \(.+\); a lost frame would hang the VM, so it stopped$/);
      expect(msg).toContain(why);
    }
    expect(a!.machines[0]!.delivered).toEqual([]);
    expect(a!.machines[0]!.terminated && tabs[1]!.machines[0]!.terminated).toBe(true);
  });
}

it("a node frame this tab cannot deliver (its bridge refuses it) stops the VM on every tab", async () => {
  const tabs = cluster((_, url) => bytes(IMAGES[url]!));
  const [a] = tabs;
  await a!.vm.bootHost(linux, urls);
  await until(() => tabs.every((t) => t.vm.phase === "running"), "every tab running");
  a!.machines[0]!.deliver = () => {
    throw new RangeError("backlog from node 1 to node 0 is over its bound");
  };
  a!.frame(1, encodeWire({ kind: "node-frame", from: 1, to: 0, payload: new Uint8Array([7]) }));
  await until(() => tabs.every((t) => t.vm.phase === "error"), "every tab stopped");
  for (const t of tabs)
    expect((t.states.at(-1) as { message: string }).message).toBe(
      "tab 1 sent a frame tab 0 cannot use (its frame from node 1 to node 0 could not be delivered: backlog from node 1 to node 0 is over its bound); a lost frame would hang the VM, so it stopped",
    );
});

it("this tab's frame pump failing (onFatal) stops the VM on every tab", async () => {
  const tabs = cluster((_, url) => bytes(IMAGES[url]!));
  const [, b] = tabs;
  await tabs[0]!.vm.bootHost(linux, urls);
  await until(() => tabs.every((t) => t.vm.phase === "running"), "every tab running");
  b!.machines[0]!.layout.onFatal!("its frame pump failed: FabricError: no open link to tab 0");
  await until(() => tabs.every((t) => t.vm.phase === "error"), "every tab stopped");
  for (const t of tabs) expect((t.states.at(-1) as { message: string }).message).toBe("tab 1 stopped the VM: its frame pump failed: FabricError: no open link to tab 0");
});

it("a tab whose image differs refuses, and tab 0 stops with the reason", async () => {
  const [a, b] = cluster((tab, url) => bytes(tab === 1 && url === "bzImage" ? "kernel v2" : IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => a!.vm.phase === "error", "tab 0 stopping");
  const err = a!.states.at(-1) as Extract<ClusterVmState, { phase: "error" }>;
  expect(err.message).toMatch(/tab 1 cannot take part: the kernel at bzImage differs from tab 0's \(here 9 bytes, .* tab 0 6 bytes/);
  expect(b!.vm.phase).toBe("error");
  expect(a!.machines[0]!.booted).toBeNull(); // node 0 never started its CPU
  expect(b!.machines).toEqual([]);
});

it("checks its config with the joiners' parser before announcing it: one they would drop stops tab 0 at once", async () => {
  const [a, b] = cluster((_, url) => bytes(IMAGES[url]!));
  // Before, tab 0 announced this, tab B dropped the envelope as invalid, and tab 0 waited in "booting".
  await a!.vm.bootHost(linux, { ...urls, kernel: "https://images.example/bzImage" });
  await until(() => a!.vm.phase === "error", "tab 0 stopping");
  const err = a!.states.at(-1) as Extract<ClusterVmState, { phase: "error" }>;
  expect(err.message).toMatch(/the other tabs would refuse this VM's configuration: config\.images\[2\]\.url "https:\/\/images\.example\/bzImage" must be a path on the page's server/);
  expect(b!.invalid).toEqual([]); // no config reached it: tab B waits for a VM and is not left half-started
  expect(b!.vm.phase).toBe("waiting");
  expect(a!.machines[0]!.booted).toBeNull();
  expect(b!.machines).toEqual([]);
});

it("a tab whose VM stopped while it fetched the images does not go on to boot it", async () => {
  // Before, tab B stopped, its fetch came back, and it booted its nodes anyway: "running" alone.
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const tabs = cluster(async (tab, url) => {
    if (tab === 1 && url === "bzImage") await held;
    return bytes(IMAGES[url]!);
  });
  const [a, b] = tabs;
  void a!.vm.bootHost(linux, urls);
  await until(() => b!.vm.phase === "fetching" && b!.states.some((s) => s.phase === "fetching" && s.what === "kernel"), "tab B fetching the kernel");
  a!.vm.stop();
  await until(() => b!.vm.phase === "stopped", "tab B stopping");
  release();
  await flush();
  await flush();
  expect(b!.vm.phase).toBe("stopped");
  expect(b!.machines).toEqual([]);
  expect(b!.states.map((s) => s.phase).slice(-1)).toEqual(["stopped"]);
});

it("a watcher leaving changes nothing", async () => {
  const [a] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => a!.vm.phase === "running", "tab 0 running");
  a!.emit({ type: "member-left", member: members[2]!, reason: "closed" });
  await flush();
  expect(a!.vm.phase).toBe("running");
});

it("stops the VM on every tab when a tab hosting vCPUs leaves, also on a tab that did not see it go", async () => {
  const tabs = cluster((_, url) => bytes(IMAGES[url]!));
  const [a, , w] = tabs;
  await a!.vm.bootHost(linux, urls);
  await until(() => tabs.every((t) => t.vm.phase === "running"), "every tab running");
  a!.emit({ type: "member-left", member: members[1]!, reason: "its data channel closed" });
  expect(a!.vm.phase).toBe("error");
  const why = "tab 1 (vCPU 1) left the cluster (its data channel closed); the VM stopped (seen on tab 0)";
  expect((a!.states.at(-1) as { message: string }).message).toBe(why);
  expect(a!.machines[0]!.terminated).toBe(true);
  // The watcher did not see tab 1 go; tab 0 tells it (before, it went on showing "running").
  await until(() => w!.vm.phase === "error", "the watcher stopping");
  expect((w!.states.at(-1) as { message: string }).message).toBe(why);
  // Late frames from the gone tab's nodes are dropped, not delivered into a stopped machine.
  a!.frame(1, encodeWire({ kind: "node-frame", from: 1, to: 0, payload: new Uint8Array([1]) }));
  await flush();
  expect(a!.machines[0]!.delivered).toEqual([]);
});

it("a link between two tabs hosting vCPUs going down stops the VM on every tab; a watcher's link going down does not", async () => {
  const tabs = cluster((_, url) => bytes(IMAGES[url]!));
  const [a, b, w] = tabs;
  await a!.vm.bootHost(linux, urls);
  await until(() => tabs.every((t) => t.vm.phase === "running"), "every tab running");
  // The watcher carries no node frames: its link to tab 1 failing leaves the VM running.
  w!.emit({ type: "link-down", tab: 1, reason: "the data channel closed" });
  a!.emit({ type: "link-down", tab: 2, reason: "the data channel closed" });
  await flush();
  expect(tabs.map((t) => t.vm.phase)).toEqual(["running", "running", "running"]);
  // Tab 1 sees its link to tab 0 go; the roster still lists both (no member left), and before,
  // tab 0 went on "running", blocked on pages tab 1's node held.
  b!.emit({ type: "link-down", tab: 0, reason: "the data channel closed" });
  await until(() => a!.vm.phase === "error" && w!.vm.phase === "error", "tab 0 and the watcher stopping");
  for (const t of tabs)
    expect((t.states.at(-1) as { message: string }).message).toBe("the link between tab 1 and tab 0 (vCPU 0) went down (the data channel closed); the VM stopped");
});

describe("the VM link between two tabs (issue 15)", () => {
  it("with side channels, each tab hosting vCPUs hands its end to its net worker and says direct; the watcher takes no part; routes name each node's tab", async () => {
    const tabs = cluster((_, url) => bytes(IMAGES[url]!), { sideChannels: true });
    const [a, b, w] = tabs;
    await a!.vm.bootHost(linux, urls);
    await until(() => tabs.every((t) => t.vm.phase === "running"), "every tab running");
    await until(() => a!.machines[0]!.theirs.size === 1 && b!.machines[0]!.theirs.size === 1, "both ends heard");
    expect(a!.machines[0]!.attached).toEqual([1]);
    expect(b!.machines[0]!.attached).toEqual([0]);
    expect(a!.machines[0]!.relays.size + b!.machines[0]!.relays.size).toBe(0);
    // Each end also holds the receiving end of the other tab's node's own channel (id 1001 + node),
    // and gives its own node a channel to the other tab (the watcher, hosting nothing, gets none).
    expect(a!.machines[0]!.nodeEnds).toEqual([[1, 1, "giantweb-node-1", 1002]]);
    expect(b!.machines[0]!.nodeEnds).toEqual([[0, 0, "giantweb-node-0", 1001]]);
    const ends = (m: FakeNodes, node: number) => m.layout.nodeChannels!(node).map((e) => [e.tab, (e.channel as unknown as { label: string }).label, (e.channel as unknown as { id: number }).id]);
    expect(ends(a!.machines[0]!, 0)).toEqual([[1, "giantweb-node-0", 1001]]);
    expect(ends(b!.machines[0]!, 1)).toEqual([[0, "giantweb-node-1", 1002]]);
    expect([...a!.machines[0]!.theirs]).toEqual([[1, { direct: true }]]);
    expect([...b!.machines[0]!.theirs]).toEqual([[0, { direct: true }]]);
    expect(a!.machines[0]!.routes).toEqual([0, 1]);
    expect(b!.machines[0]!.routes).toEqual([0, 1]);
    // The watcher was told nothing (it carries no node frames).
    expect(w!.got.filter(([, m]) => m.t === "vm-link")).toEqual([]);
    // A second word from a tab is refused, and a watcher's is refused.
    a!.frame(1, encodeWire({ kind: "control", msg: { t: "vm-link", direct: false, why: "changed my mind" } }));
    a!.frame(2, encodeWire({ kind: "control", msg: { t: "vm-link", direct: true } }));
    await flush();
    expect(a!.invalid).toEqual(["from tab 1: tab 1 said twice how it carries node frames", "from tab 2: tab 2 hosts no vCPU, so it carries no node frames"]);
    expect(a!.vm.phase).toBe("running");
    // Tab 1 leaving the cluster drops its link in the net worker.
    a!.emit({ type: "member-left", member: members[1]!, reason: "it left" });
    expect(a!.machines[0]!.dropped).toEqual([1]);
  });

  it("?vmlink=pair: the pair goes direct on the net workers' channel, and no node gets a channel of its own", async () => {
    const tabs = cluster((_, url) => bytes(IMAGES[url]!), { sideChannels: true, vmLink: "pair" });
    const [a, b] = tabs;
    await a!.vm.bootHost(linux, urls);
    await until(() => tabs.every((t) => t.vm.phase === "running"), "every tab running");
    await until(() => a!.machines[0]!.theirs.size === 1 && b!.machines[0]!.theirs.size === 1, "both ends heard");
    expect([a!.machines[0]!.attached, b!.machines[0]!.attached]).toEqual([[1], [0]]);
    expect([...a!.machines[0]!.theirs]).toEqual([[1, { direct: true }]]);
    expect([a!.machines[0]!.nodeEnds, b!.machines[0]!.nodeEnds]).toEqual([[], []]);
    expect([a!.machines[0]!.layout.nodeChannels!(0), b!.machines[0]!.layout.nodeChannels!(1)]).toEqual([[], []]);
  });

  it("without side channels (or a browser that cannot transfer one) both ends relay, each saying why", async () => {
    FakeNodes.refuseTransfer = true;
    try {
      for (const sideChannels of [false, true]) {
        const tabs = cluster((_, url) => bytes(IMAGES[url]!), { sideChannels });
        const [a, b] = tabs;
        await a!.vm.bootHost(linux, urls);
        await until(() => tabs.every((t) => t.vm.phase === "running"), "every tab running");
        await until(() => a!.machines[0]!.theirs.size === 1 && b!.machines[0]!.theirs.size === 1, "both ends heard");
        const why = sideChannels
          ? "this browser cannot hand a data channel to a worker (Failed to execute 'postMessage' on 'Worker': Value at index 0 does not have a transferable type.)"
          : "its link to this tab has no second data channel";
        expect([...a!.machines[0]!.relays]).toEqual([[1, why]]);
        expect([...a!.machines[0]!.theirs]).toEqual([[1, { direct: false, why }]]);
        expect([...b!.machines[0]!.theirs]).toEqual([[0, { direct: false, why }]]);
      }
    } finally {
      FakeNodes.refuseTransfer = false;
    }
  });
});

it("tab 0 refuses to boot while a vCPU has no tab", async () => {
  const [a] = cluster((_, url) => bytes(IMAGES[url]!));
  a!.emit({ type: "member-left", member: members[1]!, reason: "closed" });
  expect(a!.vm.missingVcpus()).toEqual([1]);
  await expect(a!.vm.bootHost(linux, urls)).rejects.toThrow(/no tab hosts vCPU 1 yet: share the join link/);
  expect(a!.machines).toEqual([]);
});

it("boots the self-test guest across tabs: tab B fetches the engine and the ELF only, and boots the same guest", async () => {
  const files: Record<string, string> = { ...IMAGES, "selftest.elf": "elf" };
  const fetchedBy: string[] = [];
  const [a, b] = cluster((tab, url) => (tab === 1 && fetchedBy.push(url), bytes(files[url]!)));
  const selftest: ClusterGuest = { kind: "selftest", wasm: bytes("wasm"), elf: bytes("elf"), cmdline: "scale=2", memoryMiB: 64 };
  await a!.vm.bootHost(selftest, urls);
  await until(() => a!.vm.phase === "running" && b!.vm.phase === "running", "both tabs running");
  expect(fetchedBy).toEqual(["engine.wasm", "selftest.elf"]);
  const booted = b!.machines[0]!.booted!;
  if (booted.kind !== "selftest") throw new Error(`tab B booted a ${booted.kind} guest`);
  expect(new TextDecoder().decode(booted.elf)).toBe("elf");
  expect(booted.cmdline).toBe("scale=2");
  expect(a!.machines[0]!.booted!.kind).toBe("selftest");
});

it("a configuration whose images do not fit its guest kind is dropped before any fetch", async () => {
  const fetchedBy: string[] = [];
  const [, b] = cluster((_, url) => (fetchedBy.push(url), bytes(IMAGES[url]!)));
  const d = (what: string) => ({ what, url: "x", bytes: 1, sha256: "ab".repeat(32) });
  const send = (msg: object) => b!.frame(0, new Uint8Array([4, ...new TextEncoder().encode(JSON.stringify(msg))]));
  send({ t: "config", guest: "selftest", vcpus: 2, memoryMiB: 64, cmdline: "", images: [d("engine"), d("kernel")] });
  send({ t: "config", guest: "linux", vcpus: 2, memoryMiB: 64, cmdline: "", images: [d("engine"), d("firmware"), d("kernel")] });
  await flush();
  expect(b!.invalid).toEqual([
    'from tab 0: config.images[1].what "kernel" is not an image of the selftest guest (engine, elf)',
    "from tab 0: config.images lists engine, firmware, kernel, but the linux guest needs exactly engine, firmware, kernel, initramfs",
  ]);
  expect(fetchedBy).toEqual([]);
  expect(b!.machines).toEqual([]);
});

const counters0 = buildSnapshot({ node: 0, seq: 0, atMs: 0, dsm: { counters: {}, takePageChanges: () => [] } as never }).counters;
const snapshot = (node: number, seq: number): StatsSnapshot => ({
  type: "stats",
  node,
  seq,
  atMs: 1000 + seq,
  counters: { ...counters0, readFaults: seq },
  vcpus: [{ vcpu: node, state: "running", instructions: 100 * seq }],
  links: [{ peer: 1 - node, rttUs: 1000 }],
  pages: [{ first: 16, count: 4, state: "modified" }],
});
const report = (node: number): NodeViewReport => ({
  node,
  movesSeq: 1,
  moves: [{ page: 16, to: 1 - node, count: 2 }],
  ipiCounts: [{ src: node, dest: 1 - node, kind: "startup", count: 1 }],
  events: [{ type: "fault", node, vcpu: node, page: 16, access: "write", startMs: 5, endMs: 6 }],
  droppedEvents: 0,
});

it("every tab's view gets every node's snapshots and reports: its own nodes' directly, the others' over the wire as codec bytes", async () => {
  const [a, b, w] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => a!.vm.phase === "running" && b!.vm.phase === "running", "both tabs running");
  for (const t of [a!, b!, w!]) expect(t.view.configs).toEqual([{ vcpus: 2, memoryMiB: 64, guest: "linux" }]);

  // Each tab's node reports (as the ClusterMachine passes them up: a stats frame, then a report).
  a!.machines[0]!.layout.onStats!(encode(snapshot(0, 1)));
  a!.machines[0]!.layout.onView!(report(0));
  b!.machines[0]!.layout.onStats!(encode(snapshot(1, 1)));
  b!.machines[0]!.layout.onView!(report(1));
  await until(() => [a!, b!, w!].every((t) => t.view.stats.length === 2 && t.view.reports.length === 2), "every view fed");
  for (const t of [a!, b!, w!]) {
    expect(t.view.stats.map((x) => x.node).sort()).toEqual([0, 1]);
    expect(t.view.stats.find((x) => x.node === 1)).toEqual(snapshot(1, 1));
    expect(t.view.reports.find((r) => r.node === 0)).toEqual(report(0));
    expect(t.view.reports.find((r) => r.node === 1)).toEqual(report(1));
  }
  expect([...a!.invalid, ...b!.invalid]).toEqual([]);
});

it("a live-view frame that is malformed or claims a node its tab does not host is dropped with a clear error; the tab goes on", async () => {
  const [a, b] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => a!.vm.phase === "running", "tab 0 running");
  const frame = encode({ type: "view-report", ...report(0) });
  a!.frame(1, encodeWire({ kind: "view", msg: { type: "view-report", ...report(0) }, frame })); // tab 1 hosts node 1, not 0
  a!.frame(1, new Uint8Array([5, ...frame.subarray(0, frame.length - 3)])); // cut short
  a!.frame(1, new Uint8Array([5, ...encode({ type: "ping", seq: 1, atMs: 2 })])); // not a view message
  await flush();
  expect(a!.invalid).toEqual([
    "from tab 1: a live-view view-report claims node 0, which tab 1 does not host",
    expect.stringMatching(/^from tab 1: live-view frame: frame ends inside view-report\.events\[0\]\.endMs/),
    "from tab 1: live-view frame holds a ping message, expected stats or view-report",
  ]);
  expect(a!.view.reports).toEqual([]);
  expect(a!.vm.phase).toBe("running");
  // A good report from tab 1 still arrives afterwards.
  b!.machines[0]!.layout.onView!(report(1));
  await until(() => a!.view.reports.length === 1, "the good report");
});

it("the knob and the trace button on any tab act on every tab's nodes, in tab 0's order", async () => {
  const [a, b, w] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => a!.vm.phase === "running" && b!.vm.phase === "running", "both tabs running");
  const [ma, mb] = [a!.machines[0]!, b!.machines[0]!];
  expect([ma.delayMs, mb.delayMs]).toEqual([0, 0]);

  b!.vm.setLinkDelay(20); // asked on tab B: tab 0 orders it, every tab applies it once
  await until(() => ma.delayMs === 20 && mb.delayMs === 20, "the delay on both tabs");
  b!.vm.setTracing(true);
  await until(() => ma.tracing && mb.tracing, "tracing on both tabs");
  for (const t of [a!, b!, w!]) expect(t.view.controls.at(-1)).toEqual({ delayMs: 20, tracing: true });
  a!.vm.setLinkDelay(0);
  a!.vm.setTracing(false);
  await until(() => mb.delayMs === 0 && !mb.tracing, "both off on tab B");
  expect(ma.delayMs).toBe(0);
  // Only tab 0 sends settings; one from another tab is refused.
  a!.frame(1, encodeWire({ kind: "control", msg: { t: "link-delay", ms: 50 } }));
  b!.frame(2, encodeWire({ kind: "control", msg: { t: "link-delay", ms: 50 } }));
  b!.frame(0, new Uint8Array([4, ...new TextEncoder().encode(JSON.stringify({ t: "link-delay", ms: 51 }))]));
  await flush();
  expect(b!.invalid).toEqual(["from tab 2: a link-delay setting from tab 2; only tab 0 sends settings to the tabs", "from tab 0: link-delay.ms must be a whole number from 0 to 50"]);
  // Tab 1's request to tab 0 is applied everywhere (it is a request, not a forgery).
  await until(() => mb.delayMs === 50, "tab 1's request applied");
  expect(ma.delayMs).toBe(50);
});

it("a watcher sees but may not type, stop the VM, or change the knob or tracing unless the creator allowed it", async () => {
  const tabs = cluster((_, url) => bytes(IMAGES[url]!));
  const [a, b, w] = tabs;
  await a!.vm.bootHost(linux, urls);
  await until(() => tabs.every((t) => t.vm.phase === "running") && w!.rights.length === 1, "every tab running, the watcher told its rights");
  expect(w!.rights).toEqual([{ type: false, control: false }]);
  // Its own controls refuse (the page greys them out); its keys are not sent.
  w!.vm.input(new TextEncoder().encode("rm -rf /\n"));
  expect(() => w!.vm.setLinkDelay(30)).toThrow(/this tab watches: the cluster's creator has not allowed watchers to change the knob or tracing/);
  expect(() => w!.vm.setTracing(true)).toThrow(/not allowed watchers/);
  expect(() => w!.vm.stop()).toThrow(/only tab 0 stops the VM: this tab may leave the cluster/);
  expect(() => b!.vm.stop()).toThrow(/only tab 0 stops the VM: this tab may leave the cluster \(which stops the VM if it hosts vCPUs\)/);
  // What a modified watcher page sends anyway is refused where it lands (before, each was obeyed).
  const forged = [
    { kind: "console-in", bytes: new TextEncoder().encode("reboot\n") },
    { kind: "control", msg: { t: "link-delay", ms: 50 } },
    { kind: "control", msg: { t: "tracing", on: true } },
    { kind: "control", msg: { t: "stop", reason: "stopped by the user (on tab 2)" } },
  ] as const;
  for (const m of forged) a!.frame(2, encodeWire(m));
  b!.frame(2, encodeWire(forged[3]));
  await flush();
  expect(a!.invalid).toEqual([
    "from tab 2: tab 2 watches and may not type: the creator has not allowed it",
    "from tab 2: tab 2 watches and may not change the knob: the creator has not allowed it",
    "from tab 2: tab 2 watches and may not change the tracing: the creator has not allowed it",
    "from tab 2: tab 2 watches and may not stop the VM",
  ]);
  expect(b!.invalid).toEqual(["from tab 2: tab 2 watches and may not stop the VM"]);
  expect(tabs.map((t) => t.vm.phase)).toEqual(["running", "running", "running"]);
  expect(a!.machines[0]!.typed).toEqual([]);
  expect([a!.machines[0]!.delayMs, b!.machines[0]!.delayMs, a!.machines[0]!.tracing]).toEqual([0, 0, false]);
});

it("a watcher the creator allowed types and turns the knob", async () => {
  const tabs = cluster((_, url) => bytes(IMAGES[url]!), { rights: { type: true, control: true } });
  const [a, b, w] = tabs;
  await a!.vm.bootHost(linux, urls);
  await until(() => tabs.every((t) => t.vm.phase === "running") && w!.rights.length === 1, "every tab running, the watcher told its rights");
  expect(w!.vm.watcherRights).toEqual({ type: true, control: true });
  w!.vm.input(new TextEncoder().encode("id\n"));
  w!.vm.setLinkDelay(30);
  await until(() => a!.machines[0]!.typed.length === 1 && b!.machines[0]!.delayMs === 30, "the watcher's keys and knob applied");
  expect(a!.machines[0]!.typed).toEqual(["id\n"]);
  // Stopping the VM stays tab 0's or a vCPU host's.
  expect(() => w!.vm.stop()).toThrow(/only tab 0 stops the VM/);
});

const apFailure = { node: 1, vcpu: 1, cause: "engine" as const, message: "the engine panicked at src/rust/cpu/cpu.rs:2731:9: #GP | ltr: invalid type (type = 0x0) (RuntimeError: unreachable)", atMs: 1000 };

it("a node that fails on tab B stops the VM on every tab, each saying which node, vCPU and tab, and why", async () => {
  const [a, b, w] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => b!.vm.phase === "running" && w!.vm.phase === "running", "every tab running");
  b!.machines[0]!.layout.onFailure!({ ...apFailure, tab: null });
  await until(() => [a, b, w].every((t) => t!.vm.phase === "error"), "every tab stopped");
  const said = "node 1 (vCPU 1, tab 1) failed: the engine panicked at src/rust/cpu/cpu.rs:2731:9: #GP | ltr: invalid type (type = 0x0) (RuntimeError: unreachable)";
  for (const t of [a, b, w]) expect(t!.states.at(-1)).toEqual({ phase: "error", message: said, failure: { ...apFailure, tab: 1 } });
  expect(a!.machines[0]!.terminated).toBe(true);
  expect(b!.machines[0]!.terminated).toBe(true);
  // Each tab stopped once: tab 0's relay reached tabs that had already stopped, and nothing echoed.
  await flush();
  for (const t of [a, b, w]) expect(t!.states.filter((s) => s.phase === "error")).toHaveLength(1);
  // (The watcher may also have dropped tab 0's second announcement, a race of the boot handshake.)
  expect([a, b, w].flatMap((t) => t!.invalid).filter((why) => /fail/.test(why))).toEqual([]);
});

it("tab 0 relays a failure to a tab that did not hear it from the failed node's tab", async () => {
  const [a, , w] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => w!.vm.phase === "running", "the watcher running");
  // Only tab 0 hears tab B (as if the link B-watcher were down): tab 0 tells the watcher.
  a!.frame(1, encodeWire({ kind: "control", msg: { t: "node-failed", failure: { ...apFailure, tab: 1 } } }));
  await until(() => w!.vm.phase === "error", "the watcher stopped");
  expect((w!.states.at(-1) as { message: string }).message).toMatch(/^node 1 \(vCPU 1, tab 1\) failed: the engine panicked/);
});

it("a failure report about a node the sender does not host, or from a third tab, is dropped; the VM runs on", async () => {
  const [a, b, w] = cluster((_, url) => bytes(IMAGES[url]!));
  await a!.vm.bootHost(linux, urls);
  await until(() => b!.vm.phase === "running", "tab B running");
  a!.frame(1, encodeWire({ kind: "control", msg: { t: "node-failed", failure: { ...apFailure, node: 0, vcpu: 0, tab: 1 } } }));
  a!.frame(2, encodeWire({ kind: "control", msg: { t: "node-failed", failure: { ...apFailure, tab: 1 } } }));
  expect(a!.invalid).toEqual(["from tab 1: a failure of node 0, which tab 1 does not host", "from tab 2: tab 2 reports a failure of tab 1's node 1"]);
  expect(a!.vm.phase).toBe("running");
  expect(w!.vm.phase).toBe("running");
});

// ------------------------------------------------------------ an elastic VM over tabs (issue 14)

const PROMPT = "~ # ";
const serial = (t: Tab, text: string) => t.machines[0]!.onEvent!({ kind: "serial", bytes: new TextEncoder().encode(text) });
const lastHosts = (t: Tab) => t.hosts.at(-1);
const requestsTo = (t: Tab, kind: string) => t.got.filter(([from, m]) => from === 0 && m.t === kind);

/** Tab 0 boots an elastic VM with only its slice while tab B (vCPU 1) is not in the cluster yet. */
async function elasticCluster(fetched: (tab: number, url: string) => ArrayBuffer = (_, url) => bytes(IMAGES[url]!)) {
  const tabs = cluster(fetched, { guestReadyText: PROMPT, later: [1] });
  const [a, b, w] = tabs as [Tab, Tab, Tab];
  // Tab 0 has the watcher's hello before it boots (else the watcher gets the config twice and drops
  // the second, a race of the boot handshake; see the report of this test's commit).
  await until(() => w.rights.length === 1, "the watcher's hello answered");
  await a.vm.bootHost(linux, urls, { elastic: true });
  await until(() => a.vm.phase === "running" && w.vm.phase === "running", "tab 0 and the watcher running");
  return { tabs, a, b, w };
}

it("elastic: nodes get no channels of their own (they come and go; their frames go through the net worker)", async () => {
  const tabs = cluster((_, url) => bytes(IMAGES[url]!), { guestReadyText: PROMPT, later: [1], sideChannels: true });
  const [a, b, w] = tabs as [Tab, Tab, Tab];
  await until(() => w.rights.length === 1, "the watcher's hello answered");
  await a.vm.bootHost(linux, urls, { elastic: true });
  await until(() => a.vm.phase === "running", "tab 0 running");
  serial(a, PROMPT);
  b.arrive();
  await until(() => b.vm.phase === "running", "tab B running");
  // Tab B's VM channel exists (the pair goes direct), but no node channel on either end.
  expect(b.machines[0]!.attached).toEqual([0]);
  expect(a.machines[0]!.layout.nodeChannels!(0)).toEqual([]);
  expect(b.machines[0]!.layout.nodeChannels!(1)).toEqual([]);
  expect([a.machines[0]!.nodeEnds, b.machines[0]!.nodeEnds]).toEqual([[], []]);
});

it("elastic: tab 0 boots on its own slice at once (a vCPU no tab hosts does not hold it up) and announces config.elastic", async () => {
  const { a, w } = await elasticCluster();
  const m = a.machines[0]!;
  expect(m.layout).toMatchObject({ nodes: 2, local: [0], elastic: true });
  expect([...m.running]).toEqual([0]);
  expect(m.booted?.kind).toBe("linux");
  expect(a.vm.isElastic).toBe(true);
  expect(a.vm.vmHostMap).toEqual({ hosts: [0, null], changing: "" });
  // The watcher was told: the config (elastic, the most vCPUs) and who hosts each vCPU.
  const config = w.got.find(([, msg]) => msg.t === "config")![1];
  expect(config).toMatchObject({ t: "config", guest: "linux", vcpus: 2, memoryMiB: 64, elastic: true });
  await until(() => lastHosts(w) !== undefined, "the watcher's vm-hosts");
  expect(lastHosts(w)).toEqual([[0, null], ""]);
  expect(w.vm.isElastic).toBe(true);
  // The same cluster without `elastic` would not boot.
  const [c] = cluster((_, url) => bytes(IMAGES[url]!), { later: [1] });
  await expect(c!.vm.bootHost(linux, urls)).rejects.toThrow(/no tab hosts vCPU 1 yet/);
  // And an elastic VM is Linux only.
  const [d] = cluster((_, url) => bytes(IMAGES[url]!), { later: [1] });
  await expect(d!.vm.bootHost({ kind: "selftest", wasm: bytes("wasm"), elf: bytes("elf"), cmdline: "", memoryMiB: 64 }, urls, { elastic: true })).rejects.toThrow(/an elastic VM runs the Linux guest/);
});

it("elastic: a tab that joins before the shell prompt gets config and vm-hosts, fetches, says ready, is refused and leaves; the VM runs on", async () => {
  const fetchedBy: string[] = [];
  const { a, b, w } = await elasticCluster((tab, url) => (tab === 1 && fetchedBy.push(url), bytes(IMAGES[url]!)));
  serial(a, "Booting the kernel...\n"); // not the prompt yet
  b.arrive();
  await until(() => b.vm.phase === "left", "tab B refused");
  // B got what runs and who hosts what, fetched every image, built its machine with no node running.
  expect(b.got.map(([from, msg]) => [from, msg.t]).slice(0, 2)).toEqual([
    [0, "config"],
    [0, "vm-hosts"],
  ]);
  expect(b.got[0]![1]).toMatchObject({ t: "config", elastic: true, vcpus: 2 });
  expect(b.got[1]![1]).toEqual({ t: "vm-hosts", hosts: [0, null], changing: "" });
  expect(fetchedBy.sort()).toEqual(["bios.bin", "bzImage", "engine.wasm", "initrd.gz"]);
  const mb = b.machines[0]!;
  expect(mb.layout).toMatchObject({ nodes: 2, local: [1], elastic: true });
  expect(mb.startedNodes).toEqual([]);
  expect(mb.running.size).toBe(0);
  expect(a.got.filter(([from, msg]) => from === 1 && msg.t === "ready").map(([, msg]) => msg)).toEqual([{ t: "ready", vcpus: [1] }]);
  // Tab 0's answer, with the reason; B's machine is gone, tab 0 and the watcher run on.
  expect(b.states.at(-1)).toEqual({
    phase: "left",
    reason: "tab 0 refused this tab's vCPUs: the VM is still booting (its shell is not up, so it cannot take a CPU yet); join again when it is. The VM runs on without them",
  });
  expect(b.states.map((s) => s.phase)).toEqual(["fetching", "fetching", "fetching", "fetching", "booting", "left"]);
  expect(mb.terminated).toBe(true);
  expect(requestsTo(b, "node-start")).toEqual([]);
  expect(a.vm.phase).toBe("running");
  expect(a.machines[0]!.terminated).toBe(false);
  expect(a.vm.vmHostMap).toEqual({ hosts: [0, null], changing: "" });

  // B leaves the cluster: it runs no node, so the VM runs on everywhere.
  for (const t of [a, w]) t.emit({ type: "member-left", member: members[1]!, reason: "closed" });
  await flush();
  await flush();
  expect([a.vm.phase, w.vm.phase]).toEqual(["running", "running"]);
  expect(a.machines[0]!.terminated).toBe(false);
  expect([...a.invalid, ...b.invalid, ...w.invalid]).toEqual([]);
});

it("elastic: a joining tab whose image differs only goes (phase left, naming why); tab 0 is not told to stop and runs on", async () => {
  const { a, b, w } = await elasticCluster((tab, url) => bytes(tab === 1 && url === "bzImage" ? "kernel v2" : IMAGES[url]!));
  serial(a, "# ");
  b.arrive();
  await until(() => b.vm.phase === "left", "tab B going");
  const last = b.states.at(-1) as Extract<ClusterVmState, { phase: "left" }>;
  expect(last.reason).toMatch(/^this tab could not join the VM: the kernel at bzImage differs from tab 0's .*The VM runs on without it$/);
  expect(a.got.filter(([from, msg]) => from === 1 && (msg.t === "refuse" || msg.t === "ready"))).toEqual([]);
  expect([a.vm.phase, w.vm.phase]).toEqual(["running", "running"]);
  expect(a.vm.vmHostMap).toEqual({ hosts: [0, null], changing: "" });
});

it("elastic: after the shell prompt (even split over two chunks), a tab's join runs: node-start reaches it, its node starts, it answers and runs", async () => {
  const { a, b, w } = await elasticCluster();
  const m0 = a.machines[0]!;
  serial(a, "Please press Enter to activate this console.\n~ ");
  serial(a, "# ");
  b.arrive();
  await until(() => b.vm.phase === "running", "tab B running");
  // Tab 0 asked B to start node 1 (hosting vCPU 1) joining members 0 and 1; B's machine started it.
  expect(requestsTo(b, "node-start").map(([, msg]) => msg)).toEqual([{ t: "node-start", id: expect.any(Number), node: 1, vcpuNodes: [0, 1], members: [0, 1] }]);
  const mb = b.machines[0]!;
  expect(mb.startedNodes).toEqual([[1, [0, 1], [0, 1]]]);
  // B answered each of tab 0's requests, by id, ok.
  const asked = b.got.filter(([, msg]) => msg.t === "node-start" || msg.t === "node-control").map(([, msg]) => (msg as { id: number }).id);
  const replies = a.got.filter(([from, msg]) => from === 1 && msg.t === "node-reply").map(([, msg]) => msg as Extract<ControlMessage, { t: "node-reply" }>);
  expect(replies.map((r) => r.id)).toEqual(asked);
  expect(replies.every((r) => r.ok)).toBe(true);
  // B's node took part in the DSM change (reports, resume) and node 0 learned of it, then plugged the CPU.
  expect(mb.controls.map(([n, r]) => [n, r.op])).toEqual([
    [1, "dsm-report"],
    [1, "dsm-report"],
    [1, "resume"],
  ]);
  expect(m0.controls.map(([, r]) => r)).toEqual([
    { op: "pause" },
    { op: "dsm-report" },
    { op: "dsm-report" },
    { op: "dsm-add-member", node: 1 },
    { op: "set-host", vcpu: 1, node: 1 },
    { op: "dsm-report" },
    { op: "dsm-report" },
    { op: "resume" },
    { op: "plug", cpu: 1 },
  ]);
  // Every tab knows who hosts what, with the change shown while it ran.
  await until(() => lastHosts(w)?.[1] === "" && lastHosts(w)?.[0][1] === 1, "the watcher's vm-hosts");
  for (const t of [a, b, w]) {
    expect(t.hosts).toContainEqual([[0, 1], "tab 1 joins with vCPU 1"]);
    expect(lastHosts(t)).toEqual([[0, 1], ""]);
  }
  expect([...a.invalid, ...b.invalid, ...w.invalid]).toEqual([]);

  // Now B runs a node of the VM: its leaving the cluster stops the VM everywhere.
  a.emit({ type: "member-left", member: members[1]!, reason: "its data channel closed" });
  expect(a.vm.phase).toBe("error");
  const why = "tab 1 (vCPU 1) left the cluster (its data channel closed); the VM stopped (seen on tab 0)";
  expect((a.states.at(-1) as { message: string }).message).toBe(why);
  await until(() => w.vm.phase === "error", "the watcher stopping");
  expect((w.states.at(-1) as { message: string }).message).toBe(why);
});

it("elastic: a tab that joined leaves the VM with leaveVm (the guest ejects its CPU, its node ends), then leaves the cluster; the VM runs on", async () => {
  const { a, b, w } = await elasticCluster();
  serial(a, PROMPT);
  b.arrive();
  await until(() => b.vm.phase === "running", "tab B running");
  const [m0, mb] = [a.machines[0]!, b.machines[0]!];
  m0.controls.length = 0;
  mb.controls.length = 0;
  const left = b.vm.leaveVm();
  await until(() => m0.controls.some(([, r]) => r.op === "unplug"), "the unplug at node 0");
  expect(m0.controls.map(([, r]) => r)).toEqual([{ op: "unplug", cpu: 1 }]);
  await until(() => lastHosts(b)?.[1] === "tab 1 leaves with vCPU 1", "the leave shown");
  // The guest offlines and ejects CPU 1 (node 0's hotplug device reports it).
  m0.layout.onNodeEvent!(0, { event: "cpu-ejected", cpu: 1 });
  await left;
  expect(b.states.at(-1)).toEqual({ phase: "left", reason: "this tab left the VM; it runs on without this tab's vCPUs" });
  expect(mb.controls.map(([, r]) => r.op)).toEqual(["pause", "pause", "dsm-report", "dsm-report", "dsm-leave", "dsm-report", "dsm-report", "drain"]);
  expect(mb.endedNodes).toEqual([1]);
  expect(mb.terminated).toBe(true);
  expect(m0.controls.map(([, r]) => r.op)).toEqual(["unplug", "pause", "dsm-report", "dsm-report", "dsm-remove-member", "set-host", "dsm-report", "dsm-report", "resume"]);
  expect(a.vm.vmHostMap).toEqual({ hosts: [0, null], changing: "" });
  // Every tab hears that B runs no node any more; then B goes from the cluster, and nothing stops.
  await until(() => lastHosts(w)?.[1] === "" && lastHosts(w)?.[0][1] === null, "the watcher's vm-hosts");
  expect(lastHosts(w)).toEqual([[0, null], ""]);
  for (const t of [a, w]) t.emit({ type: "member-left", member: members[1]!, reason: "closed" });
  await flush();
  await flush();
  expect([a.vm.phase, w.vm.phase]).toEqual(["running", "running"]);
  expect(m0.terminated).toBe(false);
  // Tab 0 itself cannot leave the VM.
  await expect(a.vm.leaveVm()).rejects.toThrow(/tab 0 holds the devices and vCPU 0: it cannot leave the VM/);
  expect([...a.invalid, ...b.invalid, ...w.invalid]).toEqual([]);
});

// Tab 0 broadcasts the vm-hosts without the leaving tab before it sends leave-done, so a page that
// leaves the cluster as soon as leaveVm resolves is not seen going by a tab that still lists it.
it("elastic: a tab that leaves the cluster right after leaveVm resolves stops nothing on the other tabs", async () => {
  const { a, b, w } = await elasticCluster();
  serial(a, PROMPT);
  b.arrive();
  await until(() => b.vm.phase === "running" && lastHosts(w)?.[0][1] === 1 && lastHosts(w)?.[1] === "", "tab B in the VM, the watcher told");
  const left = b.vm.leaveVm();
  await until(() => a.machines[0]!.controls.some(([, r]) => r.op === "unplug"), "the unplug at node 0");
  a.machines[0]!.layout.onNodeEvent!(0, { event: "cpu-ejected", cpu: 1 });
  await left;
  // The page leaves the cluster at once; the others see it go.
  for (const t of [a, w]) t.emit({ type: "member-left", member: members[1]!, reason: "closed" });
  await flush();
  await flush();
  expect([a.vm.phase, w.vm.phase]).toEqual(["running", "running"]);
});
