// What the page boots, from its URL. Pure, so it is unit-tested: every parameter is checked and a
// bad one is reported by name instead of being ignored or crashing the boot.

import { checkRelayUrl } from "../../fabric/join-link.ts";

export interface BootConfig {
  kernelUrl: string;
  initrdUrl: string;
  biosUrl: string;
  vgaBiosUrl: string;
  cmdline: string;
  memoryMiB: number;
  /** Seconds without serial output, before the shell prompt, after which the boot is declared hung. */
  watchdogSeconds: number;
  /** vCPUs of the guest, each in its own worker. */
  vcpus: number;
  /**
   * "local": node 0 (the boot vCPU's node) starts owning guest RAM. "remote": a separate worker owns
   * it and every page the vCPUs touch comes through the DSM (a demonstration of the fault path).
   */
  memory: "local" | "remote";
  /**
   * The signaling relay a cluster created on this page uses (ws:// or wss://), e.g. one run on its
   * own with scripts/relay.ts; null: the page server's own (/fabric-relay), when "other machines" is ticked.
   */
  relayUrl: string | null;
  /**
   * An elastic VM (`?possible=N`, issue 14): the guest may have up to N vCPUs; it boots with vCPU 0
   * alone and the page's Add/Remove vCPU buttons start and end a node (a worker) per vCPU while it
   * runs. null: a fixed VM of `vcpus` vCPUs.
   */
  possibleCpus: number | null;
  /**
   * How a cluster's node frames go between tabs (`?vmlink=`, issue 15): "auto", on data channels the
   * tabs' workers own wherever both tabs can (each node sends on its own); "pair", on the one channel
   * per pair of tabs that the net workers own (how "auto" was before node channels, for comparison);
   * "relay", through the main threads (the fallback, for comparison and its test).
   */
  vmLink: "auto" | "pair" | "relay";
  /**
   * Whether this tab's vCPUs, spinning on the clock, block on their doorbells (`?spinwait=on|off`;
   * engine hooks.spinWait): off by default (it did not pay off side by side, and would slow a loop that works but reads the clock at every turn);
   * on to try it (the bench's side-by-side runs).
   */
  spinWait: boolean;
}

export const DEFAULT_BOOT_CONFIG: BootConfig = {
  kernelUrl: "guest/linux/bzImage",
  initrdUrl: "guest/linux/initramfs.cpio.gz",
  biosUrl: "guest/bios/seabios.bin",
  vgaBiosUrl: "guest/bios/vgabios.bin",
  // nokaslr: the live view names pages from System.map, which holds only with the kernel at its
  // link address; irqaffinity=0: device interrupts on vCPU 0, beside the devices on node 0 (as
  // src/guests/images.ts DEFAULT_CMDLINE, which Node boots use, says at length); lpj: no CPU
  // times its delay loop against the ticks (the value the TSC gives; images.ts says why).
  cmdline: "console=ttyS0 tsc=reliable nokaslr irqaffinity=0 lpj=4000000",
  memoryMiB: 128,
  // A healthy boot is silent for long stretches (kernel decompression; the initramfs unpacking
  // before "clk: Disabling unused clocks": 38 s with 2 vCPUs in Node on a loaded 2-core machine),
  // and a loaded machine stretches them further: with 90 s, a 2-vCPU browser boot in CI ended in
  // an error right after "evm: HMAC attrs", the line before that stretch.
  watchdogSeconds: 300,
  vcpus: 1,
  memory: "local",
  relayUrl: null,
  possibleCpus: null,
  vmLink: "auto",
  spinWait: false,
};

/** The most vCPUs one tab hosts: one worker each, and the tab's machine has its cores to share. */
export const MAX_VCPUS = 8;

export type ConfigResult = { ok: true; config: BootConfig } | { ok: false; errors: string[] };

// "stock": the one-tab page (stock v86 behind Boot) instead of the front door; it takes no value.
const KNOWN = ["kernel", "initrd", "bios", "vgabios", "cmdline", "mem", "watchdog", "vcpus", "memory", "relay", "possible", "stock", "vmlink", "spinwait"];

function checkUrl(name: string, value: string, base: string, errors: string[]): string {
  try {
    const url = new URL(value, base);
    if (url.protocol !== "http:" && url.protocol !== "https:" && url.protocol !== "blob:") {
      errors.push(`${name}: "${value}" must be an http(s) URL or a path on this server`);
    }
  } catch {
    errors.push(`${name}: "${value}" is not a valid URL`);
  }
  return value;
}

function checkInt(name: string, value: string, min: number, max: number, errors: string[]): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    errors.push(`${name}: "${value}" must be a whole number from ${min} to ${max}`);
    return min;
  }
  return Number(value);
}

export function parseBootConfig(search: string, base = "http://localhost/"): ConfigResult {
  const params = new URLSearchParams(search);
  const errors: string[] = [];
  const config = { ...DEFAULT_BOOT_CONFIG };
  for (const key of params.keys())
    if (!KNOWN.includes(key)) errors.push(`unknown parameter "${key}" (known: ${KNOWN.join(", ")})`);
  const get = (key: string) => params.get(key);
  if (get("kernel") !== null) config.kernelUrl = checkUrl("kernel", get("kernel")!, base, errors);
  if (get("initrd") !== null) config.initrdUrl = checkUrl("initrd", get("initrd")!, base, errors);
  if (get("bios") !== null) config.biosUrl = checkUrl("bios", get("bios")!, base, errors);
  if (get("vgabios") !== null) config.vgaBiosUrl = checkUrl("vgabios", get("vgabios")!, base, errors);
  if (get("cmdline") !== null) {
    const cmdline = get("cmdline")!;
    // The boot protocol's command line is a NUL-terminated byte string of at most 2047 bytes.
    if (cmdline.length > 2047 || !/^[\x20-\x7e]*$/.test(cmdline))
      errors.push(`cmdline: must be printable ASCII of at most 2047 characters`);
    else config.cmdline = cmdline;
  }
  if (get("mem") !== null) config.memoryMiB = checkInt("mem", get("mem")!, 32, 2048, errors);
  if (get("watchdog") !== null) config.watchdogSeconds = checkInt("watchdog", get("watchdog")!, 5, 3600, errors);
  if (get("vcpus") !== null) config.vcpus = checkInt("vcpus", get("vcpus")!, 1, MAX_VCPUS, errors);
  if (get("memory") !== null) {
    const memory = get("memory")!;
    if (memory === "local" || memory === "remote") config.memory = memory;
    else errors.push(`memory: "${memory}" must be "local" or "remote"`);
  }
  if (get("relay") !== null) {
    try {
      config.relayUrl = checkRelayUrl(get("relay")!);
    } catch (err) {
      errors.push(`relay: ${(err as Error).message}`);
    }
  }
  if (get("vmlink") !== null) {
    const v = get("vmlink")!;
    if (v === "auto" || v === "pair" || v === "relay") config.vmLink = v;
    else errors.push(`vmlink: "${v.slice(0, 40)}" must be "auto", "pair" or "relay"`);
  }
  if (get("spinwait") !== null) {
    const v = get("spinwait")!;
    if (v === "on" || v === "off") config.spinWait = v === "on";
    else errors.push(`spinwait: "${v.slice(0, 40)}" must be "on" or "off"`);
  }
  if (get("possible") !== null) {
    config.possibleCpus = checkInt("possible", get("possible")!, 2, MAX_VCPUS, errors);
    // The elastic VM boots on one vCPU with local memory; the others come and go.
    if (get("vcpus") !== null && get("vcpus") !== "1") errors.push(`possible: an elastic VM boots with 1 vCPU (drop vcpus=${get("vcpus")})`);
    if (config.memory === "remote") errors.push(`possible: an elastic VM keeps its memory local (drop memory=remote)`);
  }
  return errors.length ? { ok: false, errors } : { ok: true, config };
}
