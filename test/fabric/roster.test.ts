import { describe, expect, it } from "vitest";
import { newJoinToken, newPeerId } from "../../src/fabric/ids.ts";
import { FABRIC_VERSION } from "../../src/fabric/messages.ts";
import { admit, applyRoster, freeVcpus, hostRoster, type JoinRequest, removeMember, slicesCoverAll } from "../../src/fabric/roster.ts";

const token = newJoinToken();
const shape = { totalVcpus: 4, maxTabs: 3, protocol: 7 };
const req = (over: Partial<JoinRequest> = {}): JoinRequest => ({ t: "join", peer: newPeerId(), token, role: "compute", vcpus: 1, fabric: FABRIC_VERSION, protocol: 7, build: "test", ...over });

describe("roster", () => {
  it("tab 0 holds the boot CPU and admits joiners with the next free vCPUs", () => {
    let s = hostRoster(shape, newPeerId(), 1, "host");
    expect(s.members).toEqual([expect.objectContaining({ tab: 0, role: "host", vcpus: [0] })]);
    const a = admit(s, req({ vcpus: 2 }), token);
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    expect(a.member).toMatchObject({ tab: 1, role: "compute", vcpus: [1, 2] });
    expect(a.state.epoch).toBe(s.epoch + 1);
    s = a.state;
    expect(freeVcpus(s)).toEqual([3]);
    expect(slicesCoverAll(s)).toBe(false);
    const w = admit(s, req({ role: "watcher", vcpus: 3 }), token);
    expect(w.ok && w.member).toMatchObject({ tab: 2, role: "watcher", vcpus: [] });
  });

  it("answers a repeated join from the same peer with the same member, unchanged state", () => {
    const s = hostRoster(shape, newPeerId(), 1, "host");
    const r = req();
    const first = admit(s, r, token);
    const again = first.ok ? admit(first.state, r, token) : first;
    expect(again.ok && first.ok && again.member).toEqual(first.ok && first.member);
    expect(again.state).toBe(first.state);
  });

  it("rejects a wrong token, another version, a full cluster, too many vCPUs", () => {
    const s = hostRoster(shape, newPeerId(), 2, "host");
    expect(admit(s, req({ token: newJoinToken() }), token)).toMatchObject({ ok: false, code: "wrong-token" });
    const v = admit(s, req({ protocol: 8, build: "other-build" }), token);
    expect(v).toMatchObject({ ok: false, code: "version-mismatch" });
    expect(!v.ok && v.detail).toMatch(/VM protocol v7.*VM protocol v8 \(other-build\)/);
    expect(admit(s, req({ fabric: FABRIC_VERSION + 1 }), token)).toMatchObject({ ok: false, code: "version-mismatch" });
    const big = admit(s, req({ vcpus: 3 }), token);
    expect(big).toMatchObject({ ok: false, code: "cluster-full" });
    expect(!big.ok && big.detail).toMatch(/asks for 3 vCPU\(s\) but only 2 of the cluster's 4 are free; join with 2 or fewer/);
    expect(admit(s, req({ vcpus: 0 }), token)).toMatchObject({ ok: false, code: "bad-message" });
    let t = s;
    for (let i = 0; i < 2; i++) {
      const r = admit(t, req({ role: "watcher" }), token);
      expect(r.ok).toBe(true);
      t = r.state;
    }
    expect(admit(t, req({ role: "watcher" }), token)).toMatchObject({ ok: false, code: "cluster-full" });
    expect(() => hostRoster(shape, newPeerId(), 0, "h")).toThrow(/boot CPU/);
    expect(() => hostRoster({ ...shape, totalVcpus: 0 }, newPeerId(), 1, "h")).toThrow(/totalVcpus 0/);
    expect(() => hostRoster({ ...shape, protocol: Number.NaN }, newPeerId(), 1, "h")).toThrow(/protocol version NaN/);
  });

  it("never reuses a tab id and frees the vCPUs of a member that left", () => {
    let s = hostRoster(shape, newPeerId(), 1, "host");
    const a = admit(s, req({ vcpus: 3 }), token);
    if (!a.ok) throw new Error("admit failed");
    s = a.state;
    expect(slicesCoverAll(s)).toBe(true);
    const r = removeMember(s, 1, true);
    expect(r.removed?.tab).toBe(1);
    expect(r.state.epoch).toBe(s.epoch + 1);
    expect(freeVcpus(r.state)).toEqual([1, 2, 3]);
    const b = admit(r.state, req(), token);
    expect(b.ok && b.member.tab).toBe(2);
    expect(removeMember(s, 9, true).state).toBe(s);
    expect(removeMember(s, 1, false).state.epoch).toBe(s.epoch); // others do not publish
  });

  it("adopts only newer rosters and reports who came and went", () => {
    const host = hostRoster(shape, newPeerId(), 1, "host");
    const a = admit(host, req(), token);
    if (!a.ok) throw new Error("admit failed");
    const b = admit(a.state, req(), token);
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
});
