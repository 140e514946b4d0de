// An elastic VM in one tab (issue 14): the page (/?possible=4) boots Linux on node 0 with vCPU 0
// alone; "Add vCPU" starts a node worker that joins with vCPU 1 (the guest brings the CPU online
// through ACPI CPU hotplug) and "Remove vCPU" takes it away again (the guest offlines and ejects
// it, the node hands its pages to node 0 and its worker ends). Real Chromium, real Linux guest.

import { markedCommand, markedOutput, MARKED_OUTPUT_DONE } from "../../../harness/console-output.ts";
import { expect, it } from "vitest";
import type { Page } from "playwright-core";
import { useBrowserSession } from "../../../harness/browser/browser-session.ts";

const session = useBrowserSession();

const PROMPT = /giantweb:\/root# /;
/** The console's output so far (main.ts keeps it for tests; the xterm pane shows only its screen). */
const consoleText = (page: Page) => page.evaluate(() => (globalThis as unknown as { giantwebConsole: { text(): string } }).giantwebConsole.text());

async function waitForConsole(page: Page, pattern: RegExp, what: string, timeoutMs: number, from = 0): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = (await consoleText(page)).slice(from);
    if (pattern.test(text)) return text;
    const phase = await page.locator("#status").getAttribute("data-phase");
    if (Date.now() > deadline || phase === "error")
      throw new Error(`waiting for ${what}: status "${await page.locator("#status").textContent()}", elastic "${await page.locator("#elastic-status").textContent()}" ${await page.locator("#elastic-error").textContent()}; console shows:\n${text.slice(-2000)}`);
    await page.waitForTimeout(250);
  }
}

/** Types a command and returns what it printed (after the echoed command line, before the marker). */
async function run(page: Page, command: string, timeoutMs = 300_000): Promise<string> {
  const mark = (await consoleText(page)).length;
  await page.locator(".xterm").click();
  await page.keyboard.type(markedCommand(command), { delay: 20 });
  const out = await waitForConsole(page, MARKED_OUTPUT_DONE, `the output of ${JSON.stringify(command)}`, timeoutMs, mark);
  return markedOutput(out);
}

const online = async (page: Page) => (await run(page, "cat /sys/devices/system/cpu/online")).trim().split(/\r?\n/).pop()!.trim();

/** Waits until the page's elastic line shows these vCPUs hosted and no change under way. */
async function waitForHosts(page: Page, online: string, timeoutMs: number, allowedError?: RegExp): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = page.locator("#elastic-status");
    if ((await line.getAttribute("data-online")) === online && (await line.getAttribute("data-busy")) === "") return;
    const error = await page.locator("#elastic-error").textContent();
    if (error && !allowedError?.test(error)) throw new Error(`waiting for vCPUs ${online}: the page says ${JSON.stringify(error)}`);
    if (Date.now() > deadline) throw new Error(`waiting for vCPUs ${online}: the page shows ${JSON.stringify(await line.textContent())}`);
    await page.waitForTimeout(250);
  }
}

it("boots with 1 of 4 possible vCPUs, adds vCPU 1 on a new worker, runs a job on it, removes it, refuses to remove vCPU 0, adds it again (refusing a second add meanwhile)", async () => {
  const page = await session.context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${session.url}?possible=4`);
  expect(await page.locator("#elastic").isHidden()).toBe(false);
  await page.click("#boot");
  await waitForConsole(page, PROMPT, "the shell prompt", 900_000);
  const boot = await consoleText(page);
  expect(boot).toMatch(/Allowing 4 CPUs, 3 hotplug CPUs/);
  expect(boot).toMatch(/giantweb guest up: Linux \S+, 1 CPU\(s\) online/);
  await waitForHosts(page, "0", 60_000);
  expect(await page.locator("#elastic-status").textContent()).toMatch(/vCPUs online: 0 of 4 possible · vCPU 0 on node 0/);
  expect((await run(page, "nproc")).trim()).toBe("1");

  // Add: node 1 joins with vCPU 1, the guest brings the CPU up and onlines it.
  let mark = (await consoleText(page)).length;
  await page.click("#elastic-join");
  await waitForConsole(page, /Booting Node 0 Processor 1 APIC 0x1/, "the kernel booting the added CPU", 600_000, mark);
  await waitForHosts(page, "0,1", 300_000);
  expect(await page.locator("#elastic-status").textContent()).toMatch(/vCPU 1 on node 1/);
  for (let i = 0; i < 60 && (await online(page)) !== "0-1"; i++) await page.waitForTimeout(1000);
  expect(await online(page)).toBe("0-1");
  expect((await run(page, "nproc")).trim()).toBe("2");
  const job = await run(page, `taskset 2 sh -c 'x=0; j=0; while [ $j -lt 500 ]; do x=$((x+j)); j=$((j+1)); done; echo job=$x on $(cut -d" " -f39 /proc/self/stat)'`);
  expect(job).toContain("job=124750 on 1");

  // Remove: the guest offlines and ejects vCPU 1, node 1 hands its pages to node 0 and ends.
  mark = (await consoleText(page)).length;
  await page.click("#elastic-leave");
  await waitForConsole(page, /CPU 1 is now offline/, "the guest taking CPU 1 offline", 600_000, mark);
  await waitForHosts(page, "0", 300_000);
  expect((await run(page, "nproc")).trim()).toBe("1");
  expect(await online(page)).toBe("0");

  // A second Remove: only vCPU 0 is left, and it cannot leave; the page says so.
  await page.click("#elastic-leave");
  await page.waitForFunction(() => /vCPU 0 cannot leave/.test(document.getElementById("elastic-error")?.textContent ?? ""), undefined, { timeout: 60_000 });
  expect(await page.locator("#status").getAttribute("data-phase")).toBe("running");

  // Add twice in a row: vCPU 1 joins again on node 1 (the freed slot), the second click is refused
  // while the first join runs.
  mark = (await consoleText(page)).length;
  // Both clicks in one task: the second always finds the first join under way (under load two
  // separate clicks could be seconds apart, after the first join had finished).
  await page.evaluate(() => {
    const add = document.getElementById("elastic-join") as HTMLButtonElement;
    add.click();
    add.click();
  });
  const busy = /adding a vCPU failed: cannot join: another join or leave is in progress/;
  await page.waitForFunction((re) => new RegExp(re).test(document.getElementById("elastic-error")?.textContent ?? ""), busy.source, { timeout: 60_000 });
  await waitForConsole(page, /Booting Node 0 Processor 1 APIC 0x1/, "the kernel booting the re-added CPU", 600_000, mark);
  await waitForHosts(page, "0,1", 300_000, busy);
  for (let i = 0; i < 60 && (await online(page)) !== "0-1"; i++) await page.waitForTimeout(1000);
  expect(await online(page)).toBe("0-1");
  const again = await run(page, `taskset 2 sh -c 'echo again on $(cut -d" " -f39 /proc/self/stat)'`);
  expect(again).toContain("again on 1");
  console.log(`elastic tab: ${await page.locator("#elastic-status").getAttribute("title")}`);
  expect(await consoleText(page)).not.toMatch(/Oops|BUG:|Call Trace|do_boot_cpu failed/);
  expect(errors).toEqual([]);
  await page.close();
}, 40 * 60_000);
