// Join links: <page URL>#join=<cluster>.<token>[&relay=<ws(s) URL, percent-encoded>]
// Watch links: the same with "watch=" and the cluster's watch token, which admits a tab as a
// watcher only (it hosts no vCPU and has only the rights the creator gives watchers).
//
// Why the fragment and not the query: browsers never send the fragment to the server (not in the
// request line, not in Referer headers, not in access logs), so the token stays between the tabs
// that share the link; and setting it does not reload the page.

import { FabricError } from "./errors.ts";
import { isClusterId, isJoinToken } from "./ids.ts";

export interface JoinLink {
  cluster: string;
  token: string;
  /** A watch link: its token admits a watcher only. */
  watch?: boolean;
  /** WebSocket relay for tabs on other machines; absent: tabs of this browser only (BroadcastChannel). */
  relay?: string;
}

/** Longest link accepted: a link is typed or pasted by people, anything longer is not one of ours. */
const MAX_LINK_CHARS = 2048;

export function formatJoinLink(pageUrl: string, link: JoinLink): string {
  const base = pageUrl.split("#")[0]!;
  let fragment = `${link.watch ? "watch" : "join"}=${link.cluster}.${link.token}`;
  if (link.relay !== undefined) fragment += `&relay=${encodeURIComponent(checkRelayUrl(link.relay))}`;
  return `${base}#${fragment}`;
}

/** True when the text carries a join fragment at all (a page with none is a "create" page). */
export function hasJoinFragment(href: string): boolean {
  return /(^|[#&])(join|watch)=/.test(href.includes("#") ? href.slice(href.indexOf("#") + 1) : href);
}

/**
 * Parses a whole URL, a bare fragment ("#join=...") or the fragment's text ("join=...").
 * Throws FabricError("malformed-link") naming the first thing wrong.
 */
export function parseJoinLink(input: string): JoinLink {
  const bad = (why: string) => new FabricError("malformed-link", `malformed join link: ${why}`);
  if (typeof input !== "string") throw bad("not text");
  const text = input.trim();
  if (text.length > MAX_LINK_CHARS) throw bad(`${text.length} characters, at most ${MAX_LINK_CHARS} expected`);
  // A whole URL without "#" has no fragment; text without "://" is taken as the fragment itself.
  const fragment = text.includes("#") ? text.slice(text.indexOf("#") + 1) : text.includes("://") ? "" : text;
  const params = new Map<string, string>();
  for (const part of fragment.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) throw bad(`"${part.slice(0, 40)}" is not key=value`);
    const key = part.slice(0, eq);
    if (params.has(key)) throw bad(`"${key}" appears twice`);
    params.set(key, part.slice(eq + 1));
  }
  if (params.has("join") && params.has("watch")) throw bad('both "join=" and "watch=": a link is one or the other');
  const watch = params.has("watch");
  const key = watch ? "watch" : "join";
  const join = params.get(key);
  if (join === undefined) throw bad('no "join=<cluster>.<token>" (or "watch=...") after the "#"');
  const dot = join.indexOf(".");
  if (dot < 0) throw bad(`"${key}=" needs <cluster>.<token> separated by a dot`);
  const cluster = join.slice(0, dot);
  const token = join.slice(dot + 1);
  if (!isClusterId(cluster)) throw bad(`cluster id "${join.slice(0, Math.min(dot, 40))}" is not 12 base64url characters`);
  if (!isJoinToken(token)) throw bad("the token is not 32 base64url characters (was the link cut short?)");
  for (const k of params.keys())
    if (k !== key && k !== "relay") throw bad(`unknown parameter "${k.slice(0, 40)}"`);
  const base: JoinLink = watch ? { cluster, token, watch: true } : { cluster, token };
  const relayText = params.get("relay");
  if (relayText === undefined) return base;
  let relay: string;
  try {
    relay = decodeURIComponent(relayText);
  } catch {
    throw bad("the relay address is not valid percent-encoding");
  }
  try {
    return { ...base, relay: checkRelayUrl(relay) };
  } catch (e) {
    throw bad((e as Error).message);
  }
}

export function checkRelayUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FabricError("malformed-link", `relay address "${url.slice(0, 80)}" is not a URL`);
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:")
    throw new FabricError("malformed-link", `relay address "${url.slice(0, 80)}" must start with ws:// or wss://`);
  // A URL parser completes short numeric hosts: "ws://127" is ws://0.0.0.127/. Refuse a numeric
  // host unless it is written out as the address it names.
  const typedHost = /^wss?:\/\/([^/?#]*)/i.exec(url)?.[1]?.replace(/^.*@/, "").replace(/:\d*$/, "") ?? "";
  if (/^[0-9.]+$|^0x/i.test(typedHost) && typedHost !== u.hostname)
    throw new FabricError("malformed-link", `relay address "${url.slice(0, 80)}" has the malformed host "${typedHost.slice(0, 40)}" (it would mean ${u.hostname})`);
  if (u.hash !== "" || u.username !== "" || u.password !== "")
    throw new FabricError("malformed-link", `relay address "${url.slice(0, 80)}" must not carry credentials or a fragment`);
  return u.href;
}
