// Debian's SMP kernel on 2 and 4 VcpuInterrupts (one thread, pages moved between them on faults):
// SeaBIOS finds the AP through the forwarded INIT/SIPI, Linux starts it with its own INIT/SIPI,
// and the shell reports them all. The engine half of "a real Linux guest that reports nproc = N".
import { describe, expect, it } from "vitest";
import { PROMPT_RE } from "../../../src/guests/serial-console.ts";
import { linuxV86Options } from "../../../src/runtime/nodejs/linux-v86.ts";
import type { AuditViolation } from "../../../src/engine/vcpu.ts";
import { startSmpMachine } from "../../../harness/nodejs/smp-machine.ts";

const HEAVY = process.env.GIANTWEB_HEAVY === "1";

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

  // The coherence audit on the AP (its engine is the debug build: every guest-RAM access checked
  // against the page map, JIT off, several times slower): from its first instruction to a shell
  // command run on it, no access may go around the map. 414 s on 2 shared cores (load 5).
  it.skipIf(!HEAVY)("brings an audited AP up with no access around the page map", { timeout: 1_800_000 }, async () => {
    const violations: string[] = [];
    const m = await startSmpMachine(2, linuxV86Options({ acpi: true, log: () => {} }), {
      audit: (cpu, v: AuditViolation) => violations.push(`cpu${cpu} ${v.access} page 0x${v.page.toString(16)} (${v.held}) by ${v.fn} at eip 0x${(v.eip >>> 0).toString(16)}`),
      auditCpus: [1],
    });
    try {
      const boot = await m.waitFor(PROMPT_RE, 1_200_000);
      expect(boot).toMatch(/smp: Brought up 1 node, 2 CPUs/);
      const mark = m.output().length;
      m.send("taskset 2 sh -c 'x=0; for i in $(seq 200); do x=$((x+i)); done; echo ap-sum=$x'\n");
      await m.waitFor(/ap-sum=20100/, 600_000, mark);
      expect(m.cpus[1].stats.sent).toBeGreaterThan(0);
      expect(violations).toEqual([]);
    } finally {
      await m.destroy();
    }
  });
});
