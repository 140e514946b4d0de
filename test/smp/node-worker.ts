// A VM node in a worker_thread for the Node integration tests.
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { LocalLinksPlan } from "../../src/platform/channel/local-links.ts";
import { startVcpuNode } from "../../src/platform/node/vcpu-node.ts";

interface Data {
  plan: LocalLinksPlan;
  wasmPath: string;
  guest: { bios: string; vgaBios: string; bzImage: string; initramfs: string; cmdline: string };
  memoryMiB: number;
  runCpu: boolean;
  stop: SharedArrayBuffer;
}
const d = workerData.data as Data;
const buf = (p: string) => {
  const b = readFileSync(p);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};
const stop = new Int32Array(d.stop);
const node = await startVcpuNode({
  plan: d.plan,
  wasm: new Uint8Array(readFileSync(d.wasmPath)),
  images: { bios: buf(d.guest.bios), vgaBios: buf(d.guest.vgaBios), bzImage: buf(d.guest.bzImage), initrd: buf(d.guest.initramfs) },
  cmdline: d.guest.cmdline,
  memoryMiB: d.memoryMiB,
  runCpu: d.runCpu,
  onSerial: (bytes) => parentPort!.postMessage({ kind: "serial", bytes }),
});
parentPort!.postMessage({ kind: "ready" });
const report = () => ({ kind: "stats", self: d.plan.self, engine: node.vcpu.stats, agent: node.agent.counters, dsm: node.dsm.counters });
if (!d.runCpu) {
  node.serveUntil(() => Atomics.load(stop, 0) !== 0);
  parentPort!.postMessage(report());
} else {
  parentPort!.on("message", (m) => {
    if (m.kind === "send") node.vcpu.emulator.serial0_send(m.text);
    if (m.kind === "stats") parentPort!.postMessage(report());
  });
}
