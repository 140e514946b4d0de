import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FabricError } from "../../src/fabric/errors.ts";
import { fromBase64Url, isClusterId, isJoinToken, newClusterId, newJoinToken, TOKEN_BYTES, toBase64Url, tokensEqual } from "../../src/fabric/ids.ts";
import { checkRelayUrl, formatJoinLink, hasJoinFragment, parseJoinLink } from "../../src/fabric/join-link.ts";

describe("base64url", () => {
  it("round-trips any bytes and matches Node.js's encoder", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const text = toBase64Url(bytes);
        expect(text).toBe(Buffer.from(bytes).toString("base64url"));
        expect(fromBase64Url(text)).toEqual(bytes);
      }),
    );
  });

  it("rejects other alphabets, padding and non-canonical endings", () => {
    expect(fromBase64Url("ab+c")).toBeUndefined();
    expect(fromBase64Url("abc=")).toBeUndefined();
    expect(fromBase64Url("a")).toBeUndefined();
    expect(fromBase64Url("AB")).toBeUndefined(); // "AB" leaves 4 set bits dropped: not what the encoder writes
    expect(fromBase64Url("AA")).toEqual(new Uint8Array([0]));
  });
});

describe("tokens and cluster ids", () => {
  it("are crypto-random: 192-bit tokens, all distinct, every bit position varies", () => {
    expect(TOKEN_BYTES * 8).toBeGreaterThanOrEqual(128);
    const tokens = Array.from({ length: 200 }, newJoinToken);
    expect(new Set(tokens).size).toBe(200);
    for (const t of tokens) expect(isJoinToken(t)).toBe(true);
    // OR and AND over 200 random tokens: every bit is 1 somewhere and 0 somewhere.
    const or = new Uint8Array(TOKEN_BYTES);
    const and = new Uint8Array(TOKEN_BYTES).fill(0xff);
    for (const t of tokens) {
      const b = fromBase64Url(t)!;
      for (let i = 0; i < b.length; i++) {
        or[i]! |= b[i]!;
        and[i]! &= b[i]!;
      }
    }
    expect([...or].every((x) => x === 0xff)).toBe(true);
    expect([...and].every((x) => x === 0)).toBe(true);
    expect(isClusterId(newClusterId())).toBe(true);
  });

  it("compares tokens exactly", () => {
    const t = newJoinToken();
    expect(tokensEqual(t, t.slice())).toBe(true);
    expect(tokensEqual(t, (t[0] === "A" ? "B" : "A") + t.slice(1))).toBe(false);
    expect(tokensEqual(t, t.slice(1))).toBe(false);
  });
});

describe("join links", () => {
  const cluster = newClusterId();
  const token = newJoinToken();

  it("round-trip through a page URL, with and without a relay", () => {
    const plain = formatJoinLink("https://host.example/app/?x=1#old", { cluster, token });
    expect(plain).toBe(`https://host.example/app/?x=1#join=${cluster}.${token}`);
    expect(parseJoinLink(plain)).toEqual({ cluster, token });
    const relayed = formatJoinLink("http://127.0.0.1:5173/fabric-lab.html", { cluster, token, relay: "ws://10.0.0.2:8787/" });
    expect(relayed).toContain("&relay=ws%3A%2F%2F10.0.0.2%3A8787%2F");
    expect(parseJoinLink(relayed)).toEqual({ cluster, token, relay: "ws://10.0.0.2:8787/" });
    expect(parseJoinLink(`#join=${cluster}.${token}`)).toEqual({ cluster, token });
    expect(parseJoinLink(`  join=${cluster}.${token}\n`)).toEqual({ cluster, token });
    expect(hasJoinFragment(plain)).toBe(true);
    expect(hasJoinFragment("http://x/#foo=1")).toBe(false);
  });

  it("a watch link round-trips as one and says so", () => {
    const watch = formatJoinLink("https://host.example/app/", { cluster, token, watch: true, relay: "wss://relay.example/r" });
    expect(watch).toBe(`https://host.example/app/#watch=${cluster}.${token}&relay=${encodeURIComponent("wss://relay.example/r")}`);
    expect(parseJoinLink(watch)).toEqual({ cluster, token, watch: true, relay: "wss://relay.example/r" });
    expect(hasJoinFragment(watch)).toBe(true);
  });

  const malformed: [string, RegExp][] = [
    ["http://x/", /no "join=/],
    ["http://x/#join=", /separated by a dot/],
    [`http://x/#join=${cluster}${token}`, /separated by a dot/],
    [`http://x/#join=abc.${token}`, /cluster id "abc"/],
    [`http://x/#join=${cluster}.${token.slice(0, 20)}`, /cut short/],
    [`http://x/#join=${cluster}.${token.slice(0, 31)}*`, /token/],
    [`http://x/#join=${cluster}.${token}&join=${cluster}.${token}`, /appears twice/],
    [`http://x/#join=${cluster}.${token}&evil=1`, /unknown parameter "evil"/],
    [`http://x/#join=${cluster}.${token}&watch=${cluster}.${token}`, /both "join=" and "watch="/],
    [`http://x/#watch=${cluster}`, /"watch=" needs <cluster>.<token>/],
    [`http://x/#join=${cluster}.${token}&relay=http%3A%2F%2Fx`, /must start with ws:\/\/ or wss:\/\//],
    [`http://x/#join=${cluster}.${token}&relay=%E0%A4%A`, /percent-encoding/],
    [`http://x/#join=${cluster}.${token}&relay=ws%3A%2F%2Fu%3Ap%40h%2F`, /credentials/],
    [`http://x/#join=${cluster}.${token}&relay=${encodeURIComponent("ws://127")}`, /malformed host "127" \(it would mean 0\.0\.0\.127\)/],
    [`http://x/#join=${cluster}.${token}&relay=${encodeURIComponent("ws://10.1:8787/")}`, /malformed host "10\.1"/],
    [`http://x/#join=${cluster}.${token}&relay=${encodeURIComponent("wss://0x7f.1/")}`, /malformed host/],
    [`http://x/#join=${cluster}.${token}&${"a=1&".repeat(600)}`, /characters, at most 2048/],
  ];
  it.each(malformed.map(([link, why]) => [link.slice(0, 70), link, why] as const))("rejects %s", (_label, link, why) => {
    let err: unknown;
    try {
      parseJoinLink(link);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FabricError);
    expect((err as FabricError).code).toBe("malformed-link");
    expect((err as FabricError).message).toMatch(why);
  });
});

describe("relay addresses", () => {
  it("keep written-out hosts, names and IPv6 as they are", () => {
    for (const url of ["ws://127.0.0.1:5173/fabric-relay", "wss://relay.example.org/x", "ws://[::1]:8787/", "ws://user-less.example:80/"])
      expect(checkRelayUrl(url)).toBe(new URL(url).href);
  });
});

