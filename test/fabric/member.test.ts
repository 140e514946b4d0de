// The mesh logic end to end in Node.js: real BroadcastChannel (Node.js has one) or a real relay for
// signaling, in-memory channels instead of WebRTC.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { FabricError } from "../../src/fabric/errors.ts";
import { newClusterId, newJoinToken, newPeerId } from "../../src/fabric/ids.ts";
import { FABRIC_VERSION } from "../../src/fabric/messages.ts";
import { parseJoinLink } from "../../src/fabric/join-link.ts";
import { type CommonOptions, EARLY_FRAMES_MAX, type FabricEvent, FabricMember } from "../../src/fabric/member.ts";
import { type RelayServer, startRelay } from "../../src/fabric/relay/server.ts";
import { broadcastTransport, channelName } from "../../src/fabric/adapters/broadcast.ts";
import { relayTransport, type WebSocketCtor } from "../../src/fabric/adapters/relay-client.ts";
import { memoryConnectors } from "../../src/fabric/adapters/memory.ts";
import type { SignalTransport, TransportFactory } from "../../src/fabric/signaling.ts";

const open: FabricMember[] = [];
afterEach(() => {
  for (const n of open.splice(0)) n.close("test over");
});

function common(over: Partial<CommonOptions> = {}): CommonOptions {
  return { transport: broadcastTransport, connector: memoryConnectors(), protocol: 3, build: "test", pingIntervalMs: 0, joinTimeoutMs: 2000, ...over };
}
const track = (n: FabricMember) => (open.push(n), n);

function waitFor(member: FabricMember, pred: (e: FabricEvent) => boolean): Promise<FabricEvent> {
  return new Promise((resolve) => {
    const off = member.on((e) => {
      if (pred(e)) {
        off();
        resolve(e);
      }
    });
  });
}

async function joinError(p: Promise<unknown>): Promise<FabricError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FabricError);
    return e as FabricError;
  }
  throw new Error("the join succeeded");
}

/** Tab 0 with 1 vCPU of 3, a compute joiner with 2, a watcher: the full mesh of three. */
async function threeTabs(opts: CommonOptions) {
  const host = track(await FabricMember.create({ ...opts, totalVcpus: 3, maxTabs: 4, hostVcpus: 1 }));
  const link = host.joinLink("http://127.0.0.1/fabric-lab.html");
  const a = track(await FabricMember.join(link, { ...opts, role: "compute", vcpus: 2 }));
  const w = track(await FabricMember.join(link, { ...opts, role: "watcher", vcpus: 0 }));
  // The first joiner learns of the watcher from tab 0's roster and accepts its link.
  for (const n of [host, a]) if (n.links().length < 2) await waitFor(n, (e) => e.type === "link-up" && e.tab === 2);
  return { host, a, w };
}

async function exchange(tabs: FabricMember[]): Promise<void> {
  // Every tab sends 20 numbered frames to every other; each receiver checks order per sender.
  const got = new Map<FabricMember, Map<number, number[]>>();
  const all = new Promise<void>((resolve) => {
    let need = tabs.length * (tabs.length - 1) * 20;
    for (const n of tabs) {
      const per = new Map<number, number[]>();
      got.set(n, per);
      n.onFrame((from, f) => {
        per.set(from, [...(per.get(from) ?? []), f[0]! * 256 + f[1]!]);
        if (--need === 0) resolve();
      });
    }
  });
  for (const n of tabs) for (const m of tabs) if (n !== m) for (let i = 0; i < 20; i++) n.send(m.tab, new Uint8Array([n.tab, i, ...new Array(3000).fill(i)]));
  await all;
  for (const n of tabs)
    for (const m of tabs) if (n !== m) expect(got.get(n)!.get(m.tab)).toEqual(Array.from({ length: 20 }, (_, i) => m.tab * 256 + i));
}

describe("mesh over BroadcastChannel", () => {
  it("admits a compute tab and a watcher, agrees on the roster, and carries frames in order between all pairs", async () => {
    const { host, a, w } = await threeTabs(common());
    expect([host.tab, a.tab, w.tab]).toEqual([0, 1, 2]);
    for (const n of [host, a, w]) {
      expect(n.members.map((m) => [m.tab, m.role, m.vcpus])).toEqual([
        [0, "host", [0]],
        [1, "compute", [1, 2]],
        [2, "watcher", []],
      ]);
      expect(n.links().map((l) => [l.tab, l.state])).toEqual([0, 1, 2].filter((x) => x !== n.tab).map((x) => [x, "up"]));
    }
    await exchange([host, a, w]);
  });

  it("tells every other tab at once when a member leaves, and ends the cluster when tab 0 leaves", async () => {
    const { host, a, w } = await threeTabs(common());
    const seenByHost = waitFor(host, (e) => e.type === "member-left");
    const seenByW = waitFor(w, (e) => e.type === "member-left");
    // The closing tab's own links close under it: that is its leaving, not the others'. (It once
    // reported tab 0 gone, and its VM told the rest that tab 0 had left.)
    const seenByA: FabricEvent[] = [];
    a.on((e) => e.type === "member-left" && seenByA.push(e));
    a.close("tab closed");
    expect(seenByA).toEqual([]);
    expect(await seenByHost).toMatchObject({ member: { tab: 1, role: "compute", vcpus: [1, 2] } });
    expect(await seenByW).toMatchObject({ member: { tab: 1 } });
    expect(host.members.map((m) => m.tab)).toEqual([0, 2]);
    const ended = waitFor(w, (e) => e.type === "ended");
    host.close("done");
    expect(await ended).toMatchObject({ error: { code: "host-left" } });
    expect(() => w.send(0, new Uint8Array(1))).toThrow(/no open link/);
  });

  it("gives a bad join its typed error: wrong token, unknown cluster, full, version mismatch, malformed link", async () => {
    const opts = common();
    const host = track(await FabricMember.create({ ...opts, totalVcpus: 2, maxTabs: 2, hostVcpus: 1 }));
    const wrong = await joinError(FabricMember.join({ cluster: host.cluster, token: newJoinToken() }, { ...opts, role: "compute", vcpus: 1 }));
    expect(wrong.code).toBe("wrong-token");
    const unknown = await joinError(FabricMember.join({ cluster: newClusterId(), token: newJoinToken() }, { ...opts, joinTimeoutMs: 300, role: "compute", vcpus: 1 }));
    expect(unknown.code).toBe("unknown-cluster");
    expect(unknown.message).toMatch(/within 300 ms.*relay=/);
    const link = host.joinLink("http://x/");
    const tooMany = await joinError(FabricMember.join(link, { ...opts, role: "compute", vcpus: 2 }));
    expect(tooMany.code).toBe("cluster-full");
    const version = await joinError(FabricMember.join(link, { ...opts, protocol: 4, role: "compute", vcpus: 1 }));
    expect(version.code).toBe("version-mismatch");
    expect(version.message).toMatch(/VM protocol v3.*VM protocol v4/);
    track(await FabricMember.join(link, { ...opts, role: "compute", vcpus: 1 }));
    const full = await joinError(FabricMember.join(link, { ...opts, role: "watcher", vcpus: 0 }));
    expect(full.code).toBe("cluster-full");
    expect((await joinError(FabricMember.join("http://x/#join=nope", { ...opts, role: "watcher", vcpus: 0 }))).code).toBe("malformed-link");
    expect(host.members).toHaveLength(2); // none of the refused tabs got in
  });

  it("a watch link admits a watcher only; it does not carry the join token", async () => {
    const opts = common();
    const host = track(await FabricMember.create({ ...opts, totalVcpus: 2, maxTabs: 4, hostVcpus: 1 }));
    const watchLink = host.watchLink("http://x/")!;
    expect(watchLink).not.toContain(host.token);
    const asCompute = await joinError(FabricMember.join(watchLink, { ...opts, role: "compute", vcpus: 1 }));
    expect(asCompute.code).toBe("wrong-token");
    expect(asCompute.message).toBe("this is a watch link: it lets this tab watch the cluster, not host vCPUs");
    // Its token presented for a compute role (a page that ignores the link's kind) is refused by tab 0.
    const forged = await joinError(FabricMember.join({ ...parseJoinLink(watchLink), watch: false }, { ...opts, role: "compute", vcpus: 1 }));
    expect(forged).toMatchObject({ code: "wrong-token", message: expect.stringMatching(/this is a watch link: it lets a tab watch the cluster, not host vCPUs/) });
    const w = track(await FabricMember.join(watchLink, { ...opts, role: "watcher", vcpus: 0 }));
    expect(w.members.map((m) => [m.tab, m.role])).toEqual([[0, "host"], [1, "watcher"]]);
    expect(w.watchLink("http://x/")).toBeNull(); // only tab 0 holds it
  });

  it("names the failed step when a link cannot open", async () => {
    const ok = common();
    const host = track(await FabricMember.create({ ...ok, totalVcpus: 2, maxTabs: 2, hostVcpus: 1 }));
    const failing = common({ connector: memoryConnectors({ failWith: new FabricError("ice", "link to tab 0: ICE found no working network path") }) });
    const err = await joinError(FabricMember.join(host.joinLink("http://x/"), { ...failing, role: "compute", vcpus: 1 }));
    expect(err.code).toBe("ice");
  });

  it("drops malformed and forged BroadcastChannel messages without acting on them", async () => {
    const opts = common();
    const host = track(await FabricMember.create({ ...opts, totalVcpus: 2, maxTabs: 4, hostVcpus: 1 }));
    const events: FabricEvent[] = [];
    host.on((e) => events.push(e));
    const raw = new BroadcastChannel(channelName(host.cluster));
    raw.postMessage({ cluster: host.cluster, from: newPeerId(), to: "*", body: { t: "join", token: "x".repeat(5) } });
    raw.postMessage("not even an object");
    // Well-formed, but a roster from someone who is not tab 0 (tab 0 never takes rosters).
    raw.postMessage({ cluster: host.cluster, from: newPeerId(), to: "*", body: { t: "roster", epoch: 99, members: [] } });
    const joiner = track(await FabricMember.join(host.joinLink("http://x/"), { ...opts, role: "watcher", vcpus: 0 }));
    raw.close();
    expect(events.filter((e) => e.type === "invalid").map((e) => (e as { error: FabricError }).error.message)).toEqual([
      expect.stringMatching(/join\.token is not a join token/),
      expect.stringMatching(/message is not an object/),
      expect.stringMatching(/a roster from .* who is not tab 0/),
    ]);
    expect(host.members.map((m) => m.tab)).toEqual([0, joiner.tab]);
  });

  it("keeps frames that come before anyone listens, in order and bounded, for the first listener", async () => {
    const opts = common();
    const host = track(await FabricMember.create({ ...opts, totalVcpus: 2, maxTabs: 2, hostVcpus: 1 }));
    const joiner = track(await FabricMember.join(host.joinLink("http://x/"), { ...opts, role: "compute", vcpus: 1 }));
    if (host.links().find((l) => l.tab === 1)?.state !== "up") await waitFor(host, (e) => e.type === "link-up" && e.tab === 1);
    const events: FabricEvent[] = [];
    joiner.on((e) => events.push(e));
    // More than the buffer holds, sent before the joiner listens; the ping's answer comes after them on the ordered link.
    const sent = EARLY_FRAMES_MAX + 5;
    for (let i = 0; i < sent; i++) host.send(1, new Uint8Array([i >> 8, i & 255]));
    await joiner.ping(0);
    expect(events.filter((e) => e.type === "invalid").map((e) => (e as { error: FabricError }).error.code)).toEqual(["overflow", "overflow", "overflow", "overflow", "overflow"]);
    const first: number[] = [];
    joiner.onFrame((from, f) => {
      expect(from).toBe(0);
      first.push(f[0]! * 256 + f[1]!);
    });
    // The first listener got the earliest frames, in order, and nothing beyond the bound.
    expect(first).toEqual(Array.from({ length: EARLY_FRAMES_MAX }, (_, i) => i));
    // A later listener gets only what comes after it; frames now reach every listener at once.
    const second: number[] = [];
    joiner.onFrame((_, f) => second.push(f[0]! * 256 + f[1]!));
    host.send(1, new Uint8Array([0xff, 0xfe]));
    await joiner.ping(0);
    expect(first.at(-1)).toBe(0xfffe);
    expect(second).toEqual([0xfffe]);
  });

  it("keeps clusters apart on one BroadcastChannel origin", async () => {
    const opts = common();
    const one = await threeTabs(opts);
    const two = track(await FabricMember.create({ ...opts, totalVcpus: 1, maxTabs: 2, hostVcpus: 1 }));
    const joiner = track(await FabricMember.join(two.joinLink("http://x/"), { ...opts, role: "watcher", vcpus: 0 }));
    expect(joiner.members.map((m) => m.peer)).toEqual([two.self, joiner.self]);
    expect(one.host.members).toHaveLength(3);
  });
});

describe("mesh over the WebSocket relay", () => {
  let relay: RelayServer;
  beforeAll(async () => {
    relay = await startRelay();
  });
  afterAll(() => relay?.close());
  const viaRelay = () => common({ transport: relayTransport(relay.url, WebSocket as unknown as WebSocketCtor) });

  it("forms the mesh and carries frames; the relay sees the cluster and then forgets it", async () => {
    const { host, a, w } = await threeTabs(viaRelay());
    expect(relay.stats()).toEqual({ clusters: 1, peers: 3 });
    await exchange([host, a, w]);
    const gone = waitFor(host, (e) => e.type === "member-left");
    a.close();
    await gone;
    const ended = waitFor(w, (e) => e.type === "ended");
    host.close();
    await ended;
    for (let i = 0; i < 50 && relay.stats().clusters > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(relay.stats().clusters).toBe(0);
  });

  it("lets a watcher in through the relay with the watch link's token", async () => {
    const opts = viaRelay();
    const host = track(await FabricMember.create({ ...opts, totalVcpus: 2, maxTabs: 4, hostVcpus: 1 }));
    const w = track(await FabricMember.join(host.watchLink("http://x/")!, { ...opts, role: "watcher", vcpus: 0 }));
    expect(w.members.map((m) => m.role)).toEqual(["host", "watcher"]);
    const c = track(await FabricMember.join(host.joinLink("http://x/"), { ...opts, role: "compute", vcpus: 1 }));
    expect(c.members.map((m) => m.role)).toEqual(["host", "watcher", "compute"]);
  });

  it("lets no member but tab 0 welcome a joiner (the relay vouches for the creator)", async () => {
    const opts = viaRelay();
    // Tab 0's signaling is slowed down so that a forged welcome always arrives first.
    const slowTransport: typeof opts.transport = async (req) => {
      const t = await opts.transport(req);
      const send = t.send.bind(t);
      t.send = (to, body) => void setTimeout(() => send(to, body), 200);
      return t;
    };
    const host = track(await FabricMember.create({ ...opts, transport: slowTransport, totalVcpus: 2, maxTabs: 4, hostVcpus: 1 }));
    // A tab that holds the token joins the relay and answers every join with a welcome of its own.
    const evil = new WebSocket(relay.url);
    const evilPeer = newPeerId();
    await new Promise((r) => evil.on("open", r));
    evil.send(JSON.stringify({ t: "hello", cluster: host.cluster, token: host.token, peer: evilPeer, create: false, fabric: FABRIC_VERSION }));
    evil.on("message", (d) => {
      const m = JSON.parse(d.toString());
      if (m.t !== "deliver" || m.body.t !== "join") return;
      const members = [
        { tab: 0, peer: evilPeer, role: "host", vcpus: [0], build: "evil" },
        { tab: 1, peer: m.from, role: "compute", vcpus: [1], build: "x" },
      ];
      evil.send(JSON.stringify({ t: "send", to: m.from, body: { t: "welcome", tab: 1, shape: { totalVcpus: 2, maxTabs: 4, protocol: 3 }, epoch: 9, members } }));
    });
    const joiner = track(await FabricMember.join(host.joinLink("http://x/"), { ...opts, role: "compute", vcpus: 1 }));
    expect(joiner.members.find((m) => m.tab === 0)?.peer).toBe(host.self);
    evil.close();
  });

  /** Relay signaling that keeps each WebSocket it opens, so a test can cut one. */
  function recordingRelay(url: string, sockets: WebSocket[]): TransportFactory {
    class Recorded extends WebSocket {
      constructor(address: string) {
        super(address);
        sockets.push(this);
      }
    }
    return relayTransport(url, Recorded as unknown as WebSocketCtor);
  }

  it("runs on when tab 0's relay connection drops (the relay closes the cluster id); new joins fail saying why", { timeout: 30_000 }, async () => {
    const own = await startRelay();
    try {
      const sockets: WebSocket[] = [];
      const opts = common({ transport: recordingRelay(own.url, sockets) });
      const { host, a, w } = await threeTabs(opts);
      const seen = [host, a, w].map(record);
      const lost = [host, a, w].map((n) => waitFor(n, (e) => e.type === "signaling-lost"));
      sockets[0]!.terminate(); // tab 0's socket: the relay tells the others peer-gone, then cluster-closed
      await Promise.all(lost);
      for (let i = 0; i < 100 && own.stats().clusters > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(own.stats()).toEqual({ clusters: 0, peers: 0 });
      await exchange([host, a, w]);
      for (const n of [host, a, w]) expect(n.members.map((m) => m.tab)).toEqual([0, 1, 2]);
      expect(seen.flatMap(kinds)).toEqual(["signaling-lost", "signaling-lost", "signaling-lost"]);
      const err = await joinError(FabricMember.join(host.joinLink("http://x/"), { ...opts, role: "watcher", vcpus: 0 }));
      expect(err.code).toBe("unknown-cluster");
      expect(err.message).toMatch(/no cluster with this id.*the relay no longer introduces tabs to this cluster: its tab 0 closed, or tab 0 lost its connection to the relay \(a running cluster keeps its links, but no new tab can join it\)/);
    } finally {
      await own.close();
    }
  });

  it("runs on when the relay stops: frames flow, the roster stays; a new join fails saying why", { timeout: 30_000 }, async () => {
    const own = await startRelay();
    const opts = common({ transport: relayTransport(own.url, WebSocket as unknown as WebSocketCtor) });
    const { host, a, w } = await threeTabs(opts);
    const seen = [host, a, w].map(record);
    const lost = [host, a, w].map((n) => waitFor(n, (e) => e.type === "signaling-lost"));
    await own.close();
    await Promise.all(lost);
    await exchange([host, a, w]);
    for (const n of [host, a, w]) expect(n.members.map((m) => m.tab)).toEqual([0, 1, 2]);
    expect(seen.flatMap(kinds)).toEqual(["signaling-lost", "signaling-lost", "signaling-lost"]);
    const err = await joinError(FabricMember.join(host.joinLink("http://x/"), { ...opts, role: "watcher", vcpus: 0 }));
    expect(err.code).toBe("relay");
    expect(err.message).toMatch(/cannot reach the relay .* no new tab can join through it \(a running cluster keeps its links without the relay\)/);
  });

  it("fails a join whose links were still opening when the relay went away, and tab 0 evicts it", { timeout: 30_000 }, async () => {
    const own = await startRelay();
    const opts = common({ transport: relayTransport(own.url, WebSocket as unknown as WebSocketCtor) });
    const host = track(await FabricMember.create({ ...opts, admitDeadlineMs: 500, totalVcpus: 2, maxTabs: 2, hostVcpus: 1 }));
    const hang = memoryConnectors({ hang: () => true });
    let linking!: () => void;
    const welcomed = new Promise<void>((r) => (linking = r));
    const connector: CommonOptions["connector"] = (req) => (linking(), hang(req));
    const joining = FabricMember.join(host.joinLink("http://x/"), { ...opts, connector, connectTimeoutMs: 25_000, role: "compute", vcpus: 1 });
    await welcomed; // admitted, and opening its link to tab 0
    const left = waitFor(host, (e) => e.type === "member-left");
    await own.close();
    const err = await joinError(joining);
    expect(err.code).toBe("relay");
    expect(err.message).toMatch(/signaling ended while the links to tab\(s\) 0 were opening, and they cannot open without it/);
    // Its goodbye could not pass either: tab 0's deadline removes the ghost and frees its vCPU.
    expect(await left).toMatchObject({ member: { tab: 1, vcpus: [1] }, reason: expect.stringMatching(/^evicted by tab 0: .*within 500 ms.*\(its link to tab 0 never opened\)/) });
    expect(host.freeVcpus).toEqual([1]);
  });

  it("reports the relay's refusals with the same codes", async () => {
    const opts = viaRelay();
    const host = track(await FabricMember.create({ ...opts, totalVcpus: 1, maxTabs: 2, hostVcpus: 1 }));
    expect((await joinError(FabricMember.join({ cluster: host.cluster, token: newJoinToken() }, { ...opts, role: "watcher", vcpus: 0 }))).code).toBe("wrong-token");
    expect((await joinError(FabricMember.join({ cluster: newClusterId(), token: newJoinToken() }, { ...opts, role: "watcher", vcpus: 0 }))).code).toBe("unknown-cluster");
    const down = common({ transport: relayTransport("ws://127.0.0.1:1/", WebSocket as unknown as WebSocketCtor) });
    const err = await joinError(FabricMember.join({ cluster: host.cluster, token: host.token }, { ...down, role: "watcher", vcpus: 0 }));
    expect(err.code).toBe("relay");
    expect(err.message).toMatch(/cannot reach the relay ws:\/\/127\.0\.0\.1:1\//);
  });
});

/** Collects a member's events from now on. */
function record(member: FabricMember): FabricEvent[] {
  const events: FabricEvent[] = [];
  member.on((e) => events.push(e));
  return events;
}
const kinds = (events: FabricEvent[]) => events.map((e) => e.type);

/** BroadcastChannel signaling whose peer-gone notices and fatal failure the test sends by hand (as a relay would). */
function steerableSignaling(): { factory: TransportFactory; peerGone(peer: string): void; fail(err: FabricError): void } {
  const made: { gone: ((peer: string) => void)[]; fatal: ((err: FabricError) => void)[] }[] = [];
  const factory: TransportFactory = async (req) => {
    const t = await broadcastTransport(req);
    const hooks = { gone: [] as ((peer: string) => void)[], fatal: [] as ((err: FabricError) => void)[] };
    made.push(hooks);
    const steered: SignalTransport = Object.assign(Object.create(t) as SignalTransport, {
      kind: "relay" as const,
      onPeerGone: (cb: (peer: string) => void) => void hooks.gone.push(cb),
      onFatal: (cb: (err: FabricError) => void) => void hooks.fatal.push(cb),
    });
    return steered;
  };
  return {
    factory,
    peerGone: (peer) => made.forEach((h) => h.gone.forEach((cb) => cb(peer))),
    fail: (err) => made.forEach((h) => h.fatal.forEach((cb) => cb(err))),
  };
}

describe("membership follows the links, not signaling", () => {
  it("keeps a member the relay says is gone while its link is up", async () => {
    const sig = steerableSignaling();
    const { host, a, w } = await threeTabs(common({ transport: sig.factory }));
    const seen = [host, a, w].map(record);
    sig.peerGone(a.self); // "its signaling connection closed": says nothing about its links
    sig.peerGone(host.self);
    for (const n of [host, a, w]) expect(n.members.map((m) => m.tab)).toEqual([0, 1, 2]);
    await exchange([host, a, w]);
    expect(seen.flatMap(kinds)).toEqual([]);
  });

  it("runs on when signaling fails everywhere (even the relay's 'cluster closed'); members still leave by their links", async () => {
    const sig = steerableSignaling();
    const { host, a, w } = await threeTabs(common({ transport: sig.factory }));
    const seen = [host, a, w].map(record);
    sig.fail(new FabricError("host-left", "relay ws://x/ refused: cluster-closed: the cluster's first tab (tab 0) left"));
    for (const events of seen) {
      expect(kinds(events)).toEqual(["signaling-lost"]);
      const e = events[0] as Extract<FabricEvent, { type: "signaling-lost" }>;
      expect(e.error.code).toBe("relay");
      expect(e.error.message).toMatch(/signaling ended \(.*cluster-closed.*\); the links stay up and the cluster runs on, but no new tab can join it/);
    }
    for (const n of [host, a, w]) {
      expect(n.isEnded).toBeUndefined();
      expect(n.signalingLostError?.code).toBe("relay");
    }
    await exchange([host, a, w]);
    // A member leaving is still seen by everyone, through the links alone.
    const leftAtHost = waitFor(host, (e) => e.type === "member-left");
    const leftAtW = waitFor(w, (e) => e.type === "member-left");
    a.close("tab closed");
    expect(await leftAtHost).toMatchObject({ member: { tab: 1, vcpus: [1, 2] } });
    expect(await leftAtW).toMatchObject({ member: { tab: 1 } });
    expect(w.members.map((m) => m.tab)).toEqual([0, 2]);
    // And tab 0 leaving still ends the cluster, as its link says.
    const ended = waitFor(w, (e) => e.type === "ended");
    host.close("done");
    expect(await ended).toMatchObject({ error: { code: "host-left" } });
  });

  it("evicts a joiner whose links never come up: its vCPUs are freed, everyone is told, it learns why", { timeout: 30_000 }, async () => {
    const opts = common();
    const host = track(await FabricMember.create({ ...opts, admitDeadlineMs: 300, totalVcpus: 4, maxTabs: 4, hostVcpus: 1 }));
    const link = host.joinLink("http://x/");
    const a = track(await FabricMember.join(link, { ...opts, role: "compute", vcpus: 1 }));
    const leftAtHost = waitFor(host, (e) => e.type === "member-left");
    const leftAtA = waitFor(a, (e) => e.type === "member-left");
    // Its connector never connects nor fails (like ICE that finds no path); its own wait is longer than tab 0's deadline.
    const ghost = FabricMember.join(link, { ...common({ connector: memoryConnectors({ hang: () => true }) }), connectTimeoutMs: 25_000, role: "compute", vcpus: 2 });
    const err = await joinError(ghost);
    expect(err.code).toBe("evicted");
    expect(err.message).toMatch(/tab 0 removed this tab \(tab 2\) from the cluster: evicted by tab 0: its links did not all come up within 300 ms of its admission \(its link to tab 0 never opened\)/);
    for (const left of [await leftAtHost, await leftAtA]) {
      expect(left).toMatchObject({ member: { tab: 2, role: "compute", vcpus: [2, 3] } });
      expect((left as Extract<FabricEvent, { type: "member-left" }>).reason).toMatch(/^evicted by tab 0: its links did not all come up within 300 ms/);
    }
    for (const n of [host, a]) expect(n.members.map((m) => m.tab)).toEqual([0, 1]);
    expect(host.freeVcpus).toEqual([2, 3]);
    // The freed vCPUs go to the next joiner, which meshes normally; the member that reported its links stayed.
    const b = track(await FabricMember.join(link, { ...opts, role: "compute", vcpus: 2 }));
    expect(b.tab).toBe(3);
    if (a.links().length < 2) await waitFor(a, (e) => e.type === "link-up" && e.tab === 3);
    await exchange([host, a, b]);
    expect(host.freeVcpus).toEqual([]);
  });

  it("evicts a joiner whose link to tab 0 opened but whose link to another member did not; it learns it on that link", { timeout: 30_000 }, async () => {
    const opts = common();
    const host = track(await FabricMember.create({ ...opts, admitDeadlineMs: 300, totalVcpus: 3, maxTabs: 4, hostVcpus: 1 }));
    const link = host.joinLink("http://x/");
    const a = track(await FabricMember.join(link, { ...opts, role: "compute", vcpus: 1 }));
    const leftAtA = waitFor(a, (e) => e.type === "member-left");
    // The joiner's signaling drops every roster, so only its link to tab 0 can tell it.
    const noRosters: TransportFactory = async (req) => {
      const t = await broadcastTransport(req);
      return Object.assign(Object.create(t) as SignalTransport, {
        onMessage: (cb: Parameters<SignalTransport["onMessage"]>[0]) => t.onMessage((from, body) => body.t !== "roster" && cb(from, body)),
      });
    };
    const half = FabricMember.join(link, { ...common({ transport: noRosters, connector: memoryConnectors({ hang: (tab) => tab === 1 }) }), connectTimeoutMs: 25_000, role: "compute", vcpus: 1 });
    const err = await joinError(half);
    expect(err.code).toBe("evicted");
    expect(err.message).toMatch(/\(its link to tab 0 is open, but it never said its links to the other members are\)/);
    expect((await leftAtA) as object).toMatchObject({ member: { tab: 2, vcpus: [2] }, reason: expect.stringMatching(/^evicted by tab 0/) });
    expect(host.members.map((m) => m.tab)).toEqual([0, 1]);
    expect(host.links().map((l) => l.tab)).toEqual([1]);
  });

  it("when the link between two tabs other than tab 0 drops, tab 0 removes one of them and every tab agrees", { timeout: 30_000 }, async () => {
    const opts = common();
    const host = track(await FabricMember.create({ ...opts, totalVcpus: 4, maxTabs: 4, hostVcpus: 1 }));
    const link = host.joinLink("http://x/");
    const a = track(await FabricMember.join(link, { ...opts, role: "compute", vcpus: 1 }));
    // The second joiner keeps the channels it opens, so the test can cut its link to tab 1.
    const base = memoryConnectors();
    const mine: { tab: number; raw: { close(): void } }[] = [];
    const connector: CommonOptions["connector"] = (req) => {
      const c = base(req);
      const onConnect = c.onConnect.bind(c);
      c.onConnect = (cb) => onConnect((raw) => (mine.push({ tab: req.remoteTab, raw }), cb(raw)));
      return c;
    };
    const b = track(await FabricMember.join(link, { ...opts, connector, role: "compute", vcpus: 2 }));
    if (a.links().length < 2) await waitFor(a, (e) => e.type === "link-up" && e.tab === 2);
    const leftAtHost = waitFor(host, (e) => e.type === "member-left");
    const endings = [a, b].map((n) => waitFor(n, (e) => e.type === "ended").then(() => n));
    mine.find((x) => x.tab === 1)!.raw.close(); // the link between tabs 1 and 2 drops; both keep their links to tab 0
    const left = (await leftAtHost) as Extract<FabricEvent, { type: "member-left" }>;
    expect([1, 2]).toContain(left.member.tab);
    expect(left.reason).toMatch(new RegExp(`^its link to tab ${3 - left.member.tab} closed`));
    const gone = await Promise.race(endings);
    expect(gone.tab).toBe(left.member.tab);
    expect(gone.isEnded?.code).toBe("evicted");
    expect(gone.isEnded?.message).toMatch(/tab 0 removed this tab \(tab \d\) from the cluster: its link to tab \d closed/);
    const survivor = gone === a ? b : a;
    for (const n of [host, survivor]) expect(n.members.map((m) => m.tab)).toEqual([0, survivor.tab]);
    expect(host.freeVcpus).toEqual(left.member.vcpus);
    await exchange([host, survivor]);
  });

  it("does not run out of tab ids: 300 joins and leaves next to a long-lived member, each newcomer linked and told apart", { timeout: 120_000 }, async () => {
    const opts = common();
    const host = track(await FabricMember.create({ ...opts, totalVcpus: 3, maxTabs: 3, hostVcpus: 1 }));
    const link = host.joinLink("http://x/");
    const a = track(await FabricMember.join(link, { ...opts, role: "compute", vcpus: 1 }));
    const fromNewcomer: string[] = [];
    a.onFrame((from, f) => fromNewcomer.push(`${from}:${new TextDecoder().decode(f)}`));
    const tabs: number[] = [];
    for (let i = 0; i < 300; i++) {
      const n = await FabricMember.join(link, { ...opts, role: i % 2 ? "watcher" : "compute", vcpus: 1 });
      tabs.push(n.tab);
      if (a.links().length < 2) await waitFor(a, (e) => e.type === "link-up" && e.tab === n.tab);
      n.send(1, new TextEncoder().encode(n.self));
      await n.ping(1); // the frame came before the pong
      const leftAtA = waitFor(a, (e) => e.type === "member-left");
      const leftAtHost = waitFor(host, (e) => e.type === "member-left");
      n.close("cycle");
      expect(await leftAtA).toMatchObject({ member: { tab: n.tab, peer: n.self } });
      await leftAtHost;
      expect(fromNewcomer.at(-1)).toBe(`${n.tab}:${n.self}`);
    }
    expect(fromNewcomer).toHaveLength(300);
    expect(Math.max(...tabs)).toBe(254);
    expect(tabs[253]).toBe(2); // after 2..254, the first freed id again
    expect(host.members.map((m) => m.tab)).toEqual([0, 1]);
  });
});
