// Stock v86 in Node boots the default guest to a shell, and the shell really computes.

import { afterAll, expect, it } from "vitest";
import { PROMPT_RE, startLinuxVm, type SerialVm } from "../../../harness/nodejs/serial-vm.ts";

let vm: SerialVm | undefined;
afterAll(async () => vm?.destroy());

it("boots Debian's 686 kernel with our initramfs to a shell that runs commands", async () => {
  vm = startLinuxVm();
  const boot = await vm.waitFor(PROMPT_RE, 300_000);
  expect(boot).toMatch(/Linux version 6\.1\.\d+-\d+-686 /);
  expect(boot).toMatch(/giantweb guest up: Linux 6\.1\.\S+, 1 CPU\(s\) online/);

  // 4913 is not in the command text, so seeing it proves the guest evaluated the expansion.
  const mark = vm.output().length;
  vm.send("echo value=$((17*17*17)); grep -c ^processor /proc/cpuinfo; cat /proc/mounts | cut -d' ' -f3 | sort -u | tr '\\n' ,\n");
  const after = await vm.waitFor(/value=4913\r?\n1\r?\n[^\n]*giantweb:\/root# /, 120_000, mark);
  const reply = after.slice(mark);
  expect(reply).toMatch(/value=4913\r?\n1\r?\n/);
  // /init mounted proc, sysfs and devtmpfs.
  expect(reply).toMatch(/devtmpfs,.*proc,.*sysfs,/);
});
