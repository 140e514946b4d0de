// A DsmNode fed arbitrary inputs (a misbehaving or buggy peer, a confused engine) must fail only
// with its own typed errors, and whatever it emits before that must be well-formed.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encode } from "../../src/protocol/codec.ts";
import { DsmProtocolError, DsmUsageError } from "../../src/protocol/dsm/effects.ts";
import type { DsmEffect } from "../../src/protocol/dsm/effects.ts";
import { DsmNode } from "../../src/protocol/dsm/node.ts";
import type { DsmMessage } from "../../src/protocol/messages.ts";
import { PAGE_SIZE } from "../../src/protocol/types.ts";

const NODES = 3;
const PAGES = 4;
const page = fc.integer({ min: -1, max: PAGES });
const nodeId = fc.integer({ min: 0, max: NODES });
const version = fc.integer({ min: 0, max: 4 });
const access = fc.constantFrom("read" as const, "write" as const);

const dsmMessage: fc.Arbitrary<DsmMessage> = fc.oneof(
  fc.record({ type: fc.constant("dsm-request" as const), page, access, have: version }),
  fc.record({ type: fc.constant("dsm-forward" as const), page, access, requester: nodeId, have: version }),
  fc.record({
    type: fc.constant("dsm-grant" as const),
    page,
    access,
    owner: fc.boolean(),
    version,
    copyset: fc.array(nodeId, { maxLength: 3 }),
    acks: fc.integer({ min: 0, max: 3 }),
    data: fc.oneof(
      fc.constant({ form: "zero" as const }),
      fc.constant({ form: "current" as const }),
      fc.constant({ form: "bytes" as const, bytes: new Uint8Array(PAGE_SIZE).fill(3) }),
    ),
  }),
  fc.record({ type: fc.constant("dsm-invalidate" as const), page, version, ackTo: nodeId }),
  fc.record({ type: fc.constant("dsm-invalidate-ack" as const), page, version }),
  fc.record({ type: fc.constant("dsm-confirm" as const), page, access }),
  fc.record({
    type: fc.constant("dsm-handoff" as const),
    pages: fc.array(
      fc.record({
        page,
        version,
        copyset: fc.array(nodeId, { maxLength: 3 }),
        data: fc.oneof(fc.constant({ form: "zero" as const }), fc.constant({ form: "current" as const })),
      }),
      { maxLength: 3 },
    ),
    last: fc.boolean(),
  }),
  fc.record({ type: fc.constant("dsm-records" as const), records: fc.array(fc.record({ page, owner: nodeId }), { maxLength: 3 }) }),
);

type Action =
  | { kind: "message"; from: number; msg: DsmMessage }
  | { kind: "fault"; page: number; access: "read" | "write" }
  | { kind: "done"; page: number }
  | { kind: "revoked"; page: number; bytes: boolean }
  | { kind: "member"; node: number; add: boolean };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant("message" as const), from: nodeId, msg: dsmMessage }),
  fc.record({ kind: fc.constant("fault" as const), page, access }),
  fc.record({ kind: fc.constant("done" as const), page }),
  fc.record({ kind: fc.constant("revoked" as const), page, bytes: fc.boolean() }),
  fc.record({ kind: fc.constant("member" as const), node: nodeId, add: fc.boolean() }),
);

function checkEffects(self: number, effects: DsmEffect[]): void {
  for (const e of effects) {
    if (e.type === "send") {
      expect(e.to).toBeGreaterThanOrEqual(0);
      expect(e.to).toBeLessThan(NODES);
      expect(e.to).not.toBe(self);
      encode(e.msg); // throws CodecError if the node emitted an invalid message
    } else {
      expect(e.page).toBeGreaterThanOrEqual(0);
      expect(e.page).toBeLessThan(PAGES);
    }
  }
}

describe("DsmNode under arbitrary input", () => {
  for (const self of [0, 1]) {
    it(`node ${self} throws only DsmProtocolError / DsmUsageError and emits only valid messages`, () => {
      fc.assert(
        fc.property(fc.array(action, { maxLength: 40 }), fc.boolean(), fc.boolean(), (actions, readTakesOwnership, all) => {
          // every slot a member, or only node 0 and this node (the others may join)
          const members = all ? undefined : [...new Set([0, self])];
          const node = new DsmNode({ self, nodes: NODES, pages: PAGES, readTakesOwnership, members });
          for (const a of actions) {
            let effects: DsmEffect[];
            try {
              if (a.kind === "message") effects = node.onMessage(a.from, a.msg);
              else if (a.kind === "fault") effects = node.onLocalFault(a.page, a.access);
              else if (a.kind === "done") effects = node.accessDone(a.page);
              else if (a.kind === "member") effects = a.add ? node.addMember(a.node) : node.removeMember(a.node);
              else effects = node.revoked(a.page, a.bytes ? new Uint8Array(PAGE_SIZE) : undefined);
            } catch (err) {
              if (err instanceof DsmProtocolError || err instanceof DsmUsageError) return; // node is done
              throw err;
            }
            checkEffects(self, effects);
          }
        }),
        { numRuns: 3000 },
      );
    }, 10 * 60_000);
  }
});
