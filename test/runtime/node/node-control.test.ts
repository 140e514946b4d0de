// The control requests a page or the Node cluster sends to an elastic VM's node workers: every one
// is checked where it crosses into the worker, and a bad one is refused with a message naming it.
import { describe, expect, it } from "vitest";
import { checkControlRequest } from "../../../src/runtime/node/node-control.ts";

describe("node control requests", () => {
  it("accepts each request with its fields", () => {
    for (const r of [
      { op: "pause" },
      { op: "resume" },
      { op: "dsm-report" },
      { op: "dsm-leave" },
      { op: "drain" },
      { op: "hotplug-state" },
      { op: "set-host", vcpu: 2, node: 3 },
      { op: "set-host", vcpu: 2, node: null },
      { op: "dsm-add-member", node: 1 },
      { op: "dsm-remove-member", node: 1 },
      { op: "plug", cpu: 3 },
      { op: "unplug", cpu: 3 },
    ])
      expect(checkControlRequest(r)).toEqual(r);
  });

  it("drops fields a request does not have", () => {
    expect(checkControlRequest({ op: "pause", extra: 1 })).toEqual({ op: "pause" });
  });

  it("refuses unknown requests and bad fields, naming them", () => {
    expect(() => checkControlRequest(null)).toThrow(/unknown control request undefined/);
    expect(() => checkControlRequest({ op: "reboot" })).toThrow(/unknown control request "reboot"/);
    expect(() => checkControlRequest({ op: "plug", cpu: -1 })).toThrow(/plug needs a CPU number, got -1/);
    expect(() => checkControlRequest({ op: "unplug", cpu: "1" })).toThrow(/unplug needs a CPU number/);
    expect(() => checkControlRequest({ op: "dsm-add-member", node: 1.5 })).toThrow(/dsm-add-member needs a node id/);
    expect(() => checkControlRequest({ op: "set-host", vcpu: 1 })).toThrow(/set-host needs a vCPU and a node id or null/);
  });
});
