import { expect, it } from "vitest";
import { DEFAULT_BOOT_CONFIG, MAX_VCPUS, parseBootConfig } from "../../../src/ui/page/boot-config.ts";

it("uses the default guest when the URL has no parameters", () => {
  expect(parseBootConfig("")).toEqual({ ok: true, config: DEFAULT_BOOT_CONFIG });
});

it("takes hand-supplied images and settings from the URL", () => {
  const r = parseBootConfig("?kernel=https://example.org/bz&initrd=my.cpio.gz&mem=256&cmdline=console%3DttyS0%20quiet");
  expect(r).toEqual({
    ok: true,
    config: { ...DEFAULT_BOOT_CONFIG, kernelUrl: "https://example.org/bz", initrdUrl: "my.cpio.gz", memoryMiB: 256, cmdline: "console=ttyS0 quiet" },
  });
});

it("names every bad parameter instead of booting something else", () => {
  const r = parseBootConfig("?mem=9999&kernel=javascript:alert(1)&colour=red&cmdline=%01");
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.errors).toEqual([
    'unknown parameter "colour" (known: kernel, initrd, bios, vgabios, cmdline, mem, watchdog, vcpus, memory, relay, possible, stock, vmlink, spinwait)',
    'kernel: "javascript:alert(1)" must be an http(s) URL or a path on this server',
    "cmdline: must be printable ASCII of at most 2047 characters",
    'mem: "9999" must be a whole number from 32 to 2048',
  ]);
});

it("checks the machine's shape: vCPU count and where memory lives", () => {
  expect(parseBootConfig("?memory=remote")).toEqual({ ok: true, config: { ...DEFAULT_BOOT_CONFIG, memory: "remote" } });
  const r = parseBootConfig("?memory=cloud&vcpus=0");
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.errors).toEqual([`vcpus: "0" must be a whole number from 1 to ${MAX_VCPUS}`, 'memory: "cloud" must be "local" or "remote"']);
});

it("takes a signaling relay for clusters, checked as a join link's relay is", () => {
  expect(parseBootConfig("?relay=wss%3A%2F%2Frelay.example%3A8787%2F")).toEqual({ ok: true, config: { ...DEFAULT_BOOT_CONFIG, relayUrl: "wss://relay.example:8787/" } });
  const r = parseBootConfig("?relay=http%3A%2F%2Fx&watchdog=1");
  expect(r.ok).toBe(false);
  if (!r.ok)
    expect(r.errors).toEqual(['watchdog: "1" must be a whole number from 5 to 3600', 'relay: relay address "http://x" must start with ws:// or wss://']);
  const n = parseBootConfig("?relay=ws%3A%2F%2F127");
  expect(!n.ok && n.errors).toEqual(['relay: relay address "ws://127" has the malformed host "127" (it would mean 0.0.0.127)']);
});

it("takes an elastic VM's possible vCPUs (boots with vCPU 0 alone, local memory)", () => {
  expect(parseBootConfig("?possible=4")).toEqual({ ok: true, config: { ...DEFAULT_BOOT_CONFIG, possibleCpus: 4 } });
  expect(parseBootConfig("?possible=4&vcpus=1")).toEqual({ ok: true, config: { ...DEFAULT_BOOT_CONFIG, possibleCpus: 4 } });
  const r = parseBootConfig("?possible=1");
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.errors).toEqual([`possible: "1" must be a whole number from 2 to ${MAX_VCPUS}`]);
  const s = parseBootConfig("?possible=4&vcpus=2&memory=remote");
  expect(s.ok).toBe(false);
  if (!s.ok) expect(s.errors).toEqual(["possible: an elastic VM boots with 1 vCPU (drop vcpus=2)", "possible: an elastic VM keeps its memory local (drop memory=remote)"]);
});

it("takes how a cluster's node frames go between tabs (?vmlink=), and names a bad value", () => {
  expect(parseBootConfig("?vmlink=relay")).toEqual({ ok: true, config: { ...DEFAULT_BOOT_CONFIG, vmLink: "relay" } });
  expect(parseBootConfig("?vmlink=auto")).toEqual({ ok: true, config: DEFAULT_BOOT_CONFIG });
  expect(parseBootConfig("?vmlink=pair")).toEqual({ ok: true, config: { ...DEFAULT_BOOT_CONFIG, vmLink: "pair" } });
  expect(parseBootConfig("?vmlink=pigeon")).toEqual({ ok: false, errors: ['vmlink: "pigeon" must be "auto", "pair" or "relay"'] });
});

it("takes whether vCPUs block while they spin on the clock (?spinwait=), and names a bad value", () => {
  expect(parseBootConfig("?spinwait=on")).toEqual({ ok: true, config: { ...DEFAULT_BOOT_CONFIG, spinWait: true } });
  expect(parseBootConfig("?spinwait=off")).toEqual({ ok: true, config: DEFAULT_BOOT_CONFIG });
  expect(parseBootConfig("?spinwait=maybe")).toEqual({ ok: false, errors: ['spinwait: "maybe" must be "on" or "off"'] });
});

it("boots the page's default guest with the same kernel command line as Node's (both name pages and route IRQs alike)", async () => {
  const { DEFAULT_CMDLINE } = await import("../../../src/guests/images.ts");
  expect(DEFAULT_BOOT_CONFIG.cmdline).toBe(DEFAULT_CMDLINE);
  expect(DEFAULT_CMDLINE.split(" ")).toEqual(expect.arrayContaining(["nokaslr", "irqaffinity=0", "lpj=4000000"]));
});
