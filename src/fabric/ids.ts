// Cluster ids, join tokens and peer ids: crypto-random bytes written as base64url, so they fit in
// a URL fragment unescaped. The token is the only secret: 192 bits, far beyond guessing.

import { FabricError } from "./errors.ts";

export const CLUSTER_ID_BYTES = 9; // 12 characters: only needs to be unique, it is not a secret
export const TOKEN_BYTES = 24; // 32 characters, 192 bits (the brief asks for at least 128)
export const PEER_ID_BYTES = 9;

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/** base64url without padding (RFC 4648 section 5). */
export function toBase64Url(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const b0 = bytes[i]!;
    const b1 = bytes[i + 1];
    const b2 = bytes[i + 2];
    s += B64URL[b0 >> 2]! + B64URL[((b0 & 3) << 4) | ((b1 ?? 0) >> 4)]!;
    if (b1 !== undefined) s += B64URL[((b1 & 15) << 2) | ((b2 ?? 0) >> 6)]!;
    if (b2 !== undefined) s += B64URL[b2 & 63]!;
  }
  return s;
}

/** Exact inverse of toBase64Url: rejects other alphabets, padding and non-canonical trailing bits. */
export function fromBase64Url(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let j = 0;
  for (const ch of text) {
    const v = B64URL.indexOf(ch);
    if (v < 0) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

const idPattern = (bytes: number) => new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}$`);
const CLUSTER_RE = idPattern(CLUSTER_ID_BYTES);
const TOKEN_RE = idPattern(TOKEN_BYTES);
const PEER_RE = idPattern(PEER_ID_BYTES);

export const newClusterId = (): string => toBase64Url(randomBytes(CLUSTER_ID_BYTES));
export const newJoinToken = (): string => toBase64Url(randomBytes(TOKEN_BYTES));
export const newPeerId = (): string => toBase64Url(randomBytes(PEER_ID_BYTES));

export const isClusterId = (s: unknown): s is string => typeof s === "string" && CLUSTER_RE.test(s);
export const isJoinToken = (s: unknown): s is string => typeof s === "string" && TOKEN_RE.test(s);
export const isPeerId = (s: unknown): s is string => typeof s === "string" && PEER_RE.test(s);

export function checkClusterId(s: unknown, what = "cluster id"): string {
  if (!isClusterId(s))
    throw new FabricError("malformed-link", `${what} ${JSON.stringify(s)} is not ${Math.ceil((CLUSTER_ID_BYTES * 4) / 3)} base64url characters`);
  return s;
}

/** Compares two tokens in time independent of where they differ (the relay compares secrets). */
export function tokensEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
