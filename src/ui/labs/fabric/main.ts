// The fabric lab page: create or join a cluster, watch the roster and link RTTs, turn the delay
// knob. It also exposes `window.fabricLab` so browser tests and the benchmark can drive frames.

import { createCluster, FabricError, type FabricMember, hasJoinFragment, joinCluster, type LinkInfo, parseJoinLink } from "../../../fabric/adapters/browser.ts";
import type { Member } from "../../../fabric/messages.ts";
import { checkDataFrame, type CheckedFrame, dataFrame, echoFrame, frameKind, frameSeq, LAB_ECHO_REPLY, LAB_ECHO_REQUEST } from "./frames.ts";
import "./lab.css";

/** Where the Vite plugin serves the relay (relay/server.ts; not imported: that module is Node.js's). */
const RELAY_PATH = "/fabric-relay";

/** The lab's VM protocol number (the lab carries no VM traffic); ?protocol=N tries a mismatch. */
const query = new URLSearchParams(location.search);
const LAB_PROTOCOL = Number(query.get("protocol") ?? "1");
/** ?connectTimeout=ms shortens the wait for links to open (tests of failing links). */
const CONNECT_TIMEOUT_MS = Number(query.get("connectTimeout") ?? "20000");
const BUILD = `fabric-lab ${import.meta.env.MODE}`;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const statusLine = $("status");
const logList = $("log");
let fabric: FabricMember | undefined;
const received: (CheckedFrame & { from: number })[] = [];
const echoWaiters = new Map<number, () => void>();
let echoSeq = 0;

function setStatus(phase: "idle" | "joining" | "member" | "error" | "ended", text: string): void {
  statusLine.dataset.phase = phase;
  statusLine.textContent = text;
}

function log(text: string): void {
  const li = document.createElement("li");
  li.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  logList.append(li);
  logList.scrollTop = logList.scrollHeight;
}

const intInput = (id: string) => {
  const el = $<HTMLInputElement>(id);
  const v = Number(el.value);
  if (!Number.isInteger(v)) throw new FabricError("bad-message", `${el.labels?.[0]?.textContent?.trim() ?? id}: "${el.value}" is not a whole number`);
  return v;
};

const describeError = (e: unknown) => (e instanceof FabricError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));

function attach(f: FabricMember): void {
  fabric = f;
  $("create-form").hidden = true;
  $("join-form").hidden = true;
  $("cluster").hidden = false;
  $("cluster-id").textContent = f.cluster;
  $("self-tab").textContent = String(f.tab);
  $<HTMLInputElement>("join-link").value = f.joinLink(location.href);
  setStatus("member", `tab ${f.tab} of cluster ${f.cluster} (${f.role})`);
  f.on((e) => {
    switch (e.type) {
      case "roster":
        log(`roster: ${e.members.map((m) => `${m.tab}:${m.role}[${m.vcpus.join(",")}]`).join(" ")}`);
        break;
      case "link-up":
        log(`link to tab ${e.tab} open`);
        break;
      case "link-down":
        log(`link to tab ${e.tab} down: ${e.error ? `${e.error.code}: ` : ""}${e.reason}`);
        break;
      case "member-left":
        log(`tab ${e.member.tab} (${e.member.role}${e.member.vcpus.length ? `, vCPUs ${e.member.vcpus.join(",")}` : ""}) left: ${e.reason}`);
        if (e.member.vcpus.length > 0 && f.tab >= 0)
          setStatus("error", `tab ${e.member.tab} hosted vCPU(s) ${e.member.vcpus.join(",")} and left: a VM on this cluster must stop`);
        break;
      case "signaling-lost":
        log(`signaling lost (links stay up, nobody new can join): ${e.error.message}`);
        if (statusLine.dataset.phase === "member") setStatus("member", `tab ${f.tab} of cluster ${f.cluster} (${f.role}); signaling lost: the links stay up, nobody new can join`);
        break;
      case "ended":
        setStatus("ended", e.error.code === "evicted" ? `evicted: ${e.error.message}` : `cluster over: ${e.error.message}`);
        log(`ended: ${e.error.message}`);
        break;
      case "invalid":
        log(`dropped an invalid message: ${e.error.message}`);
        break;
    }
    render();
  });
  f.onFrame((from, frame) => {
    const kind = frameKind(frame);
    if (kind === LAB_ECHO_REQUEST) f.send(from, echoFrame(LAB_ECHO_REPLY, frameSeq(frame), frame.length));
    else if (kind === LAB_ECHO_REPLY) echoWaiters.get(frameSeq(frame))?.();
    else {
      const c = checkDataFrame(frame);
      if (c) received.push({ ...c, from });
      else log(`frame from tab ${from} of unknown kind ${kind}`);
    }
  });
  render();
}

const ms = (x: number | undefined) => (x === undefined ? "" : `${x.toFixed(2)} ms`);

function render(): void {
  if (!fabric) return;
  const links = new Map(fabric.links().map((l) => [l.tab, l]));
  const free = fabric.freeVcpus;
  $("coverage").textContent =
    free.length === 0
      ? `all ${fabric.shape.totalVcpus} vCPU(s) have a tab: tab 0 may boot`
      : `vCPU(s) ${free.join(",")} of ${fabric.shape.totalVcpus} still need a tab (share the join link)`;
  const body = $("roster").querySelector("tbody")!;
  body.replaceChildren(
    ...fabric.members.map((m: Member) => {
      const tr = document.createElement("tr");
      tr.dataset.tab = String(m.tab);
      if (m.tab === fabric!.tab) tr.dataset.self = "";
      const l: LinkInfo | undefined = links.get(m.tab);
      const cells = [String(m.tab), m.role, m.vcpus.join(",") || "-", m.tab === fabric!.tab ? "this tab" : (l?.state ?? "none"), ms(l?.rttLastMs), ms(l?.rttP50Ms), ms(l?.rttP99Ms), l ? String(l.queuedBytes) : ""];
      for (const c of cells) {
        const td = document.createElement("td");
        td.textContent = c;
        tr.append(td);
      }
      return tr;
    }),
  );
}
setInterval(render, 1000);

async function run(what: string, fn: () => Promise<FabricMember>): Promise<void> {
  setStatus("joining", `${what}…`);
  for (const b of document.querySelectorAll("button")) b.disabled = true;
  try {
    attach(await fn());
  } catch (e) {
    setStatus("error", `${what} failed: ${describeError(e)}`);
    log(`${what} failed: ${describeError(e)}`);
  } finally {
    for (const b of document.querySelectorAll("button")) b.disabled = false;
  }
}

$("create").addEventListener("click", () =>
  run("creating the cluster", () => {
    const relay = $<HTMLInputElement>("relay").value.trim();
    return createCluster({
      totalVcpus: intInput("total-vcpus"),
      hostVcpus: intInput("host-vcpus"),
      maxTabs: intInput("max-tabs"),
      protocol: LAB_PROTOCOL,
      build: BUILD,
      ...(relay ? { relay } : {}),
    });
  }),
);

$("join").addEventListener("click", () =>
  run("joining", () => {
    const role = $<HTMLSelectElement>("join-role").value === "watcher" ? "watcher" : "compute";
    return joinCluster(location.href, {
      role,
      vcpus: role === "watcher" ? 0 : intInput("join-vcpus"),
      protocol: LAB_PROTOCOL,
      build: BUILD,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      webrtc: { connectTimeoutMs: CONNECT_TIMEOUT_MS },
    });
  }),
);

$("use-page-relay").addEventListener("click", () => {
  $<HTMLInputElement>("relay").value = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${RELAY_PATH}`;
});
$("copy-link").addEventListener("click", () => void navigator.clipboard?.writeText($<HTMLInputElement>("join-link").value));
$("delay").addEventListener("input", () => {
  const v = Number($<HTMLInputElement>("delay").value);
  fabric?.setDelay(v);
  $("delay-value").textContent = `${v} ms`;
});
$("leave").addEventListener("click", () => {
  fabric?.close("left from the lab page");
  setStatus("ended", "this tab left the cluster");
});
// Tell the others now rather than let them wait for the link to time out.
addEventListener("pagehide", () => fabric?.close("tab closed"));

if (hasJoinFragment(location.href)) {
  $("create-form").hidden = true;
  $("join-form").hidden = false;
  try {
    const link = parseJoinLink(location.href);
    setStatus("idle", `join cluster ${link.cluster}${link.relay ? ` through ${link.relay}` : " (tabs of this browser)"}`);
  } catch (e) {
    setStatus("error", describeError(e));
    $<HTMLButtonElement>("join").disabled = true;
  }
}
$("join-role").addEventListener("change", () => {
  $<HTMLInputElement>("join-vcpus").disabled = $<HTMLSelectElement>("join-role").value === "watcher";
});

// ------------------------------------------------------------ hook for tests and the benchmark

function need(): FabricMember {
  if (!fabric) throw new Error("not in a cluster");
  return fabric;
}

function roundTrip(to: number, size: number): Promise<number> {
  const f = need();
  const seq = ++echoSeq;
  return new Promise((resolve) => {
    const t0 = performance.now();
    echoWaiters.set(seq, () => {
      echoWaiters.delete(seq);
      resolve(performance.now() - t0);
    });
    f.send(to, echoFrame(LAB_ECHO_REQUEST, seq, size));
  });
}

const hook = {
  tab: () => fabric?.tab,
  members: () => fabric?.members.map((m) => ({ ...m })),
  links: () => fabric?.links(),
  /** Why signaling is gone, once it is (the cluster runs on without it). */
  signalingLost: () => fabric?.signalingLostError?.message,
  received: () => received.map((r) => ({ ...r })),
  /** Sends numbered data frames of the given sizes to one tab, numbered from `firstSeq`. */
  sendData(to: number, sizes: number[], firstSeq = 0): void {
    const f = need();
    sizes.forEach((size, i) => f.send(to, dataFrame(firstSeq + i, size)));
  },
  /** `count` round trips one after another: each echo request waits for the previous reply. */
  async rtts(to: number, count: number, size: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(await roundTrip(to, size));
    return out;
  },
  /** `count` echo requests sent at once; resolves with the time until the last reply. */
  async pipelined(to: number, count: number, size: number): Promise<number> {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: count }, () => roundTrip(to, size)));
    return performance.now() - t0;
  },
  /** Like pipelined, also giving the longest pause between two consecutive replies (stalls). */
  async pipelinedDetail(to: number, count: number, size: number): Promise<{ ms: number; maxGapMs: number }> {
    const t0 = performance.now();
    let last = t0;
    let maxGapMs = 0;
    await Promise.all(
      Array.from({ length: count }, () =>
        roundTrip(to, size).then(() => {
          const now = performance.now();
          maxGapMs = Math.max(maxGapMs, now - last);
          last = now;
        }),
      ),
    );
    return { ms: performance.now() - t0, maxGapMs };
  },
  /**
   * Like rtts, while a worker of this tab spins on one core (as a vCPU spinning in its guest does):
   * the raw round trip under the load the IPI round trip is measured under.
   */
  async rttsWhileSpinning(to: number, count: number, size: number): Promise<{ rtts: number[]; spunMs: number }> {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    flag[0] = 1;
    // (Vite bundles a worker only from this literal `new Worker(new URL(...))` shape.)
    const spinner = new Worker(new URL("./spin-worker.ts", import.meta.url), { type: "module", name: "spin" });
    const said = <T>(what: (data: unknown) => T | undefined) =>
      new Promise<T>((resolve) => spinner.addEventListener("message", (e) => { const v = what(e.data); if (v !== undefined) resolve(v); }));
    const stopped = said((d) => (typeof d === "object" && d !== null && "spunMs" in d ? (d as { spunMs: number }).spunMs : undefined));
    try {
      spinner.postMessage(flag.buffer);
      await said((d) => (d === "spinning" ? true : undefined));
      const rtts = await hook.rtts(to, count, size);
      Atomics.store(flag, 0, 0);
      return { rtts, spunMs: await stopped };
    } finally {
      Atomics.store(flag, 0, 0);
      spinner.terminate();
    }
  },
  setDelay: (msDelay: number) => need().setDelay(msDelay),
  ping: (to: number) => need().ping(to),
};
(globalThis as unknown as { fabricLab: typeof hook }).fabricLab = hook;
export type FabricLabHook = typeof hook;
