// What may be asked of a running node of an elastic VM, what it answers and what it reports on its
// own. Requests cross a thread boundary (page → worker) and, in a cluster of tabs, the network
// (tab 0 → the tab hosting the node), so their one checker lives here, beside the envelope that
// carries them; the node's side (runtime/node/node-control.ts) carries them out.

import type { DsmQuiescenceReport } from "../dsm/node.ts";

export type NodeControlRequest =
  /** Stops the vCPU at an instruction boundary; the node keeps serving its peers (timer and doorbell). */
  | { op: "pause" }
  | { op: "resume" }
  /** Another vCPU got a host (a node joined with it) or lost it (its node left). */
  | { op: "set-host"; vcpu: number; node: number | null }
  /** The DSM's part of a membership change (src/protocol/dsm/membership.ts). */
  | { op: "dsm-report" }
  | { op: "dsm-add-member"; node: number }
  | { op: "dsm-remove-member"; node: number }
  | { op: "dsm-leave" }
  /** After a leave completed: take in what was sent before the others forgot this node. */
  | { op: "drain" }
  /** Node 0's CPU hotplug device. */
  | { op: "plug"; cpu: number }
  | { op: "unplug"; cpu: number }
  | { op: "hotplug-state" };

/** What a node reports on its own: the guest's answers to node 0's hotplug device. */
export type NodeEvent = { event: "cpu-ejected"; cpu: number } | { event: "ost"; cpu: number; ostEvent: number; status: number };

const id = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0 && x < 256;
const count = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= Number.MAX_SAFE_INTEGER;

/** Checks a request that crossed a thread or network boundary; throws a TypeError naming what is wrong. */
export function checkControlRequest(x: unknown): NodeControlRequest {
  const r = x as Record<string, unknown> | null;
  const op = typeof r === "object" && r !== null ? r.op : undefined;
  switch (op) {
    case "pause":
    case "resume":
    case "dsm-report":
    case "dsm-leave":
    case "drain":
    case "hotplug-state":
      return { op };
    case "set-host":
      if (!id(r!.vcpu) || !(r!.node === null || id(r!.node))) throw new TypeError(`set-host needs a vCPU and a node id or null, got ${JSON.stringify(r)}`);
      return { op, vcpu: r!.vcpu, node: r!.node as number | null };
    case "dsm-add-member":
    case "dsm-remove-member":
      if (!id(r!.node)) throw new TypeError(`${op} needs a node id, got ${JSON.stringify(r!.node)}`);
      return { op, node: r!.node };
    case "plug":
    case "unplug":
      if (!id(r!.cpu)) throw new TypeError(`${op} needs a CPU number, got ${JSON.stringify(r!.cpu)}`);
      return { op, cpu: r!.cpu };
    default:
      throw new TypeError(`unknown control request ${JSON.stringify(op)?.slice(0, 40)}`);
  }
}

/**
 * Checks a node's answer to `request` as the membership change uses it (a report of the DSM's
 * quiescence, the pages a drained node still owns); other answers are not read, so not checked.
 * Throws a TypeError naming what is wrong: an answer from another tab is input from outside.
 */
export function checkControlReply(request: NodeControlRequest, value: unknown): unknown {
  const o = value as Record<string, unknown> | null;
  const isObject = typeof o === "object" && o !== null && !Array.isArray(o);
  switch (request.op) {
    case "dsm-report": {
      if (!isObject || !id(o.node) || typeof o.quiescent !== "boolean") throw new TypeError("a DSM report needs a node id and whether it is quiescent");
      for (const k of ["sent", "received"] as const) {
        const a = o[k];
        if (!Array.isArray(a) || a.length > 256 || !a.every(count)) throw new TypeError(`a DSM report's ${k} must list a message count per node slot`);
      }
      return { node: o.node, quiescent: o.quiescent, sent: [...(o.sent as number[])], received: [...(o.received as number[])] } satisfies DsmQuiescenceReport;
    }
    case "drain":
    case "dsm-leave":
      if (!isObject || !count(o.owned)) throw new TypeError(`the answer to ${request.op} needs the count of pages still owned`);
      return { ...o, owned: o.owned };
    default:
      return value;
  }
}
