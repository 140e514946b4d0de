// A many-to-one VM inside one tab: one Web Worker per node, joined by shared-memory links.
// It offers the same control interface as the single-vCPU worker (VmWorkerApi), so the page's
// session logic (image checks, status, watchdog, console) is the same for both.

import type { VmBootOptions, VmEvent, VmImages, VmWorkerApi } from "./vm-api.ts";
import { planLocalLinks } from "../links/local-links.ts";
import { describeFailure, type NodeFailure } from "../../protocol/tab/node-failure.ts";
import { NodeControls, type NodeControlRequest, NodeRequests, type NodeEvent, type NodeInit, type NodeReports, type NodeToPage, type PageToNode, watchNode } from "./node-protocol.ts";
import { ElasticVm } from "../node/elastic-vm.ts";

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
  /**
   * An elastic VM (issue 14, as src/runtime/nodejs/elastic-cluster.ts): the firmware describes
   * `possibleCpus` CPUs; node 0 boots alone with vCPU 0 (`nodes` must be [{ vcpu: 0 }], our
   * firmware, devices on node 0); the links are planned for `possibleCpus` node slots, and nodes
   * join (join()) and leave (leave()) with one vCPU each while the guest runs.
   */
  elastic?: { possibleCpus: number };
}

const START_TIMEOUT_MS = 60_000;

/** An event a node reported, with the node. */
export type TabNodeEvent = NodeEvent & { node: number };

export class TabMachine implements VmWorkerApi {
  private workers: Worker[] = [];
  private stopFlag = new SharedArrayBuffer(4);
  /** The live view's controls, read by every local node (see NodeInit.control). */
  private readonly controls = new NodeControls();
  /** The node whose CPU runs the console (the lowest node that runs a CPU). */
  private consoleNode = -1;
  // The elastic VM's state: control requests in flight, node events, each possible vCPU's node.
  private readonly requests = new NodeRequests();
  private readonly nodeEvents: TabNodeEvent[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly failures: string[] = [];
  private elasticVm: ElasticVm | null = null;

  constructor(private readonly layout: TabMachineLayout) {
    if (layout.nodes.length < 1) throw new Error("a machine needs at least one node");
    const vcpus = layout.nodes.flatMap((n) => (n.vcpu === null ? [] : [n.vcpu])).sort((a, b) => a - b);
    if (vcpus.length === 0 || vcpus.some((v, i) => v !== i)) throw new Error("the nodes' vCPUs must be numbered 0..N-1");
    if (layout.elastic) {
      const { possibleCpus } = layout.elastic;
      if (!Number.isInteger(possibleCpus) || possibleCpus < 1) throw new RangeError(`possibleCpus must be a positive integer, got ${String(possibleCpus)}`);
      if (layout.nodes.length !== 1 || layout.nodes[0]!.vcpu !== 0 || (layout.deviceNode ?? 0) !== 0 || !layout.firmware)
        throw new Error("an elastic VM boots node 0 alone with vCPU 0 and the devices, on our firmware");
    }
    if (typeof SharedArrayBuffer === "undefined" || !crossOriginIsolated)
      throw new Error("this page is not cross-origin isolated, so SharedArrayBuffer is unavailable (serve it with COOP/COEP headers)");
  }

  async ping(): Promise<"pong"> {
    return "pong";
  }

  async boot(images: VmImages, options: VmBootOptions, onEvent: (event: VmEvent) => void): Promise<void> {
    const elastic = this.layout.elastic;
    const plan = planLocalLinks(elastic ? elastic.possibleCpus : this.layout.nodes.length);
    const vcpuNodes: (number | null)[] = elastic ? Array.from({ length: elastic.possibleCpus }, () => null) : [];
    this.layout.nodes.forEach((n, i) => n.vcpu !== null && (vcpuNodes[n.vcpu] = i));
    this.consoleNode = this.layout.deviceNode ?? 0;
    const spawn = (self: number, vcpu: number | null, hosts: (number | null)[], members?: number[], joining = false): Promise<void> => {
      const worker = new Worker(new URL("./node-worker.ts", import.meta.url), { type: "module", name: `node${self}` });
      this.workers[self] = worker;
      // A node failing stops this VM: the session hears it as an error and ends every worker.
      const onFailure = (f: NodeFailure) => (this.failures.push(describeFailure(f)), this.notify(), onEvent({ kind: "error", message: `VM stopped: ${describeFailure(f)}` }));
      worker.addEventListener("message", (e: MessageEvent<NodeToPage>) => this.onNodeMessage(self, e.data));
      const started = watchNode(worker, { self, vcpu }, START_TIMEOUT_MS, onEvent, { ...this.layout, onFailure });
      const spec = { vcpu };
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
        // An elastic VM's unhosted vCPUs are null (the router skips them until set-host).
        vcpuNodes: hosts,
        deviceNode: this.layout.deviceNode ?? 0,
        stop: this.stopFlag,
        control: this.controls.cell,
        ...(elastic
          ? { elastic: { possibleCpus: elastic.possibleCpus, presentCpus: 1, members: members ?? [0], joining } satisfies NodeInit["elastic"] }
          : {}),
      };
      worker.postMessage(init);
      return started;
    };
    if (elastic)
      this.elasticVm = new ElasticVm({
        possibleCpus: elastic.possibleCpus,
        control: (node, request) => this.control(node, request),
        start: (k, vcpu, hosts, members) => spawn(k, vcpu, hosts, members, true),
        end: async (k) => {
          this.workers[k]?.terminate();
          delete this.workers[k];
        },
        eventCount: () => this.nodeEvents.length,
        waitForEvent: (match, ms, from) => this.waitForEvent(match, ms, from),
        failure: () => this.failures[0] ?? null,
      });
    await Promise.all(this.layout.nodes.map((spec, self) => spawn(self, spec.vcpu, vcpuNodes)));
    onEvent({ kind: "started" });
  }

  private notify(): void {
    this.listeners.forEach((l) => l());
  }

  private onNodeMessage(node: number, m: NodeToPage): void {
    if (this.requests.answer(node, m)) return;
    if (m.kind === "event") {
      this.nodeEvents.push({ ...m.event, node });
      this.notify();
    }
  }

  /** A control request to a node's worker (node-worker.ts); rejects with the node's error text. */
  control(node: number, request: NodeControlRequest): Promise<unknown> {
    return this.requests.send(this.workers[node], node, request);
  }


  /** Events the nodes reported (a CPU ejected by the guest, an _OST result), oldest first. */
  events(): TabNodeEvent[] {
    return [...this.nodeEvents];
  }

  private waitForEvent(match: (e: TabNodeEvent) => boolean, ms: number, from: number): Promise<TabNodeEvent> {
    return new Promise((resolve, reject) => {
      const done = (f: () => void) => (clearTimeout(t), this.listeners.delete(check), f());
      const t = setTimeout(() => done(() => reject(new Error(`no such node event within ${ms / 1000} s; events so far: ${JSON.stringify(this.nodeEvents)}`))), ms);
      const check = () => {
        const e = this.nodeEvents.slice(from).find(match);
        if (e) done(() => resolve(e));
        else if (this.failures.length) done(() => reject(new Error(this.failures[0])));
      };
      this.listeners.add(check);
      check();
    });
  }

  /** An elastic VM: the node hosting each possible vCPU, or null (empty for other VMs). */
  hosts(): (number | null)[] {
    return this.elasticVm?.hosts() ?? [];
  }

  /** Whether a join or leave is under way. */
  get changing(): boolean {
    return this.elasticVm?.changing ?? false;
  }

  private elastic(what: string): ElasticVm {
    if (!this.layout.elastic) throw new Error(`cannot ${what}: this VM is not elastic`);
    if (!this.elasticVm) throw new Error(`cannot ${what}: the VM has not booted`);
    return this.elasticVm;
  }

  /**
   * An elastic VM: a new node (a new worker) joins hosting `vcpu` (default: the lowest free one)
   * and the CPU is plugged in at node 0's hotplug device; the guest brings it online on its own.
   */
  async join(wanted?: number): ReturnType<ElasticVm["join"]> {
    return this.elastic("join").join(wanted);
  }

  /**
   * An elastic VM: the guest takes `vcpu` offline and ejects it, its node hands every page it owns
   * to node 0 and its worker ends. Refused for vCPU 0 (node 0 holds the devices).
   */
  async leave(vcpu: number, ejectMs?: number): ReturnType<ElasticVm["leave"]> {
    return this.elastic("leave").leave(vcpu, ejectMs);
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
    for (const w of this.workers) w?.postMessage({ kind: "stop" } satisfies PageToNode);
  }

  terminate(): void {
    Atomics.store(new Int32Array(this.stopFlag), 0, 1);
    for (const w of this.workers) w?.terminate();
    this.workers = [];
    this.requests.failAll("the VM's nodes ended");
  }
}
