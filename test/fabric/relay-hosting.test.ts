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

/** Says hello as tab 0 of a new cluster and returns the relay's first answer (or the failure). */
function helloAt(url: string, opts: { rejectUnauthorized?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, opts);
    ws.on("open", () => ws.send(JSON.stringify({ t: "hello", cluster: newClusterId(), token: newJoinToken(), peer: newPeerId(), create: true, fabric: FABRIC_VERSION })));
    ws.on("message", (d) => {
      resolve(JSON.parse(d.toString()).t);
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
