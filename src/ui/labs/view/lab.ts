// The live view's lab page (view-lab.html): the panel beside a stand-in console, fed by the
// scripted scenario in real time. Used by the browser test and by anyone working on the view
// without booting a VM. URL options: ?seed=N&cpus=0,0,1,2 (vcpuHome)&speed=2 (script time runs
// faster)&symbols=URL of a System.map. With ?vm=N it boots the real VM instead (vm-lab.ts).

import { mountLiveView } from "../../view/panel.ts";
import { ViewFeed, type ViewEvent } from "../../../protocol/telemetry/inputs.ts";
import { LabScenario } from "./scenario.ts";
import { loadSymbols } from "../../view/symbols-loader.ts";
import { startVmLab } from "./vm-lab.ts";

const params = new URLSearchParams(location.search);

function startScripted(): void {
  const vcpuHome = params.get("cpus")?.split(",").map(Number);
  const scenario = new LabScenario({ seed: Number(params.get("seed") ?? 7), ...(vcpuHome ? { vcpuHome } : {}) });
  const feed = new ViewFeed();
  // The lab plays the tab of node 0 (the one that created the cluster).
  const view = mountLiveView(document.getElementById("view")!, feed, { localNode: 0 });
  const events: ViewEvent[] = [];
  view.on((e) => {
    events.push(e);
    if (e.kind === "set-link-delay") scenario.delayMs = e.ms; // the lab's "fabric"
    if (e.kind === "trace") scenario.tracing = e.recording;
    log(`view event: ${JSON.stringify(e)}`);
  });

  const consoleEl = document.getElementById("console")!;
  function log(line: string): void {
    consoleEl.textContent += line + "\n";
    consoleEl.scrollTop = consoleEl.scrollHeight;
  }
  log(`lab: ${scenario.nodes} nodes, vCPUs at nodes [${scenario.config.vcpuHome.join(", ")}], ${scenario.config.memoryPages} pages`);
  log("lab: page states and DSM counters come from real protocol-core nodes; vCPU speeds, IPIs and I/O are scripted");

  // The System.map the setup extracts from the guest's kernel (src/guests/symbols/extract.ts).
  const symbolsUrl = params.get("symbols") ?? "guest/linux/System.map";
  if (symbolsUrl)
    void loadSymbols(symbolsUrl).then((r) => {
      if (r.ok) view.setSymbols(r.table);
      log(r.ok ? `lab: ${r.table.size} kernel symbols from ${symbolsUrl}` : `lab: no kernel symbols: ${r.error}`);
    });

  feed.push({ kind: "config", config: scenario.config });
  const speed = Number(params.get("speed") ?? 1);
  if (!(speed > 0 && speed <= 20)) log(`lab: speed ${params.get("speed")} is not in (0, 20]; using 1`);
  const start = performance.now();
  setInterval(() => {
    const now = performance.now();
    for (const input of scenario.step((now - start) * (speed > 0 && speed <= 20 ? speed : 1), now)) feed.push(input);
  }, 250);

  // For the browser test.
  Object.assign(globalThis, { lab: { view, events, scenario } });
}

if (params.has("vm")) startVmLab(params);
else startScripted();
