// Messages between the page and its tab's net worker (net-worker.ts, issue 15). The net worker
// owns this tab's ends of the VM's data channels and carries node frames between them and the
// local nodes' rings; the page keeps signaling, control, the console and the live view, and
// relays frames for tabs that cannot go direct.

import type { TabPlan } from "../links/tab-bridge.ts";
import type { VmLinkCounters, VmLinkState } from "../links/vm-links.ts";

export type PageToNet =
  /**
   * `heard`: Float64 per tab, the wall time (ms) of the last frame from that tab on its VM channels.
   * `paths`: Int32 per tab, the pair's settled path (node-channels.ts's PATH_CELL), which this
   * worker writes and the local nodes read before they send on their own channels.
   */
  | { kind: "init"; plan: TabPlan; heard: SharedArrayBuffer; paths: SharedArrayBuffer }
  | { kind: "routes"; hostOf: (number | null)[] }
  /** This tab's end of the VM channel to `tab`, transferred in the task that created it. */
  | { kind: "channel"; tab: number; channel: RTCDataChannel; maxMessage: number }
  /** This tab's end of remote node `node`'s own channel (it runs on `tab`), transferred in the task that created it. */
  | { kind: "node-channel"; tab: number; node: number; channel: RTCDataChannel }
  /** This tab has no channel to `tab` and relays (`why`). */
  | { kind: "relay-to"; tab: number; why: string }
  /** What `tab` said in its `vm-link` envelope. */
  | { kind: "their-path"; tab: number; direct: boolean; why?: string }
  | { kind: "drop-tab"; tab: number }
  /** A node frame that came through the main thread (a `node-frame` envelope). */
  | { kind: "relay-in"; from: number; to: number; frame: Uint8Array }
  /** Measure the direct channel to `tab`: `count` pings one after another (answer: `pinged`). */
  | { kind: "ping"; id: number; tab: number; count: number };

export type NetToPage =
  /** A node frame for a tab whose path is the relay: the page sends it as a `node-frame` envelope. */
  | { kind: "relay-out"; from: number; to: number; frame: Uint8Array }
  /** The links cannot go on (a bad frame on a channel, a ring overflow, a frame for no tab): stop the VM. */
  | { kind: "fatal"; why: string }
  /** The VM channel to `tab` closed (its tab left, or its net worker ended). */
  | { kind: "channel-closed"; tab: number }
  | { kind: "report"; counters: VmLinkCounters; links: VmLinkState[] }
  /** Round trips (ms) of the pings of request `id`, or why there are none. */
  | { kind: "pinged"; id: number; rtts: number[]; error?: string };
