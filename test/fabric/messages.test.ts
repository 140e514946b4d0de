import { describe, expect, it } from "vitest";
import { FabricError } from "../../src/fabric/errors.ts";
import { newClusterId, newJoinToken, newPeerId } from "../../src/fabric/ids.ts";
import { MAX_REASON_CHARS, MAX_SIGNAL_CHARS, parseBody, parseEnvelope, parseLinkControl } from "../../src/fabric/messages.ts";

const peer = newPeerId();
const member = { tab: 0, peer, role: "host", vcpus: [0, 1], build: "b" };

function rejects(v: unknown, why: RegExp): void {
  let err: unknown;
  try {
    parseBody(v);
  } catch (e) {
    err = e;
  }
  expect(err, JSON.stringify(v)?.slice(0, 80)).toBeInstanceOf(FabricError);
  expect((err as FabricError).code).toBe("bad-message");
  expect((err as FabricError).message).toMatch(why);
}

describe("signaling message validation", () => {
  it("accepts each kind and keeps only known fields", () => {
    const join = { t: "join", token: newJoinToken(), role: "compute", vcpus: 2, fabric: 1, protocol: 1, build: "x", extra: "dropped" };
    const parsed = parseBody(join);
    expect(parsed).toEqual({ t: "join", token: join.token, role: "compute", vcpus: 2, fabric: 1, protocol: 1, build: "x" });
    expect(parseBody({ t: "roster", epoch: 3, members: [member] })).toEqual({ t: "roster", epoch: 3, members: [member] });
    expect(parseBody({ t: "signal", tab: 2, data: { type: "offer", sdp: "v=0" } }).t).toBe("signal");
    expect(parseBody({ t: "signal", tab: 2, data: { type: "candidate", candidate: { candidate: "candidate:1", sdpMLineIndex: 0, sdpMid: "0" } } })).toEqual({
      t: "signal",
      tab: 2,
      data: { type: "candidate", candidate: { candidate: "candidate:1", sdpMLineIndex: 0, sdpMid: "0" } },
    });
    expect(parseBody({ t: "reject", code: "cluster-full", detail: "no room" }).t).toBe("reject");
    expect(parseBody({ t: "leave", tab: 3, reason: "closed" }).t).toBe("leave");
  });

  it("names what is wrong", () => {
    rejects(null, /body is not an object/);
    rejects([], /body is not an object/);
    rejects({ t: "hack" }, /body\.t is "hack"/);
    rejects({ t: "join", token: "short", role: "compute", vcpus: 1, fabric: 1, protocol: 1, build: "" }, /join\.token/);
    rejects({ t: "join", token: newJoinToken(), role: "host", vcpus: 1, fabric: 1, protocol: 1, build: "" }, /join\.role/);
    rejects({ t: "join", token: newJoinToken(), role: "compute", vcpus: 1.5, fabric: 1, protocol: 1, build: "" }, /join\.vcpus is 1\.5/);
    rejects({ t: "join", token: newJoinToken(), role: "compute", vcpus: 1, fabric: 1, protocol: 1, build: "x".repeat(300) }, /join\.build has 300 characters/);
    rejects({ t: "roster", epoch: 1, members: [member, member] }, /tab id twice/);
    rejects({ t: "roster", epoch: 1, members: [member, { ...member, tab: 1 }] }, /one vCPU to two tabs/);
    rejects({ t: "roster", epoch: 1, members: [{ ...member, peer: "x" }] }, /peer is not a peer id/);
    rejects({ t: "signal", tab: 1, data: { type: "transceiverRequest" } }, /data\.type/);
    rejects({ t: "signal", tab: 1, data: { type: "offer", sdp: "x".repeat(40000) } }, /data\.sdp has 40000/);
    rejects({ t: "signal", tab: 300, data: { type: "offer", sdp: "" } }, /signal\.tab is 300/);
    rejects({ t: "reject", code: "nope", detail: "" }, /reject\.code/);
  });

  it("validates a roster's departures and the link's control messages", () => {
    const gone = [{ tab: 4, peer: newPeerId(), reason: "evicted by tab 0: its links did not all come up" }];
    expect(parseBody({ t: "roster", epoch: 3, members: [member], gone })).toEqual({ t: "roster", epoch: 3, members: [member], gone });
    rejects({ t: "roster", epoch: 3, members: [member], gone: [{ ...gone[0], tab: -1 }] }, /roster\.gone\[0\]\.tab is -1/);
    rejects({ t: "roster", epoch: 3, members: [member], gone: [{ ...gone[0], reason: "r".repeat(MAX_REASON_CHARS + 1) }] }, /gone\[0\]\.reason has 513 characters/);
    rejects({ t: "roster", epoch: 3, members: [member], gone: {} }, /roster\.gone is not a list/);
    rejects({ t: "ready" }, /body\.t is "ready"/); // link-only: never through signaling
    expect(parseLinkControl({ t: "ready", extra: 1 })).toEqual({ t: "ready" });
    expect(parseLinkControl({ t: "roster", epoch: 3, members: [member], gone })).toEqual({ t: "roster", epoch: 3, members: [member], gone });
    const lost = { t: "link-lost", tab: 2, peer: newPeerId(), reason: "tab 2 has been silent for 5001 ms" };
    expect(parseLinkControl({ ...lost, extra: true })).toEqual(lost);
    expect(() => parseLinkControl({ ...lost, peer: "p" })).toThrow(/link-lost\.peer is not a peer id/);
    expect(() => parseLinkControl({ ...lost, tab: 255 })).toThrow(/link-lost\.tab is 255/);
    expect(() => parseLinkControl({ t: "join" })).toThrow(/link control message: body\.t is "join", expected one of roster, ready, link-lost/);
    expect(() => parseLinkControl({ t: "roster", epoch: 1, members: [member, member] })).toThrow(/tab id twice/);
  });

  it("checks envelopes: addresses, cluster id and total size", () => {
    const body = { t: "leave", tab: 1, reason: "x" };
    const cluster = newClusterId();
    expect(parseEnvelope({ cluster, from: peer, to: "*", body }).to).toBe("*");
    expect(() => parseEnvelope({ cluster, from: peer, to: "everyone", body })).toThrow(/to is neither/);
    expect(() => parseEnvelope({ cluster: "c", from: peer, to: "*", body })).toThrow(/cluster is not/);
    expect(() => parseEnvelope({ cluster, from: peer, to: "*", body: { ...body, reason: "y".repeat(200) }, pad: "z".repeat(MAX_SIGNAL_CHARS) })).toThrow(
      /characters, at most 65536/,
    );
  });
});
