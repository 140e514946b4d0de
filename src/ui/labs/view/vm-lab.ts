// The lab page on the real VM (view-lab.html?vm=N): Linux with N vCPUs in N workers of this tab
// (TabMachine, our firmware), the live view fed by the real nodes and wired both ways (its knob
// delays every node's sends, its trace button makes the nodes record events). The browser test
// and the view benchmark drive it; the product page does the same wiring in main.ts.
// URL options: vm=N (2..8 vCPUs), delay=MS (added link delay from the start), collapsed=1 (the
// panel starts closed), mem=MiB.

import { TabMachine } from "../../../runtime/web/tab-machine.ts";
import { DEFAULT_BOOT_CONFIG, MAX_VCPUS } from "../../page/boot-config.ts";
import { VmSession, type VmStatus } from "../../page/vm-session.ts";
import { fetchWithProgress } from "../../page/worker-client.ts";
import { connectControls, feedFromNodes } from "../../view/machine-glue.ts";
import { ViewFeed, type ViewEvent } from "../../../protocol/telemetry/inputs.ts";
import { MAX_ADDED_DELAY_MS } from "../../../protocol/types.ts";
import { mountLiveView } from "../../view/panel.ts";
import { loadSymbols } from "../../view/symbols-loader.ts";

export function startVmLab(params: URLSearchParams): void {
  const consoleEl = document.getElementById("console")!;
  const vcpus = Number(params.get("vm"));
  const delayMs = Number(params.get("delay") ?? 0);
  const memoryMiB = Number(params.get("mem") ?? DEFAULT_BOOT_CONFIG.memoryMiB);
  const problems = [
    Number.isInteger(vcpus) && vcpus >= 2 && vcpus <= MAX_VCPUS ? "" : `vm=${params.get("vm")} must be a whole number of vCPUs in 2..${MAX_VCPUS}`,
    Number.isInteger(delayMs) && delayMs >= 0 && delayMs <= MAX_ADDED_DELAY_MS ? "" : `delay=${params.get("delay")} must be a whole number of ms in 0..${MAX_ADDED_DELAY_MS}`,
    Number.isInteger(memoryMiB) && memoryMiB >= 16 && memoryMiB <= 1024 ? "" : `mem=${params.get("mem")} must be a whole number of MiB in 16..1024`,
  ].filter(Boolean);
  if (problems.length) {
    consoleEl.textContent = `lab: ${problems.join("; ")}`;
    return;
  }

  const heading = document.querySelector("header h1");
  if (heading) heading.textContent = `giantweb · live view lab (real VM: Linux, ${vcpus} vCPUs in ${vcpus} workers of this tab)`;
  const feed = new ViewFeed();
  const view = mountLiveView(document.getElementById("view")!, feed, { localNode: 0, collapsed: params.get("collapsed") === "1" });
  void loadSymbols("guest/linux/System.map").then((r) => r.ok && view.setSymbols(r.table));
  const events: ViewEvent[] = [];
  view.on((e) => void events.push(e));
  let machine: TabMachine | null = null;
  const controls = connectControls(view, () => machine);

  // The console: what the guest wrote, as text (the lab has no terminal emulator).
  let text = "";
  const decoder = new TextDecoder("latin1");
  let drawPending = false;
  const onOutput = (bytes: Uint8Array) => {
    text += decoder.decode(bytes);
    if (!drawPending) {
      drawPending = true;
      requestAnimationFrame(() => {
        drawPending = false;
        consoleEl.textContent = text.slice(-20_000);
        consoleEl.scrollTop = consoleEl.scrollHeight;
      });
    }
  };
  // Phase changes with this page's clock, for the benchmark (boot = "booting" to "running").
  const phases: { phase: VmStatus["phase"]; atMs: number; message?: string }[] = [];

  const nodes = Array.from({ length: vcpus }, (_, i) => ({ vcpu: i }));
  const session = new VmSession({
    fetchImage: fetchWithProgress,
    wasmUrl: "engine/v86-giantweb.wasm",
    startWorker: async () => {
      feed.push({
        kind: "config",
        config: { type: "config", nodes: vcpus, memoryPages: memoryMiB * 256, vcpuHome: nodes.map((_, i) => i), readTakesOwnership: true, guest: "linux" },
      });
      machine = new TabMachine({ nodes, firmware: true, deviceNode: 0, ...feedFromNodes(feed) });
      controls.apply(machine);
      return machine;
    },
    clock: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as number) },
    onStatus: (s) => {
      // Fetch progress repeats "fetching": keep only the changes of phase.
      if (phases[phases.length - 1]?.phase !== s.phase) phases.push({ phase: s.phase, atMs: performance.now(), ...(s.phase === "error" ? { message: s.message } : {}) });
    },
    onOutput,
  });
  // A delay given in the URL acts from the first frame (the knob shows it too).
  if (delayMs > 0) {
    const on = document.querySelector<HTMLInputElement>(".lv-knob-on")!;
    const range = document.querySelector<HTMLInputElement>(".lv-knob-range")!;
    range.value = String(delayMs);
    on.checked = true;
    on.dispatchEvent(new Event("change"));
  }
  void session.boot({
    ...DEFAULT_BOOT_CONFIG,
    biosUrl: "engine/firmware.bin",
    vcpus,
    memoryMiB,
    // Added delay slows the boot; the watchdog is for hangs, not for slow links.
    watchdogSeconds: delayMs > 0 ? 600 : DEFAULT_BOOT_CONFIG.watchdogSeconds,
  });

  // For the browser test and the benchmark.
  Object.assign(globalThis, {
    lab: {
      view,
      events,
      vm: {
        phases,
        phase: () => session.phase,
        text: () => text,
        /** The kernel's first oops or panic report with a little context before it, or null. */
        oops: () => {
          const at = text.search(/BUG: |Oops|general protection fault|invalid opcode|\[#1\]|Kernel panic/);
          return at < 0 ? null : text.slice(Math.max(0, at - 300), at + 3000);
        },
        input: (s: string) => session.input(new TextEncoder().encode(s)),
        machine: () => machine,
      },
    },
  });
}
