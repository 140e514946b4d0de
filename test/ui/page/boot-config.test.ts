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
    'unknown parameter "colour" (known: kernel, initrd, bios, vgabios, cmdline, mem, watchdog, vcpus, memory)',
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
