// What tabs of one VM send each other over the fabric (which carries opaque frames): one binary
// envelope whose first byte says its kind. Every envelope from a peer is decoded and checked here
// before it touches the VM; a bad one is an error naming what is wrong, never a guess.
//
//   NODE_FRAME   [1][from u8][to u8][payload]   a link frame between two VM nodes (vCPU i = node i)
//   CONSOLE_OUT  [2][bytes]                      node 0's serial output, for every tab's console
//   CONSOLE_IN   [3][bytes]                      keys typed in a tab, for node 0's UART
//   CONTROL      [4][UTF-8 JSON]                 the cluster's VM control plane (ControlMessage)
//   VIEW         [5][protocol frame]             a local node's `stats` snapshot or `view-report`
//                                                for every tab's live view (the codec decodes and
//                                                validates it; nothing else is accepted here)

import { CodecError, decode } from "../codec.ts";
import type { StatsSnapshot, ViewReport } from "../messages.ts";
import { MAX_ADDED_DELAY_MS } from "../types.ts";
import { MAX_FAILURE_MESSAGE, NODE_FAILURE_CAUSES, type NodeFailure } from "./node-failure.ts";
import { GUEST_IMAGES, GUEST_KINDS, type GuestKind, type ImageName, isGuestKind } from "./guest.ts";
import { checkControlRequest, type NodeControlRequest } from "./node-control.ts";

/**
 * A path on the page's own server, by syntax alone: absolute ("/…") or relative to the page,
 * printable ASCII with no space and no backslash, no scheme, and not "//". A URL parser reads
 * "//host", "/\host" and "\\host" as another host, and browsers strip leading spaces, so a prefix
 * test is not enough.
 */
export function isServerPath(url: string): boolean {
  return /^[\x21-\x7e]+$/.test(url) && !url.includes("\\") && !url.startsWith("//") && !/^[a-z][a-z0-9+.-]*:/i.test(url);
}

export const WIRE_NODE_FRAME = 1;
export const WIRE_CONSOLE_OUT = 2;
export const WIRE_CONSOLE_IN = 3;
export const WIRE_CONTROL = 4;
export const WIRE_VIEW = 5;

/** One image every tab must hold identically: tab 0 announces its digest, joiners compare. */
export interface ImageDigest {
  /** Which of the guest kind's images (GUEST_IMAGES) this is. */
  what: ImageName;
  url: string;
  bytes: number;
  sha256: string;
}

export type ControlMessage =
  /**
   * tab 0 → all: what the VM boots; each tab hosting vCPUs fetches, checks and starts its nodes.
   * `elastic`: an elastic VM (issue 14): `vcpus` is the most it may have, tab 0 booted it with its own
   * slice, and a tab that joins gets its vCPUs plugged into the running guest (the `node-*`
   * messages below); without it, every tab's nodes start together before the boot.
   */
  | { t: "config"; guest: GuestKind; vcpus: number; memoryMiB: number; cmdline: string; images: ImageDigest[]; elastic?: true }
  /** a tab → tab 0: this tab listens for the VM's messages now (sent once, when it entered the cluster). */
  | { t: "hello" }
  /**
   * a tab → tab 0: its nodes are running (waiting for the guest's SIPI); in an elastic VM, it has the
   * images and open links to every tab hosting vCPUs, and waits for tab 0 to start its nodes.
   */
  | { t: "ready"; vcpus: number[] }
  /** a tab → tab 0: it cannot take part (image mismatch, worker failure...); tab 0 stops. */
  | { t: "refuse"; reason: string }
  /** any tab → all: the VM stopped, with why. */
  | { t: "stop"; reason: string }
  /**
   * the tab hosting a failed node → all, and tab 0 → all again (for a tab whose link to the
   * failed node's tab is down): the VM stops everywhere, each tab saying which node failed and why.
   */
  | { t: "node-failed"; failure: NodeFailure & { tab: number } }
  /**
   * The live view's latency knob (added one-way delay on every VM node's sends, 0..50 ms) and
   * trace recording, for the whole cluster. A tab asks tab 0; tab 0 applies it and sends it to
   * every tab, so all tabs apply the settings in tab 0's one order.
   */
  | { t: "link-delay"; ms: number }
  | { t: "tracing"; on: boolean }
  /**
   * tab 0 → a tab that said hello: what watchers (tabs hosting no vCPU) may do, as the creator set
   * it. Tab 0 enforces it (console input and settings go through tab 0); the others show it.
   */
  | { t: "rights"; rights: WatcherRights }
  // ---- an elastic VM's joins and leaves (tab 0 runs them: runtime/node/elastic-vm.ts)
  /**
   * tab 0 → all: the tab hosting each possible vCPU in the VM (null: no node runs it), and the
   * change under way ("" when none). Tabs stop the VM for a lost tab only if it hosts a node here.
   */
  | { t: "vm-hosts"; hosts: (number | null)[]; changing: string }
  /** tab 0 → a tab whose vCPUs it will not add (the VM still boots, say): the VM runs on without it. */
  | { t: "join-refused"; reason: string }
  /** a tab → tab 0: take this tab's vCPUs out of the VM, so that it may go. */
  | { t: "leave-request" }
  /** tab 0 → that tab: its vCPUs are out and its nodes ended; it may disconnect. */
  | { t: "leave-done" }
  /** tab 0 → that tab: it cannot leave now; the VM runs on with it. */
  | { t: "leave-refused"; reason: string }
  /** tab 0 → the tab hosting `node`: start it, joining the running VM (answered by `node-reply`). */
  | { t: "node-start"; id: number; node: number; vcpuNodes: (number | null)[]; members: number[] }
  /** tab 0 → the tab hosting `node`: a control request for it (answered by `node-reply`). */
  | { t: "node-control"; id: number; node: number; request: NodeControlRequest }
  /** tab 0 → the tab hosting `node`: it left the VM; end its worker (answered by `node-reply`). */
  | { t: "node-end"; id: number; node: number }
  /** the hosting tab → tab 0: the answer to request `id` (its value is checked by what asked). */
  | { t: "node-reply"; id: number; ok: true; value: unknown }
  | { t: "node-reply"; id: number; ok: false; error: string }
  // ---- the VM's link between two tabs (issue 15)
  /**
   * a tab → another tab: how this tab carries node frames between the two. `direct`: on a data
   * channel of their connection that this tab's net worker owns (it has created its end, so frames
   * sent on it arrive); otherwise through the main threads as `node-frame` envelopes, `why` saying
   * why. A pair goes direct only if both ends say so; until both have spoken no frame moves.
   */
  | { t: "vm-link"; direct: true }
  | { t: "vm-link"; direct: false; why: string };

/**
 * What a watcher may do beyond seeing the console and the live view. Stopping the VM is never a
 * watcher's: it comes from tab 0, or from a tab hosting vCPUs that saw one of the VM's parts fail
 * (and any tab may leave, which stops the VM if it hosts vCPUs).
 */
export interface WatcherRights {
  /** Its keys reach node 0's UART. */
  type: boolean;
  /** It may turn the latency knob and start or stop a trace. */
  control: boolean;
}

export const NO_WATCHER_RIGHTS: WatcherRights = { type: false, control: false };

export type WireMessage =
  | { kind: "node-frame"; from: number; to: number; payload: Uint8Array }
  | { kind: "console-out"; bytes: Uint8Array }
  | { kind: "console-in"; bytes: Uint8Array }
  | { kind: "control"; msg: ControlMessage }
  /** `frame` is the codec's bytes of `msg` (forwarded unchanged, decoded once on arrival). */
  | { kind: "view"; msg: StatsSnapshot | ViewReport; frame: Uint8Array };

export class WireError extends Error {
  override name = "WireError";
}

const MAX_TEXT = 4096;
const MAX_IMAGES = 8;
const MAX_CONTROL_BYTES = 64 * 1024;

export function encodeWire(m: WireMessage): Uint8Array {
  switch (m.kind) {
    case "node-frame": {
      if (!isNodeId(m.from) || !isNodeId(m.to)) throw new WireError(`node ids ${m.from}>${m.to} must be 0..254`);
      const out = new Uint8Array(3 + m.payload.length);
      out[0] = WIRE_NODE_FRAME;
      out[1] = m.from;
      out[2] = m.to;
      out.set(m.payload, 3);
      return out;
    }
    case "console-out":
    case "console-in": {
      const out = new Uint8Array(1 + m.bytes.length);
      out[0] = m.kind === "console-out" ? WIRE_CONSOLE_OUT : WIRE_CONSOLE_IN;
      out.set(m.bytes, 1);
      return out;
    }
    case "control": {
      const json = new TextEncoder().encode(JSON.stringify(m.msg));
      const out = new Uint8Array(1 + json.length);
      out[0] = WIRE_CONTROL;
      out.set(json, 1);
      return out;
    }
    case "view": {
      const out = new Uint8Array(1 + m.frame.length);
      out[0] = WIRE_VIEW;
      out.set(m.frame, 1);
      return out;
    }
  }
}

const isNodeId = (n: number) => Number.isInteger(n) && n >= 0 && n <= 254;

/** Decodes and validates one envelope; throws a WireError naming the problem. */
export function decodeWire(bytes: Uint8Array): WireMessage {
  if (bytes.length < 1) throw new WireError("empty envelope");
  switch (bytes[0]) {
    case WIRE_NODE_FRAME:
      if (bytes.length < 4) throw new WireError(`node frame of ${bytes.length} bytes is shorter than its header and one byte`);
      if (bytes[1]! > 254 || bytes[2]! > 254) throw new WireError(`node frame names node ${bytes[1]}>${bytes[2]} (0..254)`);
      if (bytes[1] === bytes[2]) throw new WireError(`node frame from node ${bytes[1]} to itself`);
      return { kind: "node-frame", from: bytes[1]!, to: bytes[2]!, payload: bytes.subarray(3) };
    case WIRE_CONSOLE_OUT:
      return { kind: "console-out", bytes: bytes.subarray(1) };
    case WIRE_CONSOLE_IN:
      if (bytes.length > 1 + MAX_TEXT) throw new WireError(`console input of ${bytes.length - 1} bytes is longer than ${MAX_TEXT}`);
      return { kind: "console-in", bytes: bytes.subarray(1) };
    case WIRE_CONTROL: {
      if (bytes.length > 1 + MAX_CONTROL_BYTES) throw new WireError(`control message of ${bytes.length} bytes is too long`);
      let v: unknown;
      try {
        v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(1)));
      } catch (err) {
        throw new WireError(`control message is not UTF-8 JSON: ${(err as Error).message}`);
      }
      return { kind: "control", msg: parseControl(v) };
    }
    case WIRE_VIEW: {
      const frame = bytes.subarray(1);
      let msg;
      try {
        msg = decode(frame);
      } catch (err) {
        if (err instanceof CodecError) throw new WireError(`live-view frame: ${err.message}`);
        throw err;
      }
      if (msg.type !== "stats" && msg.type !== "view-report") throw new WireError(`live-view frame holds a ${msg.type} message, expected stats or view-report`);
      return { kind: "view", msg, frame };
    }
    default:
      throw new WireError(`unknown envelope kind ${bytes[0]}`);
  }
}

function str(v: unknown, what: string, max = MAX_TEXT): string {
  if (typeof v !== "string" || v.length > max) throw new WireError(`${what} must be a string of at most ${max} characters`);
  return v;
}

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new WireError(`${what} must be a whole number from ${min} to ${max}`);
  return v;
}

const requestId = (v: unknown, what: string) => int(v, `${what}.id`, 1, Number.MAX_SAFE_INTEGER);

function parseControl(v: unknown): ControlMessage {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new WireError("control message is not an object");
  const o = v as Record<string, unknown>;
  switch (o.t) {
    case "config": {
      if (!isGuestKind(o.guest)) throw new WireError(`config.guest must be one of ${GUEST_KINDS.join(", ")}`);
      const guest = o.guest;
      const names: readonly string[] = GUEST_IMAGES[guest];
      if (!Array.isArray(o.images) || o.images.length < 1 || o.images.length > MAX_IMAGES)
        throw new WireError(`config.images must list 1..${MAX_IMAGES} images`);
      const images = o.images.map((x, i): ImageDigest => {
        if (typeof x !== "object" || x === null) throw new WireError(`config.images[${i}] is not an object`);
        const d = x as Record<string, unknown>;
        const sha256 = str(d.sha256, `config.images[${i}].sha256`, 64);
        if (!/^[0-9a-f]{64}$/.test(sha256)) throw new WireError(`config.images[${i}].sha256 is not 64 hex digits`);
        const url = str(d.url, `config.images[${i}].url`);
        // Joiners fetch these, so only paths on this page's own server.
        if (!isServerPath(url)) throw new WireError(`config.images[${i}].url "${url.slice(0, 80)}" must be a path on the page's server`);
        const what = str(d.what, `config.images[${i}].what`, 64);
        if (!names.includes(what)) throw new WireError(`config.images[${i}].what "${what}" is not an image of the ${guest} guest (${names.join(", ")})`);
        return { what: what as ImageName, url, bytes: int(d.bytes, `config.images[${i}].bytes`, 1, 1 << 30), sha256 };
      });
      // Exactly the kind's images, each once: a tab must never boot with one missing or doubled.
      const listed = images.map((d) => d.what).sort();
      if (listed.join() !== [...names].sort().join())
        throw new WireError(`config.images lists ${listed.join(", ")}, but the ${guest} guest needs exactly ${names.join(", ")}`);
      const cmdline = str(o.cmdline, "config.cmdline", 2047);
      if (!/^[\x20-\x7e]*$/.test(cmdline)) throw new WireError("config.cmdline must be printable ASCII");
      if (o.elastic !== undefined && o.elastic !== true) throw new WireError("config.elastic must be true or absent");
      const config = { t: "config" as const, guest, vcpus: int(o.vcpus, "config.vcpus", 1, 255), memoryMiB: int(o.memoryMiB, "config.memoryMiB", 32, 2048), cmdline, images };
      return o.elastic ? { ...config, elastic: true } : config;
    }
    case "ready": {
      if (!Array.isArray(o.vcpus) || o.vcpus.length > 255) throw new WireError("ready.vcpus must be a list of vCPU ids");
      return { t: "ready", vcpus: o.vcpus.map((x, i) => int(x, `ready.vcpus[${i}]`, 0, 254)) };
    }
    case "hello":
      return { t: "hello" };
    case "refuse":
      return { t: "refuse", reason: str(o.reason, "refuse.reason") };
    case "stop":
      return { t: "stop", reason: str(o.reason, "stop.reason") };
    case "node-failed": {
      if (typeof o.failure !== "object" || o.failure === null || Array.isArray(o.failure)) throw new WireError("node-failed.failure is not an object");
      const f = o.failure as Record<string, unknown>;
      if (typeof f.cause !== "string" || !(NODE_FAILURE_CAUSES as readonly string[]).includes(f.cause))
        throw new WireError(`node-failed.failure.cause must be one of ${NODE_FAILURE_CAUSES.join(", ")}`);
      if (typeof f.atMs !== "number" || !Number.isFinite(f.atMs) || f.atMs < 0) throw new WireError("node-failed.failure.atMs must be a time in ms");
      return {
        t: "node-failed",
        failure: {
          node: int(f.node, "node-failed.failure.node", 0, 254),
          vcpu: f.vcpu === null ? null : int(f.vcpu, "node-failed.failure.vcpu", 0, 254),
          tab: int(f.tab, "node-failed.failure.tab", 0, 254),
          cause: f.cause as NodeFailure["cause"],
          message: str(f.message, "node-failed.failure.message", MAX_FAILURE_MESSAGE),
          atMs: f.atMs,
        },
      };
    }
    case "link-delay":
      return { t: "link-delay", ms: int(o.ms, "link-delay.ms", 0, MAX_ADDED_DELAY_MS) };
    case "tracing":
      if (typeof o.on !== "boolean") throw new WireError("tracing.on must be true or false");
      return { t: "tracing", on: o.on };
    case "vm-link":
      if (o.direct === true) return { t: "vm-link", direct: true };
      if (o.direct !== false) throw new WireError("vm-link.direct must be true or false");
      return { t: "vm-link", direct: false, why: str(o.why, "vm-link.why") };
    case "rights": {
      const r = o.rights;
      if (typeof r !== "object" || r === null || Array.isArray(r)) throw new WireError("rights.rights is not an object");
      const { type, control } = r as Record<string, unknown>;
      if (typeof type !== "boolean" || typeof control !== "boolean") throw new WireError("rights.rights.type and .control must be true or false");
      return { t: "rights", rights: { type, control } };
    }
    case "vm-hosts": {
      if (!Array.isArray(o.hosts) || o.hosts.length < 1 || o.hosts.length > 255) throw new WireError("vm-hosts.hosts must list 1..255 vCPUs");
      const hosts = o.hosts.map((h, i) => (h === null ? null : int(h, `vm-hosts.hosts[${i}]`, 0, 254)));
      if (hosts[0] !== 0) throw new WireError("vm-hosts.hosts[0] must be 0: tab 0 hosts vCPU 0");
      return { t: "vm-hosts", hosts, changing: str(o.changing, "vm-hosts.changing", 256) };
    }
    case "join-refused":
      return { t: "join-refused", reason: str(o.reason, "join-refused.reason") };
    case "leave-request":
      return { t: "leave-request" };
    case "leave-done":
      return { t: "leave-done" };
    case "leave-refused":
      return { t: "leave-refused", reason: str(o.reason, "leave-refused.reason") };
    case "node-start": {
      const list = (v: unknown, what: string) => {
        if (!Array.isArray(v) || v.length < 1 || v.length > 255) throw new WireError(`node-start.${what} must list 1..255 entries`);
        return v;
      };
      const vcpuNodes = list(o.vcpuNodes, "vcpuNodes").map((n, i) => (n === null ? null : int(n, `node-start.vcpuNodes[${i}]`, 0, 254)));
      const members = list(o.members, "members").map((n, i) => int(n, `node-start.members[${i}]`, 0, 254));
      return { t: "node-start", id: requestId(o.id, "node-start"), node: int(o.node, "node-start.node", 0, 254), vcpuNodes, members };
    }
    case "node-control": {
      let request: NodeControlRequest;
      try {
        request = checkControlRequest(o.request);
      } catch (err) {
        throw new WireError(`node-control.request: ${(err as Error).message}`);
      }
      return { t: "node-control", id: requestId(o.id, "node-control"), node: int(o.node, "node-control.node", 0, 254), request };
    }
    case "node-end":
      return { t: "node-end", id: requestId(o.id, "node-end"), node: int(o.node, "node-end.node", 0, 254) };
    case "node-reply": {
      const id = requestId(o.id, "node-reply");
      if (o.ok === true) return { t: "node-reply", id, ok: true, value: o.value ?? null };
      if (o.ok === false) return { t: "node-reply", id, ok: false, error: str(o.error, "node-reply.error") };
      throw new WireError("node-reply.ok must be true or false");
    }
    default:
      throw new WireError(`unknown control message ${JSON.stringify(String(o.t)).slice(0, 40)}`);
  }
}
