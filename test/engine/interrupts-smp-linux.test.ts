// Debian's SMP kernel on 2 and 4 VcpuInterrupts (one thread, pages moved between them on faults):
// SeaBIOS finds the AP through the forwarded INIT/SIPI, Linux starts it with its own INIT/SIPI,
// and the shell reports them all. The engine half of "a real Linux guest that reports nproc = N".
import { describe, expect, it } from "vitest";
import { PROMPT_RE } from "../../src/guests/serial-console.ts";
import { linuxV86Options } from "../../src/guests/v86-linux.ts";
import { startSmpMachine } from "./interrupts-smp-support.ts";

describe("Linux SMP on VcpuInterrupts", () => {
  it.each([2, 4])("boots with %i CPUs online and nproc agrees", { timeout: 900_000 }, async (n) => {
    const m = await startSmpMachine(n, linuxV86Options({ acpi: true, log: () => {} }));
    try {
      const boot = await m.waitFor(PROMPT_RE, 600_000);
      expect(boot).toMatch(new RegExp(`smp: Brought up 1 node, ${n} CPUs`));
      expect(boot).toMatch(new RegExp(`${n} CPU\\(s\\) online`));
      const mark = m.output().length;
      m.send("nproc\n");
      await m.waitFor(new RegExp(`\n${n}\r?\n`), 180_000, mark);
      // Every AP ran Linux: it sent IPIs of its own and took interrupts forwarded to it.
      for (const ap of m.cpus.slice(1)) {
        expect(ap.runState).toBe("running");
        expect(ap.stats.sent).toBeGreaterThan(0);
        expect(ap.stats.injected.fixed).toBeGreaterThan(0);
      }
    } finally {
      await m.destroy();
    }
  });
});
