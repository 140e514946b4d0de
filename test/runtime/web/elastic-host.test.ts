// Tab 0's ElasticHost with fakes: its own node 0 (a fake local machine), the roster, a recorder of
// what it sends, and fake remote tabs that answer its node-* requests through onReply. It must run
// ElasticVm's steps (start, pause, DSM rounds, apply, resume, plug) on the right tabs, one change at
// a time, refuse what cannot be done with a reason, and fail the VM only once a change paused it.

import { afterEach, expect, it } from "vitest";
import { ElasticHost, type ElasticHostDeps } from "../../../src/runtime/web/elastic-host.ts";
import type { ControlMessage } from "../../../src/protocol/tab/envelope.ts";
import type { NodeControlRequest } from "../../../src/protocol/tab/node-control.ts";

type NodeRequest = Extract<ControlMessage, { t: "node-start" | "node-control" | "node-end" }>;
type Reply = Extract<ControlMessage, { t: "node-reply" }>;

const POSSIBLE = 3;
/** DSM messages node i sent node j (never changing, so every round is balanced and settles in two). */
const msgs = [
  [0, 5, 7],
  [4, 0, 2],
  [6, 1, 0],
];
const reportOf = (node: number) => ({ node, quiescent: true, sent: [...msgs[node]!], received: msgs.map((row) => row[node]!) });

const describe = (r: NodeControlRequest) =>
  r.op === "set-host" ? `set-host ${r.vcpu}->${r.node}` : "node" in r ? `${r.op} ${r.node}` : "cpu" in r ? `${r.op} ${r.cpu}` : r.op;

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 2));
};

/** What a fake remote tab answers: a reply's body, or "hold" (no answer until the test gives one). */
type Answer = { ok: true; value: unknown } | { ok: false; error: string } | "hold";

interface Rig {
  host: ElasticHost;
  /** Every node step in order: "0 pause" on tab 0's own node, "→1 node-control 1 dsm-report" on another tab. */
  log: string[];
  /** The other control messages tab 0 sent (refusals, leave-done), by tab. */
  told: { to: number; msg: ControlMessage }[];
  hostsSeen: [(number | null)[], string][];
  fatal: string[];
  /** Requests a remote tab holds, to be answered by the test. */
  held: { tab: number; msg: NodeRequest }[];
  answer(tab: number, msg: NodeRequest, a: Exclude<Answer, "hold">): void;
  ready: { value: boolean };
  roster: { tab: number; vcpus: number[] }[];
}

let rigs: Rig[] = [];
afterEach(() => {
  for (const r of rigs) r.host.stop("the test ended"); // clears the request timers of held requests
  rigs = [];
});

function rig(opts: { remote?: (tab: number, msg: NodeRequest) => Answer | undefined; requestMs?: number; ready?: boolean } = {}): Rig {
  const log: string[] = [];
  const told: Rig["told"] = [];
  const hostsSeen: Rig["hostsSeen"] = [];
  const fatal: string[] = [];
  const held: Rig["held"] = [];
  const ready = { value: opts.ready ?? true };
  const roster = [
    { tab: 0, vcpus: [0] },
    { tab: 1, vcpus: [1] },
    { tab: 2, vcpus: [2] },
  ];
  let failure: string | null = null;
  const standard = (msg: NodeRequest): Answer => {
    if (msg.t !== "node-control") return { ok: true, value: null };
    const op = msg.request.op;
    if (op === "dsm-report") return { ok: true, value: reportOf(msg.node) };
    if (op === "dsm-leave" || op === "drain") return { ok: true, value: { owned: 0 } };
    return { ok: true, value: null };
  };
  const r: Rig = {
    host: undefined as unknown as ElasticHost,
    log,
    told,
    hostsSeen,
    fatal,
    held,
    ready,
    roster,
    answer: (tab, msg, a) => r.host.onReply(tab, { t: "node-reply", id: msg.id, ...a } as Reply),
  };
  const deps: ElasticHostDeps = {
    possibleCpus: POSSIBLE,
    present: 1,
    local: {
      runs: (node) => node === 0,
      control: async (node, request) => {
        log.push(`${node} ${describe(request)}`);
        if (request.op === "dsm-report") return reportOf(node);
        if (request.op === "drain" || request.op === "dsm-leave") return { owned: 0 };
        return null;
      },
      startNode: async (node) => void log.push(`0 start ${node}`),
      endNode: (node) => void log.push(`0 end ${node}`),
    },
    members: () => roster,
    send: (tab, msg) => {
      if (msg.t === "node-start" || msg.t === "node-control" || msg.t === "node-end") {
        const what = msg.t === "node-start" ? `node-start ${msg.node} vcpuNodes=${JSON.stringify(msg.vcpuNodes)} members=${JSON.stringify(msg.members)}` : msg.t === "node-control" ? `node-control ${msg.node} ${describe(msg.request)}` : `node-end ${msg.node}`;
        log.push(`→${tab} ${what}`);
        const a = opts.remote?.(tab, msg) ?? standard(msg);
        if (a === "hold") held.push({ tab, msg });
        else setTimeout(() => r.answer(tab, msg, a), 0);
      } else told.push({ to: tab, msg });
    },
    failure: () => failure,
    fatal: (why) => {
      fatal.push(why);
      failure = why;
    },
    onHosts: (hosts, changing) => void hostsSeen.push([hosts, changing]),
    guestReady: () => ready.value,
    ...(opts.requestMs ? { requestMs: opts.requestMs } : {}),
  };
  r.host = new ElasticHost(deps);
  rigs.push(r);
  return r;
}

/** The steps of one join of vCPU v (node v) on tab `tab`, when the members were `before` (node 0 always first). */
function joinSteps(tab: number, v: number, vcpuNodes: (number | null)[], before: number[]): string[] {
  const after = [...before, v].sort((a, b) => a - b);
  const on = (n: number, what: string) => (n === 0 ? `0 ${what}` : `→${n} node-control ${n} ${what}`);
  const others = (what: string, nodes: number[]) => nodes.map((n) => on(n, what));
  return [
    `→${tab} node-start ${v} vcpuNodes=${JSON.stringify(vcpuNodes)} members=${JSON.stringify(after)}`,
    ...others("pause", before),
    // two rounds among the members (quiescent, balanced, the same counts twice): apply
    ...others("dsm-report", before),
    ...others("dsm-report", before),
    ...others(`dsm-add-member ${v}`, before),
    ...others(`set-host ${v}->${v}`, before),
    // two rounds with the newcomer: complete
    ...others("dsm-report", after),
    ...others("dsm-report", after),
    ...others("resume", after),
    `0 plug ${v}`,
  ];
}

it("a tab's join runs ElasticVm's steps in order on the right tabs, then plugs the CPU and publishes the hosts", async () => {
  const r = rig();
  expect(r.host.hosts()).toEqual([0, null, null]);
  r.host.joinWhenReady(1);
  await until(() => r.hostsSeen.at(-1)?.[1] === "" && r.log.includes("0 plug 1"), "the join of tab 1");
  expect(r.log).toEqual(joinSteps(1, 1, [0, 1, null], [0]));
  expect(r.hostsSeen).toEqual([
    [[0, null, null], "tab 1 joins with vCPU 1"],
    [[0, 1, null], "tab 1 joins with vCPU 1"], // its node is being started on tab 1
    [[0, 1, null], ""],
  ]);
  expect(r.host.hosts()).toEqual([0, 1, null]);
  expect(r.host.hostsNode(1)).toBe(true);
  expect(r.host.hostsNode(2)).toBe(false);
  expect(r.told).toEqual([]); // no refusal
  expect(r.fatal).toEqual([]);
});

it("joins wait their turn: a second tab's join runs after the first, with the first's node a member", async () => {
  const r = rig();
  r.host.joinWhenReady(2);
  r.host.joinWhenReady(1);
  expect(() => r.host.joinWhenReady(1)).toThrow(/tab 1 said it is ready twice/);
  await until(() => r.log.filter((l) => l.startsWith("0 plug")).length === 2 && r.hostsSeen.at(-1)?.[1] === "", "both joins");
  const first = joinSteps(2, 2, [0, null, 2], [0]);
  expect(r.log).toEqual([...first, ...joinSteps(1, 1, [0, 1, 2], [0, 2])]);
  expect(r.host.hosts()).toEqual([0, 1, 2]);
  expect(() => r.host.joinWhenReady(2)).toThrow(/tab 2 said it is ready twice/);
  expect(r.fatal).toEqual([]);
});

it("refuses a join before the guest is ready, with the reason, touching no node", async () => {
  const r = rig({ ready: false });
  r.host.joinWhenReady(1);
  await until(() => r.told.length === 1, "the refusal");
  expect(r.told).toEqual([{ to: 1, msg: { t: "join-refused", reason: expect.stringMatching(/^the VM is still booting \(its shell is not up, so it cannot take a CPU yet\); join again when it is$/) } }]);
  expect(r.log).toEqual([]);
  expect(r.host.hosts()).toEqual([0, null, null]);
  expect(r.fatal).toEqual([]);
  // Once the guest is up, the same tab may join again.
  r.ready.value = true;
  r.host.joinWhenReady(1);
  await until(() => r.log.includes("0 plug 1"), "the join");
  expect(r.host.hosts()).toEqual([0, 1, null]);
});

it("a node-start the remote tab refuses ends in join-refused; nothing paused, the VM runs on and takes the next join", async () => {
  const r = rig({ remote: (tab, msg) => (tab === 1 && msg.t === "node-start" ? { ok: false, error: "node 1: the engine failed to build" } : undefined) });
  r.host.joinWhenReady(1);
  await until(() => r.told.length === 1, "the refusal");
  expect(r.told).toEqual([{ to: 1, msg: { t: "join-refused", reason: "vCPU 1 could not join: tab 1: node 1: the engine failed to build" } }]);
  // The node it may have half-started is ended; no node was paused or told of it.
  expect(r.log).toEqual(["→1 node-start 1 vcpuNodes=[0,1,null] members=[0,1]", "→1 node-end 1"]);
  expect(r.fatal).toEqual([]);
  expect(r.host.hosts()).toEqual([0, null, null]);
  expect(r.host.hostsNode(1)).toBe(false);
  await until(() => r.hostsSeen.at(-1)?.[1] === "", "the change over");
  expect(r.hostsSeen.at(-1)).toEqual([[0, null, null], ""]);
  // The membership was left as it was: tab 2 joins normally, node 1 not among the members.
  r.host.joinWhenReady(2);
  await until(() => r.log.includes("0 plug 2"), "tab 2's join");
  expect(r.log.slice(2)).toEqual(joinSteps(2, 2, [0, null, 2], [0]));
  expect(r.fatal).toEqual([]);
});

it("a reply from the wrong tab or with an unknown id throws, and the right answer still counts", async () => {
  const r = rig({ remote: (_tab, msg) => (msg.t === "node-start" ? "hold" : undefined) });
  r.host.joinWhenReady(1);
  await until(() => r.held.length === 1, "the node-start");
  const start = r.held[0]!;
  expect(start.tab).toBe(1);
  expect(() => r.host.onReply(2, { t: "node-reply", id: start.msg.id, ok: true, value: null })).toThrow(`a node-reply ${start.msg.id} that tab 0 did not ask tab 2 for`);
  expect(() => r.host.onReply(1, { t: "node-reply", id: start.msg.id + 1000, ok: true, value: null })).toThrow(`a node-reply ${start.msg.id + 1000} that tab 0 did not ask tab 1 for`);
  await settle();
  expect(r.log).toEqual(["→1 node-start 1 vcpuNodes=[0,1,null] members=[0,1]"]); // still waiting
  r.answer(1, start.msg, { ok: true, value: null });
  await until(() => r.log.includes("0 plug 1"), "the join");
  // An answer given twice is one tab 0 no longer waits for.
  expect(() => r.answer(1, start.msg, { ok: true, value: null })).toThrow(/did not ask tab 1 for/);
  expect(r.fatal).toEqual([]);
});

for (const [what, value, why] of [
  ["quiescent as text", { ...reportOf(1), quiescent: "yes" }, "a DSM report needs a node id and whether it is quiescent"],
  ["a negative count", { ...reportOf(1), sent: [-1, 0, 0] }, "a DSM report's sent must list a message count per node slot"],
  ["no report at all", null, "a DSM report needs a node id and whether it is quiescent"],
] as const) {
  it(`a DSM report from another tab with ${what} fails the change after the pause: fatal`, async () => {
    const r = rig({ remote: (_tab, msg) => (msg.t === "node-control" && msg.request.op === "dsm-report" ? { ok: true, value } : undefined) });
    r.host.joinWhenReady(1);
    await until(() => r.fatal.length === 1, "the failure");
    expect(r.fatal).toEqual([`tab 1's join with vCPU 1 failed midway: tab 1 answered dsm-report for node 1 wrongly: ${why}`]);
    // Node 0 was paused and never resumed; the CPU was never plugged; the tab was not told "refused".
    expect(r.log).toContain("0 pause");
    expect(r.log.some((l) => /resume|plug/.test(l))).toBe(false);
    expect(r.told).toEqual([]);
  });
}

it("a node's error after the pause fails the change (fatal), naming the tab and the node's error", async () => {
  const r = rig({ remote: (_tab, msg) => (msg.t === "node-control" && msg.request.op === "resume" ? { ok: false, error: "node 1: no such engine" } : undefined) });
  r.host.joinWhenReady(1);
  await until(() => r.fatal.length === 1, "the failure");
  expect(r.fatal).toEqual(["tab 1's join with vCPU 1 failed midway: tab 1: node 1: no such engine"]);
  expect(r.log.includes("0 plug 1")).toBe(false);
});

it("leave: tab 0 is refused; a tab with no node or whose join has not begun is done at once; a second leave during one is refused", async () => {
  const r = rig({ remote: (tab, msg) => (tab === 1 && msg.t === "node-start" ? "hold" : undefined) });
  r.host.requestLeave(0);
  expect(r.told).toEqual([{ to: 0, msg: { t: "leave-refused", reason: "tab 0 holds the devices and vCPU 0: it cannot leave (Stop ends the VM)" } }]);
  // Tab 2 runs no node and nothing is under way: done.
  r.host.requestLeave(2);
  expect(r.told.at(-1)).toEqual({ to: 2, msg: { t: "leave-done" } });

  // Tab 1's join starts (its node-start is held), tab 2's waits behind it.
  r.host.joinWhenReady(1);
  await until(() => r.held.length === 1, "tab 1's node-start");
  r.host.joinWhenReady(2);
  // Tab 2 leaves before its join began: done at once, and its join never runs.
  r.host.requestLeave(2);
  expect(r.told.at(-1)).toEqual({ to: 2, msg: { t: "leave-done" } });
  // Tab 1 asks to leave while its own join is under way: refused, naming the change.
  r.host.requestLeave(1);
  expect(r.told.at(-1)).toEqual({ to: 1, msg: { t: "leave-refused", reason: "another change is in progress (tab 1 joins with vCPU 1); Leave again when it is done" } });
  r.answer(1, r.held[0]!.msg, { ok: true, value: null });
  await until(() => r.hostsSeen.at(-1)?.[1] === "" && r.log.includes("0 plug 1"), "tab 1's join");
  await settle();
  expect(r.log.some((l) => l.startsWith("→2"))).toBe(false);
  expect(r.host.hosts()).toEqual([0, 1, null]);

  // Tab 2 joins for real; then tab 1 leaves, and tab 2's leave meanwhile is refused.
  r.host.joinWhenReady(2);
  await until(() => r.log.includes("0 plug 2") && r.hostsSeen.at(-1)?.[1] === "", "tab 2's join");
  r.log.length = 0;
  r.host.requestLeave(1);
  await until(() => r.log.includes("0 unplug 1"), "the unplug");
  expect(r.hostsSeen.at(-1)).toEqual([[0, 1, 2], "tab 1 leaves with vCPU 1"]);
  r.host.requestLeave(2);
  expect(r.told.at(-1)).toEqual({ to: 2, msg: { t: "leave-refused", reason: "another change is in progress (tab 1 leaves with vCPU 1); Leave again when it is done" } });
  // The guest's answer for another CPU does not count; the eject of CPU 1 does.
  r.host.nodeEvent(0, { event: "cpu-ejected", cpu: 2 });
  await settle();
  expect(r.log).toEqual(["0 unplug 1"]);
  r.host.nodeEvent(0, { event: "cpu-ejected", cpu: 1 });
  await until(() => r.told.at(-1)?.msg.t === "leave-done", "leave-done");
  expect(r.told.at(-1)).toEqual({ to: 1, msg: { t: "leave-done" } });
  const all = [0, 1, 2];
  const on = (n: number, what: string) => (n === 0 ? `0 ${what}` : `→${n} node-control ${n} ${what}`);
  expect(r.log).toEqual([
    "0 unplug 1",
    on(1, "pause"),
    ...all.map((n) => on(n, "pause")),
    ...all.map((n) => on(n, "dsm-report")),
    ...all.map((n) => on(n, "dsm-report")),
    on(0, "dsm-remove-member 1"),
    on(2, "dsm-remove-member 1"),
    on(0, "set-host 1->null"),
    on(2, "set-host 1->null"),
    on(1, "dsm-leave"),
    ...all.map((n) => on(n, "dsm-report")),
    ...all.map((n) => on(n, "dsm-report")),
    on(0, "resume"),
    on(2, "resume"),
    on(1, "drain"),
    "→1 node-end 1",
  ]);
  expect(r.host.hosts()).toEqual([0, null, 2]);
  expect(r.host.hostsNode(1)).toBe(false);
  await until(() => r.hostsSeen.at(-1)?.[1] === "", "the change over");
  expect(r.hostsSeen.at(-1)).toEqual([[0, null, 2], ""]);
  expect(r.fatal).toEqual([]);
});

it("a leave the guest refuses (_OST failure for the eject) is refused before any pause; the VM runs on", async () => {
  const r = rig();
  r.host.joinWhenReady(1);
  await until(() => r.log.includes("0 plug 1") && r.hostsSeen.at(-1)?.[1] === "", "the join");
  r.log.length = 0;
  r.host.requestLeave(1);
  await until(() => r.log.includes("0 unplug 1"), "the unplug");
  r.host.nodeEvent(0, { event: "ost", cpu: 1, ostEvent: 3, status: 0x84 }); // in progress: keep waiting
  await settle();
  expect(r.told).toEqual([]);
  r.host.nodeEvent(0, { event: "ost", cpu: 1, ostEvent: 3, status: 1 });
  await until(() => r.told.length === 1, "the refusal");
  expect(r.told).toEqual([{ to: 1, msg: { t: "leave-refused", reason: "vCPU 1 cannot leave: the guest refused to eject vCPU 1 (_OST status 0x1)" } }]);
  expect(r.log).toEqual(["0 unplug 1"]);
  expect(r.host.hosts()).toEqual([0, 1, null]);
  expect(r.fatal).toEqual([]);
});

it("tabGone: a tab that leaves fails its pending requests; before the pause the join is refused, after it the VM fails", async () => {
  // Before the pause: the node-start to tab 1 is pending when it goes.
  const r = rig({ requestMs: 50, remote: (tab, msg) => (tab === 1 && msg.t === "node-start" ? "hold" : undefined) });
  r.host.joinWhenReady(1);
  await until(() => r.held.length === 1, "the node-start");
  r.host.joinWhenReady(2);
  r.host.tabGone(2); // its queued join goes with it
  r.host.tabGone(1);
  // (The fake still accepts the node-end to the gone tab; it is not answered and times out after requestMs.)
  await until(() => r.told.length === 1, "the refusal");
  expect(r.told).toEqual([{ to: 1, msg: { t: "join-refused", reason: "vCPU 1 could not join: tab 1 left the cluster" } }]);
  expect(() => r.answer(1, r.held[0]!.msg, { ok: true, value: null })).toThrow(/did not ask tab 1 for/);
  expect(r.fatal).toEqual([]);
  await settle();
  expect(r.log.some((l) => l.startsWith("→2"))).toBe(false);
  expect(r.host.hosts()).toEqual([0, null, null]);

  // After the pause: tab 1's answer to a DSM report is pending when it goes.
  const s = rig({ remote: (_tab, msg) => (msg.t === "node-control" && msg.request.op === "dsm-report" ? "hold" : undefined) });
  s.host.joinWhenReady(1);
  await until(() => s.held.length === 1, "the report request to tab 1");
  s.host.tabGone(1);
  await until(() => s.fatal.length === 1, "the failure");
  expect(s.fatal).toEqual(["tab 1's join with vCPU 1 failed midway: tab 1 left the cluster"]);
});

it("a request a remote tab does not answer in time fails with the tab, the request and the node", async () => {
  const r = rig({ requestMs: 20, remote: (_tab, msg) => (msg.t === "node-control" && msg.request.op === "resume" ? "hold" : undefined) });
  r.host.joinWhenReady(1);
  await until(() => r.fatal.length === 1, "the failure");
  expect(r.fatal).toEqual(["tab 1's join with vCPU 1 failed midway: tab 1 did not answer node-control for node 1 within 0.02 s"]);
});

it("stop fails every request in flight and drops the waiting joins", async () => {
  const r = rig({ remote: (_tab, msg) => (msg.t === "node-start" ? "hold" : undefined) });
  r.host.joinWhenReady(1);
  await until(() => r.held.length === 1, "the node-start");
  r.host.joinWhenReady(2);
  r.host.stop("the VM stopped: tab 0's user pressed Stop");
  await until(() => r.told.length === 1, "the refusal");
  expect(r.told).toEqual([{ to: 1, msg: { t: "join-refused", reason: "vCPU 1 could not join: the VM stopped: tab 0's user pressed Stop" } }]);
  await settle();
  expect(r.log.some((l) => l.startsWith("→2"))).toBe(false);
});
