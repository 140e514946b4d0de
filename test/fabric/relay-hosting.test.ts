// Where the relay can live: on the page server (Vite plugin, same origin) or on a TLS port.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createViteServer } from "vite";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { newClusterId, newJoinToken, newPeerId } from "../../src/fabric/ids.ts";
import { FABRIC_VERSION } from "../../src/fabric/messages.ts";
import { attachRelay, RELAY_PATH, startRelay } from "../../src/fabric/relay/server.ts";
import { fabricRelay } from "../../src/fabric/relay/vite-plugin.ts";

/**
 * Says hello as tab 0 of a new cluster and returns the relay's first answer: "ready", the code of
 * its refusal, or the failure. `origin` and `host` set those headers as a browser page would.
 */
function helloAt(url: string, opts: { rejectUnauthorized?: boolean; origin?: string; host?: string } = {}): Promise<string> {
  return new Promise((resolve) => {
    const { host, ...rest } = opts;
    const ws = new WebSocket(url, { ...rest, ...(host ? { headers: { host } } : {}) });
    ws.on("open", () => ws.send(JSON.stringify({ t: "hello", cluster: newClusterId(), token: newJoinToken(), peer: newPeerId(), create: true, fabric: FABRIC_VERSION })));
    ws.on("message", (d) => {
      const m = JSON.parse(d.toString());
      resolve(m.t === "error" ? m.code : m.t);
      ws.close();
    });
    ws.on("error", (e) => resolve(`error: ${e.message}`));
  });
}

describe("relay hosting", () => {
  it("attaches to an HTTP server at /fabric-relay and leaves other upgrade paths alone", async () => {
    const http = createHttpServer((_, res) => res.end("page"));
    const relay = attachRelay(http);
    const sockets = new Set<import("node:net").Socket>();
    http.on("connection", (sock) => sockets.add(sock));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const port = (http.address() as { port: number }).port;
    expect(await helloAt(`ws://127.0.0.1:${port}${RELAY_PATH}`)).toBe("ready");
    // Another path is not ours: the relay does not take the upgrade (Vite's HMR may want it).
    const other = new WebSocket(`ws://127.0.0.1:${port}/elsewhere`);
    let opened = false;
    other.on("open", () => (opened = true));
    other.on("error", () => {});
    await new Promise((r) => setTimeout(r, 300));
    expect(opened).toBe(false);
    other.terminate();
    relay.close();
    for (const sock of sockets) sock.destroy(); // upgraded sockets are no longer the server's to close
    await new Promise((r) => http.close(r));
  });

  it("runs inside Vite's dev server through the plugin, next to the HMR socket", async () => {
    const vite = await createViteServer({ configFile: false, root: join(import.meta.dirname, "../.."), plugins: [fabricRelay()], server: { port: 0, host: "127.0.0.1" }, logLevel: "silent", optimizeDeps: { noDiscovery: true, include: [] } });
    await vite.listen();
    const port = (vite.httpServer!.address() as { port: number }).port;
    expect(await helloAt(`ws://127.0.0.1:${port}${RELAY_PATH}`)).toBe("ready");
    await vite.close();
  });

  it("inside the page server, serves only the server's own pages (Origin), on the hosts the server answers to", async () => {
    const vite = await createViteServer({
      configFile: false,
      root: join(import.meta.dirname, "../.."),
      plugins: [fabricRelay()],
      server: { port: 0, host: "127.0.0.1", allowedHosts: ["giant.lan.example"] },
      logLevel: "silent",
      optimizeDeps: { noDiscovery: true, include: [] },
    });
    await vite.listen();
    const port = (vite.httpServer!.address() as { port: number }).port;
    const url = `ws://127.0.0.1:${port}${RELAY_PATH}`;
    // The page's own origin, however the server was reached.
    expect(await helloAt(url, { origin: `http://127.0.0.1:${port}` })).toBe("ready");
    expect(await helloAt(url, { origin: `http://localhost:${port}`, host: `localhost:${port}` })).toBe("ready");
    expect(await helloAt(url, { origin: `http://giant.lan.example:${port}`, host: `giant.lan.example:${port}` })).toBe("ready"); // server.allowedHosts
    // A page of another site, even on this machine or another port of it, may not.
    expect(await helloAt(url, { origin: "https://evil.example" })).toBe("origin-not-allowed");
    expect(await helloAt(url, { origin: `http://localhost:${port}` })).toBe("origin-not-allowed"); // reached as 127.0.0.1
    expect(await helloAt(url, { origin: `http://127.0.0.1:${port + 1}` })).toBe("origin-not-allowed");
    expect(await helloAt(url, { origin: "null" })).toBe("origin-not-allowed");
    // DNS rebinding: another site's name pointed at this server; Vite does not answer to it, nor does the relay.
    expect(await helloAt(url, { origin: `http://rebind.evil.example:${port}`, host: `rebind.evil.example:${port}` })).toBe("origin-not-allowed");
    // Node.js clients send no Origin: not a browser page, let through (the token guards clusters).
    expect(await helloAt(url)).toBe("ready");
    await vite.close();
  });

  it("attachRelay allows its own pages by default and takes more origins and hosts", async () => {
    const http = createHttpServer((_, res) => res.end("page"));
    const relay = attachRelay(http, { allowedOrigins: ["self", "https://app.example"], allowedHosts: [".lan.example"] });
    const sockets = new Set<import("node:net").Socket>();
    http.on("connection", (sock) => sockets.add(sock));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    const port = (http.address() as { port: number }).port;
    const url = `ws://127.0.0.1:${port}${RELAY_PATH}`;
    expect(await helloAt(url, { origin: "https://app.example" })).toBe("ready");
    expect(await helloAt(url, { origin: `http://box.lan.example:${port}`, host: `box.lan.example:${port}` })).toBe("ready");
    expect(await helloAt(url, { origin: `http://lan.example:${port}`, host: `lan.example:${port}` })).toBe("ready");
    expect(await helloAt(url, { origin: `http://box.lan.example.evil:${port}`, host: `box.lan.example.evil:${port}` })).toBe("origin-not-allowed");
    expect(await helloAt(url, { origin: "https://other.example" })).toBe("origin-not-allowed");
    expect(() => attachRelay(http, { allowedOrigins: ["https://x.example/path"] })).toThrow(/allowedOrigins/);
    relay.close();
    for (const sock of sockets) sock.destroy();
    await new Promise((r) => http.close(r));
  });

  it("serves wss:// with a certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "relay-tls-"));
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
      const server = createHttpsServer({ cert: readFileSync(join(dir, "cert.pem")), key: readFileSync(join(dir, "key.pem")) });
      const relay = await startRelay({ server });
      expect(relay.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/$/);
      expect(await helloAt(relay.url, { rejectUnauthorized: false })).toBe("ready");
      expect(await helloAt(relay.url)).toMatch(/^error: .*self[- ]signed/);
      await relay.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
