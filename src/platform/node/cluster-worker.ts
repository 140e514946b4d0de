// Worker entry of one node of a NodeCluster (worker_threads).
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { LocalLinksPlan } from "../channel/local-links.ts";
import { linuxV86Options, startVcpuNode, type NodeV86Options } from "./vcpu-node.ts";

export type ClusterGuest =
  | { kind: "linux"; bios: string; vgaBios: string; bzImage: string; initramfs: string; cmdline: string; memoryMiB: number }
  | { kind: "multiboot"; elf: string; cmdline: string; memoryMiB: number };

interface Data {
  plan: LocalLinksPlan;
  wasmPath: string;
  guest: ClusterGuest;
  runCpu: boolean;
  deviceNode?: number;
  stop: SharedArrayBuffer;
}
const d = workerData.data as Data;
const buf = (p: string) => {
  const b = readFileSync(p);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};
const g = d.guest;
const v86: NodeV86Options =
  g.kind === "linux"
    ? linuxV86Options({ bios: buf(g.bios), vgaBios: buf(g.vgaBios), bzImage: buf(g.bzImage), initrd: buf(g.initramfs) }, g.cmdline, g.memoryMiB)
    : { multiboot: { buffer: buf(g.elf) }, cmdline: g.cmdline, memory_size: g.memoryMiB << 20, vga_memory_size: 2 << 20, acpi: true, disable_keyboard: true, disable_mouse: true, disable_speaker: true };
const stop = new Int32Array(d.stop);
const node = await startVcpuNode({
  plan: d.plan,
  wasm: new Uint8Array(readFileSync(d.wasmPath)),
  v86,
  runCpu: d.runCpu,
  deviceNode: d.deviceNode,
  onSerial: (bytes) => parentPort!.postMessage({ kind: "serial", bytes }),
});
parentPort!.postMessage({ kind: "ready" });
const report = () => ({
  kind: "stats",
  self: d.plan.self,
  engine: node.vcpu.stats,
  agent: node.agent.counters,
  dsm: node.dsm.counters,
  io: node.io.counters,
});
if (!d.runCpu) {
  node.serveUntil(() => Atomics.load(stop, 0) !== 0);
  parentPort!.postMessage(report());
} else {
  parentPort!.on("message", (m) => {
    if (m.kind === "send") node.vcpu.emulator.serial0_send(m.text);
    if (m.kind === "stats") parentPort!.postMessage(report());
  });
}
