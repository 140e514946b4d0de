// The whole engine + DSM + links stack under a real kernel: Linux boots on a vCPU that holds no
// page at all; every page it touches (BIOS, kernel, initramfs, page tables, stacks) is fetched
// through the DSM from another worker, which owns guest RAM. Any RAM path the engine failed to
// hook would read stale or zero bytes and the boot would crash instead of reaching the shell.

import { afterAll, expect, it } from "vitest";
import { ensureInstrumentedWasm } from "../../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../../src/guests/images.ts";
import { startCluster, type NodeCluster } from "../../../src/runtime/nodejs/cluster.ts";

let cluster: NodeCluster | undefined;
afterAll(async () => void (await cluster?.stop()));

it("Linux boots to a working shell with all of its memory supplied by another worker through the DSM", async () => {
  const g = ensureGuestImages();
  cluster = startCluster({
    wasmPath: await ensureInstrumentedWasm(),
    guest: { kind: "linux", bios: g.bios, vgaBios: g.vgaBios, bzImage: g.bzImage, initramfs: g.initramfs, cmdline: g.cmdline, memoryMiB: 128 },
    // node 0 owns every page and never runs its CPU; node 1 runs Linux, starts with no page, and
    // keeps the devices itself (interrupt forwarding is not part of this test)
    nodes: [{ vcpu: null }, { vcpu: 0 }],
    deviceNode: 1,
  });
  await cluster.waitFor(/giantweb:\/root# /, 400_000);
  const mark = cluster.output().length;
  cluster.send(1, "echo sum=$((123456+654321)); md5sum /bin/busybox | cut -c1-8\n");
  await cluster.waitFor(/sum=777777\r?\n[0-9a-f]{8}\r?\n/, 120_000, mark);

  const s = await cluster.stats(1);
  console.log(`remote-memory boot, vCPU node: ${JSON.stringify(s)}`);
  // Thousands of pages came over the links.
  expect(s.agent.faults).toBeGreaterThan(1000);
  expect(s.engine.faultsByCause.tlb).toBeGreaterThan(0);
  const [owner] = await cluster.stop();
  cluster = undefined;
  expect(owner!.dsm.pagesSentBytes + owner!.dsm.pagesSentZero).toBeGreaterThan(1000);
});
