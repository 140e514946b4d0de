// The relay as a tab sees it: real WebSocket connections to a real relay on a loopback port.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { newClusterId, newJoinToken, newPeerId } from "../../src/fabric/ids.ts";
import { FABRIC_VERSION } from "../../src/fabric/messages.ts";
import type { RelayMessage } from "../../src/fabric/relay/messages.ts";
import { RawRelayClient } from "./relay-test-client.ts";
import { type RelayServer, startRelay } from "../../src/fabric/relay/server.ts";

let relay: RelayServer;
beforeAll(async () => {
  // A long hello timeout, so that no client of these tests is cut by it on a busy machine; the
  // silent-connection case has a relay of its own.
  relay = await startRelay({ limits: { burst: 20, messagesPerSecond: 1, helloTimeoutMs: 600_000 } });
});
afterAll(() => relay?.close());

/** A raw client that records everything the relay says and when it closes. */
class Client extends RawRelayClient {
  closed: Promise<number>;
  constructor(url = relay.url) {
    super(url);
    this.closed = new Promise((r) => this.ws.on("close", (code) => r(code)));
  }
  opened(): Promise<void> {
    return new Promise((r) => (this.ws.readyState === WebSocket.OPEN ? r() : this.ws.once("open", () => r())));
  }
  async hello(cluster: string, token: string, create: boolean, fabric = FABRIC_VERSION): Promise<RelayMessage> {
    await this.opened();
    this.ws.send(JSON.stringify({ t: "hello", cluster, token, peer: this.peer, create, fabric }));
    return this.next();
  }
  send(to: string, body: unknown): void {
    this.ws.send(JSON.stringify({ t: "send", to, body }));
  }
}

const leave = (tab: number, reason = "x") => ({ t: "leave", tab, reason });

describe("relay", () => {
  it("passes messages only between peers of one cluster that presented its token", async () => {
    const c1 = newClusterId();
    const t1 = newJoinToken();
    const host = new Client();
    expect(await host.hello(c1, t1, true)).toEqual({ t: "ready", peers: [], creator: host.peer });
    const joiner = new Client();
    expect(await joiner.hello(c1, t1, false)).toEqual({ t: "ready", peers: [host.peer], creator: host.peer });
    const other = new Client();
    expect((await other.hello(newClusterId(), newJoinToken(), true)).t).toBe("ready");

    joiner.send("*", leave(1, "to all"));
    joiner.send(host.peer, leave(1, "direct"));
    joiner.send(other.peer, leave(1, "to another cluster's peer"));
    expect(await host.next()).toEqual({ t: "deliver", from: joiner.peer, body: leave(1, "to all") });
    expect(await host.next()).toEqual({ t: "deliver", from: joiner.peer, body: leave(1, "direct") });
    other.send("*", leave(0, "other cluster"));
    host.send(joiner.peer, leave(0, "marker"));
    // The marker arrives after anything sent before it; nothing from the other cluster came first.
    expect(await joiner.next()).toEqual({ t: "deliver", from: host.peer, body: leave(0, "marker") });
    expect(other.got).toEqual([]);
    expect(host.got).toEqual([]);

    // When a peer goes, the others of its cluster hear it; when tab 0 goes, the cluster closes.
    joiner.ws.close();
    expect(await host.next()).toEqual({ t: "peer-gone", peer: joiner.peer });
    const j2 = new Client();
    await j2.hello(c1, t1, false);
    host.ws.close();
    expect(await j2.next((m) => m.t === "error")).toMatchObject({ code: "cluster-closed" });
    await j2.closed;
    const late = new Client();
    expect(await late.hello(c1, t1, false)).toMatchObject({ t: "error", code: "unknown-cluster" });
    other.ws.close();
  });

  it("refuses wrong tokens, unknown clusters, taken ids, other versions", async () => {
    const c = newClusterId();
    const t = newJoinToken();
    const host = new Client();
    await host.hello(c, t, true);
    const wrong = new Client();
    expect(await wrong.hello(c, newJoinToken(), false)).toMatchObject({ t: "error", code: "wrong-token" });
    expect(await wrong.closed).toBe(1008);
    expect(await new Client().hello(newClusterId(), t, false)).toMatchObject({ code: "unknown-cluster" });
    expect(await new Client().hello(c, t, true)).toMatchObject({ code: "cluster-exists" });
    expect(await new Client().hello(c, t, false, FABRIC_VERSION + 1)).toMatchObject({ code: "version-mismatch" });
    expect(host.got).toEqual([]); // none of the refused ones reached the cluster
    host.ws.close();
  });

  it("validates every message: JSON, shape, first-message hello, no binary, size, rate", async () => {
    const say = async (raw: string | Buffer, afterHello = false) => {
      const c = new Client();
      await c.opened();
      if (afterHello) await c.hello(newClusterId(), newJoinToken(), true);
      c.ws.send(raw);
      const m = await c.next((x) => x.t === "error");
      await c.closed;
      return m;
    };
    expect(await say("not json")).toMatchObject({ code: "bad-message", detail: expect.stringMatching(/not JSON/) });
    expect(await say(JSON.stringify({ t: "send", to: "*", body: leave(1) }))).toMatchObject({ detail: expect.stringMatching(/first message must be hello/) });
    expect(await say(JSON.stringify({ t: "send", to: "*", body: { t: "welcome" } }), true)).toMatchObject({ code: "bad-message", detail: expect.stringMatching(/welcome\.shape/) });
    expect(await say(Buffer.from([1, 2, 3]), true)).toMatchObject({ code: "binary", detail: expect.stringMatching(/never VM traffic/) });
    expect(await say(JSON.stringify({ t: "hello", cluster: "x" }))).toMatchObject({ detail: expect.stringMatching(/hello\.cluster/) });

    // Larger than the WebSocket limit: the ws library closes with 1009 (message too big).
    const big = new Client();
    await big.opened();
    big.ws.send("x".repeat(70 * 1024));
    expect(await big.closed).toBe(1009);

    // Burst of 20 allowed, refilled at 1/s: the 30th message in a row is refused.
    const fast = new Client();
    await fast.hello(newClusterId(), newJoinToken(), true);
    for (let i = 0; i < 30; i++) fast.send("*", leave(0));
    expect(await fast.next((m) => m.t === "error")).toMatchObject({ code: "rate-limited" });
    expect(await fast.closed).toBe(1008);

    // Once refused, a connection is done: frames it sent right behind the refused one are not
    // looked at, so a valid message after a bad one never reaches the cluster.
    const c = newClusterId();
    const t = newJoinToken();
    const target = new Client();
    await target.hello(c, t, true);
    const sly = new Client();
    await sly.hello(c, t, false);
    sly.ws.send("not json");
    sly.send(target.peer, leave(1, "behind a refused frame"));
    expect(await sly.next((m) => m.t === "error")).toMatchObject({ code: "bad-message" });
    expect(await target.next()).toEqual({ t: "peer-gone", peer: sly.peer }); // and nothing before it
    target.ws.close();
    await target.closed;

    // Every client of this test is gone (the relay hears of a close just after the client does).
    while (relay.stats().clusters > 0) await new Promise((r) => setTimeout(r, 5));
    expect(relay.stats()).toEqual({ clusters: 0, peers: 0 });

    // Silent connections are dropped.
    const impatient = await startRelay({ limits: { helloTimeoutMs: 50 } });
    const silent = new Client(impatient.url);
    expect(await silent.next()).toMatchObject({ code: "hello-timeout" });
    expect(await silent.closed).toBe(1008);
    await impatient.close();
  });
});
