// The one-tab multi-worker page (`/?vcpus=2`): a node whose engine panics stops the VM and the
// status line and the console say "VM stopped: node N (vCPU k) failed: ..." (issue 11), instead of
// the page saying "Booting…" until its watchdog gives up. The kernel is a stand-in bzImage
// (guests/apfault/ltr-kernel.S) whose boot CPU loads its task register from a zero GDT entry, which
// panics v86; the page fetches it from a path the test serves.

import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { buildLtrKernel } from "../../../guests/apfault/build.ts";
import { useBrowserSession } from "../../../harness/browser/browser-session.ts";
import { openPage } from "../../../harness/browser/cluster-driver.ts";

const session = useBrowserSession();
const STOPPED = /^VM stopped: node 0 \(vCPU 0\) failed: the engine panicked at src\/rust\/cpu\/cpu\.rs:\d+:\d+: #GP \| ltr: invalid type \(type = 0x0\)/;

it("vCPU 0's engine panics: the page stops the VM and says which node failed and why", async () => {
  const kernel = readFileSync(buildLtrKernel());
  const ctx = session.context;
  await ctx.route("**/test-kernels/ltr-bzImage", (route) => route.fulfill({ body: kernel, contentType: "application/octet-stream" }));
  const page = await openPage(ctx, `${session.url}?vcpus=2&kernel=test-kernels/ltr-bzImage&watchdog=3600`);
  try {
    await page.click("#boot");
    await page.waitForFunction(() => ["error", "stopped"].includes(document.querySelector("#status")?.getAttribute("data-phase") ?? ""), null, { timeout: 300_000, polling: 100 });
    const status = await page.locator("#status").textContent();
    console.log(`status: ${status}`);
    expect(await page.locator("#status").getAttribute("data-phase")).toBe("error");
    expect(status).toMatch(STOPPED);
    // The console, after the kernel's own line: the stop, from its start (the pane wraps long lines).
    const pane = (await page.evaluate(() => (document.querySelector(".xterm-rows") as HTMLElement).innerText)).replace(/\u00a0/g, " ");
    expect(pane).toContain("LTRKERNEL loading TR from a zero descriptor");
    expect(pane).toContain("[VM stopped: node 0 (vCPU 0) failed: the engine panicked at");
    expect(await page.locator("#boot").isDisabled()).toBe(false); // the VM is over: Boot is offered again
    expect(page.errors).toEqual([]);
  } finally {
    await page.close();
    await ctx.unroute("**/test-kernels/ltr-bzImage");
  }
}, 600_000);
