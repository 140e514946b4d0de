// Inputs from outside the engine are checked, with errors that name the problem.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { HC, NOISE_PAGE } from "../../guests/enginetest/layout.ts";
import { BlockingPager, createMailbox } from "../../src/engine/blocking.ts";
import { Vcpu } from "../../src/engine/vcpu.ts";
import { bootEngineTest } from "../../harness/nodejs/engine-guest.ts";

describe("engine input validation", () => {
  it("rejects bad pages, states, grants and mailboxes with clear errors", { timeout: 120_000 }, async () => {
    const N = NOISE_PAGE >>> 12;
    let grant: unknown = { access: "write" };
    let vcpu!: Vcpu;
    const run = await bootEngineTest(
      "faultbench",
      (cmd) => {
        if (cmd === HC.BENCH_START) {
          vcpu.revoke(N, "none");
          grant = { access: "read" }; // not enough for the guest's write
        }
        return 0;
      },
      () => grant as { access: "write" },
    );
    vcpu = run.vcpu;
    // The bad grant stops the vCPU and is reported, not swallowed.
    await expect(run.done).rejects.toThrow(/granted "read" for a write to page 0x221/);
    expect(vcpu.error?.message).toMatch(/granted "read" for a write/);
    expect(() => vcpu.pageAccess(-1)).toThrow(/page -1 is not a guest RAM page/);
    expect(() => vcpu.pageAccess(vcpu.pageCount)).toThrow(/is not a guest RAM page \(0\.\.8191\)/);
    expect(() => vcpu.setPageAccess(0xa5, "none")).toThrow(/VGA window/);
    expect(() => vcpu.setPageAccess(0x300, "gone" as "none")).toThrow(/unknown page access "gone"/);
    expect(() => vcpu.revoke(0x300, "write" as "read")).toThrow(/revoke target must be "read" or "none"/);
    expect(() => vcpu.writePage(0x300, new Uint8Array(10))).toThrow(/4096 bytes, got 10/);
    expect(() => new BlockingPager(vcpu, new SharedArrayBuffer(8), () => {})).toThrow(/mailbox must be a SharedArrayBuffer of 4128 bytes/);
    expect(() => new BlockingPager(vcpu, createMailbox(), () => {})).not.toThrow();
    await vcpu.destroy();
    await expect(Vcpu.create({ wasm: fs.readFileSync("node_modules/v86/build/v86.wasm"), v86: {} })).rejects.toThrow(/not instrumented/);
  });
});
