// Interrupt messages as the engine reports and accepts them. Pure data: the platform encodes them for
// the wire and routes them; decode.ts turns ICR and IOAPIC register values into them.

/** Delivery modes of the ICR and the IOAPIC redirection table (value 3 is reserved in both). */
export type DeliveryMode = "fixed" | "lowest" | "smi" | "nmi" | "init" | "startup" | "extint";
export type Trigger = "edge" | "level";
/** ICR destination shorthand; IOAPIC deliveries always use "none". */
export type Shorthand = "none" | "self" | "all" | "all-but-self";

export interface Destination {
  /** Physical: an APIC ID (0xFF = all). Logical: a mask compared with each APIC's LDR under its DFR model. */
  mode: "physical" | "logical";
  /** The 8-bit destination field (ICR high bits 31:24 or redirection entry bits 63:56). */
  value: number;
  shorthand: Shorthand;
}

interface Common {
  /** 0..255; for "startup" the start page (the AP starts at vector << 12). */
  vector: number;
  mode: DeliveryMode;
  trigger: Trigger;
  destination: Destination;
}

/** An inter-processor interrupt the local APIC sends (a write to ICR low). */
export interface IpiMessage extends Common {
  source: "ipi";
  /** APIC ID (bits 31:24 of the sender's ID register). */
  from: number;
  /** ICR level bit (14): false with mode "init" and trigger "level" is an INIT de-assert. */
  assert: boolean;
  icrLow: number;
  icrHigh: number;
}

/** An interrupt the (local) IOAPIC sends for one of its 24 inputs. */
export interface IoapicMessage extends Common {
  source: "ioapic";
  irq: number;
  entryLow: number;
  entryHigh: number;
}

export type OutgoingInterrupt = IpiMessage | IoapicMessage;

/** What can be injected into a vCPU (what its APIC receives from elsewhere). */
export type IncomingInterrupt =
  | { kind: "fixed"; vector: number; trigger: Trigger }
  | { kind: "nmi" }
  | { kind: "init" }
  | { kind: "init-deassert" }
  | { kind: "startup"; vector: number };

/** The APIC registers every node needs to compute logical destinations (broadcast on change). */
export type ApicRegister = "id" | "ldr" | "dfr";

/** The addressing state of one local APIC (register values as the guest reads them). */
export interface ApicAddressing {
  /** APIC ID register (ID in bits 31:24). */
  id: number;
  /** Logical destination register (bits 31:24). */
  ldr: number;
  /** Destination format register (bits 31:28: 0xF flat, 0x0 cluster). */
  dfr: number;
}

export type VcpuRunState = "running" | "wait-for-sipi";
