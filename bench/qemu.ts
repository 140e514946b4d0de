// Debian's qemu-system-i386 (TCG) booting the same Linux guest: the native reference for boot times.

import { spawn, spawnSync } from "node:child_process";
import { ensureGuestImages } from "../src/guests/images.ts";
import { GUEST_PROMPT } from "../src/guests/initramfs.ts";

export const QEMU = "qemu-system-i386";

export function qemuInstalled(): boolean {
  return spawnSync(QEMU, ["--version"], { stdio: "ignore" }).status === 0;
}

/** Seconds from starting QEMU with -smp `cpus` to the guest's shell prompt on the serial console. */
export function qemuBootSeconds(cpus: number, timeoutMs = 300_000): Promise<{ seconds: number; cpusOnline: number }> {
  const paths = ensureGuestImages();
  const start = performance.now();
  const child = spawn(
    QEMU,
    ["-accel", "tcg", "-m", "128", "-smp", String(cpus), "-kernel", paths.bzImage, "-initrd", paths.initramfs,
     "-append", paths.cmdline, "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`QEMU -smp ${cpus} showed no shell prompt within ${timeoutMs / 1000} s:\n${out.slice(-1000)}`));
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString("latin1");
      if (out.includes(`${GUEST_PROMPT}/root# `)) {
        const seconds = (performance.now() - start) / 1000;
        clearTimeout(timer);
        child.kill("SIGKILL");
        const online = /(\d+) CPU\(s\) online/.exec(out);
        resolve({ seconds, cpusOnline: online ? Number(online[1]) : 0 });
      }
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
