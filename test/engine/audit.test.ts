// The coherence audit (src/engine/instrument/audit-pass.ts): the debug build that checks every
// guest-RAM access of the wasm against the page map. It must stay silent while the engine keeps its
// invariants, and name the first access that breaks them: here a revocation that updates the map
// but leaves v86's translations alone, so the guest's next instruction fetch reads the code page
// through v86's cached translation of EIP.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DESC_BASE_HI } from "../../guests/enginetest/layout.ts";
import { EXPORT_GET_MAP_BASE, PAGE_NONE } from "../../src/engine/abi.ts";
import { MEM } from "../../src/engine/interrupts/abi.ts";
import { STOCK_WASM } from "../../src/engine/instrument/ensure.ts";
import { instrumentV86Wasm } from "../../src/engine/instrument/pass.ts";
import { AuditError, type AuditViolation, type Vcpu } from "../../src/engine/vcpu.ts";
import { bootEngineTest, SimulatedRemote } from "../../harness/nodejs/engine-guest.ts";

const TIMEOUT = 300_000;
const PAGE = DESC_BASE_HI >>> 12;

/**
 * Runs the "desc" scenario on the audit build. At its first hypercall the guest has just read
 * DESC_BASE_HI's page through its TLB; `take` then takes that page away as the test wants, and the
 * guest reads it again (a plain load through FS).
 */
async function descUnderAudit(take: (vcpu: Vcpu, remote: SimulatedRemote) => void, onViolation?: (v: AuditViolation) => void) {
  let vcpu!: Vcpu;
  let hypercalls = 0;
  const remote = new SimulatedRemote(() => vcpu);
  const run = await bootEngineTest(
    "desc",
    () => {
      if (hypercalls++ === 0) take(vcpu, remote);
      return 0;
    },
    remote.handler,
    undefined,
    { audit: true },
    onViolation,
  );
  vcpu = run.vcpu;
  try {
    const outcome = await run.done.then(
      (failures) => ({ failures, error: undefined as Error | undefined }),
      (error: Error) => ({ failures: -1, error }),
    );
    return { ...outcome, output: run.output(), remote };
  } finally {
    await vcpu.destroy();
  }
}

describe("coherence audit", () => {
  it("instruments every non-constant memory access of v86 and names their functions", () => {
    const { report } = instrumentV86Wasm(new Uint8Array(readFileSync(STOCK_WASM)), { audit: true });
    expect(report.audit!.sites).toBeGreaterThan(50_000);
    const names = report.audit!.functions.map(([, n]) => n);
    expect(names.some((n) => n.includes("read64s"))).toBe(true);
    expect(names).toContain("movsd_rep");
    expect(names.some((n) => n.startsWith("gw$"))).toBe(false);
  });

  it("stays silent while the engine keeps its invariants (a page revoked and faulted back in)", { timeout: TIMEOUT }, async () => {
    const seen: AuditViolation[] = [];
    const r = await descUnderAudit((_vcpu, remote) => remote.take(PAGE, "none"), (v) => seen.push(v));
    expect(r.error).toBeUndefined();
    expect(seen).toEqual([]);
    expect(r.output).toContain("RESULT OK");
    expect(r.remote.faults(PAGE, "read")).toBeGreaterThanOrEqual(1);
  });

  it("stops the vCPU at the first access through a translation the map no longer allows, naming it", { timeout: TIMEOUT }, async () => {
    // A broken revocation: the code page the guest runs on (paging on, identity-mapped) is marked
    // no-access, but nothing flushes v86's translations (its TLB and cached EIP page) and no bytes
    // move. The guest's next instruction fetch must be caught.
    let codePage = -1;
    const r = await descUnderAudit((vcpu) => {
      codePage = new DataView(vcpu.wasm.memory.buffer).getUint32(MEM.previousIp, true) >>> 12;
      const mapBase = (vcpu.wasm.exports[EXPORT_GET_MAP_BASE] as () => number)();
      new Uint8Array(vcpu.wasm.memory.buffer)[mapBase + codePage] = PAGE_NONE;
    });
    expect(codePage).toBeGreaterThan(0);
    expect(r.error).toBeInstanceOf(AuditError);
    const v = (r.error as AuditError).violation;
    expect(v).toMatchObject({ page: codePage, access: "read", held: "none" });
    expect(v.eip >>> 12).toBe(codePage);
    expect(r.error!.message).toMatch(new RegExp(`^coherence audit: read of \\d byte\\(s\\) at guest-physical 0x${codePage.toString(16)}\\w{3} \\(page 0x${codePage.toString(16)}, held "none"\\) by \\S+, guest eip 0x`));
    expect(r.output).not.toContain("RESULT");
    // Nothing faulted: the fetch went around the map, which is what the audit is for.
    expect(r.remote.faults(codePage)).toBe(0);
  });
});
