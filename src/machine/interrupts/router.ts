// Where each interrupt goes, decided on the node where it is raised (GiantVM's scheme): every node
// knows every vCPU's APIC addressing (ID, LDR, DFR are broadcast when a guest writes them), so the
// sender computes the destination set itself and sends one message per remote target. IOAPIC
// deliveries start on the device node; EOIs of level-triggered vectors return to it.

import { includes, isInitDeassert, toIncoming } from "../../engine/interrupts/index.ts";
import type { ApicAddressing, ApicRegister, IncomingInterrupt, OutgoingInterrupt } from "../../engine/interrupts/index.ts";
import type { Delivery, Message } from "../../protocol/messages.ts";
import type { NodeId } from "../../protocol/types.ts";

export interface RouterTarget {
  /** Queue an interrupt into this node's vCPU (safe at any time). */
  inject(irq: IncomingInterrupt): void;
  /** Device node only: another vCPU's EOI for this node's IOAPIC. */
  ioapicEoi(vector: number): void;
}

export interface RouterCounters {
  ipisSent: number;
  ipisReceived: number;
  irqsSent: number;
  irqsReceived: number;
  eoisForwarded: number;
  /** Remote IPIs by target vCPU, for the live view's IPI matrix. */
  ipisTo: number[];
  /** Interrupts whose target vCPU no node hosts (a possible CPU not plugged in): dropped, as by an absent APIC. */
  unhostedDropped: number;
}

/**
 * Optional observer of interrupts this node sends to other vCPUs (the live view's IPI matrix and
 * trace). `pin` is set for IOAPIC interrupts, undefined for IPIs. It must only record.
 */
export type InterruptObserver = (src: number | null, dest: number, delivery: Delivery, pin?: number) => void;

/** The addressing every APIC has at reset: ID = its number, LDR 0, flat model. */
export const resetAddressing = (vcpu: number): ApicAddressing => ({ id: vcpu << 24, ldr: 0, dfr: 0xffffffff });

export function toWire(msg: OutgoingInterrupt): Delivery | null {
  switch (msg.mode) {
    case "fixed":
    case "lowest":
      return { mode: msg.mode, vector: msg.vector, trigger: msg.trigger };
    case "nmi":
    case "smi":
    case "extint":
      return { mode: msg.mode };
    case "init":
      return isInitDeassert(msg) ? { mode: "init-deassert" } : { mode: "init" };
    case "startup":
      return { mode: "startup", vector: msg.vector };
  }
}

export function fromWire(d: Delivery): IncomingInterrupt | null {
  switch (d.mode) {
    case "fixed":
    case "lowest":
      return { kind: "fixed", vector: d.vector, trigger: d.trigger };
    case "nmi":
      return { kind: "nmi" };
    case "init":
      return { kind: "init" };
    case "init-deassert":
      return { kind: "init-deassert" };
    case "startup":
      return { kind: "startup", vector: d.vector };
    case "smi":
    case "extint":
      return null; // no SMM in v86; ExtINT stays with the 8259 on the device node
  }
}

export class InterruptRouter {
  readonly apics: ApicAddressing[];
  readonly counters: RouterCounters;
  /** Null unless a viewer listens; each remote delivery then costs one check of this field. */
  observer: InterruptObserver | null = null;

  constructor(
    /** The vCPU this node hosts (its APIC ID), or null (a node with devices or memory but no vCPU). */
    private readonly self: number | null,
    private readonly selfNode: NodeId,
    /**
     * The node hosting each possible vCPU, or null while no node hosts it (a CPU that is not
     * plugged in: its deliveries are dropped). Changes at run time through `setHost`.
     */
    vcpuNodes: readonly (NodeId | null)[],
    private readonly deviceNode: NodeId,
    private readonly send: (to: NodeId, msg: Message) => void,
    private readonly target: RouterTarget,
  ) {
    if (self !== null && vcpuNodes[self] !== selfNode) throw new RangeError(`vCPU ${self} is not hosted by node ${selfNode}`);
    this.vcpuNodes = [...vcpuNodes];
    this.apics = vcpuNodes.map((_, i) => resetAddressing(i));
    this.counters = { ipisSent: 0, ipisReceived: 0, irqsSent: 0, irqsReceived: 0, eoisForwarded: 0, ipisTo: new Array(vcpuNodes.length).fill(0), unhostedDropped: 0 };
  }

  private readonly vcpuNodes: (NodeId | null)[];

  /** The node hosting `vcpu` now, or null. */
  hostOf(vcpu: number): NodeId | null {
    return this.vcpuNodes[vcpu] ?? null;
  }

  /**
   * A vCPU gets a host (a node joined with it) or loses it (its node left after the guest ejected
   * it). A new host starts from the reset addressing: its APIC was just reset, and the guest
   * programs it again when it brings the CPU up.
   */
  setHost(vcpu: number, node: NodeId | null): void {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.vcpuNodes.length) throw new RangeError(`no possible vCPU ${vcpu} (0..${this.vcpuNodes.length - 1})`);
    if (vcpu === this.self) throw new RangeError(`vCPU ${vcpu} is this node's own`);
    this.vcpuNodes[vcpu] = node;
    this.apics[vcpu] = resetAddressing(vcpu);
  }

  /** Tells a node that just joined this vCPU's current addressing (it missed the writes). */
  introduceTo(node: NodeId): void {
    const self = this.self;
    if (self === null) return;
    const a = this.apics[self]!;
    for (const reg of ["id", "ldr", "dfr"] as const) this.send(node, { type: "apic-reg", vcpu: self, reg, value: a[reg] >>> 0 });
  }

  /** The engine's onSend hook: forwards to remote targets, returns whether this vCPU gets it too. */
  onSend(msg: OutgoingInterrupt): boolean {
    let targets = this.apics.map((a, i) => (includes(msg, a) ? i : -1)).filter((i) => i >= 0);
    // Lowest priority goes to one CPU of the set; like GiantVM, the first (deterministic).
    if (msg.mode === "lowest" && targets.length > 1) targets = [targets[0]!];
    const delivery = toWire(msg);
    if (delivery && toIncoming(msg)) {
      for (const t of targets) {
        if (t === this.self) continue;
        const host = this.vcpuNodes[t];
        if (host === null || host === undefined) {
          this.counters.unhostedDropped++;
          continue;
        }
        if (msg.source === "ipi") {
          this.counters.ipisSent++;
          this.counters.ipisTo[t]!++;
          this.send(host, { type: "ipi", src: this.self!, dest: t, delivery });
          if (this.observer) this.observer(this.self, t, delivery);
        } else {
          this.counters.irqsSent++;
          this.send(host, { type: "irq", dest: t, pin: msg.irq, delivery });
          if (this.observer) this.observer(this.self, t, delivery, msg.irq);
        }
      }
    }
    return this.self !== null && targets.includes(this.self);
  }

  /** The engine's onApicRegister hook: every node must see the new addressing. */
  onApicRegister(reg: ApicRegister, value: number, now: ApicAddressing): void {
    const self = this.self;
    if (self === null) return; // a node without a vCPU has no APIC registers to write
    this.apics[self] = { ...now };
    for (let v = 0; v < this.apics.length; v++) {
      const host = this.vcpuNodes[v];
      if (v !== self && host !== null && host !== undefined) this.send(host, { type: "apic-reg", vcpu: self, reg, value: value >>> 0 });
    }
  }

  /** The engine's onEoi hook: level EOIs belong to the device node's IOAPIC. */
  onEoi(vector: number): boolean {
    if (this.selfNode === this.deviceNode) return true;
    this.counters.eoisForwarded++;
    this.send(this.deviceNode, { type: "eoi", vcpu: this.self!, vector });
    return false;
  }

  /** Handles an interrupt message from another node; false when `msg` is not one. */
  onMessage(msg: Message): boolean {
    switch (msg.type) {
      case "ipi":
      case "irq": {
        if (msg.dest !== this.self) throw new Error(`node ${this.selfNode} got an interrupt for vCPU ${msg.dest}`);
        if (msg.type === "ipi") this.counters.ipisReceived++;
        else this.counters.irqsReceived++;
        const irq = fromWire(msg.delivery);
        if (irq) this.target.inject(irq);
        return true;
      }
      case "apic-reg": {
        const a = this.apics[msg.vcpu];
        if (!a) throw new Error(`APIC register write from unknown vCPU ${msg.vcpu}`);
        this.apics[msg.vcpu] = { ...a, [msg.reg]: msg.value };
        return true;
      }
      case "eoi":
        if (this.selfNode !== this.deviceNode) throw new Error(`node ${this.selfNode} has no IOAPIC, but got an EOI`);
        this.target.ioapicEoi(msg.vector);
        return true;
      default:
        return false;
    }
  }
}
