// An elastic VM (issue 14) in worker threads: Linux boots with vCPU 0 alone out of 4 possible;
// nodes join with one vCPU each, the guest brings each CPU online through ACPI CPU hotplug (our
// firmware's AML, node 0's device, the kernel's own code, /init's uevent line), and leave again:
// the guest offlines and ejects the CPU, its node hands every page it owns to node 0.

import { afterEach, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { buildFirmware } from "../../../src/runtime/nodejs/firmware-build.ts";
import { markedCommand, markedOutput, MARKED_OUTPUT_DONE } from "../../../harness/console-output.ts";
import type { NodeCluster } from "../../../src/runtime/nodejs/cluster.ts";
import { startElasticCluster, type ElasticCluster } from "../../../src/runtime/nodejs/elastic-cluster.ts";

let vm: ElasticCluster | undefined;
afterEach(async () => {
  await vm?.cluster.stop();
  vm = undefined;
});

async function run(c: NodeCluster, command: string, ms = 300_000): Promise<string> {
  const mark = c.output().length;
  c.send(0, markedCommand(command));
  const out = await c.waitFor(MARKED_OUTPUT_DONE, ms, mark);
  return markedOutput(out.slice(mark));
}

const online = async (c: NodeCluster) => (await run(c, "cat /sys/devices/system/cpu/online")).trim().split(/\r?\n/).pop()!.trim();
const noOops = (c: NodeCluster) => expect(c.output()).not.toMatch(/Oops|BUG:|Call Trace|do_boot_cpu failed/);

it("boots with 1 of 4 possible vCPUs, adds vCPUs 1 and 2 on new nodes, runs pinned jobs on each, and removes one again", async () => {
  const g = ensureGuestImages();
  vm = startElasticCluster({
    wasmPath: await ensureInstrumentedWasm(),
    guest: { kind: "linux-smp", firmware: buildFirmware(), bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
    possibleCpus: 4,
  });
  const c = vm.cluster;
  await c.waitFor(/giantweb:\/root# /, 900_000);
  expect(c.output()).toMatch(/Allowing 4 CPUs, 3 hotplug CPUs/);
  expect(c.output()).toMatch(/giantweb guest up: Linux \S+, 1 CPU\(s\) online/);
  expect(await online(c)).toBe("0");

  for (const vcpu of [1, 2]) {
    const mark = c.output().length;
    const joined = await vm.join();
    expect(joined.vcpu).toBe(vcpu);
    await c.waitFor(new RegExp(`Booting Node 0 Processor ${vcpu} APIC 0x${vcpu}`), 300_000, mark);
    console.log(`vCPU ${vcpu} joined on node ${joined.node}: ${joined.change.rounds} report rounds, paused ${joined.change.pausedMs.toFixed(0)} ms`);
  }
  // /init's uevent line onlines each CPU right after its hot-add.
  for (let i = 0; i < 50 && (await online(c)) !== "0-2"; i++) await new Promise((r) => setTimeout(r, 1000));
  expect(await online(c)).toBe("0-2");
  expect((await run(c, "nproc")).trim()).toBe("3");

  const jobs = [0, 1, 2].map((i) => `taskset ${1 << i} sh -c 'x=0; j=0; while [ $j -lt 3000 ]; do x=$((x+j*${i + 1})); j=$((j+1)); done; echo job${i}=$x on $(cut -d" " -f39 /proc/self/stat)' &`).join(" ");
  const par = await run(c, `${jobs} wait`);
  for (let i = 0; i < 3; i++) expect(par).toContain(`job${i}=${((2999 * 3000) / 2) * (i + 1)} on ${i}`);

  // Refusals, each naming its reason; the VM runs on.
  await expect(vm.leave(0)).rejects.toThrow(/vCPU 0 cannot leave: its node holds the devices/);
  await expect(vm.leave(3)).rejects.toThrow(/cannot leave with vCPU 3: no node hosts it/);
  await expect(vm.join(1)).rejects.toThrow(/cannot join with vCPU 1: node 1 hosts it/);
  await expect(vm.join(4)).rejects.toThrow(/possible vCPUs to add are 1\.\.3/);
  await expect(c.control(0, { op: "plug", cpu: 1 })).rejects.toThrow(/cannot plug CPU 1: it is already enabled/);

  const mark = c.output().length;
  const leaving = vm.leave(2);
  await expect(vm.join()).rejects.toThrow(/cannot join: another join or leave is in progress/);
  const left = await leaving;
  console.log(`vCPU 2 left from node ${left.node}: ${left.change.rounds} report rounds, paused ${left.change.pausedMs.toFixed(0)} ms`);
  await c.waitFor(/CPU 2 is now offline/, 60_000, mark);
  expect(left.ownedAfter).toBe(0);
  expect(vm.hosts()).toEqual([0, 1, null, null]);
  expect(await online(c)).toBe("0-1");
  const after = await run(c, `taskset 2 sh -c 'echo still on $(cut -d" " -f39 /proc/self/stat)'`);
  expect(after).toContain("still on 1");

  // Five rounds in a row: vCPU 2 joins again on a fresh node (the freed number and slot), runs a
  // job, and leaves; each departed node owns nothing, and node 0 stays the only other member.
  for (let round = 1; round <= 5; round++) {
    const mark = c.output().length;
    const joined = await vm.join();
    expect(joined).toMatchObject({ vcpu: 2, node: 2 });
    await c.waitFor(/Booting Node 0 Processor 2 APIC 0x2/, 300_000, mark);
    for (let i = 0; i < 50 && (await online(c)) !== "0-2"; i++) await new Promise((r) => setTimeout(r, 1000));
    expect(await online(c)).toBe("0-2");
    const job = await run(c, `taskset 4 sh -c 'x=0; j=0; while [ $j -lt 500 ]; do x=$((x+j)); j=$((j+1)); done; echo round${round}=$x on $(cut -d" " -f39 /proc/self/stat)'`);
    expect(job).toContain(`round${round}=124750 on 2`);
    const left = await vm.leave(2);
    expect(left.ownedAfter).toBe(0);
    expect(vm.hosts()).toEqual([0, 1, null, null]);
    expect(await online(c)).toBe("0-1");
    console.log(`round ${round}: join paused ${joined.change.pausedMs.toFixed(0)} ms, leave paused ${left.change.pausedMs.toFixed(0)} ms`);
  }
  expect((await run(c, "nproc")).trim()).toBe("2");

  // Every possible vCPU taken: a further join is refused.
  for (const vcpu of [2, 3]) {
    const mark = c.output().length;
    expect((await vm.join()).vcpu).toBe(vcpu);
    await c.waitFor(new RegExp(`Booting Node 0 Processor ${vcpu} APIC 0x${vcpu}`), 300_000, mark);
  }
  await expect(vm.join()).rejects.toThrow(/cannot join: all 4 vCPUs are taken/);
  for (let i = 0; i < 50 && (await online(c)) !== "0-3"; i++) await new Promise((r) => setTimeout(r, 1000));
  expect((await run(c, "nproc")).trim()).toBe("4");
  noOops(c);
}, 40 * 60_000);
