// The relay against hostile or broken clients: connection caps per address and in all, the Origin
// allow-list, a byte rate limit, readers that stop draining, keepalive both ways. Real WebSocket
// connections on loopback; clients pick their source address among 127.0.0.0/8 to stand for
// different machines. No assertion depends on how long something took: each waits for the event.

import { afterEach, describe, expect, it } from "vitest";
import { type ClientOptions, WebSocket, WebSocketServer } from "ws";
import { RelayTransport, relayTransport, type WebSocketCtor } from "../../src/fabric/adapters/relay-client.ts";
import { memoryConnectors } from "../../src/fabric/adapters/memory.ts";
import { FabricError } from "../../src/fabric/errors.ts";
import { newClusterId, newJoinToken, newPeerId } from "../../src/fabric/ids.ts";
import { type FabricEvent, FabricMember } from "../../src/fabric/member.ts";
import { FABRIC_VERSION } from "../../src/fabric/messages.ts";
import { MAX_RELAY_MESSAGE_BYTES, parseClientMessage, parseRelayMessage, type RelayMessage } from "../../src/fabric/relay/messages.ts";
import { RawRelayClient } from "./relay-test-client.ts";
import { addressKey, type RelayLimits, relayLimits, type RelayServer, type RelayTimers, startRelay } from "../../src/fabric/relay/server.ts";
import { fabricRelay } from "../../src/fabric/relay/vite-plugin.ts";

const relays: RelayServer[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

/** A relay with these limits (and allowed origins) whose log lines are kept. */
async function relayWith(limits: Partial<RelayLimits>, allowedOrigins?: string[], timers?: RelayTimers): Promise<{ relay: RelayServer; log: string[] }> {
  const log: string[] = [];
  const relay = await startRelay({ limits, log: (l) => log.push(l), ...(allowedOrigins ? { allowedOrigins } : {}), ...(timers ? { timers } : {}) });
  relays.push(relay);
  return { relay, log };
}

/** An interval timer driven by hand: each tick() runs every interval once, in the test's own order. */
function manualTimers() {
  const fns = new Set<() => void>();
  const timers = {
    setInterval: (fn: () => void) => (fns.add(fn), fn),
    clearInterval: (h: unknown) => void fns.delete(h as () => void),
  };
  return { timers, tick: () => [...fns].forEach((f) => f()), running: () => fns.size };
}

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

/** A raw client that records everything the relay says, and how the connection ended. */
class Client extends RawRelayClient {
  readonly closed: Promise<{ code: number; reason: string }>;
  pings = 0;
  constructor(url: string, opts: ClientOptions = {}) {
    super(url, opts);
    sockets.push(this.ws);
    this.ws.on("ping", () => this.pings++);
    this.ws.on("error", () => {});
    this.closed = new Promise((r) => this.ws.on("close", (code, reason) => r({ code, reason: reason.toString() })));
  }
  /** Says hello (a new cluster unless one is given) and returns the relay's first answer. */
  async hello(cluster = newClusterId(), token = newJoinToken(), create = true): Promise<RelayMessage> {
    await new Promise<void>((r, j) => (this.ws.readyState === WebSocket.OPEN ? r() : (this.ws.once("open", () => r()), this.ws.once("close", () => r()), this.ws.once("error", j))));
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ t: "hello", cluster, token, peer: this.peer, create, fabric: FABRIC_VERSION }));
    return this.next();
  }
  send(to: string, body: unknown): Promise<void> {
    return new Promise((r) => this.ws.send(JSON.stringify({ t: "send", to, body }), () => r()));
  }
}

const from = (n: number): ClientOptions => ({ localAddress: `127.0.0.${n}` });
/** A valid signaling body of about `chars` characters (an offer's SDP). */
const offer = (chars: number) => ({ t: "signal", tab: 1, data: { type: "offer", sdp: "v".repeat(chars) } });
const request = () => ({ cluster: newClusterId(), self: newPeerId(), token: newJoinToken(), create: true });

/** A `ws` WebSocket class for the relay client that sends this Origin (as a browser page would). */
function wsFrom(origin: string | undefined, opts: ClientOptions = {}): WebSocketCtor {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { ...opts, ...(origin ? { origin } : {}) });
      sockets.push(this);
    }
  } as unknown as WebSocketCtor;
}
const WS = wsFrom(undefined);

async function refusal(p: Promise<unknown>): Promise<FabricError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FabricError);
    return e as FabricError;
  }
  throw new Error("the relay accepted it");
}

describe("relay options", () => {
  it("fills in defaults and refuses a bad or unknown limit with a RangeError that names it", async () => {
    expect(relayLimits({}).maxConnectionsPerAddress).toBeGreaterThan(0);
    expect(relayLimits({ maxConnections: 7 }).maxConnections).toBe(7);
    expect(() => relayLimits({ maxConnections: 0 })).toThrow(/maxConnections/);
    expect(() => relayLimits({ maxConnectionsPerAddress: 1.5 })).toThrow(RangeError);
    expect(() => relayLimits({ bytesPerSecond: Number.NaN })).toThrow(/bytesPerSecond/);
    expect(() => relayLimits({ byteBurst: MAX_RELAY_MESSAGE_BYTES - 1 })).toThrow(/byteBurst/); // the largest message must fit
    expect(() => relayLimits({ maxBufferedBytes: 10 })).toThrow(/maxBufferedBytes/);
    expect(() => relayLimits({ pingIntervalMs: -1 })).toThrow(/pingIntervalMs/);
    expect(() => relayLimits({ maxConection: 3 } as Partial<RelayLimits>)).toThrow(/unknown limit "maxConection"/);
    await expect(startRelay({ limits: { closeGraceMs: 0 } })).rejects.toThrow(/closeGraceMs/);
    await expect(startRelay({ allowedOrigins: ["ftp://files.example"] })).rejects.toThrow(/allowedOrigins/);
    await expect(startRelay({ allowedOrigins: ["https://a.example/path"] })).rejects.toThrow(RangeError);
    expect(() => fabricRelay({ allowedOrigins: ["nope"] })).toThrow(/allowedOrigins/);
    expect(() => fabricRelay({ limits: { maxConnections: -5 } })).toThrow(/maxConnections/);
    expect(() => relayTransport("ws://127.0.0.1:1/", WS, { pingIntervalMs: 0 })).toThrow(/pingIntervalMs/);
  });

  it("counts IPv6 clients by their /64 prefix and IPv4-mapped ones by their IPv4 address", () => {
    expect(addressKey("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(addressKey("2001:db8:1:2:3:4:5:6")).toBe(addressKey("2001:db8:1:2::9"));
    expect(addressKey("2001:db8:1:2::9")).not.toBe(addressKey("2001:db8:1:3::9"));
  });

  it("has ping and pong in the relay's codec, validated like the rest", () => {
    expect(parseClientMessage(JSON.stringify({ t: "ping" }))).toEqual({ t: "ping" });
    expect(parseRelayMessage(JSON.stringify({ t: "pong" }))).toEqual({ t: "pong" });
    expect(parseRelayMessage(JSON.stringify({ t: "error", code: "too-many-connections", detail: "x" }))).toMatchObject({ code: "too-many-connections" });
    expect(() => parseRelayMessage(JSON.stringify({ t: "error", code: "made-up", detail: "x" }))).toThrow(/error\.code/);
  });
});

describe("connection caps", () => {
  it("admits exactly N connections from one address in a burst, refuses the rest by name, serves other addresses, and admits again after some close", async () => {
    const { relay, log } = await relayWith({ maxConnectionsPerAddress: 3, maxConnections: 50 });
    const burst = Array.from({ length: 8 }, () => new Client(relay.url, from(1)));
    const answers = await Promise.all(burst.map((c) => c.hello()));
    const admitted = burst.filter((_, i) => answers[i]!.t === "ready");
    const refused = burst.filter((_, i) => answers[i]!.t !== "ready");
    expect(admitted).toHaveLength(3);
    expect(refused).toHaveLength(5);
    for (const c of refused) expect(await c.closed).toEqual({ code: 1008, reason: "too-many-connections" });
    for (const a of answers.filter((m) => m.t !== "ready"))
      expect(a).toMatchObject({ t: "error", code: "too-many-connections", detail: expect.stringMatching(/127\.0\.0\.1 already has 3 connections/) });
    expect(log.filter((l) => l.includes("too-many-connections"))).toHaveLength(5);

    // Another machine is still served.
    const other = new Client(relay.url, from(2));
    expect((await other.hello()).t).toBe("ready");
    expect(relay.connections()).toEqual({ total: 4, byAddress: { "127.0.0.1": 3, "127.0.0.2": 1 } });

    // Two of the first address close: two more are admitted, and the next one is refused again.
    admitted[0]!.ws.close();
    admitted[1]!.ws.close();
    await until(() => relay.connections().byAddress["127.0.0.1"] === 1);
    const again = [new Client(relay.url, from(1)), new Client(relay.url, from(1))];
    expect((await Promise.all(again.map((c) => c.hello()))).map((m) => m.t)).toEqual(["ready", "ready"]);
    expect(await new Client(relay.url, from(1)).hello()).toMatchObject({ code: "too-many-connections" });
  });

  it("caps connections in all, across addresses", async () => {
    const { relay } = await relayWith({ maxConnectionsPerAddress: 2, maxConnections: 3 });
    for (const n of [1, 1, 2]) expect((await new Client(relay.url, from(n)).hello()).t).toBe("ready");
    const late = new Client(relay.url, from(3));
    expect(await late.hello()).toMatchObject({ t: "error", code: "relay-full", detail: expect.stringMatching(/3 connections/) });
    expect(await late.closed).toEqual({ code: 1008, reason: "relay-full" });
    expect(relay.connections().total).toBe(3);
  });

  it("the relay client reports each cap as a FabricError that names it", async () => {
    const { relay } = await relayWith({ maxConnectionsPerAddress: 1, maxConnections: 2 });
    expect((await new Client(relay.url, from(1)).hello()).t).toBe("ready");
    const perAddress = await refusal(RelayTransport.open(relay.url, request(), wsFrom(undefined, from(1))));
    expect(perAddress.code).toBe("relay");
    expect(perAddress.message).toMatch(/refused: too-many-connections: too many connections from this address: 127\.0\.0\.1 already has 1 connections/);
    expect((await new Client(relay.url, from(2)).hello()).t).toBe("ready");
    const full = await refusal(RelayTransport.open(relay.url, request(), wsFrom(undefined, from(3))));
    expect(full.message).toMatch(/refused: relay-full: the relay is full/);
  });
});

describe("Origin", () => {
  it("by default lets pages served from this machine and clients without an Origin in, and refuses other sites by name", async () => {
    const { relay, log } = await relayWith({});
    const answer = async (origin?: string) => {
      const c = new Client(relay.url, origin ? { origin } : {});
      const m = await c.hello();
      return m.t === "error" ? { ...m, closed: await c.closed } : m.t;
    };
    expect(await answer()).toBe("ready");
    expect(await answer("http://localhost:5173")).toBe("ready");
    expect(await answer("http://127.0.0.1:4173")).toBe("ready");
    expect(await answer("https://evil.example")).toMatchObject({
      code: "origin-not-allowed",
      detail: expect.stringMatching(/pages from "https:\/\/evil\.example" may not use this relay.*--allow-origin/),
      closed: { code: 1008, reason: "origin-not-allowed" },
    });
    expect(await answer("null")).toMatchObject({ code: "origin-not-allowed" }); // a sandboxed frame or a file:// page
    expect(await answer("http://localhost.evil.example")).toMatchObject({ code: "origin-not-allowed" });
    expect(log.filter((l) => l.includes("origin-not-allowed"))).toHaveLength(3);
    expect(relay.stats().clusters).toBe(3); // the refused ones never reached hello
  });

  it("takes an allow-list of origins, or any with *", async () => {
    const { relay } = await relayWith({}, ["https://app.example:8443"]);
    expect((await new Client(relay.url, { origin: "https://app.example:8443" }).hello()).t).toBe("ready");
    expect((await new Client(relay.url, { origin: "https://APP.example:8443" }).hello()).t).toBe("ready"); // origins compare normalised
    expect(await new Client(relay.url, { origin: "https://app.example" }).hello()).toMatchObject({ code: "origin-not-allowed" });
    expect(await new Client(relay.url, { origin: "http://localhost:5173" }).hello()).toMatchObject({ code: "origin-not-allowed" });
    const any = (await relayWith({}, ["*"])).relay;
    expect((await new Client(any.url, { origin: "https://evil.example" }).hello()).t).toBe("ready");
  });

  it("the relay client reports a refused origin as a FabricError that names it", async () => {
    const { relay } = await relayWith({});
    const err = await refusal(RelayTransport.open(relay.url, request(), wsFrom("https://evil.example")));
    expect(err.code).toBe("relay");
    expect(err.message).toMatch(/refused: origin-not-allowed: this page's site may not use the relay: pages from "https:\/\/evil\.example"/);
    const ok = await RelayTransport.open(relay.url, request(), wsFrom("http://localhost:5173"));
    ok.close();
  });
});

describe("byte rate limit", () => {
  it("closes a connection that sends more bytes than its burst and rate allow, with the reason, after passing what fit", async () => {
    // The smallest burst the relay accepts holds one largest message; refilled at 1 byte a second.
    const { relay } = await relayWith({ bytesPerSecond: 1, byteBurst: MAX_RELAY_MESSAGE_BYTES, messagesPerSecond: 1000, burst: 1000 });
    const cluster = newClusterId();
    const token = newJoinToken();
    const host = new Client(relay.url);
    await host.hello(cluster, token, true);
    const talker = new Client(relay.url);
    expect((await talker.hello(cluster, token, false)).t).toBe("ready");
    // hello + two 30 KB offers fit in 65 KiB; the third does not.
    for (let i = 0; i < 3; i++) await talker.send(host.peer, offer(30_000));
    expect(await talker.next((m) => m.t === "error")).toMatchObject({ code: "byte-rate-limited", detail: expect.stringMatching(/more than 1 bytes a second/) });
    expect(await talker.closed).toEqual({ code: 1008, reason: "byte-rate-limited" });
    expect(await host.next()).toMatchObject({ t: "deliver", from: talker.peer });
    expect(await host.next()).toMatchObject({ t: "deliver", from: talker.peer });
    expect(await host.next()).toEqual({ t: "peer-gone", peer: talker.peer }); // the third was not passed on
  });

  it("the relay client reports it as a fatal FabricError that names it", async () => {
    const { relay } = await relayWith({ bytesPerSecond: 1, byteBurst: MAX_RELAY_MESSAGE_BYTES });
    const t = await RelayTransport.open(relay.url, request(), WS);
    const fatal = new Promise<FabricError>((r) => t.onFatal(r));
    for (let i = 0; i < 3; i++) t.send("*", offer(30_000) as never);
    const err = await fatal;
    expect(err.code).toBe("relay");
    expect(err.message).toMatch(/refused: byte-rate-limited: this tab sent too many bytes/);
  });
});

describe("readers that do not drain", () => {
  it("are dropped once their backlog passes the cap, their cluster hears it at once, and they learn why when they read again", async () => {
    const roomy = { messagesPerSecond: 1e9, burst: 1e9, bytesPerSecond: 1e12, byteBurst: 1e12, pingIntervalMs: 600_000 };
    const { relay, log } = await relayWith({ ...roomy, maxBufferedBytes: MAX_RELAY_MESSAGE_BYTES, closeGraceMs: 600_000 });
    const host = new Client(relay.url);
    const cluster = newClusterId();
    const token = newJoinToken();
    await host.hello(cluster, token, true);
    // The reader is the relay client, on a socket that stops reading.
    let socket: WebSocket | undefined;
    const Paused = class extends WebSocket {
      constructor(url: string) {
        super(url);
        socket = this;
        sockets.push(this);
      }
    } as unknown as WebSocketCtor;
    const reader = await RelayTransport.open(relay.url, { cluster, self: newPeerId(), token, create: false }, Paused);
    const fatal = new Promise<FabricError>((r) => reader.onFatal(r));
    socket!.pause();
    // The host sends until the relay gives up on the reader (kernel buffers first take megabytes).
    let sent = 0;
    while (!host.got.some((m) => m.t === "peer-gone")) {
      if (sent++ > 10_000) throw new Error("the relay kept buffering for a reader that never reads");
      await host.send(reader.self, offer(30_000));
    }
    expect(await host.next((m) => m.t === "peer-gone")).toEqual({ t: "peer-gone", peer: reader.self });
    expect(log.some((l) => /slow-reader: the tab did not read what the relay sent it/.test(l))).toBe(true);
    expect(relay.stats().peers).toBe(1);
    // The host is still served.
    host.ws.send(JSON.stringify({ t: "ping" }));
    expect(await host.next()).toEqual({ t: "pong" });
    // The reader, reading again, gets what was queued before the cap, then the refusal.
    socket!.resume();
    const err = await fatal;
    expect(err.message).toMatch(/refused: slow-reader: this tab did not read what the relay sent it/);
  });
});

describe("keepalive", () => {
  it("the relay pings every connection and cuts one that did not answer the previous ping, while one that answers stays", async () => {
    const clock = manualTimers();
    const { relay, log } = await relayWith({ pingIntervalMs: 1000 }, undefined, clock.timers);
    const cluster = newClusterId();
    const token = newJoinToken();
    const host = new Client(relay.url);
    await host.hello(cluster, token, true);
    const mute = new Client(relay.url, { autoPong: false });
    expect((await mute.hello(cluster, token, false)).t).toBe("ready");
    /** Waits until the host's pong to the relay's last ping is in: its pong frame goes before a ping message of ours. */
    const hostAnswered = async (pings: number) => {
      await until(() => host.pings === pings);
      host.ws.send(JSON.stringify({ t: "ping" }));
      expect(await host.next()).toEqual({ t: "pong" });
    };

    clock.tick(); // both are pinged
    await hostAnswered(1);
    await until(() => mute.pings === 1);
    expect(mute.ws.readyState).toBe(WebSocket.OPEN);
    clock.tick(); // the mute one did not answer: cut; the host is pinged again
    expect(await host.next()).toEqual({ t: "peer-gone", peer: mute.peer });
    expect((await mute.closed).code).toBe(1006); // cut, not closed: it was not answering
    expect(log.filter((l) => /no answer to the relay's ping/.test(l))).toHaveLength(1);
    await hostAnswered(2);
    clock.tick();
    await hostAnswered(3);
    expect(host.ws.readyState).toBe(WebSocket.OPEN);
    expect(relay.stats()).toEqual({ clusters: 1, peers: 1 });
    await relay.close();
    expect(clock.running()).toBe(0);
  });

  it("the relay client pings its relay and stays up while the relay answers", async () => {
    const { relay } = await relayWith({});
    let pongs = 0;
    const Counting = class extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
        this.on("message", (d) => void (JSON.parse(d.toString()).t === "pong" && pongs++));
      }
    } as unknown as WebSocketCtor;
    const clock = manualTimers();
    const t = await RelayTransport.open(relay.url, request(), Counting, { pingIntervalMs: 1000, timers: clock.timers });
    let fatal: FabricError | undefined;
    t.onFatal((e) => (fatal = e));
    for (let i = 1; i <= 5; i++) {
      clock.tick();
      await until(() => pongs === i);
    }
    clock.tick();
    clock.tick();
    expect(fatal).toBeUndefined();
    t.close();
    expect(clock.running()).toBe(0);
  });

  /** A relay that answers hello (or not) and then says nothing more; `hellos` counts the hellos it got. */
  async function silentRelay(answerHello: boolean): Promise<{ url: string; hellos: () => number }> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((r) => wss.once("listening", r));
    let hellos = 0;
    wss.on("connection", (ws) => {
      ws.once("message", (d) => {
        const hello = JSON.parse(d.toString());
        hellos++;
        if (answerHello) ws.send(JSON.stringify({ t: "ready", peers: [], creator: hello.peer }));
      });
    });
    relays.push({ close: () => new Promise<void>((r) => (wss.clients.forEach((c) => c.terminate()), wss.close(() => r()))) } as RelayServer);
    return { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, hellos: () => hellos };
  }

  it("a relay that goes silent is a fatal FabricError for the relay client, and the member hears 'signaling lost'", async () => {
    const { url } = await silentRelay(true);
    const clock = manualTimers();
    const t = await RelayTransport.open(url, request(), WS, { pingIntervalMs: 4000, timers: clock.timers });
    let fatal: FabricError | undefined;
    t.onFatal((e) => (fatal = e));
    clock.tick(); // sends a ping
    clock.tick(); // unanswered for one check
    expect(fatal).toBeUndefined();
    clock.tick(); // unanswered for two: gone
    expect(fatal).toBeInstanceOf(FabricError);
    expect(fatal!.code).toBe("relay");
    expect(fatal!.message).toMatch(/the relay ws:\/\/127\.0\.0\.1:\d+\/ went silent: no answer to a ping for at least 4000 ms/);
    expect(clock.running()).toBe(0);

    const memberClock = manualTimers();
    const member = await FabricMember.create({
      transport: relayTransport(url, WS, { timers: memberClock.timers }),
      connector: memoryConnectors(),
      protocol: 3,
      build: "test",
      pingIntervalMs: 0,
      totalVcpus: 1,
      maxTabs: 2,
      hostVcpus: 1,
    });
    const events: FabricEvent[] = [];
    member.on((e) => void events.push(e));
    for (let i = 0; i < 3; i++) memberClock.tick();
    expect(events.find((e) => e.type === "signaling-lost")).toMatchObject({ error: { code: "relay", message: expect.stringMatching(/went silent/) } });
    member.close("test over");
  });

  it("a relay that never answers hello fails the open with a FabricError", async () => {
    const { url, hellos } = await silentRelay(false);
    const clock = manualTimers();
    const opening = refusal(RelayTransport.open(url, request(), WS, { pingIntervalMs: 4000, timers: clock.timers }));
    await until(() => hellos() === 1);
    clock.tick();
    clock.tick();
    const err = await opening;
    expect(err.code).toBe("relay");
    expect(err.message).toMatch(/went silent: no answer to hello for at least 4000 ms/);
    expect(clock.running()).toBe(0);
  });
});
