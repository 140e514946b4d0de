// The default guest's initramfs: Debian's static busybox plus our /init, as newc cpio entries.
// Pure (bytes in, bytes out); gzip is applied by the caller so this runs anywhere. Also the larger
// initramfs of the kernel matrix (the same plus Debian libraries), which moves where things land.

import { CpioError, writeCpio, type CpioEntry } from "./cpio.ts";
import { checkI386Elf } from "./image-checks.ts";

/** The shell prompt the guest prints; tests and the page wait for it. */
export const GUEST_PROMPT = "giantweb:";
/** The first line /init prints once the guest's user space is up. */
export const GUEST_BANNER = "giantweb guest up:";

// /init runs as PID 1. busybox installs its applets as symlinks at run time (cheap, and it keeps the
// archive independent of which applets this busybox build has). The shell is restarted if it exits,
// because PID 1 exiting panics the kernel.
export const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=linux
hostname giantweb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# A hot-added CPU is registered but left offline by the kernel; as a distro's udev rule does, bring it
# up (ACPI CPU hotplug, see src/machine/firmware/README-hotplug.md). Removal needs no help.
uevent sh -c '[ "$SUBSYSTEM" = cpu ] && [ "$ACTION" = add ] && [ -w "/sys$DEVPATH/online" ] && echo 1 > "/sys$DEVPATH/online"' </dev/null >/dev/null 2>&1 &
echo "${GUEST_BANNER} Linux $(uname -r), $(nproc) CPU(s) online"
export PS1='${GUEST_PROMPT}\\w# '
cd /root
while true; do setsid cttyhack sh; echo "shell exited; starting a new one"; done
`;

export function initramfsEntries(busybox: Uint8Array): CpioEntry[] {
  checkI386Elf(busybox, "busybox");
  const dirs = ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root", "etc", "mnt"];
  return [
    ...dirs.map((path): CpioEntry => ({ kind: "dir", path, mode: path === "tmp" ? 0o1777 : 0o755 })),
    // The kernel opens /dev/console for PID 1 before /init can mount devtmpfs.
    { kind: "chardev", path: "dev/console", major: 5, minor: 1, mode: 0o600 },
    { kind: "chardev", path: "dev/null", major: 1, minor: 3, mode: 0o666 },
    { kind: "file", path: "bin/busybox", data: busybox, mode: 0o755 },
    { kind: "symlink", path: "bin/sh", target: "busybox" },
    { kind: "file", path: "init", data: new TextEncoder().encode(INIT_SCRIPT), mode: 0o755 },
    { kind: "file", path: "etc/hostname", data: new TextEncoder().encode("giantweb\n") },
  ];
}

export function buildInitramfs(busybox: Uint8Array): Uint8Array {
  return writeCpio(initramfsEntries(busybox));
}

/** Documentation and translations are left out of the larger initramfs: only what a program could load. */
export const LARGE_INITRAMFS_EXCLUDES = ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/locale"];

/**
 * The matrix's larger initramfs: the default entries plus other files (Debian packages' contents),
 * with the same /init. A directory both have is kept once; any other path twice, or an entry whose
 * parent directory comes nowhere before it (the kernel's unpacker would drop it), is refused.
 */
export function largeInitramfsEntries(busybox: Uint8Array, extra: readonly CpioEntry[]): CpioEntry[] {
  const entries = initramfsEntries(busybox);
  const kinds = new Map(entries.map((e) => [e.path, e.kind]));
  for (const e of extra) {
    const had = kinds.get(e.path);
    if (had === "dir" && e.kind === "dir") continue;
    if (had) throw new CpioError(`larger initramfs: ${e.path} (${e.kind}) clashes with the default initramfs's ${had}`);
    const parent = e.path.includes("/") ? e.path.slice(0, e.path.lastIndexOf("/")) : null;
    if (parent !== null && kinds.get(parent) !== "dir") throw new CpioError(`larger initramfs: ${e.path} comes before its directory ${parent}`);
    kinds.set(e.path, e.kind);
    entries.push(e);
  }
  return entries;
}

export function buildLargeInitramfs(busybox: Uint8Array, extra: readonly CpioEntry[]): Uint8Array {
  return writeCpio(largeInitramfsEntries(busybox, extra));
}
