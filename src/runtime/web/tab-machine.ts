// A many-to-one VM inside one tab: one Web Worker per node, joined by shared-memory links.
// It offers the same control interface as the single-vCPU worker (VmWorkerApi), so the page's
// session logic (image checks, status, watchdog, console) is the same for both.

import type { VmBootOptions, VmEvent, VmImages, VmWorkerApi } from "./vm-api.ts";
import { planLocalLinks } from "../links/local-links.ts";
import { describeFailure, type NodeFailure } from "../../protocol/tab/node-failure.ts";
import { NodeControls, type NodeReports, type PageToNode, watchNode } from "./node-protocol.ts";

export interface TabMachineLayout extends NodeReports {
  /** One entry per node: the vCPU it hosts, or null for a node that only holds memory. */
  nodes: { vcpu: number | null }[];
  /**
   * true: our firmware boots Linux directly with tables for every vCPU (the page's "BIOS" image is
   * the firmware); false: SeaBIOS boots it on one vCPU.
   */
  firmware: boolean;
  /** The node that hosts the devices (default 0). */
  deviceNode?: number;
}

const START_TIMEOUT_MS = 60_000;

export class TabMachine implements VmWorkerApi {
  private workers: Worker[] = [];
  private stopFlag = new SharedArrayBuffer(4);
  /** The live view's controls, read by every local node (see NodeInit.control). */
  private readonly controls = new NodeControls();
  /** The node whose CPU runs the console (the lowest node that runs a CPU). */
  private consoleNode = -1;

  constructor(private readonly layout: TabMachineLayout) {
    if (layout.nodes.length < 1) throw new Error("a machine needs at least one node");
    const vcpus = layout.nodes.flatMap((n) => (n.vcpu === null ? [] : [n.vcpu])).sort((a, b) => a - b);
    if (vcpus.length === 0 || vcpus.some((v, i) => v !== i)) throw new Error("the nodes' vCPUs must be numbered 0..N-1");
    if (typeof SharedArrayBuffer === "undefined" || !crossOriginIsolated)
      throw new Error("this page is not cross-origin isolated, so SharedArrayBuffer is unavailable (serve it with COOP/COEP headers)");
  }

  async ping(): Promise<"pong"> {
    return "pong";
  }

  async boot(images: VmImages, options: VmBootOptions, onEvent: (event: VmEvent) => void): Promise<void> {
    const plan = planLocalLinks(this.layout.nodes.length);
    const vcpuNodes: number[] = [];
    this.layout.nodes.forEach((n, i) => n.vcpu !== null && (vcpuNodes[n.vcpu] = i));
    this.consoleNode = this.layout.deviceNode ?? 0;
    const ready: Promise<void>[] = [];
    this.layout.nodes.forEach((spec, self) => {
      const worker = new Worker(new URL("./node-worker.ts", import.meta.url), { type: "module", name: `node${self}` });
      this.workers.push(worker);
      // A node failing stops this VM: the session hears it as an error and ends every worker.
      const onFailure = (f: NodeFailure) => onEvent({ kind: "error", message: `VM stopped: ${describeFailure(f)}` });
      ready.push(watchNode(worker, { self, vcpu: spec.vcpu }, START_TIMEOUT_MS, onEvent, { ...this.layout, onFailure }));
      // Every node gets its own copy of the images: each builds its own v86 instance.
      const common = { bzImage: images.bzImage.slice(0), initrd: images.initrd.slice(0), cmdline: options.cmdline, memoryMiB: options.memoryMiB };
      const init: PageToNode = {
        kind: "init",
        plan: { ...plan, self },
        wasm: images.wasm.slice(0),
        guest: this.layout.firmware
          ? { kind: "firmware", firmware: images.bios.slice(0), ...common }
          : { kind: "seabios", bios: images.bios.slice(0), vgaBios: images.vgaBios.slice(0), ...common },
        vcpu: spec.vcpu,
        vcpuNodes,
        deviceNode: this.layout.deviceNode ?? 0,
        stop: this.stopFlag,
        control: this.controls.cell,
      };
      worker.postMessage(init);
    });
    await Promise.all(ready);
    onEvent({ kind: "started" });
  }

  /** The latency knob: added one-way delay (0..50 ms) on every frame every node sends, from now on. */
  setLinkDelay(ms: number): void {
    this.controls.setLinkDelay(ms);
  }

  /** Nodes record DSM and interrupt events (sent in their view reports) while this is on. */
  setTracing(on: boolean): void {
    this.controls.setTracing(on);
  }

  async serialInput(bytes: Uint8Array): Promise<void> {
    this.workers[this.consoleNode]?.postMessage({ kind: "serial-input", bytes } satisfies PageToNode);
  }

  async stop(): Promise<void> {
    Atomics.store(new Int32Array(this.stopFlag), 0, 1);
    for (const w of this.workers) w.postMessage({ kind: "stop" } satisfies PageToNode);
  }

  terminate(): void {
    Atomics.store(new Int32Array(this.stopFlag), 0, 1);
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }
}
