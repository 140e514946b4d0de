// Web Worker entry: one node of a cluster-of-tabs VM that boots a multiboot guest (the SMP self-test).
// The Linux guest's nodes run in node-worker.ts; this one differs in what it boots: v86 loads the
// ELF itself (multiboot, no BIOS), and since nothing then describes the CPUs, node 0 (which owns
// guest RAM at the start) writes an MP table and ACPI tables listing every vCPU where an OS scans.
// It speaks the same page protocol (NodeToPage), without the live view's statistics.

import { buildAcpiTables } from "../firmware/acpi.ts";
import { FW_TABLES_BASE } from "../firmware/layout.ts";
import { buildMpTable } from "../firmware/mptable.ts";
import { describePlatform } from "../firmware/platform.ts";
import type { NodeV86Options, VcpuNode } from "../node/vcpu-node.ts";
import { startVcpuNode } from "../node/vcpu-node.ts";
import type { NodeInit, NodeToPage } from "./node-protocol.ts";

export interface MultibootNodeInit extends Omit<NodeInit, "guest"> {
  guest: { kind: "multiboot"; elf: ArrayBuffer; cmdline: string; memoryMiB: number };
}

export type PageToMultibootNode = MultibootNodeInit | { kind: "serial-input"; bytes: Uint8Array } | { kind: "stop" };

const post = (msg: NodeToPage, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(msg, transfer);
let node: VcpuNode | null = null;
let init: MultibootNodeInit | null = null;

/** MP and ACPI tables for every vCPU, where Linux and the self-test look for them (0xF0000..). */
export function multibootTables(cpus: number): { address: number; bytes: Uint8Array }[] {
  const platform = describePlatform({ cpus });
  const mp = buildMpTable(platform, { address: FW_TABLES_BASE });
  const acpiAt = Math.ceil((FW_TABLES_BASE + mp.length) / 16) * 16;
  return [
    { address: FW_TABLES_BASE, bytes: mp },
    { address: acpiAt, bytes: buildAcpiTables(platform, { address: acpiAt }).bytes },
  ];
}

function start(msg: MultibootNodeInit): Promise<VcpuNode> {
  const g = msg.guest;
  const v86 = {
    multiboot: { buffer: g.elf },
    cmdline: g.cmdline,
    memory_size: g.memoryMiB << 20,
    vga_memory_size: 2 << 20,
    // the local APIC and IOAPIC exist in v86 only with acpi on
    acpi: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  } as NodeV86Options;
  return startVcpuNode({
    plan: msg.plan,
    wasm: new Uint8Array(msg.wasm),
    v86,
    bootWrites: msg.plan.self === 0 ? multibootTables(msg.vcpuNodes.length) : undefined,
    vcpu: msg.vcpu,
    vcpuNodes: msg.vcpuNodes,
    deviceNode: msg.deviceNode,
    onSerial: (bytes) => post({ kind: "serial", bytes }, [bytes.buffer]),
  });
}

function status(n: VcpuNode, i: MultibootNodeInit): NodeToPage {
  return {
    kind: "status",
    status: {
      node: i.plan.self,
      vcpu: i.vcpu,
      runState: n.cpu.runState,
      instructions: n.vcpu.emulator.get_instruction_counter?.() ?? 0,
      faults: n.agent.counters.faults,
      blockedMs: n.agent.counters.blockedMs,
      revocations: n.vcpu.stats.revocations,
      ipisSent: n.router?.counters.ipisSent ?? 0,
      ipisReceived: n.router?.counters.ipisReceived ?? 0,
      faultMs: null, // not timed here (node-worker.ts times the Linux guest's faults)
    },
  };
}

self.onmessage = async (event: MessageEvent<PageToMultibootNode>) => {
  const msg = event.data;
  try {
    switch (msg.kind) {
      case "init": {
        init = msg;
        const n = await start(msg);
        node = n;
        post({ kind: "ready", node: msg.plan.self });
        setInterval(() => node && post(status(node, msg)), 500);
        if (msg.vcpu === null) {
          const stop = new Int32Array(msg.stop);
          n.serveUntil(() => Atomics.load(stop, 0) !== 0);
        }
        break;
      }
      case "serial-input":
        node?.vcpu.emulator.serial0_send(String.fromCharCode(...msg.bytes));
        break;
      case "stop":
        await node?.destroy();
        node = null;
        break;
    }
  } catch (err) {
    post({ kind: "error", node: init?.plan.self ?? -1, message: (err as Error).message });
  }
};
