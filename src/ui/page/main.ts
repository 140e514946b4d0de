// The page. Its front door (`/`, or a join link) is the cluster panel's Start: an elastic VM on this
// tab that other tabs join. With parameters (`?stock`, `?vcpus=2`, `?possible=4`...) it is the
// one-tab page: a Boot button, a status line and the serial console of a VM in this tab.

import wasmUrl from "v86/build/v86.wasm?url";
import { parseBootConfig } from "./boot-config.ts";
import { createConsolePane } from "../console/console-pane.ts";
import { statusText } from "./status-text.ts";
import { VmSession } from "./vm-session.ts";
import { fetchWithProgress, startVmWorker } from "./worker-client.ts";
import { TabMachine } from "../../runtime/web/tab-machine.ts";
import type { BootConfig } from "./boot-config.ts";
import { VcpuStrip } from "./vcpu-strip.ts";
import { mountClusterPanel } from "../cluster/cluster-panel.ts";
import { connectControls, feedFromNodes, loadSymbols, mountLiveView, ViewFeed } from "../view/index.ts";
import "./style.css";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const bootButton = $<HTMLButtonElement>("boot");
const stopButton = $<HTMLButtonElement>("stop");
const statusLine = $("status");
const pane = createConsolePane($("console"));
const strip = new VcpuStrip($("vcpus"));

// The live view: fed with every node's statistics snapshots; it never sits on the fault path.
const feed = new ViewFeed();
const view = mountLiveView(document.querySelector("main")!, feed, { localNode: 0 });
void loadSymbols("guest/linux/System.map").then((r) => r.ok && view.setSymbols(r.table));
// Browser tests read the view's model from here.
(globalThis as { giantwebView?: unknown }).giantwebView = view;
// The view's latency knob and trace button act on the machine once it exists (applied at boot).
let machine: TabMachine | null = null;
const controls = connectControls(view, () => machine);

// One vCPU with local memory runs stock v86 in one worker (the baseline). Any other shape runs the
// extended engine, one worker per node, joined by the DSM.
const usesNodes = (c: BootConfig) => c.vcpus > 1 || c.memory === "remote" || c.possibleCpus !== null;
// Remote memory: node 0 only holds RAM and the boot vCPU's node (1) keeps the devices, SeaBIOS boots.
// N vCPUs: node i hosts vCPU i, node 0 the devices; our firmware boots Linux with tables for all N.
// Elastic (?possible=N): node 0 boots alone with vCPU 0 and the devices; nodes join and leave.
const layoutOf = (c: BootConfig) =>
  c.possibleCpus !== null
    ? { nodes: [{ vcpu: 0 }], deviceNode: 0, firmware: true, elastic: { possibleCpus: c.possibleCpus } }
    : c.memory === "remote"
    ? { nodes: [{ vcpu: null }, ...Array.from({ length: c.vcpus }, (_, i) => ({ vcpu: i }))], deviceNode: 1, firmware: false }
    : { nodes: Array.from({ length: c.vcpus }, (_, i) => ({ vcpu: i })), deviceNode: 0, firmware: true };

const parsed0 = parseBootConfig(location.search, location.href);
// With several vCPUs our firmware replaces SeaBIOS (unless the URL names a BIOS).
const parsed =
  parsed0.ok && (parsed0.config.vcpus > 1 || parsed0.config.possibleCpus !== null) && parsed0.config.memory === "local" && !new URLSearchParams(location.search).has("bios")
    ? { ok: true as const, config: { ...parsed0.config, biosUrl: "engine/firmware.bin" } }
    : parsed0;
let elastic: ReturnType<typeof mountElastic> | null = null;
// The front door: no parameter but the relay's and how VM links go (a join link's fragment is not a parameter).
const frontDoor = [...new URLSearchParams(location.search).keys()].every((k) => k === "relay" || k === "vmlink" || k === "spinwait");
// The console's output as text (its last MiB), for browser tests (the pane shows only its screen).
const transcript = {
  text: "",
  decoder: new TextDecoder("latin1"),
  add(bytes: Uint8Array) {
    this.text += this.decoder.decode(bytes, { stream: true });
    if (this.text.length > 2 << 20) this.text = this.text.slice(-(1 << 20));
  },
};
(globalThis as { giantwebConsole?: unknown }).giantwebConsole = { text: () => transcript.text };
const session = new VmSession({
  fetchImage: fetchWithProgress,
  wasmUrl: parsed.ok && usesNodes(parsed.config) ? "engine/v86-giantweb.wasm" : wasmUrl,
  startWorker: async () => {
    if (parsed.ok && usesNodes(parsed.config)) {
      const layout = layoutOf(parsed.config);
      const vcpuHome: number[] = [];
      layout.nodes.forEach((n, i) => n.vcpu !== null && (vcpuHome[n.vcpu] = i));
      // An elastic VM: every node slot, each vCPU's usual node (a join takes the lowest free slot).
      const elasticCpus = parsed.config.possibleCpus;
      if (elasticCpus !== null) for (let v = 0; v < elasticCpus; v++) vcpuHome[v] = v;
      feed.push({
        kind: "config",
        config: { type: "config", nodes: elasticCpus ?? layout.nodes.length, memoryPages: parsed.config.memoryMiB * 256, vcpuHome, readTakesOwnership: true, guest: "linux" },
      });
      machine = new TabMachine({ ...layout, onStatus: (s) => strip.update(s), ...feedFromNodes(feed) });
      controls.apply(machine);
      return machine;
    }
    return startVmWorker();
  },
  clock: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as number) },
  onStatus: (status) => {
    // A VM that stops with an error while it boots or runs says so in the console too, where the output stopped.
    if (status.phase === "error" && (statusLine.dataset.phase === "booting" || statusLine.dataset.phase === "running"))
      pane.write(new TextEncoder().encode(`\r\n[${statusText(status)}]\r\n`));
    statusLine.textContent = statusText(status);
    statusLine.dataset.phase = status.phase;
    const busy = status.phase === "fetching" || status.phase === "booting" || status.phase === "running";
    bootButton.disabled = busy;
    stopButton.disabled = !busy;
    elastic?.phase(status.phase);
  },
  onOutput: (bytes) => {
    pane.write(bytes);
    transcript.add(bytes);
  },
});
pane.onInput((bytes) => void session.input(bytes));

// An elastic VM's controls: Add vCPU (a node joins with the lowest free vCPU) and Remove vCPU (the
// highest one leaves), a line of which vCPUs are online on which node, and refusals or failures.
function mountElastic(possibleCpus: number) {
  $("elastic").hidden = false;
  const join = $<HTMLButtonElement>("elastic-join");
  const leave = $<HTMLButtonElement>("elastic-leave");
  const line = $("elastic-status");
  const error = $("elastic-error");
  let running = false;
  let doing: string | null = null;
  const show = () => {
    const hosts = machine?.hosts() ?? [];
    const online = hosts.flatMap((h, v) => (h === null ? [] : [v]));
    line.textContent = running
      ? `vCPUs online: ${online.join(", ") || "none"} of ${possibleCpus} possible · ${online.map((v) => `vCPU ${v} on node ${hosts[v]}`).join(", ")}${doing ? ` · ${doing}` : ""}`
      : `Elastic VM: up to ${possibleCpus} vCPUs; boots with vCPU 0`;
    line.dataset.online = online.join(",");
    line.dataset.busy = doing ? "1" : "";
    join.disabled = leave.disabled = !running;
  };
  const act = (what: string, body: (m: TabMachine) => Promise<string>) => {
    const m = machine;
    if (!m) return;
    error.textContent = "";
    const mine = !m.changing;
    if (mine) doing = what;
    show();
    body(m).then(
      (done) => {
        // (A refusal shown meanwhile, of a click during this change, stays.)
        if (mine) doing = null;
        line.title = done;
        show();
      },
      (e: unknown) => {
        if (mine) doing = null;
        error.textContent = `${what} failed: ${e instanceof Error ? e.message : String(e)}`;
        show();
      },
    );
  };
  join.addEventListener("click", () =>
    act("adding a vCPU", async (m) => {
      const r = await m.join();
      return `vCPU ${r.vcpu} joined on node ${r.node} (${r.change.rounds} report rounds, paused ${r.change.pausedMs.toFixed(0)} ms)`;
    }),
  );
  leave.addEventListener("click", () =>
    act("removing a vCPU", async (m) => {
      // The highest vCPU hosted (vCPU 0 alone: the machine refuses, and says why).
      const hosts = m.hosts();
      const vcpu = Math.max(0, ...hosts.flatMap((h, v) => (h === null ? [] : [v])));
      const r = await m.leave(vcpu);
      strip.remove(r.node);
      return `vCPU ${vcpu} left with node ${r.node} (${r.change.rounds} report rounds, paused ${r.change.pausedMs.toFixed(0)} ms)`;
    }),
  );
  show();
  return {
    phase(phase: string) {
      running = phase === "running";
      if (phase !== "running") doing = null;
      show();
    },
  };
}

// The cluster of tabs (create / join by link): the same console pane, vCPUs spread over tabs.
if (parsed.ok)
  mountClusterPanel($("cluster"), {
    pane,
    config: parsed.config,
    view: { feed, handle: view },
    frontDoor,
    onEnter: () => {
      // In a cluster the VM is the cluster's: the one-tab Boot and its status line stay off.
      bootButton.disabled = true;
      bootButton.hidden = stopButton.hidden = statusLine.hidden = true;
    },
  });

// The front door shows the cluster's Start first; stock v86 stays one link away, for comparison.
if (parsed.ok && frontDoor) {
  bootButton.hidden = stopButton.hidden = statusLine.hidden = true;
  $("stock-link").hidden = false;
}

if (parsed.ok && parsed.config.possibleCpus !== null) elastic = mountElastic(parsed.config.possibleCpus);

if (!parsed.ok) {
  statusLine.textContent = `Error in the page's URL: ${parsed.errors.join("; ")}`;
  statusLine.dataset.phase = "error";
  bootButton.disabled = true;
} else {
  statusLine.textContent = statusText({ phase: "idle" });
  statusLine.dataset.phase = "idle";
  if (!crossOriginIsolated)
    statusLine.textContent += " (warning: the page is not cross-origin isolated; SharedArrayBuffer is unavailable)";
  bootButton.addEventListener("click", () => {
    pane.clear();
    strip.clear();
    pane.focus();
    void session.boot(parsed.config);
  });
  stopButton.addEventListener("click", () => void session.stop());
}
