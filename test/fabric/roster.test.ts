import { describe, expect, it } from "vitest";
import { newJoinToken, newPeerId } from "../../src/fabric/ids.ts";
import { FABRIC_VERSION, MAX_TAB_ID } from "../../src/fabric/messages.ts";
import { admit, applyRoster, freeVcpus, hostRoster, type JoinRequest, removeMember, slicesCoverAll } from "../../src/fabric/roster.ts";

const token = newJoinToken();
const tokens = { join: token };
const shape = { totalVcpus: 4, maxTabs: 3, protocol: 7 };
const req = (over: Partial<JoinRequest> = {}): JoinRequest => ({ t: "join", peer: newPeerId(), token, role: "compute", vcpus: 1, fabric: FABRIC_VERSION, protocol: 7, build: "test", ...over });

describe("roster", () => {
  it("tab 0 holds the boot CPU and admits joiners with the next free vCPUs", () => {
    let s = hostRoster(shape, newPeerId(), 1, "host");
    expect(s.members).toEqual([expect.objectContaining({ tab: 0, role: "host", vcpus: [0] })]);
    const a = admit(s, req({ vcpus: 2 }), tokens);
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    expect(a.member).toMatchObject({ tab: 1, role: "compute", vcpus: [1, 2] });
    expect(a.state.epoch).toBe(s.epoch + 1);
    s = a.state;
    expect(freeVcpus(s)).toEqual([3]);
    expect(slicesCoverAll(s)).toBe(false);
    const w = admit(s, req({ role: "watcher", vcpus: 3 }), tokens);
    expect(w.ok && w.member).toMatchObject({ tab: 2, role: "watcher", vcpus: [] });
  });

  it("a watch link's token admits a watcher and refuses a compute tab, naming why; the join token admits both", () => {
    const watch = newJoinToken();
    const both = { join: token, watch };
    const s = hostRoster(shape, newPeerId(), 1, "host");
    const c = admit(s, req({ token: watch, vcpus: 1 }), both);
    expect(c).toMatchObject({ ok: false, code: "wrong-token" });
    expect(!c.ok && c.detail).toBe("this is a watch link: it lets a tab watch the cluster, not host vCPUs");
    expect(admit(s, req({ token: watch, role: "watcher", vcpus: 0 }), both)).toMatchObject({ ok: true, member: { role: "watcher", vcpus: [] } });
    expect(admit(s, req({ role: "watcher", vcpus: 0 }), both)).toMatchObject({ ok: true, member: { role: "watcher" } });
    expect(admit(s, req({ vcpus: 1 }), both)).toMatchObject({ ok: true, member: { role: "compute", vcpus: [1] } });
    expect(admit(s, req({ token: newJoinToken(), role: "watcher", vcpus: 0 }), both)).toMatchObject({ ok: false, code: "wrong-token" });
  });

  it("answers a repeated join from the same peer with the same member, unchanged state", () => {
    const s = hostRoster(shape, newPeerId(), 1, "host");
    const r = req();
    const first = admit(s, r, tokens);
    const again = first.ok ? admit(first.state, r, tokens) : first;
    expect(again.ok && first.ok && again.member).toEqual(first.ok && first.member);
    expect(again.state).toBe(first.state);
  });

  it("rejects a wrong token, another version, a full cluster, too many vCPUs", () => {
    const s = hostRoster(shape, newPeerId(), 2, "host");
    expect(admit(s, req({ token: newJoinToken() }), tokens)).toMatchObject({ ok: false, code: "wrong-token" });
    const v = admit(s, req({ protocol: 8, build: "other-build" }), tokens);
    expect(v).toMatchObject({ ok: false, code: "version-mismatch" });
    expect(!v.ok && v.detail).toMatch(/VM protocol v7.*VM protocol v8 \(other-build\)/);
    expect(admit(s, req({ fabric: FABRIC_VERSION + 1 }), tokens)).toMatchObject({ ok: false, code: "version-mismatch" });
    const big = admit(s, req({ vcpus: 3 }), tokens);
    expect(big).toMatchObject({ ok: false, code: "cluster-full" });
    expect(!big.ok && big.detail).toMatch(/asks for 3 vCPU\(s\) but only 2 of the cluster's 4 are free; join with 2 or fewer/);
    expect(admit(s, req({ vcpus: 0 }), tokens)).toMatchObject({ ok: false, code: "bad-message" });
    let t = s;
    for (let i = 0; i < 2; i++) {
      const r = admit(t, req({ role: "watcher" }), tokens);
      expect(r.ok).toBe(true);
      t = r.state;
    }
    expect(admit(t, req({ role: "watcher" }), tokens)).toMatchObject({ ok: false, code: "cluster-full" });
    expect(() => hostRoster(shape, newPeerId(), 0, "h")).toThrow(/boot CPU/);
    expect(() => hostRoster({ ...shape, totalVcpus: 0 }, newPeerId(), 1, "h")).toThrow(/totalVcpus 0/);
    expect(() => hostRoster({ ...shape, protocol: Number.NaN }, newPeerId(), 1, "h")).toThrow(/protocol version NaN/);
  });

  it("hands out the next tab id (round-robin) and frees the vCPUs of a member that left", () => {
    let s = hostRoster(shape, newPeerId(), 1, "host");
    const a = admit(s, req({ vcpus: 3 }), tokens);
    if (!a.ok) throw new Error("admit failed");
    s = a.state;
    expect(slicesCoverAll(s)).toBe(true);
    const r = removeMember(s, 1, true);
    expect(r.removed?.tab).toBe(1);
    expect(r.state.epoch).toBe(s.epoch + 1);
    expect(freeVcpus(r.state)).toEqual([1, 2, 3]);
    const b = admit(r.state, req(), tokens);
    expect(b.ok && b.member.tab).toBe(2);
    expect(removeMember(s, 9, true).state).toBe(s);
    expect(removeMember(s, 1, false).state.epoch).toBe(s.epoch); // others do not publish
  });

  it("adopts only newer rosters and reports who came and went", () => {
    const host = hostRoster(shape, newPeerId(), 1, "host");
    const a = admit(host, req(), tokens);
    if (!a.ok) throw new Error("admit failed");
    const b = admit(a.state, req(), tokens);
    if (!b.ok) throw new Error("admit failed");
    const local = { ...a.state };
    const step = applyRoster(local, b.state);
    expect(step.added.map((m) => m.tab)).toEqual([2]);
    expect(step.removed).toEqual([]);
    const gone = removeMember(b.state, 1, true).state;
    const step2 = applyRoster(step.state, gone);
    expect(step2.removed.map((m) => m.tab)).toEqual([1]);
    // A stale roster (older epoch) arriving late changes nothing.
    const stale = applyRoster(step2.state, a.state);
    expect(stale.state).toBe(step2.state);
    expect(stale.added).toEqual([]);
  });

  it("does not run out of tab ids over 1000 join/leave cycles, and reuses an id only after every other free one", () => {
    const big = { totalVcpus: 8, maxTabs: 6, protocol: 7 };
    let s = hostRoster(big, newPeerId(), 1, "host");
    // Two long-lived members stay while others come and go.
    for (let i = 0; i < 2; i++) {
      const r = admit(s, req({ vcpus: 2 }), tokens);
      if (!r.ok) throw new Error(r.detail);
      s = r.state;
    }
    const handedOut: number[] = [];
    for (let cycle = 0; cycle < 1000; cycle++) {
      const r = admit(s, req({ vcpus: 1 + (cycle % 3) }), tokens);
      if (!r.ok) throw new Error(`cycle ${cycle}: ${r.code}: ${r.detail}`);
      expect(r.member.tab).toBeGreaterThanOrEqual(1);
      expect(r.member.tab).toBeLessThanOrEqual(MAX_TAB_ID);
      handedOut.push(r.member.tab);
      s = removeMember(r.state, r.member.tab, true).state;
    }
    expect(s.members.map((m) => m.tab)).toEqual([0, 1, 2]);
    expect(freeVcpus(s)).toEqual([5, 6, 7]);
    // Round-robin over the free ids 3..254: a freed id comes back only after all the others.
    const cycleLength = MAX_TAB_ID - 2;
    expect(handedOut.slice(0, cycleLength)).toEqual(Array.from({ length: cycleLength }, (_, i) => i + 3));
    expect(handedOut[cycleLength]).toBe(3);
    expect(new Set(handedOut).size).toBe(cycleLength);
  });

  it("sees a reused tab id given to another peer as one member gone and one new", () => {
    let host = hostRoster({ totalVcpus: 4, maxTabs: 3, protocol: 7 }, newPeerId(), 1, "host");
    const first = admit(host, req(), tokens);
    if (!first.ok) throw new Error("admit failed");
    host = first.state;
    const local = { ...host }; // a member's copy
    // Tab 0 cycles through every other id, so the next joiner gets tab 1 again, as another peer.
    for (let i = 0; i < MAX_TAB_ID - 1; i++) {
      const r = admit(host, req(), tokens);
      if (!r.ok) throw new Error(r.detail);
      host = removeMember(r.state, r.member.tab, true).state;
    }
    host = removeMember(host, 1, true).state;
    const again = admit(host, req({ vcpus: 2 }), tokens);
    if (!again.ok) throw new Error(again.detail);
    expect(again.member.tab).toBe(1);
    expect(again.member.peer).not.toBe(first.member.peer);
    const step = applyRoster(local, again.state);
    expect(step.removed).toEqual([first.member]);
    expect(step.added).toEqual([again.member]);
    expect(step.state.members.find((m) => m.tab === 1)?.peer).toBe(again.member.peer);
  });
});
