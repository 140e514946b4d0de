// Drives the fabric lab page (fabric-lab.html) in Chromium the way a user would, plus its
// `window.fabricLab` hook for frames; shared by the browser tests and the benchmark.

import type { BrowserContext, Page } from "playwright-core";

export interface Received {
  from: number;
  seq: number;
  size: number;
  intact: boolean;
}

/** What `window.fabricLab` offers (src/ui/labs/fabric/main.ts). */
export interface LabHook {
  tab(): number | undefined;
  members(): { tab: number; role: string; vcpus: number[] }[] | undefined;
  /** Why signaling is gone, once it is (the cluster runs on without it). */
  signalingLost(): string | undefined;
  received(): Received[];
  sendData(to: number, sizes: number[], firstSeq?: number): void;
  rtts(to: number, count: number, size: number): Promise<number[]>;
  /** rtts while a worker of this tab spins on one core; how long it spun, from before the first to after the last. */
  rttsWhileSpinning(to: number, count: number, size: number): Promise<{ rtts: number[]; spunMs: number }>;
  pipelined(to: number, count: number, size: number): Promise<number>;
  pipelinedDetail(to: number, count: number, size: number): Promise<{ ms: number; maxGapMs: number }>;
  setDelay(ms: number): void;
}

export type LabPage = Page & { errors: string[] };

export async function openLab(ctx: BrowserContext, url: string): Promise<LabPage> {
  const page = (await ctx.newPage()) as LabPage;
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  await page.goto(url);
  return page;
}

export async function status(page: Page): Promise<{ phase: string | null; text: string | null }> {
  const el = page.locator("#status");
  return { phase: await el.getAttribute("data-phase"), text: await el.textContent() };
}

/** Waits for the status line to reach one of `phases`; an unexpected error phase throws its text. */
export async function waitPhase(page: Page, phases: string[]): Promise<string> {
  for (;;) {
    const s = await status(page);
    if (s.phase && phases.includes(s.phase)) return s.text ?? "";
    if (s.phase === "error" && !phases.includes("error")) throw new Error(`page error: ${s.text}`);
    await page.waitForTimeout(100);
  }
}

/** Creates a cluster on the page (tab 0 with one vCPU) and returns its join link. */
export async function create(page: Page, totalVcpus: number, relayUrl?: string): Promise<string> {
  await page.fill("#total-vcpus", String(totalVcpus));
  await page.fill("#host-vcpus", "1");
  if (relayUrl) await page.fill("#relay", relayUrl);
  await page.click("#create");
  await waitPhase(page, ["member"]);
  return page.inputValue("#join-link");
}

/** Joins from a page opened on a join link. */
export async function join(page: Page, role: "compute" | "watcher" = "compute", vcpus = 1): Promise<void> {
  await page.selectOption("#join-role", role);
  if (role === "compute") await page.fill("#join-vcpus", String(vcpus));
  await page.click("#join");
  await waitPhase(page, ["member"]);
}

/** Runs `fn(window.fabricLab, arg)` in the page (fn is sent as source: it must not close over anything). */
export function lab<T, A = undefined>(page: Page, fn: (lab: LabHook, arg: A) => T, arg?: A): Promise<Awaited<T>> {
  return page.evaluate(
    ([src, a]) => new Function("lab", "arg", `return (${src})(lab, arg)`)((globalThis as unknown as { fabricLab: unknown }).fabricLab, a),
    [fn.toString(), arg] as const,
  ) as Promise<Awaited<T>>;
}

export async function rosterTabs(page: Page): Promise<number[]> {
  return (await lab(page, (l) => l.members()))?.map((m) => m.tab) ?? [];
}

export async function waitRoster(page: Page, tabs: number[]): Promise<void> {
  while (JSON.stringify(await rosterTabs(page)) !== JSON.stringify(tabs)) await page.waitForTimeout(100);
}
