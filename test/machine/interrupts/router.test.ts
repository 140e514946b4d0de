// The router with possible vCPUs that no node hosts (issue 14: CPUs plugged in and out at run time).
import { describe, expect, it } from "vitest";
import type { IpiMessage } from "../../../src/engine/interrupts/index.ts";
import { InterruptRouter } from "../../../src/machine/interrupts/router.ts";
import type { Message } from "../../../src/protocol/messages.ts";

function ipi(from: number, value: number, shorthand: IpiMessage["destination"]["shorthand"] = "none", mode: IpiMessage["mode"] = "fixed"): IpiMessage {
  return { source: "ipi", from, assert: true, icrLow: 0, icrHigh: 0, vector: 0x40, mode, trigger: "edge", destination: { mode: "physical", value, shorthand } };
}

function router(self: number, selfNode: number, hosts: (number | null)[]) {
  const sent: { to: number; msg: Message }[] = [];
  const r = new InterruptRouter(self, selfNode, hosts, 0, (to, msg) => void sent.push({ to, msg }), { inject: () => {}, ioapicEoi: () => {} });
  return { r, sent };
}

describe("interrupt router with unhosted vCPUs", () => {
  it("drops and counts deliveries to a vCPU no node hosts, and sends to hosted ones", () => {
    const { r, sent } = router(0, 0, [0, 1, null, null]);
    r.onSend(ipi(0, 2));
    expect(sent).toEqual([]);
    expect(r.counters.unhostedDropped).toBe(1);
    // A broadcast reaches only the hosted vCPUs.
    r.onSend(ipi(0, 0, "all-but-self"));
    expect(sent.map((s) => s.to)).toEqual([1]);
    expect(r.counters.unhostedDropped).toBe(3);
  });

  it("setHost routes to the new node and back to nothing", () => {
    const { r, sent } = router(0, 0, [0, null]);
    r.setHost(1, 3);
    expect(r.hostOf(1)).toBe(3);
    r.onSend(ipi(0, 1, "none", "init"));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ to: 3, msg: { type: "ipi", src: 0, dest: 1 } });
    r.setHost(1, null);
    r.onSend(ipi(0, 1));
    expect(sent).toHaveLength(1);
    expect(() => r.setHost(0, 2)).toThrow(/own/);
    expect(() => r.setHost(4, 2)).toThrow(/no possible vCPU 4/);
  });

  it("APIC register writes go to hosted vCPUs only, and a newcomer is told the current addressing", () => {
    const { r, sent } = router(1, 1, [0, 1, null]);
    r.onApicRegister("ldr", 0x02000000, { id: 1 << 24, ldr: 0x02000000, dfr: 0xffffffff });
    expect(sent.map((s) => s.to)).toEqual([0]);
    sent.length = 0;
    r.setHost(2, 5);
    r.introduceTo(5);
    expect(sent).toEqual([
      { to: 5, msg: { type: "apic-reg", vcpu: 1, reg: "id", value: 1 << 24 } },
      { to: 5, msg: { type: "apic-reg", vcpu: 1, reg: "ldr", value: 0x02000000 } },
      { to: 5, msg: { type: "apic-reg", vcpu: 1, reg: "dfr", value: 0xffffffff } },
    ]);
  });

  it("a vCPU that gets a new host starts from the reset addressing", () => {
    const { r } = router(0, 0, [0, 1]);
    r.onMessage({ type: "apic-reg", vcpu: 1, reg: "ldr", value: 0x04000000 });
    expect(r.apics[1]!.ldr).toBe(0x04000000);
    r.setHost(1, 2);
    expect(r.apics[1]).toEqual({ id: 1 << 24, ldr: 0, dfr: 0xffffffff });
  });
});
