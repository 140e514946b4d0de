// A one-line status per node of the machine: whether its vCPU runs, how fast, how often it faults.

import type { NodeStatus } from "../../runtime/web/node-protocol.ts";

export class VcpuStrip {
  private readonly last = new Map<number, { at: number; status: NodeStatus }>();

  constructor(private readonly container: HTMLElement) {}

  clear(): void {
    this.last.clear();
    this.container.replaceChildren();
  }

  /** A node that is gone (it left an elastic VM). */
  remove(node: number): void {
    this.last.delete(node);
    this.container.querySelector(`[data-node="${node}"]`)?.remove();
  }

  update(status: NodeStatus, now = performance.now()): void {
    const prev = this.last.get(status.node);
    this.last.set(status.node, { at: now, status });
    const seconds = prev ? (now - prev.at) / 1000 : 0;
    const mips = prev && seconds > 0 ? (status.instructions - prev.status.instructions) / seconds / 1e6 : 0;
    let cell = this.container.querySelector<HTMLElement>(`[data-node="${status.node}"]`);
    if (!cell) {
      cell = document.createElement("span");
      cell.className = "vcpu";
      cell.dataset.node = String(status.node);
      this.container.append(cell);
      [...this.container.children]
        .sort((a, b) => Number((a as HTMLElement).dataset.node) - Number((b as HTMLElement).dataset.node))
        .forEach((c) => this.container.append(c));
    }
    const role = status.vcpu === null ? `node ${status.node} (memory)` : `node ${status.node} (vCPU ${status.vcpu})`;
    const state = status.runState === "wait-for-sipi" ? "waiting for SIPI" : `${mips.toFixed(1)} MIPS`;
    cell.textContent = `${role}: ${state} · ${status.faults} faults · ${(status.blockedMs / 1000).toFixed(1)} s waiting · IPIs ${status.ipisSent}→ ${status.ipisReceived}←`;
  }
}
