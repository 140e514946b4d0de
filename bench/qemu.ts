// Debian's qemu-system-i386 (TCG) booting the same Linux guest: the native reference for boot times.

import { ensureGuestImages } from "../src/guests/images.ts";
import { GUEST_PROMPT } from "../src/guests/initramfs.ts";
import { startQemu } from "../src/guests/qemu-process.ts";

/** Seconds from starting QEMU with -smp `cpus` to the guest's shell prompt on the serial console. */
export function qemuBootSeconds(cpus: number, timeoutMs = 300_000): Promise<{ seconds: number; cpusOnline: number }> {
  const paths = ensureGuestImages();
  const start = performance.now();
  let out = "";
  return new Promise((resolve, reject) => {
    const qemu = startQemu({
      args: ["-accel", "tcg", "-m", "128", "-smp", String(cpus), "-kernel", paths.bzImage, "-initrd", paths.initramfs,
             "-append", paths.cmdline, "-display", "none", "-monitor", "none", "-no-reboot"],
      onOutput: (text) => {
        out += text;
        if (!out.includes(`${GUEST_PROMPT}/root# `)) return;
        const seconds = (performance.now() - start) / 1000;
        clearTimeout(timer);
        qemu.destroy();
        const online = /(\d+) CPU\(s\) online/.exec(out);
        resolve({ seconds, cpusOnline: online ? Number(online[1]) : 0 });
      },
    });
    const child = qemu.child;
    const timer = setTimeout(() => {
      qemu.destroy();
      reject(new Error(`QEMU -smp ${cpus} showed no shell prompt within ${timeoutMs / 1000} s:\n${out.slice(-1000)}`));
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
