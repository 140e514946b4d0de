// An elastic VM in the live view: vCPUs coming online on a tab and going offline (the `hosts`
// input), their pages moving to a joining node and back to node 0 from a leaving one, and what
// the nodes section, the page map's legend and the IPI matrix make of it.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ClusterConfig, PageRun } from "../../../src/protocol/messages.ts";
import { ViewFeed } from "../../../src/protocol/telemetry/inputs.ts";
import { feedFromCluster } from "../../../src/ui/cluster/cluster-view.ts";
import { LiveModel } from "../../../src/ui/view/model/live-model.ts";
import { legendEntries } from "../../../src/ui/view/page-map-canvas.ts";
import { ipiCpus, nodeRoster, offlineSummary, ranges, renderNodes } from "../../../src/ui/view/sections.ts";
import { snap } from "./support.ts";

/** An elastic VM of `n` possible vCPUs: node v hosts vCPU v. */
const elastic = (n: number): ClusterConfig => ({ type: "config", nodes: n, memoryPages: 64, vcpuHome: Array.from({ length: n }, (_, i) => i), readTakesOwnership: true, guest: "test" });
const run = (first: number, count: number, state: PageRun["state"]): PageRun => ({ first, count, state });

function vm(n = 4) {
  const m = new LiveModel();
  m.ingest({ kind: "config", config: elastic(n) });
  const hosts = (h: (number | null)[], changing = "", at = 0) => expect(m.ingest({ kind: "hosts", hosts: h, changing, receivedMs: at })).toBe(true);
  const stats = (node: number, seq: number, atMs: number, pages: PageRun[] = [], counters = {}) =>
    m.ingest({ kind: "stats", snapshot: snap(node, seq, atMs, counters, { pages, vcpus: [{ vcpu: node, state: "running", instructions: seq * 1000 }] }), receivedMs: atMs });
  return { m, hosts, stats };
}

describe("elastic VM: hosts in the model", () => {
  it("shows a vCPU joining on a tab, its pages moving there and back to node 0 when it leaves", () => {
    const { m, hosts, stats } = vm(4);
    hosts([0, null, null, null]);
    stats(0, 1, 0);
    expect(m.online(0)).toBe(true);
    expect(m.online(2)).toBe(false);
    expect(m.rtt.keys).toEqual([]); // one node: no links yet

    // Tab 3 joins with vCPU 2: tab 0 says so, then the node is online on tab 3 before it starts.
    hosts([0, null, null, null], "tab 3 joins with vCPU 2", 100);
    expect(m.hosts!.changing).toBe("tab 3 joins with vCPU 2");
    hosts([0, null, 3, null], "tab 3 joins with vCPU 2", 200);
    expect(m.tabOf(2)).toBe(3);
    expect(m.rtt.keys).toEqual(["0-2"]);
    const moves = (to: number) => [10, 11, 12, 13].map((page) => ({ page, to, count: 1 }));
    m.ingest({ kind: "page-moves", node: 0, seq: 1, receivedMs: 300, moves: moves(2) });
    stats(2, 1, 300, [run(10, 4, "modified")]);
    stats(0, 2, 300, [run(10, 4, "invalid")]);
    hosts([0, null, 3, null], "", 400);
    expect(m.pageMap!.ownerOf(10)).toBe(2);
    expect(m.pageMap!.ownedCounts()[2]).toBe(4);
    expect(legendEntries(m).entries.map((e) => [e.node, e.pages, e.tab])).toEqual([
      [0, 60, 0],
      [2, 4, 3],
    ]);
    expect(legendEntries(m).hidden).toBe(2);

    // Tab 3 leaves: the node hands its pages back to node 0 (the deltas and the page-moves report say so), then it is offline.
    hosts([0, null, 3, null], "tab 3 leaves with vCPU 2", 500);
    stats(2, 2, 600, [run(10, 4, "invalid")]);
    stats(0, 3, 600, [run(10, 4, "modified")]);
    m.ingest({ kind: "page-moves", node: 2, seq: 1, receivedMs: 600, moves: moves(0) });
    hosts([0, null, null, null], "", 700);
    for (let p = 10; p < 14; p++) expect(m.pageMap!.ownerOf(p)).toBe(0);
    expect(m.pageMap!.info(10).holders).toEqual([0]);
    expect(m.online(2)).toBe(false);
    expect(m.hosts!.left.get(2)).toBe(3);
    expect(m.rates.node(2)).toBeUndefined(); // no stale rates for a node that went
    expect(legendEntries(m).entries.map((e) => e.node)).toEqual([0]);
    expect(m.hot.movesOf(10)).toBe(2); // there and back, from the reports

    // A late snapshot of the departed node does not give it back its pages.
    stats(2, 1, 650, [run(10, 4, "modified")]);
    expect(m.health.offlineSnapshots).toBe(1);
    expect(m.pageMap!.ownerOf(10)).toBe(0);
    expect(m.health.rejected).toBe(0);
  });

  it("does not draw pages as owned by a node once it is offline, even before node 0's delta comes", () => {
    const { m, hosts, stats } = vm(3);
    hosts([0, 1, null]);
    stats(1, 1, 0, [run(0, 8, "modified")]);
    stats(0, 1, 0, [run(0, 8, "invalid")]);
    expect(m.pageMap!.ownerOf(3)).toBe(1);
    hosts([0, null, null]); // node 0's snapshot with the pages is still on its way
    expect(m.pageMap!.ownerOf(3)).toBeNull(); // changing hands, not node 1's
    expect(m.pageMap!.info(3).holders).toEqual([]);
    stats(0, 2, 500, [run(0, 8, "modified")]);
    expect(m.pageMap!.ownerOf(3)).toBe(0);
  });

  it("counts a rejoining vCPU's node afresh (no restart, its reports numbered from 1 again)", () => {
    const { m, hosts, stats } = vm(3);
    hosts([0, 2, null]);
    stats(1, 1, 0, [], { writeFaults: 0 });
    stats(1, 9, 800, [], { writeFaults: 80 });
    m.ingest({ kind: "page-moves", node: 1, seq: 5, receivedMs: 800, moves: [{ page: 1, to: 0, count: 1 }] });
    expect(m.rates.node(1)!.derived!.writeFaults).toBe(100);
    hosts([0, null, null]);
    hosts([0, 4, null]); // tab 4 joins with vCPU 1
    expect(m.hosts!.left.has(1)).toBe(false);
    stats(1, 1, 2000);
    expect(m.rates.node(1)!.derived).toBeNull(); // a baseline, not a rate against the old node
    expect(m.rates.health.resets).toBe(0);
    m.ingest({ kind: "page-moves", node: 1, seq: 1, receivedMs: 2000, moves: [{ page: 2, to: 0, count: 1 }] });
    expect(m.hot.movesOf(2)).toBe(1);
  });

  it("takes hosts before the config, and rejects hosts that do not fit the VM", () => {
    const m = new LiveModel();
    expect(m.ingest({ kind: "hosts", hosts: [0, null], changing: "", receivedMs: 0 })).toBe(true);
    m.ingest({ kind: "config", config: elastic(2) });
    expect(m.online(1)).toBe(false);
    expect(m.rtt.keys).toEqual([]);
    expect(m.ingest({ kind: "hosts", hosts: [0, null, null], changing: "", receivedMs: 0 })).toBe(false);
    expect(m.health.lastError).toMatch(/hosts for 3 vCPUs, but the VM has 2/);
    expect(m.ingest({ kind: "hosts", hosts: [0, -1], changing: "", receivedMs: 0 })).toBe(false);
    expect(m.health.lastError).toMatch(/vCPU 1's tab is -1/);
    // a config of another shape drops hosts that cannot be its
    m.ingest({ kind: "config", config: elastic(3) });
    expect(m.hosts).toBeNull();
    expect(m.online(2)).toBe(true);
  });

  it("keeps a fixed VM (no hosts) as it was: every node online, all links, the whole matrix", () => {
    const m = new LiveModel();
    m.ingest({ kind: "config", config: elastic(3) });
    expect(m.hosts).toBeNull();
    expect([0, 1, 2].map((n) => m.online(n))).toEqual([true, true, true]);
    expect(m.rtt.keys).toEqual(["0-1", "0-2", "1-2"]);
    expect(ipiCpus(m)).toEqual([0, 1, 2]);
    expect(nodeRoster(m).offline).toEqual([]);
  });

  it("keeps the RTT history of links that stay when a node joins", () => {
    const { m, hosts, stats } = vm(3);
    hosts([0, 1, null]);
    m.ingest({ kind: "stats", snapshot: snap(0, 1, 0, {}, { rttUs: { 1: 2000 } }), receivedMs: 0 });
    m.tick(0);
    hosts([0, 1, 1]);
    stats(2, 1, 100);
    m.tick(1000);
    expect(m.rtt.keys).toEqual(["0-1", "0-2", "1-2"]);
    expect(m.rtt.data()).toEqual([[0, 1], [2, 2], [null, null], [null, null]]);
  });
});

describe("elastic VM: the panel's sections", () => {
  it("lists 16 possible vCPUs with 2 online as 2 cards and one offline line", () => {
    const { m, hosts, stats } = vm(16);
    hosts([0, null, 3, ...Array<null>(13).fill(null)], "tab 5 joins with vCPU 1");
    stats(2, 1, 0);
    const r = nodeRoster(m);
    expect(r.online.map((o) => [o.node, o.tab])).toEqual([[0, 0], [2, 3]]);
    expect(r.offline.map((o) => o.node)).toEqual([1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(offlineSummary(r.offline)).toBe("vCPUs 1, 3–15");
    expect(r.changing).toBe("tab 5 joins with vCPU 1");
    expect(ipiCpus(m)).toEqual([0, 2]);
    m.ingest({ kind: "ipi-counts", node: 0, counts: [{ src: 0, dest: 7, kind: "init", count: 1 }] });
    expect(ipiCpus(m)).toEqual([0, 2, 7]); // counted CPUs stay in the matrix
  });

  it("names the tab a departed vCPU left", () => {
    const { m, hosts } = vm(4);
    hosts([0, 1, 3, null]);
    hosts([0, 1, null, null]);
    expect(offlineSummary(nodeRoster(m).offline)).toBe("vCPU 2 (left tab 3) · vCPU 3");
    expect(ranges([0, 1, 2, 5, 7, 8])).toBe("0–2, 5, 7, 8");
  });

  describe("rendered", () => {
    beforeEach(() => void ((globalThis as { document?: unknown }).document = fakeDocument));
    afterEach(() => void delete (globalThis as { document?: unknown }).document);

    it("shows online nodes with their tab, the change under way, and offline ones greyed in one line without rates", () => {
      const { m, hosts, stats } = vm(8);
      hosts([0, null, 3, null, null, null, null, null]);
      stats(2, 1, 0, [], { writeFaults: 0 });
      stats(2, 2, 1000, [], { writeFaults: 50 });
      const root = fakeDocument.createElement("div");
      renderNodes(root as unknown as HTMLElement, m);
      const cards = root.children.filter((c) => c.className === "lv-node");
      expect(cards.map((c) => [c.dataset.node, c.dataset.tab])).toEqual([["0", "0"], ["2", "3"]]);
      expect(cards[1]!.textContent).toContain("tab 3");
      expect(cards[1]!.textContent).toContain("50 faults/s");
      expect(cards[1]!.textContent).toContain("vCPU 2");

      hosts([0, null, 3, null, null, null, null, null], "tab 3 leaves with vCPU 2");
      renderNodes(root as unknown as HTMLElement, m);
      expect(root.children[0]!.className).toBe("lv-changing");
      expect(root.children[0]!.textContent).toContain("tab 3 leaves with vCPU 2");

      hosts([0, null, null, null, null, null, null, null]);
      renderNodes(root as unknown as HTMLElement, m);
      expect(root.children.map((c) => c.className)).toEqual(["lv-node", "lv-offline lv-muted"]);
      const offline = root.children[1]!;
      expect(offline.dataset.nodes).toBe("1,2,3,4,5,6,7");
      expect(offline.textContent).toBe("offline: vCPU 2 (left tab 3) · vCPUs 1, 3–7");
      expect(offline.textContent).not.toContain("faults/s");
    });
  });
});

it("feedFromCluster passes an elastic VM's hosts on as a hosts input", () => {
  const feed = new ViewFeed();
  const model = new LiveModel();
  feed.subscribe((i) => void model.ingest(i));
  const sink = feedFromCluster(feed, { setLocalNode: () => {}, showLinkDelay: () => {} }, () => 0, { timeOrigin: 0, now: () => 42 });
  sink.config({ vcpus: 4, memoryMiB: 1, guest: "linux" });
  const hosts: (number | null)[] = [0, 2, null, null];
  sink.hosts!(hosts, "tab 2 joins with vCPU 1");
  hosts[1] = null; // the sink's caller may reuse its array
  expect(model.health.rejected).toBe(0);
  expect(model.hosts).toMatchObject({ hosts: [0, 2, null, null], changing: "tab 2 joins with vCPU 1", receivedMs: 42 });
  expect(model.tabOf(1)).toBe(2);
});

/** Just enough of a DOM for the sections: elements with class, text, data, style, children. */
class FakeElement {
  className = "";
  title = "";
  readonly dataset: Record<string, string> = {};
  readonly style: Record<string, string> = {};
  children: FakeElement[] = [];
  private nodes: (FakeElement | string)[] = [];
  constructor(readonly tagName: string) {}
  get textContent(): string {
    return this.nodes.map((n) => (typeof n === "string" ? n : n.textContent)).join("");
  }
  set textContent(t: string) {
    this.replaceChildren(t);
  }
  append(...nodes: (FakeElement | string)[]): void {
    this.nodes.push(...nodes);
    this.children = this.nodes.filter((n): n is FakeElement => typeof n !== "string");
  }
  replaceChildren(...nodes: (FakeElement | string)[]): void {
    this.nodes = [];
    this.append(...nodes);
  }
}
const fakeDocument = { createElement: (tag: string) => new FakeElement(tag) };
