// One node of a many-to-one VM: a vCPU engine (instrumented v86 with its interrupt hooks), its DSM
// node, its links, its share of interrupt routing, and on the device node the devices.
// Environment-neutral: the worker entries (worker_threads in Node, Web Workers in a tab) get the
// guest's v86 options (machine/guest-setup.ts), build the links and call `startVcpuNode`.

import type { AuditReport } from "../../engine/audit-sites.ts";
import { PIC_PORTS, VcpuInterrupts } from "../../engine/interrupts/index.ts";
import { TSC_PER_MS } from "../../engine/interrupts/vcpu-interrupts.ts";
import type { Vcpu } from "../../engine/vcpu.ts";
import { DsmNode } from "../../protocol/dsm/node.ts";
import { checkHoldMs } from "../../protocol/types.ts";
import type { IoSize, Message } from "../../protocol/messages.ts";
import { LocalLinks, type LocalLinksPlan } from "../links/local-links.ts";
import type { BootWrite, GuestV86Options } from "../../machine/guest-setup.ts";
import { InterruptRouter } from "../../machine/interrupts/router.ts";
import { DsmAgent } from "./dsm-agent.ts";
import { forwardPorts, IoClient, IoServer, portSpaceOf } from "../../machine/devices/io-forwarding.ts";
import { errorText, makeFailure, type NodeFailure, type NodeFailureCause } from "../../protocol/tab/node-failure.ts";
import { wallClockMs } from "./wall-clock.ts";
import { checkApicTimerClock, type ApicTimerClock } from "./apic-timer-clock.ts";
import { CpuHotplugDevice } from "../../machine/devices/cpu-hotplug.ts";
import { connectSci, installCpuHotplug } from "../../machine/devices/cpu-hotplug-ports.ts";
import { CPU_HOTPLUG_SCI_IRQ } from "../../machine/devices/cpu-hotplug-interface.ts";
import { portTableOf } from "../../engine/ports.ts";

export interface VcpuNodeConfig {
  plan: LocalLinksPlan;
  wasm: Uint8Array;
  /**
   * The coherence audit (debug): `wasm` is then the audit build and this its site table; an access
   * around the page map stops the node with the AuditError (src/engine/README.md, "The coherence audit").
   */
  audit?: AuditReport;
  /** Every node builds the same v86 machine (firmware, memory size). */
  v86: GuestV86Options;
  /** The vCPU this node hosts (its APIC ID), or null for a node that only holds memory. */
  vcpu: number | null;
  /** The node hosting each possible vCPU, or null while none does (vCPU 0 boots; the others start waiting for INIT/SIPI). */
  vcpuNodes: (number | null)[];
  /** The node that hosts the devices (default 0, as in GiantVM); the others forward their I/O to it. */
  deviceNode?: number;
  /** Blocks written into guest RAM before the first instruction (the firmware's boot plan); node 0 only. */
  bootWrites?: BootWrite[];
  /**
   * Wall-clock time (ms since 1970) that the guest's TSC counts from, the same on every node (default 0).
   * Every vCPU reads its TSC from the wall clock, so vCPUs in different workers, tabs and (up to
   * clock skew) machines agree.
   */
  tscEpochMs?: number;
  /** Device output (the device node's first UART). */
  onSerial(bytes: Uint8Array): void;
  onOther?(from: number, msg: Message): void;
  /**
   * Called with the node's links before anything uses them: where the caller reroutes the node's
   * sends (a tab's node sends frames for other tabs on its own channels, links/node-channels.ts).
   */
  onLinks?(links: LocalLinks): void;
  /** When this node notices messages from other nodes (default: every way on). */
  serve?: ServeOptions;
  /**
   * Hold window in ms (Mirage's delta; default 0, none): a page that came here to be written
   * is not given up for this long after this vCPU first used it, so it cannot bounce between nodes
   * faster than work is done on it. A local policy: nodes of one VM may differ.
   */
  holdMs?: number;
  /** What the vCPU's local APIC timer (the guest's periodic tick) counts; see apic-timer-clock.ts. */
  apicTimer?: ApicTimerClock;
  /**
   * The node stopped working: its engine threw out of v86's main loop (a Rust panic, with the text
   * v86 printed for it), or serving its links threw on the timer or the doorbell. Called once.
   */
  onFailure?(failure: NodeFailure): void;
  /**
   * An elastic VM (issue 14): the DSM's members when this node starts (default: every slot) and
   * whether it joins a running VM (it then starts with no pages and waits for node 0's manager
   * records); on the device node, the CPU hotplug device for `possibleCpus` with `present` enabled.
   */
  elastic?: { members: number[]; joining: boolean; possibleCpus: number; present: number[] };
}

/**
 * How soon a node handles what other nodes send it (IPIs, page requests, I/O). A frame waits in
 * its ring until the node polls; these are the moments it does.
 */
export interface ServeOptions {
  /** Inside a run slice, between v86's instruction chunks, when the doorbell rang (default true). */
  inSlice?: boolean;
  /** On the event loop as soon as the doorbell rings, e.g. while the vCPU is halted (default: where Atomics.waitAsync exists). */
  onDoorbell?: boolean;
  /** A poll timer's interval in ms, or null for none (default 1). It also paces console output. */
  timerMs?: number | null;
  /**
   * A vCPU that spins on the clock inside a slice blocks on its doorbell, up to SPIN_WAIT_MS at a
   * time, instead of burning a core the threads it waits on need (the engine's hooks.spinWait;
   * needs inSlice). Default false: side by side on two tabs it did not shorten the IPI round trip,
   * and a guest loop that works but reads the clock at every turn would look like a spin and be
   * slowed (README-interrupts.md, "A vCPU that spins on the clock").
   */
  spinWait?: boolean;
}

function checkServe(serve: ServeOptions): Required<ServeOptions> {
  const { inSlice = true, onDoorbell = LocalLinks.canWatch, timerMs = 1, spinWait = false } = serve;
  if (typeof inSlice !== "boolean") throw new TypeError(`serve.inSlice must be a boolean, got ${JSON.stringify(inSlice)}`);
  if (typeof onDoorbell !== "boolean") throw new TypeError(`serve.onDoorbell must be a boolean, got ${JSON.stringify(onDoorbell)}`);
  if (onDoorbell && !LocalLinks.canWatch) throw new Error("serve.onDoorbell needs Atomics.waitAsync, which this JavaScript engine lacks");
  if (timerMs !== null && !(typeof timerMs === "number" && Number.isFinite(timerMs) && timerMs > 0))
    throw new RangeError(`serve.timerMs must be a positive number of ms or null, got ${JSON.stringify(timerMs)}`);
  if (typeof spinWait !== "boolean") throw new TypeError(`serve.spinWait must be a boolean, got ${JSON.stringify(spinWait)}`);
  return { inSlice, onDoorbell, timerMs, spinWait };
}

export interface VcpuNode {
  vcpu: Vcpu;
  cpu: VcpuInterrupts;
  dsm: DsmNode;
  agent: DsmAgent;
  links: LocalLinks;
  io: IoClient | IoServer;
  router: InterruptRouter | null;
  /** The device node's CPU hotplug device (elastic VMs only). */
  hotplug: CpuHotplugDevice | null;
  /** Handles waiting messages without blocking (called between v86 slices). */
  poll(): void;
  /** Serves peers until `stop()` returns true; blocks the worker (for nodes whose CPU does not run). */
  serveUntil(stop: () => boolean): void;
  destroy(): Promise<void>;
}

/** A TSC read from the wall clock (performance.timeOrigin is shared by a process' threads, and is wall time). */
export function wallClockTsc(epochMs: number): () => bigint {
  if (!Number.isFinite(epochMs)) throw new RangeError(`the TSC epoch must be a finite time in ms, got ${epochMs}`);
  return () => BigInt(Math.max(0, Math.round((performance.timeOrigin - epochMs + performance.now()) * TSC_PER_MS)));
}

export async function startVcpuNode(config: VcpuNodeConfig): Promise<VcpuNode> {
  const { plan } = config;
  const serve = checkServe(config.serve ?? {});
  const holdMs = checkHoldMs(config.holdMs);
  const apicTimer = checkApicTimerClock(config.apicTimer);
  const deviceNode = config.deviceNode ?? 0;
  const hostsDevices = plan.self === deviceNode;
  let agent: DsmAgent | undefined;
  let hotplug: CpuHotplugDevice | null = null;
  let router: InterruptRouter | null = null;
  // v86 prints a Rust panic's message through this import just before the panic traps, and the
  // trap itself says only "unreachable": keep the last lines so a failure can quote the panic.
  let memory: WebAssembly.Memory | undefined;
  const wasmLog: string[] = [];
  const consoleLog = (ptr: number, len: number) => {
    const text = memory ? new TextDecoder().decode(new Uint8Array(memory.buffer).slice(ptr >>> 0, (ptr >>> 0) + (len >>> 0))) : `(${len} bytes logged before the engine started)`;
    wasmLog.push(text);
    if (wasmLog.length > 4) wasmLog.shift();
    console.error(text); // what v86's own import does
  };
  const cpu = await VcpuInterrupts.create({
    wasm: config.wasm,
    v86: { ...config.v86, autostart: false },
    apicId: config.vcpu ?? 0,
    // vCPU 0 boots; every other vCPU waits for INIT/SIPI from the guest, like an AP on a PC.
    role: config.vcpu !== null && config.vcpu > 0 ? "ap" : "bsp",
    tscClock: wallClockTsc(config.tscEpochMs ?? 0),
    ...(apicTimer === "running" ? { apicTimerLag: () => agent?.waitedMs() ?? 0 } : {}),
    imports: { console_log_from_wasm: consoleLog },
    ...(config.audit ? { audit: { report: config.audit } } : {}),
    onFault: (fault) => {
      if (!agent) throw new Error(`page fault on page ${fault.page} before the DSM started`);
      return { access: agent.fault(fault.page, fault.access) };
    },
    hooks: {
      onSend: (msg) => (router ? router.onSend(msg) : true),
      onApicRegister: (reg, value, now) => router?.onApicRegister(reg, value, now),
      onEoi: (vector) => (router ? router.onEoi(vector) : true),
    },
  });
  const vcpu = cpu.vcpu;
  memory = vcpu.wasm.memory;
  let failed = false;
  const fail = (cause: NodeFailureCause, error: unknown) => {
    if (failed) return;
    failed = true;
    let message = errorText(error);
    if (cause === "engine") {
      const panic = [...wasmLog].reverse().find((l) => l.includes("panicked at"));
      message = panic ? `the engine ${panic.trim().replace(/\s*\n\s*/g, " ")} (${message})` : `the engine stopped: ${message}`;
    }
    // What the guest wrote to the UART up to the failure is what the user reads next to the stop.
    if (serial.length > 0) config.onSerial(Uint8Array.from(serial.splice(0)));
    config.onFailure?.(makeFailure(plan.self, config.vcpu, cause, message, wallClockMs()));
  };
  // The engine stops itself on a throw out of main_loop (vcpu.ts) and reports it here.
  vcpu.onError = (error) => fail("engine", error);
  const dsm = new DsmNode({
    self: plan.self,
    nodes: plan.nodes,
    pages: vcpu.pageCount,
    holdGrants: holdMs > 0,
    ...(config.elastic ? { members: config.elastic.members, joining: config.elastic.joining } : {}),
  });
  const links = new LocalLinks(plan);
  config.onLinks?.(links);

  let io: IoClient | IoServer;
  const onOther = (from: number, msg: Message) => {
    if (router?.onMessage(msg)) return;
    switch (msg.type) {
      case "io-reply":
        if (io instanceof IoClient) io.onReply(msg);
        break;
      case "port-read":
      case "port-write":
      case "mmio-read":
      case "mmio-write":
        if (io instanceof IoServer) io.onRequest(from, msg);
        else throw new Error(`node ${plan.self} has no devices, but node ${from} sent it a ${msg.type}`);
        break;
      default:
        config.onOther?.(from, msg);
    }
  };
  agent = new DsmAgent(dsm, vcpu, links, onOther, undefined, holdMs);
  const a = agent;
  // Every node routes: a vCPU's IPIs start on its node, the IOAPIC's interrupts on the device node.
  if (config.vcpu !== null || hostsDevices)
    router = new InterruptRouter(config.vcpu, plan.self, config.vcpuNodes, deviceNode, (to, msg) => a.send(to, msg), {
      inject: (irq) => cpu.inject(irq),
      ioapicEoi: (vector) => cpu.ioapicEoi(vector),
    });

  // Node 0 starts owning every page; every other node starts with nothing.
  if (plan.self === 0) for (const w of config.bootWrites ?? []) vcpu.emulator.write_memory(w.bytes, w.address);
  else vcpu.setAllPages("none");

  let serial: number[] = [];
  if (hostsDevices) {
    const ports = portSpaceOf(vcpu.ports);
    const picPorts = new Set<number>(PIC_PORTS);
    // The 8259 PICs live inside v86's wasm, not behind cpu.io; the engine exposes them.
    // Requests run as they arrive, possibly while this node's vCPU is inside an instruction:
    // deviceAccess keeps v86 from entering an interrupt handler there.
    const dev = cpu.deviceAccess.bind(cpu);
    io = new IoServer(
      {
        read: (port, size) => dev(() => (picPorts.has(port) && size === 1 ? cpu.devices.read8(port) : ports.read(port, size))),
        write: (port, size, value) => dev(() => (picPorts.has(port) && size === 1 ? cpu.devices.write8(port, value) : ports.write(port, size, value))),
      },
      (to, msg) => a.send(to, msg),
      { read: (addr, size) => dev(() => cpu.devices.read(addr, size)), write: (addr, size, value) => dev(() => cpu.devices.write(addr, size, value)) },
    );
    vcpu.onSerialOutput((byte) => void serial.push(byte));
    if (config.elastic) {
      // Replaces v86's GPE0 bytes; the SCI is an IRQ no v86 device drives (cpu-hotplug-interface.ts).
      hotplug = new CpuHotplugDevice({ possibleCpus: config.elastic.possibleCpus, present: config.elastic.present });
      installCpuHotplug(portTableOf(vcpu.ports), hotplug);
      connectSci(hotplug, CPU_HOTPLUG_SCI_IRQ, (irq) => cpu.setIsaIrq(irq, true), (irq) => cpu.setIsaIrq(irq, false));
    }
  } else {
    const client = new IoClient(a, config.vcpu ?? plan.self, deviceNode);
    io = client;
    forwardPorts(vcpu.ports, client);
    cpu.routePic({ read8: (port) => client.read(port, 1), write8: (port, value) => client.write(port, 1, value) });
    cpu.routeIoapic({
      read: (addr, size) => client.mmioRead(addr, size as IoSize),
      write: (addr, size, value) => client.mmioWrite(addr, size as IoSize, value),
    });
  }

  // The doorbell's count when the links were last polled: a ring since then may have brought a frame.
  let polledAt = links.rings - 1;
  const poll = () => {
    polledAt = links.rings;
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
  let unwatch: (() => void) | undefined;
  if (config.vcpu !== null) {
    // A running vCPU serves between v86's instruction chunks (tens of µs to 1 ms apart) when its
    // doorbell rang, or when it holds pages whose access it has not reported done (the page's
    // manager waits for that before moving it again); one Atomics.load per chunk otherwise. The
    // chunk ends are instruction boundaries, so page revocations, injections and device accesses
    // are as safe as between slices.
    // A guest spinning on the TSC makes chunks long: a ring noticed at a clock read ends the slice
    // early (hooks.pending), and the doorbell's watcher or the next chunk end serves it.
    if (serve.inSlice) {
      cpu.hooks.onChunk = () => {
        if (links.rings === polledAt && !a.holdsGrants && !a.windowDue) return;
        poll();
      };
      cpu.hooks.pending = () => links.rings !== polledAt || a.windowDue;
      // The doorbell ends the block: whatever rings it is served right after (pending says so).
      if (serve.spinWait) cpu.hooks.spinWait = (ms) => links.waitForTraffic(ms);
    }
    // A halted vCPU (or one waiting for SIPI) sleeps in a v86 timer of up to 100 ms: the doorbell
    // wakes the event loop at once, and an injected interrupt then wakes v86 (stop_idling).
    // A throw here would otherwise be an uncaught error of the worker that nobody reads: report it
    // and stop serving (the VM cannot go on without this node).
    const served = () => {
      try {
        poll();
      } catch (error) {
        if (timer) clearInterval(timer);
        unwatch?.();
        fail("serve", error);
      }
    };
    if (serve.onDoorbell) unwatch = links.watch(served);
    // v86 yields between slices (setImmediate in Node, postMessage in a browser); the timer is the
    // fallback where the doorbell cannot be watched, and paces console output.
    if (serve.timerMs !== null) timer = setInterval(served, serve.timerMs);
    await vcpu.emulator.run();
  }
  return {
    vcpu,
    cpu,
    dsm,
    agent: a,
    links,
    io,
    router,
    hotplug,
    poll,
    serveUntil(stop) {
      while (!stop()) {
        poll();
        links.waitForTraffic(20);
      }
    },
    async destroy() {
      if (timer) clearInterval(timer);
      unwatch?.();
      await vcpu.destroy();
    },
  };
}
