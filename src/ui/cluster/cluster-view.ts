// Between the live view and a VM spread over tabs (ClusterVm): what the cluster delivers (the VM's
// shape, every node's snapshots and reports, the cluster-wide knob and trace settings, an elastic
// VM's vCPU hosts) becomes ViewInputs and knob updates, and the view's knob and trace events become cluster settings.
// The single-tab path does the same with machine-glue.ts.

import type { ClusterConfig } from "../../protocol/messages.ts";
import { reportInputs } from "../view/machine-glue.ts";
import type { ViewFeed } from "../../protocol/telemetry/inputs.ts";
import type { LiveViewHandle } from "../view/panel.ts";
import type { ClusterViewSink } from "../../runtime/web/cluster-vm.ts";

/** The view's shape of a cluster VM: node i hosts vCPU i, node 0 the devices. */
export function clusterViewConfig(vm: { vcpus: number; memoryMiB: number; guest: string }): ClusterConfig {
  return {
    type: "config",
    nodes: vm.vcpus,
    memoryPages: vm.memoryMiB * 256,
    vcpuHome: Array.from({ length: vm.vcpus }, (_, i) => i),
    readTakesOwnership: true,
    guest: vm.guest,
  };
}

/**
 * A ClusterVm's view sink that feeds `feed` and keeps `view`'s knob in step. `localNode()` is the
 * first VM node this tab hosts (null for a watcher), read when the VM's shape comes. Reports carry
 * wall-clock times (timeOrigin + now of the node's worker); they are moved to this page's clock,
 * which is exact for tabs of one machine (one wall clock) and off by the clocks' difference for a
 * tab on another machine.
 */
export function feedFromCluster(
  feed: ViewFeed,
  view: Pick<LiveViewHandle, "setLocalNode" | "showLinkDelay">,
  localNode: () => number | null,
  clock: { timeOrigin: number; now(): number } = performance,
): ClusterViewSink {
  return {
    config(vm) {
      view.setLocalNode(localNode());
      feed.push({ kind: "config", config: clusterViewConfig(vm) });
    },
    stats(snapshot) {
      feed.push({ kind: "stats", snapshot, receivedMs: clock.now() });
    },
    report(report) {
      for (const input of reportInputs(report, clock.timeOrigin, clock.now())) feed.push(input);
    },
    controls(c) {
      view.showLinkDelay(c.delayMs);
    },
    hosts(hosts, changing) {
      feed.push({ kind: "hosts", hosts: [...hosts], changing, receivedMs: clock.now() });
    },
  };
}

/** The view's knob and trace button act on the whole cluster (`vm()` is null until this tab is in one). */
export function clusterControls(view: Pick<LiveViewHandle, "on">, vm: () => { setLinkDelay(ms: number): void; setTracing(on: boolean): void } | null): () => void {
  return view.on((e) => {
    const target = vm();
    if (!target) return;
    // A watcher without the right has these greyed out; a refusal is logged, not thrown into the view.
    try {
      if (e.kind === "set-link-delay") target.setLinkDelay(e.ms);
      else if (e.kind === "trace") target.setTracing(e.recording);
    } catch (err) {
      console.warn((err as Error).message);
    }
  });
}
