// Web Worker entry: one node of a many-to-one VM in this tab (a vCPU engine, its DSM node, links).

import { linuxV86Options, startVcpuNode, type VcpuNode } from "../node/vcpu-node.ts";
import type { NodeToPage, PageToNode } from "./node-protocol.ts";

const post = (msg: NodeToPage, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(msg, transfer);
let node: VcpuNode | null = null;
let self_ = -1;

let runsCpu = false;
function status(): NodeToPage {
  const n = node!;
  return {
    kind: "status",
    status: {
      node: self_,
      runCpu: runsCpu,
      instructions: n.vcpu.emulator.get_instruction_counter?.() ?? 0,
      faults: n.agent.counters.faults,
      blockedMs: n.agent.counters.blockedMs,
      revocations: n.vcpu.stats.revocations,
    },
  };
}

self.onmessage = async (event: MessageEvent<PageToNode>) => {
  const msg = event.data;
  try {
    switch (msg.kind) {
      case "init": {
        self_ = msg.plan.self;
        runsCpu = msg.runCpu;
        node = await startVcpuNode({
          plan: msg.plan,
          wasm: new Uint8Array(msg.wasm),
          v86: linuxV86Options(msg.images, msg.cmdline, msg.memoryMiB),
          runCpu: msg.runCpu,
          deviceNode: msg.deviceNode,
          onSerial: (bytes) => post({ kind: "serial", bytes }, [bytes.buffer]),
        });
        post({ kind: "ready", node: self_ });
        if (msg.runCpu) setInterval(() => post(status()), 500);
        else {
          // A node whose CPU does not run only serves memory: it blocks here, woken by its peers.
          const stop = new Int32Array(msg.stop);
          node.serveUntil(() => Atomics.load(stop, 0) !== 0);
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
    post({ kind: "error", node: self_, message: (err as Error).message });
  }
};
