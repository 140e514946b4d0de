// The page's handle on its tab's net worker (net-worker.ts, issue 15): it hands the worker the
// rings' plan, the routes, each VM channel (transferred in the task that created it) and what the
// other tabs said about their ends; it relays frames for tabs that do not go direct, and keeps the
// worker's last report (counters and each link's path) for the page.

import type { TabPlan } from "../links/tab-bridge.ts";
import type { VmLinkCounters, VmLinkState } from "../links/vm-links.ts";
import type { NetToPage, PageToNet } from "./net-protocol.ts";

export interface TabNetEvents {
  /** A frame for a tab on the relay path: send it as a `node-frame` envelope. */
  relayOut(from: number, to: number, frame: Uint8Array): void;
  /** The links cannot go on: the VM must stop everywhere. */
  fatal(why: string): void;
  /** The VM channel to `tab` closed. */
  channelClosed?(tab: number): void;
}

/** Tab ids the liveness cells cover (a cluster has far fewer tabs; a tab beyond counts as never heard). */
const HEARD_TABS = 64;

export class TabNet {
  private readonly worker: Worker;
  private ended = false;
  private readonly pings = new Map<number, { resolve(rtts: number[]): void; reject(e: Error): void }>();
  private pingIds = 0;
  counters: VmLinkCounters = { framesOut: 0, framesIn: 0, bytesOut: 0, bytesIn: 0, directOut: 0, directIn: 0 };
  links: VmLinkState[] = [];
  /** Written by the net worker: per tab, the wall time (ms) of the last frame on its VM channel. */
  private readonly heard = new Float64Array(new SharedArrayBuffer(8 * HEARD_TABS));
  /** Written by the net worker: per tab, the pair's settled path, read by the local nodes (NodeInit.channels). */
  readonly paths = new SharedArrayBuffer(4 * HEARD_TABS);

  constructor(plan: TabPlan, private readonly events: TabNetEvents) {
    // (Vite bundles a worker only from this literal `new Worker(new URL(...))` shape.)
    this.worker = new Worker(new URL("./net-worker.ts", import.meta.url), { type: "module", name: "net" });
    this.worker.addEventListener("message", (e: MessageEvent<NetToPage>) => this.onMessage(e.data));
    this.worker.addEventListener("error", (e: ErrorEvent) => this.fail(`its net worker failed: ${e.message || "an error without a message (the script did not load?)"}`));
    this.post({ kind: "init", plan, heard: this.heard.buffer as SharedArrayBuffer, paths: this.paths });
  }

  private post(m: PageToNet, transfer: Transferable[] = []): void {
    if (!this.ended) this.worker.postMessage(m, transfer);
  }

  private fail(why: string): void {
    if (this.ended) return;
    this.events.fatal(why);
  }

  private onMessage(m: NetToPage): void {
    if (this.ended) return;
    switch (m.kind) {
      case "relay-out":
        this.events.relayOut(m.from, m.to, m.frame);
        break;
      case "fatal":
        this.fail(m.why);
        break;
      case "channel-closed":
        this.events.channelClosed?.(m.tab);
        break;
      case "pinged": {
        const w = this.pings.get(m.id);
        this.pings.delete(m.id);
        if (m.error) w?.reject(new Error(m.error));
        else w?.resolve(m.rtts);
        break;
      }
      case "report":
        this.counters = m.counters;
        this.links = m.links;
        break;
    }
  }

  setRoutes(hostOf: (number | null)[]): void {
    this.post({ kind: "routes", hostOf });
  }

  /**
   * Gives the net worker this tab's end of the VM channel to `tab`. Must run in the task that
   * created the channel (Chromium refuses to transfer it later); throws DataCloneError where a
   * data channel cannot be transferred at all, and the caller relays instead.
   */
  addChannel(tab: number, channel: RTCDataChannel, maxMessage: number): void {
    if (this.ended) throw new Error("the net worker has ended");
    this.worker.postMessage({ kind: "channel", tab, channel, maxMessage } satisfies PageToNet, [channel as unknown as Transferable]);
  }

  /** This tab's end of remote node `node`'s own channel (on the link to `tab`); call in the creating task, as addChannel. */
  addNodeChannel(tab: number, node: number, channel: RTCDataChannel): void {
    if (this.ended) throw new Error("the net worker has ended");
    this.worker.postMessage({ kind: "node-channel", tab, node, channel } satisfies PageToNet, [channel as unknown as Transferable]);
  }

  /** Ms since a frame from `tab` last came on its VM channel, or Infinity (none yet, or this net worker ended). */
  heardAgoMs(tab: number): number {
    const at = tab >= 0 && tab < HEARD_TABS && !this.ended ? this.heard[tab]! : 0;
    return at > 0 ? Math.max(0, performance.timeOrigin + performance.now() - at) : Infinity;
  }

  relayTo(tab: number, why: string): void {
    this.post({ kind: "relay-to", tab, why });
  }

  theirPath(tab: number, direct: boolean, why?: string): void {
    this.post({ kind: "their-path", tab, direct, ...(why ? { why } : {}) });
  }

  dropTab(tab: number): void {
    this.post({ kind: "drop-tab", tab });
  }

  relayIn(from: number, to: number, frame: Uint8Array): void {
    const copy = frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength && !(frame.buffer instanceof SharedArrayBuffer) ? frame : frame.slice();
    this.post({ kind: "relay-in", from, to, frame: copy }, [copy.buffer as ArrayBuffer]);
  }

  /** `count` round trips (ms) on the direct VM channel to `tab`, one after another, measured in the net worker. */
  ping(tab: number, count: number): Promise<number[]> {
    if (this.ended) return Promise.reject(new Error("the net worker has ended"));
    const id = ++this.pingIds;
    return new Promise((resolve, reject) => {
      this.pings.set(id, { resolve, reject });
      this.post({ kind: "ping", id, tab, count });
    });
  }

  terminate(): void {
    for (const w of this.pings.values()) w.reject(new Error("the net worker has ended"));
    this.pings.clear();
    this.ended = true;
    this.worker.terminate();
  }
}
