// One node of a many-to-one VM: a vCPU engine (instrumented v86), its DSM node and its links.
// Environment-neutral: the worker entries (worker_threads in Node, Web Workers in a tab) read the
// images, build the links and call `startVcpuNode`.

import { Vcpu } from "../../engine/vcpu.ts";
import { DsmNode } from "../../protocol/dsm/node.ts";
import type { Message } from "../../protocol/messages.ts";
import { LocalLinks, type LocalLinksPlan } from "../channel/local-links.ts";
import { DsmAgent } from "./dsm-agent.ts";

export interface NodeImages {
  bios: ArrayBuffer;
  vgaBios: ArrayBuffer;
  bzImage: ArrayBuffer;
  initrd: ArrayBuffer;
}

export interface VcpuNodeConfig {
  plan: LocalLinksPlan;
  wasm: Uint8Array;
  images: NodeImages;
  cmdline: string;
  memoryMiB: number;
  /** Whether this node's CPU runs (false: it only holds and serves memory). */
  runCpu: boolean;
  onSerial(bytes: Uint8Array): void;
  onOther?(from: number, msg: Message): void;
}

export interface VcpuNode {
  vcpu: Vcpu;
  dsm: DsmNode;
  agent: DsmAgent;
  links: LocalLinks;
  /** Handles waiting messages without blocking (called between v86 slices). */
  poll(): void;
  /** Serves peers until `stop()` returns true; blocks the worker (for nodes whose CPU does not run). */
  serveUntil(stop: () => boolean): void;
  destroy(): Promise<void>;
}

export async function startVcpuNode(config: VcpuNodeConfig): Promise<VcpuNode> {
  const { plan } = config;
  let agent: DsmAgent | undefined;
  const vcpu = await Vcpu.create({
    wasm: config.wasm,
    v86: {
      bios: { buffer: config.images.bios },
      vga_bios: { buffer: config.images.vgaBios },
      bzimage: { buffer: config.images.bzImage },
      initrd: { buffer: config.images.initrd },
      cmdline: config.cmdline,
      memory_size: config.memoryMiB * 1024 * 1024,
      vga_memory_size: 2 * 1024 * 1024,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    },
    onFault: (fault) => {
      if (!agent) throw new Error(`page fault on page ${fault.page} before the DSM started`);
      return { state: agent.fault(fault.page, fault.access) };
    },
  });
  const dsm = new DsmNode({ self: plan.self, nodes: plan.nodes, pages: vcpu.pageCount });
  const links = new LocalLinks(plan);
  agent = new DsmAgent(dsm, vcpu, links, config.onOther);
  // Node 0 starts owning every page; every other node starts with nothing.
  if (plan.self !== 0) vcpu.setAllPages("none");

  const a = agent;
  let timer: ReturnType<typeof setInterval> | undefined;
  if (config.runCpu) {
    vcpu.emulator.add_listener("serial0-output-byte", batchBytes(config.onSerial));
    // v86 yields between slices (setImmediate in Node, postMessage in a browser); a 1 ms timer gets
    // the peers' requests served between slices while the CPU runs.
    timer = setInterval(() => a.poll(), 1);
    vcpu.emulator.run();
  }
  return {
    vcpu,
    dsm,
    agent: a,
    links,
    poll: () => a.poll(),
    serveUntil(stop) {
      while (!stop()) {
        a.poll();
        links.waitForTraffic(20);
      }
    },
    async destroy() {
      if (timer) clearInterval(timer);
      await vcpu.destroy();
    },
  };
}

function batchBytes(emit: (bytes: Uint8Array) => void): (byte: number) => void {
  let pending: number[] = [];
  let scheduled = false;
  return (byte) => {
    pending.push(byte);
    if (!scheduled) {
      scheduled = true;
      setTimeout(() => {
        scheduled = false;
        const bytes = Uint8Array.from(pending);
        pending = [];
        emit(bytes);
      }, 5);
    }
  };
}
