// The node control requests of an elastic VM and the answers the membership change reads: both
// cross a thread or the network (tab 0 → the tab hosting the node), so each is checked where it
// arrives. A good one comes out with only its own fields; a bad one is a TypeError naming what.

import { expect, it } from "vitest";
import { checkControlReply, checkControlRequest, type NodeControlRequest } from "../../../src/protocol/tab/node-control.ts";

it("takes every request kind, keeping only its own fields", () => {
  const good: NodeControlRequest[] = [
    { op: "pause" },
    { op: "resume" },
    { op: "dsm-report" },
    { op: "dsm-leave" },
    { op: "drain" },
    { op: "hotplug-state" },
    { op: "set-host", vcpu: 0, node: 0 },
    { op: "set-host", vcpu: 255, node: 255 },
    { op: "set-host", vcpu: 2, node: null },
    { op: "dsm-add-member", node: 3 },
    { op: "dsm-remove-member", node: 254 },
    { op: "plug", cpu: 1 },
    { op: "unplug", cpu: 7 },
  ];
  for (const r of good) expect(checkControlRequest(JSON.parse(JSON.stringify(r)))).toEqual(r);
  // Extra fields a sender adds do not reach the node.
  expect(checkControlRequest({ op: "pause", cpu: 3, __proto__x: 1 })).toEqual({ op: "pause" });
  expect(checkControlRequest({ op: "plug", cpu: 2, node: 9 })).toEqual({ op: "plug", cpu: 2 });
  expect(checkControlRequest({ op: "set-host", vcpu: 1, node: 4, cpu: 1 })).toEqual({ op: "set-host", vcpu: 1, node: 4 });
});

it("refuses a request that is not one, or whose values are out of range, naming it", () => {
  const bad: [unknown, RegExp][] = [
    [null, /unknown control request undefined/],
    [undefined, /unknown control request undefined/],
    ["pause", /unknown control request undefined/],
    [["pause"], /unknown control request undefined/],
    [{}, /unknown control request undefined/],
    [{ op: "reboot" }, /unknown control request "reboot"/],
    [{ op: "PAUSE" }, /unknown control request "PAUSE"/],
    [{ op: 1 }, /unknown control request 1/],
    [{ op: "x".repeat(100) }, /^unknown control request "x{39}$/],
    [{ op: "set-host", vcpu: 1 }, /set-host needs a vCPU and a node id or null/],
    [{ op: "set-host", node: 1 }, /set-host needs a vCPU and a node id or null/],
    [{ op: "set-host", vcpu: 256, node: 1 }, /set-host needs a vCPU/],
    [{ op: "set-host", vcpu: -1, node: 1 }, /set-host needs a vCPU/],
    [{ op: "set-host", vcpu: 1, node: "1" }, /set-host needs a vCPU/],
    [{ op: "set-host", vcpu: 1.5, node: 1 }, /set-host needs a vCPU/],
    [{ op: "dsm-add-member" }, /dsm-add-member needs a node id, got undefined/],
    [{ op: "dsm-add-member", node: null }, /dsm-add-member needs a node id, got null/],
    [{ op: "dsm-remove-member", node: 256 }, /dsm-remove-member needs a node id, got 256/],
    [{ op: "plug", cpu: "1" }, /plug needs a CPU number, got "1"/],
    [{ op: "unplug", cpu: 0.5 }, /unplug needs a CPU number, got 0.5/],
    [{ op: "unplug", cpu: Number.NaN }, /unplug needs a CPU number, got null/],
  ];
  for (const [x, why] of bad) {
    expect(() => checkControlRequest(x), JSON.stringify(x) ?? String(x)).toThrow(TypeError);
    expect(() => checkControlRequest(x), JSON.stringify(x) ?? String(x)).toThrow(why);
  }
});

const report = { node: 2, quiescent: true, sent: [0, 4, 0], received: [3, 0, 0] };

it("checks a DSM report and hands on a copy with only its fields", () => {
  const value = { ...report, extra: "dropped" };
  const out = checkControlReply({ op: "dsm-report" }, value) as typeof report;
  expect(out).toEqual(report);
  // A copy: the sender's arrays are not the ones the coordinator keeps.
  expect(out.sent).not.toBe(value.sent);
  expect(out.received).not.toBe(value.received);
  expect(checkControlReply({ op: "dsm-report" }, { node: 0, quiescent: false, sent: [], received: [] })).toEqual({ node: 0, quiescent: false, sent: [], received: [] });
  expect(checkControlReply({ op: "dsm-report" }, { ...report, sent: new Array(256).fill(Number.MAX_SAFE_INTEGER) })).toMatchObject({ node: 2 });
});

it("refuses a DSM report of the wrong shape", () => {
  const bad: [unknown, RegExp][] = [
    [null, /a DSM report needs a node id and whether it is quiescent/],
    [[report], /a DSM report needs a node id/],
    ["report", /a DSM report needs a node id/],
    [{ ...report, node: undefined }, /a DSM report needs a node id/],
    [{ ...report, node: 256 }, /a DSM report needs a node id/],
    [{ ...report, node: -1 }, /a DSM report needs a node id/],
    [{ ...report, quiescent: "yes" }, /whether it is quiescent/],
    [{ ...report, quiescent: undefined }, /whether it is quiescent/],
    [{ ...report, sent: undefined }, /a DSM report's sent must list a message count per node slot/],
    [{ ...report, sent: { 0: 1 } }, /a DSM report's sent must list/],
    [{ ...report, sent: [0, -1, 0] }, /a DSM report's sent must list/],
    [{ ...report, sent: [0, 1.5, 0] }, /a DSM report's sent must list/],
    [{ ...report, sent: [0, "4", 0] }, /a DSM report's sent must list/],
    [{ ...report, sent: [0, null, 0] }, /a DSM report's sent must list/],
    [{ ...report, sent: new Array(257).fill(0) }, /a DSM report's sent must list/],
    [{ ...report, received: [Number.MAX_SAFE_INTEGER + 1] }, /a DSM report's received must list/],
    [{ ...report, received: [0, Number.POSITIVE_INFINITY] }, /a DSM report's received must list/],
    [{ ...report, received: undefined }, /a DSM report's received must list/],
  ];
  for (const [v, why] of bad) {
    expect(() => checkControlReply({ op: "dsm-report" }, v), JSON.stringify(v)).toThrow(TypeError);
    expect(() => checkControlReply({ op: "dsm-report" }, v), JSON.stringify(v)).toThrow(why);
  }
});

it("checks the count of pages a drained or leaving node still owns", () => {
  for (const op of ["drain", "dsm-leave"] as const) {
    expect(checkControlReply({ op }, { owned: 0 })).toEqual({ owned: 0 });
    expect(checkControlReply({ op }, { owned: 12, pages: [1, 2] })).toEqual({ owned: 12, pages: [1, 2] });
    for (const v of [null, undefined, [], 3, {}, { owned: -1 }, { owned: 1.5 }, { owned: "2" }, { owned: null }, { owned: Number.MAX_SAFE_INTEGER + 1 }]) {
      expect(() => checkControlReply({ op }, v), `${op} ${JSON.stringify(v)}`).toThrow(TypeError);
      expect(() => checkControlReply({ op }, v), `${op} ${JSON.stringify(v)}`).toThrow(`the answer to ${op} needs the count of pages still owned`);
    }
  }
});

it("passes the answers the membership change does not read unchanged", () => {
  const value = { anything: [1, 2] };
  for (const request of [{ op: "pause" }, { op: "resume" }, { op: "plug", cpu: 1 }, { op: "unplug", cpu: 1 }, { op: "hotplug-state" }, { op: "set-host", vcpu: 1, node: null }, { op: "dsm-add-member", node: 1 }] as NodeControlRequest[]) {
    expect(checkControlReply(request, value)).toBe(value);
    expect(checkControlReply(request, null)).toBeNull();
  }
});
