// One node of a many-to-one VM: a vCPU engine (instrumented v86), its DSM node and its links, and
// for node 0 the devices. Environment-neutral: the worker entries (worker_threads in Node, Web
// Workers in a tab) read the images, build the links and call `startVcpuNode`.

import type { V86Options } from "v86";
import { Vcpu } from "../../engine/vcpu.ts";
import { DsmNode } from "../../protocol/dsm/node.ts";
import type { Message } from "../../protocol/messages.ts";
import { LocalLinks, type LocalLinksPlan } from "../channel/local-links.ts";
import { DsmAgent } from "./dsm-agent.ts";
import { forwardPorts, IoClient, IoServer, portSpaceOf, type V86Io } from "./io-forwarding.ts";

export interface NodeImages {
  bios: ArrayBuffer;
  vgaBios: ArrayBuffer;
  bzImage: ArrayBuffer;
  initrd: ArrayBuffer;
}

export type NodeV86Options = Omit<V86Options, "wasm_fn" | "wasm_path" | "autostart">;

/** v86 options for the default Linux guest (SeaBIOS loads the bzImage). */
export function linuxV86Options(images: NodeImages, cmdline: string, memoryMiB: number): NodeV86Options {
  return {
    bios: { buffer: images.bios },
    vga_bios: { buffer: images.vgaBios },
    bzimage: { buffer: images.bzImage },
    initrd: { buffer: images.initrd },
    cmdline,
    memory_size: memoryMiB * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  };
}

export interface VcpuNodeConfig {
  plan: LocalLinksPlan;
  wasm: Uint8Array;
  /** Every node builds the same v86 machine, so their initial RAM is identical. */
  v86: NodeV86Options;
  /** Whether this node's CPU runs (false: it only holds memory and, on node 0, devices). */
  runCpu: boolean;
  /** The node that hosts the devices (default 0, as in GiantVM); the others forward their I/O to it. */
  deviceNode?: number;
  /** Device output (node 0's first UART). */
  onSerial(bytes: Uint8Array): void;
  onOther?(from: number, msg: Message): void;
}

export interface VcpuNode {
  vcpu: Vcpu;
  dsm: DsmNode;
  agent: DsmAgent;
  links: LocalLinks;
  io: IoClient | IoServer;
  /** Handles waiting messages without blocking (called between v86 slices). */
  poll(): void;
  /** Serves peers until `stop()` returns true; blocks the worker (for nodes whose CPU does not run). */
  serveUntil(stop: () => boolean): void;
  destroy(): Promise<void>;
}

export async function startVcpuNode(config: VcpuNodeConfig): Promise<VcpuNode> {
  const { plan } = config;
  const deviceNode = config.deviceNode ?? 0;
  const hostsDevices = plan.self === deviceNode;
  let agent: DsmAgent | undefined;
  const vcpu = await Vcpu.create({
    wasm: config.wasm,
    v86: { ...config.v86, autostart: false },
    onFault: (fault) => {
      if (!agent) throw new Error(`page fault on page ${fault.page} before the DSM started`);
      return { state: agent.fault(fault.page, fault.access) };
    },
  });
  const dsm = new DsmNode({ self: plan.self, nodes: plan.nodes, pages: vcpu.pageCount });
  const links = new LocalLinks(plan);
  const cpuIo = (vcpu.emulator as unknown as { v86: { cpu: { io: V86Io } } }).v86.cpu.io;

  let io: IoClient | IoServer;
  const onOther = (from: number, msg: Message) => {
    switch (msg.type) {
      case "io-reply":
        if (io instanceof IoClient) io.onReply(msg);
        break;
      case "port-read":
      case "port-write":
        if (io instanceof IoServer) io.onRequest(from, msg);
        break;
      default:
        config.onOther?.(from, msg);
    }
  };
  agent = new DsmAgent(dsm, vcpu, links, onOther);
  const a = agent;
  // Node 0 starts owning every page; every other node starts with nothing.
  if (plan.self !== 0) vcpu.setAllPages("none");
  let serial: number[] = [];
  if (hostsDevices) {
    io = new IoServer(portSpaceOf(cpuIo), (to, msg) => a.send(to, msg));
    vcpu.emulator.add_listener("serial0-output-byte", (byte: number) => void serial.push(byte));
  } else {
    io = new IoClient(a, plan.self, deviceNode);
    forwardPorts(cpuIo, io);
  }

  const poll = () => {
    a.poll();
    if (io instanceof IoServer) io.drain();
    if (serial.length > 0) {
      // Console output leaves in batches, at most one per poll (every millisecond or so).
      const bytes = Uint8Array.from(serial);
      serial = [];
      config.onSerial(bytes);
    }
  };
  let timer: ReturnType<typeof setInterval> | undefined;
  if (config.runCpu) {
    // v86 yields between slices (setImmediate in Node, postMessage in a browser); a 1 ms timer gets
    // the peers' requests served between slices while the CPU runs.
    timer = setInterval(poll, 1);
    vcpu.emulator.run();
  }
  return {
    vcpu,
    dsm,
    agent: a,
    links,
    io,
    poll,
    serveUntil(stop) {
      while (!stop()) {
        poll();
        links.waitForTraffic(20);
      }
    },
    async destroy() {
      if (timer) clearInterval(timer);
      await vcpu.destroy();
    },
  };
}
