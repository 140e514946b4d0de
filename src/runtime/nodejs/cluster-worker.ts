// Worker entry of one node of a NodeCluster (worker_threads).
import { readAuditReport } from "../../engine/instrument/ensure.ts";
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { LocalLinksPlan } from "../links/local-links.ts";
import { buildAcpiTables } from "../../machine/firmware/acpi.ts";
import { planDirectBoot } from "../../machine/firmware/direct-boot.ts";
import { FW_TABLES_BASE } from "../../machine/firmware/layout.ts";
import { buildMpTable } from "../../machine/firmware/mptable.ts";
import { describePlatform } from "../../machine/firmware/platform.ts";
import { delayLinks } from "../links/link-delay.ts";
import { firmwareV86Options, linuxV86Options, startVcpuNode, type NodeV86Options, type ServeOptions } from "../node/vcpu-node.ts";

export type ClusterGuest =
  /** The default guest booted by SeaBIOS (one vCPU). */
  | { kind: "linux"; bios: string; vgaBios: string; bzImage: string; initramfs: string; cmdline: string; memoryMiB: number }
  /** The default guest booted directly by our firmware, with tables for every vCPU. */
  | { kind: "linux-smp"; firmware: string; bzImage: string; initramfs: string; cmdline: string; memoryMiB: number }
  /** A multiboot guest (the self-test); `smp` adds MP and ACPI tables for every vCPU at 0xF0000. */
  | { kind: "multiboot"; elf: string; cmdline: string; memoryMiB: number; smp?: boolean };

interface Data {
  plan: LocalLinksPlan;
  wasmPath: string;
  /** This node runs the coherence-audit build (its path); see ClusterOptions.audit. */
  auditWasmPath?: string;
  guest: ClusterGuest;
  vcpu: number | null;
  serve?: ServeOptions;
  vcpuNodes: number[];
  deviceNode?: number;
  stop: SharedArrayBuffer;
  linkDelayMs?: number;
  watchPages?: number[];
}
const d = workerData.data as Data;
const buf = (p: string) => {
  const b = readFileSync(p);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};
const g = d.guest;
let v86: NodeV86Options;
let bootWrites: { address: number; bytes: Uint8Array }[] | undefined;
switch (g.kind) {
  case "linux":
    v86 = linuxV86Options({ bios: buf(g.bios), vgaBios: buf(g.vgaBios), bzImage: buf(g.bzImage), initrd: buf(g.initramfs) }, g.cmdline, g.memoryMiB);
    break;
  case "linux-smp":
    v86 = firmwareV86Options(buf(g.firmware), g.memoryMiB);
    if (d.plan.self === 0)
      bootWrites = planDirectBoot({
        bzImage: new Uint8Array(buf(g.bzImage)),
        initrd: new Uint8Array(buf(g.initramfs)),
        cmdline: g.cmdline,
        memoryBytes: g.memoryMiB << 20,
        platform: { cpus: d.vcpuNodes.length },
      }).writes;
    break;
  case "multiboot":
    v86 = { multiboot: { buffer: buf(g.elf) }, cmdline: g.cmdline, memory_size: g.memoryMiB << 20, vga_memory_size: 2 << 20, acpi: true, disable_keyboard: true, disable_mouse: true, disable_speaker: true } as NodeV86Options;
    if (g.smp && d.plan.self === 0) {
      // Without a BIOS nothing describes the CPUs; write the tables where an OS scans for them.
      const platform = describePlatform({ cpus: d.vcpuNodes.length });
      const mp = buildMpTable(platform, { address: FW_TABLES_BASE });
      const acpiAt = Math.ceil((FW_TABLES_BASE + mp.length) / 16) * 16;
      bootWrites = [
        { address: FW_TABLES_BASE, bytes: mp },
        { address: acpiAt, bytes: buildAcpiTables(platform, { address: acpiAt }).bytes },
      ];
    }
    break;
}
const stop = new Int32Array(d.stop);
const node = await startVcpuNode({
  plan: d.plan,
  wasm: new Uint8Array(readFileSync(d.auditWasmPath ?? d.wasmPath)),
  ...(d.auditWasmPath ? { audit: await readAuditReport(d.auditWasmPath) } : {}),
  v86,
  vcpu: d.vcpu,
  serve: d.serve,
  vcpuNodes: d.vcpuNodes,
  deviceNode: d.deviceNode,
  bootWrites,
  onSerial: (bytes) => parentPort!.postMessage({ kind: "serial", bytes }),
  onFailure: (failure) => parentPort!.postMessage({ kind: "failed", failure }),
});
// The latency knob (fixed for the cluster's life): every frame this node sends waits this long.
if (d.linkDelayMs) delayLinks(node.links, () => d.linkDelayMs!);
// First faults on watched pages (and the node's first fault of all), with the fault count and the
// time blocked in DSM faults so far: the AP's progress through its bring-up, timed from inside.
interface Mark { wallMs: number; faults: number; blockedMs: number }
const watch: { first: Mark | null; pages: Record<number, Mark> } = { first: null, pages: {} };
if (d.watchPages?.length) {
  const pages = new Set(d.watchPages);
  const handler = node.vcpu.onFault!;
  node.vcpu.onFault = (fault) => {
    const mark = (): Mark => ({ wallMs: performance.timeOrigin + performance.now(), faults: node.vcpu.stats.faults, blockedMs: node.agent.counters.blockedMs });
    watch.first ??= mark();
    if (pages.has(fault.page) && !watch.pages[fault.page]) watch.pages[fault.page] = mark();
    return handler(fault);
  };
}
parentPort!.postMessage({ kind: "ready" });
const report = () => ({
  kind: "stats",
  self: d.plan.self,
  engine: node.vcpu.stats,
  auditArmed: node.vcpu.auditArmed,
  interrupts: { ...node.cpu.stats, runState: node.cpu.runState },
  router: node.router?.counters ?? null,
  agent: node.agent.counters,
  dsm: node.dsm.counters,
  io: node.io.counters,
  // The guest's time-stamp counter against wall time (comparable across nodes).
  clock: { tsc: Number(node.cpu.tsc), wallMs: performance.timeOrigin + performance.now() },
  watch,
});
if (d.vcpu === null) {
  node.serveUntil(() => Atomics.load(stop, 0) !== 0);
  parentPort!.postMessage(report());
} else {
  parentPort!.on("message", (m) => {
    if (m.kind === "send") node.vcpu.emulator.serial0_send(m.text);
    if (m.kind === "stats") parentPort!.postMessage(report());
  });
}
