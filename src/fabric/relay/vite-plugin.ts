// Vite plugin: the signaling relay on the page server itself, at /fabric-relay (same origin,
// same port, same certificate when serving HTTPS), in dev and preview. With it the demo command
// needs no second process, and tabs on other machines use wss://<page host>/fabric-relay.

import type { Plugin } from "vite";
import { attachRelay, RELAY_PATH } from "./server.ts";

export function fabricRelay(opts: { path?: string } = {}): Plugin {
  const log = (line: string) => console.warn(`[fabric-relay] ${line}`);
  const attach = (httpServer: Parameters<typeof attachRelay>[0] | null) => {
    if (!httpServer) return; // middleware mode: the host server must attach the relay itself
    const relay = attachRelay(httpServer, { path: opts.path ?? RELAY_PATH, log });
    httpServer.on("close", () => relay.close());
  };
  return {
    name: "giantweb-fabric-relay",
    configureServer: (server) => attach(server.httpServer),
    configurePreviewServer: (server) => attach(server.httpServer),
  };
}
