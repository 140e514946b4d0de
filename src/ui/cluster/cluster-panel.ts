// The page's cluster controls: create a cluster (tab 0) or join one from a `#join=` link, the
// join link with a copy button, the roster every tab shows, Boot/Stop, and a status line. The VM
// itself is ClusterVm; this module only wires it to the DOM, the fabric and the console pane.

import { checkBios, checkBzImage, checkInitramfs } from "../../guests/image-checks.ts";
import { GUEST_PROMPT } from "../../guests/initramfs.ts";
import { createCluster, FabricError, type FabricMember, hasJoinFragment, joinCluster, type Member, parseJoinLink } from "../../fabric/adapters/browser.ts";
import { PROTOCOL_VERSION } from "../../protocol/types.ts";
import type { BootConfig } from "../page/boot-config.ts";
import type { ConsolePane } from "../console/console-pane.ts";
import { fetchWithProgress } from "../page/worker-client.ts";
import type { NodeStatus } from "../../runtime/web/node-protocol.ts";
import type { NodeFailure } from "../../protocol/tab/node-failure.ts";
import { checkMultibootElf, type ClusterGuest, type GuestKind, isGuestKind } from "../../protocol/tab/guest.ts";
import type { ViewFeed } from "../../protocol/telemetry/inputs.ts";
import type { LiveViewHandle } from "../view/panel.ts";
import { clusterControls, feedFromCluster } from "./cluster-view.ts";
import { ClusterVm, type ClusterVmState } from "../../runtime/web/cluster-vm.ts";
import { NO_WATCHER_RIGHTS, type WatcherRights } from "../../protocol/tab/envelope.ts";

import { ENGINE_URL, FIRMWARE_URL, SELFTEST_URL } from "./served-paths.ts";
import { MAX_POSSIBLE_CPUS } from "../../machine/devices/cpu-hotplug-interface.ts";
const SELFTEST_MEMORY_MIB = 64;
const RELAY_PATH = "/fabric-relay";
const BUILD = `giantweb ${import.meta.env.MODE}`;
/** vCPUs of a cluster VM (one VM node each), and tabs of a cluster (watchers included). */
const MAX_VCPUS = 16;
const MAX_TABS = 16;
const TRANSCRIPT_CHARS = 256 * 1024;

export interface ClusterPanelOptions {
  pane: ConsolePane;
  config: BootConfig;
  /** Called when this tab enters a cluster (the page hides its one-tab Boot flow). */
  onEnter?(): void;
  /** The page's live view: fed with every node of the cluster; its knob and trace act on the whole cluster. */
  view?: { feed: ViewFeed; handle: LiveViewHandle };
  /** The page's front door (`/`): Start (an elastic VM on this tab) comes first; the fixed cluster folds away. */
  frontDoor?: boolean;
}

const isLoopback = (host: string) => host === "localhost" || host === "127.0.0.1" || host === "[::1]";

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string | number | boolean> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props) as HTMLElementTagNameMap[K];
  e.append(...children);
  return e;
}

export function mountClusterPanel(root: HTMLElement, opts: ClusterPanelOptions): void {
  const status = el("span", { id: "cluster-status", role: "status" });
  const setStatus = (phase: string, text: string) => {
    status.dataset.phase = phase;
    status.textContent = text;
    // When this line last changed (wall-clock ms, comparable across tabs): tests and the bench time a stop with it.
    status.dataset.sinceMs = String(performance.timeOrigin + performance.now());
  };
  const log = el("ul", { id: "cluster-log" });
  const note = (text: string) => {
    // A repeat (a peer sending the same bad message again and again) counts up on one line, so a
    // flood cannot push everything else out of the log.
    const last = log.lastElementChild as HTMLElement | null;
    if (last?.dataset.text === text) {
      const n = Number(last.dataset.repeats ?? "1") + 1;
      last.dataset.repeats = String(n);
      last.textContent = `${new Date().toISOString().slice(11, 19)} ${text} (×${n})`;
      return;
    }
    const li = el("li", {}, `${new Date().toISOString().slice(11, 19)} ${text}`);
    li.dataset.text = text;
    log.append(li);
    while (log.children.length > 20) log.firstElementChild!.remove();
  };

  const total = el("input", { id: "cluster-total", type: "number", min: "1", max: "16", value: "2" });
  const here = el("input", { id: "cluster-here", type: "number", min: "1", max: "16", value: "1" });
  const useRelay = el("input", { id: "cluster-relay", type: "checkbox", checked: opts.config.relayUrl !== null || !isLoopback(location.hostname) });
  const guestKind = el("select", { id: "cluster-guest" },
    el("option", { value: "linux", selected: true }, "Linux"),
    el("option", { value: "selftest" }, "self-test (SMP checks)"));
  // What watchers (tabs that join with Watch) may do beyond seeing; tab 0 enforces it.
  const watchersType = el("input", { id: "cluster-watchers-type", type: "checkbox" });
  const watchersControl = el("input", { id: "cluster-watchers-control", type: "checkbox" });
  const create = el("button", { id: "cluster-create" }, "Create cluster");
  // The front door: an elastic VM that boots at once on this tab; tabs that open the link add vCPUs.
  // Up to 32: the firmware's hotplug interface (a Debian 6.1 guest took vCPU 31 in a Node test).
  const possible = el("input", { id: "cluster-possible", type: "number", min: "2", max: String(MAX_POSSIBLE_CPUS), value: "4" });
  const startHere = el("input", { id: "cluster-start-here", type: "number", min: "1", max: String(MAX_POSSIBLE_CPUS), value: "1" });
  const start = el("button", { id: "cluster-start" }, "Start");
  const joinVcpus = el("input", { id: "cluster-join-vcpus", type: "number", min: "0", max: "16", value: "1" });
  const join = el("button", { id: "cluster-join" }, "Join");
  const watch = el("button", { id: "cluster-watch" }, "Watch");
  const linkBox = el("input", { id: "cluster-link", readOnly: true, size: 60 });
  const copy = el("button", { id: "cluster-copy" }, "Copy link");
  const boot = el("button", { id: "cluster-boot", disabled: true }, "Boot cluster VM");
  const stop = el("button", { id: "cluster-stop", disabled: true }, "Stop VM");
  // Any tab but tab 0 may leave; if it hosts vCPUs, that stops the VM everywhere.
  const leave = el("button", { id: "cluster-leave", hidden: true }, "Leave cluster");
  // After this tab left an elastic VM (or was refused), a fresh join from this page.
  const joinAgain = el("button", { id: "cluster-join-again", hidden: true }, "Join again");
  const roster = el("ul", { id: "cluster-roster" });
  /** An elastic VM: which vCPUs are in the guest and the change under way. */
  const vmLine = el("div", { id: "cluster-vm-hosts", role: "status" });

  const joining = hasJoinFragment(location.href);
  const createRow = el("div", { className: "cluster-row" },
    el("label", {}, "guest ", guestKind), el("label", {}, "vCPUs in all ", total), el("label", {}, "on this tab ", here),
    el("label", {}, watchersType, " watchers may type"), el("label", {}, watchersControl, " watchers may use the knob and trace"), create);
  const joinRow = el("div", { className: "cluster-row" }, el("label", {}, "vCPUs on this tab ", joinVcpus), join, watch);
  // Tab 0 also shows the watch link: its own token admits watchers only.
  const watchLinkBox = el("input", { id: "cluster-watch-link", readOnly: true, size: 60 });
  const copyWatch = el("button", { id: "cluster-copy-watch" }, "Copy watch link");
  const linkRow = el("div", { className: "cluster-row", hidden: true }, el("label", {}, "Join link (hosts vCPUs) ", linkBox), copy);
  const watchRow = el("div", { className: "cluster-row", hidden: true }, el("label", {}, "Watch link (sees only) ", watchLinkBox), copyWatch);
  const vmRow = el("div", { className: "cluster-row", hidden: true }, boot, stop, leave, joinAgain);
  const startRow = el("div", { className: "cluster-row", id: "cluster-start-row" },
    start, el("label", {}, "vCPUs at most ", possible), el("label", {}, "on this tab ", startHere),
    // For Start and for the fixed cluster alike, so it sits outside the folded form.
    el("label", { title: opts.config.relayUrl ?? `this page's server, ${RELAY_PATH}` }, useRelay, " other machines (relay)"),
    el("span", { className: "hint" }, "The VM boots on this tab at once; every tab that opens its link adds vCPUs, and gives them back when it leaves."));
  // The fixed cluster (every vCPU's tab joins before the boot) folds away behind the front door.
  const fixed = el("details", { id: "cluster-fixed" }, el("summary", {}, "Fixed cluster: every tab joins before the VM boots"), createRow);
  fixed.open = !opts.frontDoor;
  root.append(el("h2", {}, opts.frontDoor ? "Start a VM" : "Cluster of tabs"), ...(joining ? [joinRow] : [startRow, fixed]), linkRow, watchRow, vmRow, status, vmLine, roster, log);
  // A watch link lets this tab watch only: no Join with vCPUs.
  let watchOnly = false;
  try {
    watchOnly = joining && parseJoinLink(location.href).watch === true;
  } catch {
    // a malformed link is reported when the user joins
  }
  if (watchOnly) join.hidden = joinVcpus.parentElement!.hidden = true;
  setStatus("idle", !joining ? "Create a cluster to spread the VM's vCPUs over tabs." : watchOnly ? "This is a watch link: Watch to see the cluster's VM." : "This is a join link: choose how many vCPUs this tab hosts, then Join (or Watch).");

  let fabric: FabricMember | undefined;
  let vm: ClusterVm | undefined;
  /** Whether the log already said that this watcher's typing is off. */
  let typingNoted = false;
  let bootedOnce = false;
  /** This tab created an elastic VM (Start). */
  let elasticStart = false;
  /** This tab's Leave of an elastic VM is under way. */
  let leaving = false;

  const renderRoster = () => {
    if (!fabric) return;
    const rtt = new Map(fabric.links().map((l) => [l.tab, l.rttP50Ms]));
    // How node frames go to each tab (issue 15): on the net workers' own channel, or through the main threads.
    const vmLinks = new Map((vm?.vmLinks ?? []).map((l) => [l.tab, l]));
    roster.replaceChildren(
      ...fabric.members.map((m: Member) => {
        const r = rtt.get(m.tab);
        // An elastic VM: whether each of the tab's vCPUs runs in the guest yet (tab 0 says).
        const map = vm?.vmHostMap;
        const inVm = map ? m.vcpus.filter((v) => map.hosts[v] === m.tab) : m.vcpus;
        const state = map && m.vcpus.length ? (inVm.length === m.vcpus.length ? " (online)" : inVm.length ? ` (online: ${inVm.join(", ")})` : " (not in the VM)") : "";
        const l = vmLinks.get(m.tab);
        const path = !l ? "" : l.path === "direct" ? " · VM link: direct (worker to worker)" : l.path === "relay" ? ` · VM link: through the main threads${l.why ? ` (${l.why})` : ""}` : " · VM link: opening";
        const li = el("li", {}, `tab ${m.tab}${m.tab === fabric!.tab ? " (this tab)" : ""} · ${m.role} · ${m.vcpus.length ? `vCPUs ${m.vcpus.join(", ")}${state}` : "no vCPUs"}${r !== undefined ? ` · RTT ${r.toFixed(1)} ms` : ""}${path}`);
        li.dataset.tab = String(m.tab);
        if (l) li.dataset.vmLink = l.path ?? "opening";
        if (map) li.dataset.online = inVm.join(",");
        return li;
      }),
    );
    const missing = vm?.missingVcpus() ?? [];
    const map = vm?.vmHostMap;
    if (map) {
      const online = map.hosts.flatMap((t, v) => (t === null ? [] : [v]));
      vmLine.textContent = `vCPUs in the VM: ${online.join(", ")} of ${map.hosts.length} possible${map.changing ? ` · ${map.changing}…` : ""}`;
      vmLine.dataset.online = online.join(",");
      vmLine.dataset.changing = map.changing;
    }
    if (fabric.tab === 0 && vm?.phase === "waiting" && !elasticStart)
      setStatus("waiting", missing.length ? `Waiting for tabs to host vCPU${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: share the join link.` : "Every vCPU has a tab: booting.");
    boot.disabled = fabric.tab !== 0 || elasticStart || missing.length > 0 || vm?.phase === "booting" || vm?.phase === "running" || vm?.phase === "fetching";
  };

  /** The failure that stopped the VM, when a node failed (any tab's). */
  let failure: NodeFailure | null = null;
  /** The VM's recent states with their wall-clock times (tests and the bench read them). */
  const states: { phase: string; atMs: number; text: string }[] = [];
  const onState = (s: ClusterVmState) => {
    states.push({ phase: s.phase, atMs: performance.timeOrigin + performance.now(), text: s.phase === "error" ? s.message : s.phase === "stopped" || s.phase === "left" ? s.reason : "" });
    if (states.length > 50) states.shift();
    if (s.phase === "stopped" || s.phase === "error") {
      // The console says it too: it is where the user looks when the output stops.
      consoleLine(`VM stopped: ${s.phase === "error" ? s.message : s.reason}`);
      if (s.phase === "error" && s.failure) failure = s.failure;
    }
    stop.disabled = !(s.phase === "booting" || s.phase === "running" || s.phase === "fetching");
    switch (s.phase) {
      case "waiting":
        return renderRoster();
      case "fetching":
        return setStatus("fetching", `Fetching the ${s.what} tab 0 announced…`);
      case "booting":
        return setStatus("booting", vm?.isElastic && fabric?.tab !== 0 ? "Joining the running VM: starting this tab's vCPUs…" : "Booting the cluster's VM…");
      case "running":
        return setStatus("running", fabric?.me?.vcpus.length ? "VM running: the console below is node 0's serial port." : "Watching: the console below is node 0's serial port.");
      case "left":
        // Out of the VM, which runs on: this tab leaves the cluster too (a refused tab may join again).
        consoleLine(s.reason);
        fabric?.close("it left the VM");
        leave.disabled = true;
        joinAgain.hidden = fabric?.tab === 0;
        return setStatus("left", s.reason);
      case "stopped":
        return setStatus("stopped", `VM stopped: ${s.reason}`);
      case "error":
        return setStatus("error", `VM stopped: ${s.message}`);
    }
  };

  // tab 0's own boot: fetch and check the images like the one-tab flow, then hand them to ClusterVm.
  let promptSeen = false;
  let tail = "";
  /** The console's recent output as text (the xterm pane wraps and scrolls it). */
  let transcript = "";
  /** The latest status each local node reported (counters, fault latency). */
  const nodeStatus = new Map<number, NodeStatus>();
  const consoleLine = (text: string) => {
    const bytes = new TextEncoder().encode(`\r\n[${text}]\r\n`);
    opts.pane.write(bytes);
    transcript = (transcript + String.fromCharCode(...bytes)).slice(-TRANSCRIPT_CHARS);
  };
  const hostBoot = async () => {
    if (!fabric || !vm || fabric.tab !== 0) return;
    bootedOnce = true;
    opts.pane.clear();
    promptSeen = false;
    tail = "";
    // An elastic VM runs Linux (the self-test has no CPU hotplug).
    const kind: GuestKind = elasticStart ? "linux" : isGuestKind(guestKind.value) ? guestKind.value : "linux";
    const urls = { engine: ENGINE_URL, firmware: FIRMWARE_URL, kernel: opts.config.kernelUrl, initramfs: opts.config.initrdUrl, elf: SELFTEST_URL };
    try {
      const get = async (what: string, url: string, check?: (b: Uint8Array, w: string) => unknown) => {
        setStatus("fetching", `Fetching the ${what}…`);
        const buf = await fetchWithProgress(url, () => {}).catch((err: Error) => {
          throw new Error(`cannot fetch the ${what} from ${url}: ${err.message}`);
        });
        check?.(new Uint8Array(buf), `the ${what} (${url})`);
        return buf;
      };
      const guest: ClusterGuest =
        kind === "linux"
          ? {
              kind,
              wasm: await get("engine", urls.engine),
              firmware: await get("firmware", urls.firmware, checkBios),
              bzImage: await get("kernel", urls.kernel, checkBzImage),
              initrd: await get("initramfs", urls.initramfs, checkInitramfs),
              cmdline: opts.config.cmdline,
              memoryMiB: opts.config.memoryMiB,
            }
          : { kind, wasm: await get("engine", urls.engine), elf: await get("self-test guest", urls.elf, checkMultibootElf), cmdline: "", memoryMiB: SELFTEST_MEMORY_MIB };
      await vm.bootHost(guest, urls, { elastic: elasticStart });
    } catch (err) {
      setStatus("error", `Cannot boot: ${(err as Error).message}`);
    }
  };

  const enter = (f: FabricMember) => {
    fabric = f;
    opts.onEnter?.();
    createRow.hidden = true;
    joinRow.hidden = true;
    linkRow.hidden = false;
    vmRow.hidden = false;
    boot.hidden = f.tab !== 0 || elasticStart;
    startRow.hidden = true;
    fixed.hidden = true;
    const watching = f.tab !== 0 && !f.me?.vcpus.length;
    stop.hidden = f.tab !== 0;
    // Tab 0 of an elastic VM shows Leave too: it says why tab 0 cannot, beside Stop.
    leave.hidden = f.tab === 0 && !elasticStart;
    leave.textContent = elasticStart || f.tab !== 0 ? "Leave" : "Leave cluster";
    linkBox.value = f.joinLink(location.href.split("#")[0]!);
    const watchLink = f.watchLink(location.href.split("#")[0]!);
    watchRow.hidden = watchLink === null;
    watchLinkBox.value = watchLink ?? "";
    /** A watcher's page shows what it may not do (tab 0 refuses it anyway). */
    const showRights = (r: WatcherRights) => {
      if (!watching) return;
      opts.view?.handle.lockControls(r.control ? null : "Watching: the cluster's creator has not allowed watchers to change the knob or tracing.");
      note(`watching: ${r.type ? "you may type on the console" : "typing is off (the creator has not allowed it)"}; ${r.control ? "you may use the knob and trace" : "the knob and trace are off"}`);
    };
    if (watching) showRights(NO_WATCHER_RIGHTS);
    vm = new ClusterVm({
      fabric: f,
      // `?vmlink=relay`: node frames go through the main threads even where a worker could own the
      // channel; `?vmlink=pair`: through the net worker only (no node's own channel).
      vmLink: opts.config.vmLink,
      spinWait: opts.config.spinWait,
      ...(f.tab === 0 ? { watcherRights: { type: watchersType.checked, control: watchersControl.checked } } : {}),
      onRights: showRights,
      // The envelope already refused anything but a path; resolving it and comparing origins is
      // the second lock on the door (an image comes only from this page's own server).
      fetchImage: async (url) => {
        const resolved = new URL(url, location.href);
        if (resolved.origin !== location.origin) throw new Error(`the image URL ${url.slice(0, 80)} resolves to ${resolved.origin}, not this page's server`);
        return fetchWithProgress(resolved.href, () => {});
      },
      onOutput: (bytes) => {
        opts.pane.write(bytes);
        transcript = (transcript + String.fromCharCode(...bytes)).slice(-TRANSCRIPT_CHARS);
        if (!promptSeen) {
          tail = (tail + String.fromCharCode(...bytes)).slice(-256);
          if (tail.includes(GUEST_PROMPT)) {
            promptSeen = true;
            note("the guest's shell is ready");
          }
        }
      },
      onState,
      guestReadyText: GUEST_PROMPT,
      onVmHosts: (hosts, changing) => {
        const online = hosts.flatMap((t, v) => (t === null ? [] : [v]));
        note(changing ? `${changing}…` : `vCPUs in the VM: ${online.join(", ")}`);
        renderRoster();
      },
      onInvalid: (why) => note(`dropped a message ${why}`),
      onStatus: (st) => nodeStatus.set(st.node, st),
      ...(opts.view ? { view: feedFromCluster(opts.view.feed, opts.view.handle, () => f.me?.vcpus[0] ?? null) } : {}),
    });
    if (opts.view) clusterControls(opts.view.handle, () => vm ?? null);
    f.on((e) => {
      if (e.type === "roster") renderRoster();
      else if (e.type === "member-left") note(`tab ${e.member.tab} left: ${e.reason}`);
      else if (e.type === "link-down" && e.error) note(`link to tab ${e.tab} failed (${e.error.code}): ${e.error.message}`);
      else if (e.type === "ended") {
        // A VM that already stopped keeps its first cause on the status line; the log says the rest.
        if (vm?.phase === "error" || vm?.phase === "stopped") note(`the cluster ended for this tab: ${e.error.message}`);
        else setStatus("error", `The cluster ended: ${e.error.message}`);
        boot.disabled = true;
      } else if (e.type === "signaling-lost") note(`signaling lost (${e.error.code}): nobody new can join`);
      if (e.type === "roster" && f.tab === 0 && !bootedOnce && !elasticStart && vm?.phase === "waiting" && vm.missingVcpus().length === 0) void hostBoot();
    });
    opts.pane.onInput((bytes) => {
      // ClusterVm drops a watcher's keys without the right; the log says so once.
      if (watching && vm?.phase === "running" && !vm.watcherRights.type) {
        if (!typingNoted) note("typing is off for watchers: the cluster's creator has not allowed it");
        typingNoted = true;
        return;
      }
      vm?.input(bytes);
    });
    addEventListener("pagehide", () => f.close("the tab closed"));
    // Closing or reloading a tab that hosts vCPUs ends the VM on every tab: the browser asks first.
    // A tab of an elastic VM (not tab 0) starts its Leave meanwhile: when it is done the tab can go.
    addEventListener("beforeunload", (e) => {
      const phase = vm?.phase;
      if (!f.me?.vcpus.length || !(phase === "fetching" || phase === "booting" || phase === "running")) return;
      e.preventDefault();
      if (vm?.isElastic && f.tab !== 0 && !leaving) void leaveElastic();
    });
    setInterval(renderRoster, 1000);
    renderRoster();
    if (f.tab === 0 && (elasticStart || vm.missingVcpus().length === 0)) void hostBoot();
  };

  const failed = (what: string, err: unknown) => {
    const e = err as Error;
    setStatus("error", `${what} failed${e instanceof FabricError ? ` (${e.code})` : ""}: ${e.message}`);
  };

  create.addEventListener("click", async () => {
    const t = Number(total.value);
    const h = Number(here.value);
    if (!Number.isInteger(t) || t < 1 || t > MAX_VCPUS) return setStatus("error", `vCPUs in all must be a whole number from 1 to ${MAX_VCPUS}`);
    if (!Number.isInteger(h) || h < 1 || h > t) return setStatus("error", `vCPUs on this tab must be a whole number from 1 to ${t} (tab 0 hosts at least the boot CPU)`);
    create.disabled = true;
    try {
      const relay = useRelay.checked ? (opts.config.relayUrl ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${RELAY_PATH}`) : undefined;
      enter(await createCluster({ totalVcpus: t, hostVcpus: h, maxTabs: MAX_TABS, protocol: PROTOCOL_VERSION, build: BUILD, ...(relay ? { relay } : {}) }));
    } catch (err) {
      create.disabled = false;
      failed("Creating the cluster", err);
    }
  });

  start.addEventListener("click", async () => {
    const t = Number(possible.value);
    const h = Number(startHere.value);
    if (!Number.isInteger(t) || t < 2 || t > MAX_POSSIBLE_CPUS) return setStatus("error", `vCPUs at most must be a whole number from 2 to ${MAX_POSSIBLE_CPUS}`);
    if (!Number.isInteger(h) || h < 1 || h > t) return setStatus("error", `vCPUs on this tab must be a whole number from 1 to ${t}`);
    start.disabled = create.disabled = true;
    elasticStart = true;
    try {
      const relay = useRelay.checked ? (opts.config.relayUrl ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${RELAY_PATH}`) : undefined;
      enter(await createCluster({ totalVcpus: t, hostVcpus: h, maxTabs: MAX_TABS, protocol: PROTOCOL_VERSION, build: BUILD, ...(relay ? { relay } : {}) }));
    } catch (err) {
      start.disabled = create.disabled = false;
      elasticStart = false;
      failed("Starting the VM", err);
    }
  });

  /** A tab of an elastic VM leaves: tab 0 takes its vCPUs out of the guest, then it goes. */
  const leaveElastic = async () => {
    if (!vm) return;
    leaving = true;
    leave.disabled = true;
    setStatus("leaving", "Leaving: the guest takes this tab's vCPUs offline and its pages move to the tabs that stay…");
    try {
      await vm.leaveVm();
    } catch (err) {
      // Refused (another change under way, the guest would not eject): the VM runs on with this tab.
      note(`Leave refused: ${(err as Error).message}`);
      if (vm.phase === "running") setStatus("running", `Leave refused: ${(err as Error).message}. The VM runs on with this tab.`);
      leave.disabled = false;
    } finally {
      leaving = false;
    }
  };

  const doJoin = async (role: "compute" | "watcher") => {
    const n = role === "watcher" ? 0 : Number(joinVcpus.value);
    if (!Number.isInteger(n) || n < 0 || n > MAX_VCPUS) return setStatus("error", `vCPUs on this tab must be a whole number from 0 to ${MAX_VCPUS}`);
    join.disabled = watch.disabled = true;
    setStatus("joining", "Joining…");
    try {
      enter(await joinCluster(location.href, { role: n === 0 ? "watcher" : "compute", vcpus: n, protocol: PROTOCOL_VERSION, build: BUILD }));
      // The VM's configuration may already have come (a watcher joining a running VM).
      if (vm?.phase === "waiting") setStatus("member", `Joined as tab ${fabric!.tab}; waiting for tab 0 to boot.`);
    } catch (err) {
      join.disabled = watch.disabled = false;
      failed("Joining the cluster", err);
    }
  };
  join.addEventListener("click", () => void doJoin("compute"));
  watch.addEventListener("click", () => void doJoin("watcher"));
  const copyFrom = (box: HTMLInputElement, what: string) => {
    box.select();
    void navigator.clipboard?.writeText(box.value).then(
      () => note(`${what} copied`),
      () => note("copy failed: select the link and copy it by hand"),
    );
  };
  copy.addEventListener("click", () => copyFrom(linkBox, "join link"));
  copyWatch.addEventListener("click", () => copyFrom(watchLinkBox, "watch link"));
  boot.addEventListener("click", () => void hostBoot());
  stop.addEventListener("click", () => {
    try {
      vm?.stop();
    } catch (err) {
      note((err as Error).message);
    }
  });
  joinAgain.addEventListener("click", () => location.reload());
  leave.addEventListener("click", () => {
    if (fabric?.tab === 0 && vm?.isElastic) {
      note("tab 0 holds the devices and vCPU 0: it cannot leave the VM; Stop ends it for every tab");
      setStatus(vm.phase, "Tab 0 cannot leave: it holds the devices and vCPU 0. Stop ends the VM for every tab.");
      return;
    }
    if (vm?.isElastic && fabric?.me?.vcpus.length && vm.phase !== "left") {
      if (leaving) {
        note("Leave refused: this tab's Leave is already in progress");
        return;
      }
      void leaveElastic();
      return;
    }
    vm?.leave();
    fabric?.close("it left");
    leave.disabled = stop.disabled = true;
    setStatus("stopped", "This tab left the cluster.");
  });

  // Browser tests and the benchmark read the VM's link counters and the fabric's RTTs from here.
  (globalThis as { giantwebCluster?: unknown }).giantwebCluster = {
    get tab() {
      return fabric?.tab;
    },
    links: () => fabric?.links() ?? [],
    counters: () => vm?.counters ?? null,
    /** How node frames go to each other tab: direct, relay (with why), or null while not settled. */
    vmLinks: () => vm?.vmLinks ?? [],
    /** Round trips (ms) net worker to net worker on the direct VM channel to `tab` (the bench's reference). */
    vmLinkPing: (tab: number, count: number) => vm!.pingVmLink(tab, count),
    consoleText: () => transcript,
    nodeStatus: () => [...nodeStatus.values()],
    failure: () => failure,
    /** An elastic VM: the tab running each vCPU's node, and the change under way. */
    vmHosts: () => vm?.vmHostMap ?? null,
    leaveVm: () => vm!.leaveVm(),
    states: () => [...states],
    ping: (tab: number) => fabric!.ping(tab),
    // Fault injection for the failure tests and the bench: what a broken or hostile peer can do
    // anyway (this tab sends what it likes on its own links), so it opens no door.
    inject: {
      /** Sends raw bytes to a tab as one frame, past the envelope's encoder. */
      send: (tab: number, bytes: number[]) => fabric!.send(tab, new Uint8Array(bytes)),
      /** Cuts the link to a tab as a network failure would (no goodbye). */
      cutLink: (tab: number) => fabric!.cutLink(tab),
    },
  };
}
