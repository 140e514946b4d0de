// Identity: with every page read-write and no hooks active, the extended engine boots the Linux
// guest to a shell with the same console output as stock v86.
import { describe, expect, it } from "vitest";
import { PROMPT_RE, startLinuxVm } from "../../harness/nodejs/serial-vm.ts";
import { normalizeConsole, startLinuxOnEngine } from "../../harness/nodejs/engine-linux.ts";

const BOOT_TIMEOUT = 600_000;

describe("engine identity", () => {
  it("boots Linux to a shell with the same console output as stock v86", { timeout: 2 * BOOT_TIMEOUT + 60_000 }, async () => {
    const stock = startLinuxVm();
    let stockOut: string;
    try {
      stockOut = await stock.waitFor(PROMPT_RE, BOOT_TIMEOUT);
    } finally {
      await stock.destroy();
    }
    const engine = await startLinuxOnEngine({
      onFault: (f) => {
        throw new Error(`no page should fault with every page read-write, got ${JSON.stringify(f)}`);
      },
    });
    let engineOut: string;
    try {
      engineOut = await engine.waitFor(PROMPT_RE, BOOT_TIMEOUT);
      // The shell works, not just prints a prompt.
      const mark = engineOut.length;
      engine.send("echo $((6*7))\n");
      await engine.waitFor(/\n42\r?\n/, 60_000, mark);
    } finally {
      await engine.destroy();
    }
    expect(engine.vcpu.stats.faults).toBe(0);
    const a = normalizeConsole(stockOut);
    const b = normalizeConsole(engineOut);
    expect(a.length).toBeGreaterThan(50); // a real kernel log, not an empty match
    // Asynchronous kernel work (initramfs unpacking, input probing) interleaves its lines with
    // others depending on host timing, so two stock boots differ in order too: compare the lines
    // as multisets, and the final lines (the shell) in order.
    expect([...b].sort()).toEqual([...a].sort());
    expect(b.slice(-3)).toEqual(a.slice(-3));
  });
});
