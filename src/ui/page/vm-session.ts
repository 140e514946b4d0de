// One VM as the page sees it: fetch and check the images, start the worker, boot, watch for a hung
// guest, pass keys in and console bytes out. Its dependencies are injected, so it is unit-tested
// with fakes; main.ts wires it to fetch, a real Web Worker and the xterm pane.

import { checkBios, checkBzImage, checkInitramfs, checkVgaBios } from "../../guests/image-checks.ts";
import { GUEST_PROMPT } from "../../guests/initramfs.ts";
import type { VmEvent, VmImages, VmWorkerApi } from "../../runtime/web/vm-api.ts";
import type { BootConfig } from "./boot-config.ts";

export type VmStatus =
  | { phase: "idle" }
  | { phase: "fetching"; file: string; loaded: number; total: number | null }
  | { phase: "booting" }
  | { phase: "running" }
  | { phase: "stopped" }
  | { phase: "error"; message: string };

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface VmSessionDeps {
  fetchImage(url: string, onProgress: (loaded: number, total: number | null) => void): Promise<ArrayBuffer>;
  wasmUrl: string;
  /** Starts a worker and resolves once it answers; rejects with a clear message when it cannot. */
  startWorker(): Promise<VmWorkerApi & { terminate(): void }>;
  clock: Clock;
  onStatus(status: VmStatus): void;
  onOutput(bytes: Uint8Array): void;
}

export class VmSession {
  private worker: (VmWorkerApi & { terminate(): void }) | null = null;
  private watchdog: unknown = null;
  private tail = "";
  private status: VmStatus = { phase: "idle" };

  constructor(private readonly deps: VmSessionDeps) {}

  get phase(): VmStatus["phase"] {
    return this.status.phase;
  }

  private set(status: VmStatus): void {
    this.status = status;
    this.deps.onStatus(status);
  }

  private fail(message: string): void {
    this.disarm();
    this.worker?.terminate();
    this.worker = null;
    this.set({ phase: "error", message });
  }

  private arm(seconds: number): void {
    this.disarm();
    this.watchdog = this.deps.clock.setTimeout(() => {
      this.fail(`the guest printed nothing for ${seconds} s while booting; it looks hung (watchdog)`);
    }, seconds * 1000);
  }

  private disarm(): void {
    if (this.watchdog !== null) this.deps.clock.clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  async boot(config: BootConfig): Promise<void> {
    if (this.phase === "fetching" || this.phase === "booting" || this.phase === "running")
      throw new Error(`cannot boot: the VM is already ${this.phase}`);
    let images: VmImages;
    try {
      images = await this.fetchAll(config);
    } catch (err) {
      this.fail((err as Error).message);
      return;
    }
    this.set({ phase: "booting" });
    try {
      this.worker = await this.deps.startWorker();
    } catch (err) {
      this.fail(`the VM worker failed to start: ${(err as Error).message}`);
      return;
    }
    this.tail = "";
    this.arm(config.watchdogSeconds);
    try {
      await this.worker.boot(images, { cmdline: config.cmdline, memoryMiB: config.memoryMiB }, (event) =>
        this.onEvent(event, config),
      );
    } catch (err) {
      this.fail(`the VM failed to boot: ${(err as Error).message}`);
    }
  }

  private onEvent(event: VmEvent, config: BootConfig): void {
    if (this.phase !== "booting" && this.phase !== "running") return;
    switch (event.kind) {
      case "serial":
        this.deps.onOutput(event.bytes);
        if (this.phase === "booting") {
          this.arm(config.watchdogSeconds);
          this.tail = (this.tail + String.fromCharCode(...event.bytes)).slice(-256);
          if (this.tail.includes(GUEST_PROMPT)) {
            this.disarm();
            this.set({ phase: "running" });
          }
        }
        break;
      case "started":
        break;
      case "stopped":
        this.disarm();
        this.set({ phase: "stopped" });
        break;
      case "error":
        this.fail(event.message);
        break;
    }
  }

  private async fetchAll(config: BootConfig): Promise<VmImages> {
    const get = async (file: string, url: string, check: (bytes: Uint8Array, what: string) => unknown) => {
      this.set({ phase: "fetching", file, loaded: 0, total: null });
      let buffer: ArrayBuffer;
      try {
        buffer = await this.deps.fetchImage(url, (loaded, total) => this.set({ phase: "fetching", file, loaded, total }));
      } catch (err) {
        throw new Error(`cannot fetch the ${file} from ${url}: ${(err as Error).message}`);
      }
      check(new Uint8Array(buffer), `the ${file} (${url})`);
      return buffer;
    };
    const wasm = await get("emulator (v86.wasm)", this.deps.wasmUrl, (bytes, what) => {
      if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) throw new Error(`${what} is not a valid WebAssembly module`);
    });
    const bios = await get("BIOS", config.biosUrl, checkBios);
    const vgaBios = await get("VGA BIOS", config.vgaBiosUrl, checkVgaBios);
    const bzImage = await get("kernel", config.kernelUrl, checkBzImage);
    const initrd = await get("initramfs", config.initrdUrl, checkInitramfs);
    return { wasm, bios, vgaBios, bzImage, initrd };
  }

  async input(bytes: Uint8Array): Promise<void> {
    if (this.worker && (this.phase === "booting" || this.phase === "running")) await this.worker.serialInput(bytes);
  }

  async stop(): Promise<void> {
    this.disarm();
    const worker = this.worker;
    this.worker = null;
    if (worker) {
      try {
        await worker.stop();
      } finally {
        worker.terminate();
      }
    }
    if (this.phase !== "error") this.set({ phase: "stopped" });
  }
}
