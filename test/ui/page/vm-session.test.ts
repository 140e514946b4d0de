// The page's VM plumbing with a fake worker and a manual clock: status transitions, console bytes
// both ways, image checks before the worker starts, and the boot watchdog.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { VmEvent, VmWorkerApi } from "../../../src/runtime/web/vm-api.ts";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { DEFAULT_BOOT_CONFIG } from "../../../src/ui/page/boot-config.ts";
import { VmSession, type VmStatus } from "../../../src/ui/page/vm-session.ts";
import { createRequire } from "node:module";

const paths = ensureGuestImages();
const files: Record<string, Uint8Array> = {
  [DEFAULT_BOOT_CONFIG.kernelUrl]: readFileSync(paths.bzImage),
  [DEFAULT_BOOT_CONFIG.initrdUrl]: readFileSync(paths.initramfs),
  [DEFAULT_BOOT_CONFIG.biosUrl]: readFileSync(paths.bios),
  [DEFAULT_BOOT_CONFIG.vgaBiosUrl]: readFileSync(paths.vgaBios),
  "v86.wasm": readFileSync(createRequire(import.meta.url).resolve("v86/build/v86.wasm")),
};

class ManualClock {
  timers = new Map<number, { at: number; fn: () => void }>();
  now = 0;
  next = 1;
  setTimeout = (fn: () => void, ms: number) => {
    this.timers.set(this.next, { at: this.now + ms, fn });
    return this.next++;
  };
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);
  advance(ms: number) {
    this.now += ms;
    for (const [h, t] of [...this.timers]) if (t.at <= this.now) (this.timers.delete(h), t.fn());
  }
}

function setup(overrides: Partial<Record<string, Uint8Array>> = {}, workerFails?: string) {
  const statuses: VmStatus[] = [];
  const output: number[] = [];
  const clock = new ManualClock();
  let emit: (e: VmEvent) => void = () => {};
  const typed: number[] = [];
  const worker = {
    terminated: false,
    booted: null as null | { cmdline: string; memoryMiB: number; kernelBytes: number },
    ping: async () => "pong" as const,
    boot: async (images, options, onEvent) => {
      worker.booted = { ...options, kernelBytes: images.bzImage.byteLength };
      emit = onEvent;
    },
    serialInput: async (bytes) => void typed.push(...bytes),
    stop: async () => emit({ kind: "stopped" }),
    terminate: () => void (worker.terminated = true),
  } satisfies VmWorkerApi & Record<string, unknown>;
  const all = { ...files, ...overrides };
  const session = new VmSession({
    fetchImage: async (url, progress) => {
      const data = all[url];
      if (!data) throw new Error("HTTP 404 Not Found");
      progress(data.length, data.length);
      return data.slice().buffer;
    },
    wasmUrl: "v86.wasm",
    startWorker: async () => {
      if (workerFails) throw new Error(workerFails);
      return worker;
    },
    clock,
    onStatus: (s) => statuses.push(s),
    onOutput: (b) => output.push(...b),
  });
  const serial = (text: string) => emit({ kind: "serial", bytes: new TextEncoder().encode(text) });
  return { session, statuses, output, clock, worker, typed, serial, emit: (e: VmEvent) => emit(e) };
}

describe("VmSession", () => {
  it("fetches, boots, shows console output, and is running once the shell prompt appears", async () => {
    const t = setup();
    await t.session.boot(DEFAULT_BOOT_CONFIG);
    expect(t.statuses.filter((s) => s.phase === "fetching").map((s) => (s as { file: string }).file)).toContain("kernel");
    expect(t.worker.booted).toEqual({ cmdline: DEFAULT_BOOT_CONFIG.cmdline, memoryMiB: 128, kernelBytes: files[DEFAULT_BOOT_CONFIG.kernelUrl]!.length });
    expect(t.session.phase).toBe("booting");
    t.serial("Linux version 6.1\r\n");
    t.serial("giantweb:/root# ");
    expect(t.session.phase).toBe("running");
    expect(new TextDecoder().decode(Uint8Array.from(t.output))).toBe("Linux version 6.1\r\ngiantweb:/root# ");
    await t.session.input(new TextEncoder().encode("ls\r"));
    expect(String.fromCharCode(...t.typed)).toBe("ls\r");
    // Once the shell is up, a quiet guest is not a hung guest.
    t.clock.advance(DEFAULT_BOOT_CONFIG.watchdogSeconds * 1000 * 10);
    expect(t.session.phase).toBe("running");
    await t.session.stop();
    expect(t.session.phase).toBe("stopped");
    expect(t.worker.terminated).toBe(true);
  });

  it("declares the boot hung when the guest prints nothing for the watchdog's limit", async () => {
    const t = setup();
    await t.session.boot(DEFAULT_BOOT_CONFIG);
    t.clock.advance(DEFAULT_BOOT_CONFIG.watchdogSeconds * 1000 - 1);
    t.serial("still booting\r\n"); // output re-arms the watchdog
    t.clock.advance(DEFAULT_BOOT_CONFIG.watchdogSeconds * 1000 - 1);
    expect(t.session.phase).toBe("booting");
    t.clock.advance(2);
    expect(t.statuses.at(-1)).toEqual({ phase: "error", message: `the guest printed nothing for ${DEFAULT_BOOT_CONFIG.watchdogSeconds} s while booting; it looks hung (watchdog)` });
    expect(t.worker.terminated).toBe(true);
  });

  it("checks images before any worker starts", async () => {
    const t = setup({ [DEFAULT_BOOT_CONFIG.kernelUrl]: files[DEFAULT_BOOT_CONFIG.initrdUrl] });
    await t.session.boot(DEFAULT_BOOT_CONFIG);
    expect(t.statuses.at(-1)).toMatchObject({ phase: "error", message: expect.stringMatching(/the kernel \(guest\/linux\/bzImage\).* is not a Linux bzImage/) });
    expect(t.worker.booted).toBeNull();
  });

  it("reports an image that cannot be fetched, and a worker that cannot start", async () => {
    const missing = setup({ [DEFAULT_BOOT_CONFIG.biosUrl]: undefined });
    await missing.session.boot(DEFAULT_BOOT_CONFIG);
    expect(missing.statuses.at(-1)).toEqual({ phase: "error", message: "cannot fetch the BIOS from guest/bios/seabios.bin: HTTP 404 Not Found" });
    const noWorker = setup({}, "the worker script could not be loaded");
    await noWorker.session.boot(DEFAULT_BOOT_CONFIG);
    expect(noWorker.statuses.at(-1)).toEqual({ phase: "error", message: "the VM worker failed to start: the worker script could not be loaded" });
  });

  it("refuses a second boot while one runs, and passes the worker's own errors on", async () => {
    const t = setup();
    await t.session.boot(DEFAULT_BOOT_CONFIG);
    await expect(t.session.boot(DEFAULT_BOOT_CONFIG)).rejects.toThrow(/already booting/);
    t.emit({ kind: "error", message: "v86 failed to start: out of memory" });
    expect(t.statuses.at(-1)).toEqual({ phase: "error", message: "v86 failed to start: out of memory" });
    expect(t.worker.terminated).toBe(true);
    // Late output from a failed VM is dropped, not shown as if it were running.
    t.serial("late");
    expect(t.output).toEqual([]);
  });
});
