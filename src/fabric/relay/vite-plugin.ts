// Vite plugin: the signaling relay on the page server itself, at /fabric-relay (same origin,
// same port, same certificate when serving HTTPS), in dev and preview. With it the demo command
// needs no second process, and tabs on other machines use wss://<page host>/fabric-relay.
//
// Only the page server's own pages may use it (Origin "self": the page's host and port are the
// ones the request came to, and the server answers to that host name, by Vite's own
// `allowedHosts` rule), so a page on another site cannot use our relay through its visitors'
// browsers. `allowedOrigins` adds more (e.g. the same app served from another port).

import type { Plugin } from "vite";
import { attachRelay, originRules, RELAY_PATH, type RelayLimits, relayLimits } from "./server.ts";

export interface FabricRelayPluginOptions {
  path?: string;
  /** Origins allowed besides the page server's own (see `OriginRule` in server.ts). */
  allowedOrigins?: readonly string[];
  limits?: Partial<RelayLimits>;
}

/** The host names Vite answers to besides IP addresses and localhost: its `allowedHosts` and the configured `host`. */
function answeredHosts(cfg: { allowedHosts?: readonly string[] | true; host?: string | boolean | undefined }): readonly string[] | true {
  if (cfg.allowedHosts === true) return true;
  return [...(cfg.allowedHosts ?? []), ...(typeof cfg.host === "string" && cfg.host ? [cfg.host] : [])];
}

export function fabricRelay(opts: FabricRelayPluginOptions = {}): Plugin {
  // Bad options fail when the config is loaded, not at the first connection.
  const allowedOrigins = ["self", ...originRules(opts.allowedOrigins ?? [])];
  relayLimits(opts.limits);
  const log = (line: string) => console.warn(`[fabric-relay] ${line}`);
  const attach = (httpServer: Parameters<typeof attachRelay>[0] | null, cfg: Parameters<typeof answeredHosts>[0]) => {
    if (!httpServer) return; // middleware mode: the host server must attach the relay itself
    const relay = attachRelay(httpServer, { path: opts.path ?? RELAY_PATH, log, allowedOrigins, allowedHosts: answeredHosts(cfg), ...(opts.limits ? { limits: opts.limits } : {}) });
    httpServer.on("close", () => relay.close());
  };
  return {
    name: "giantweb-fabric-relay",
    configureServer: (server) => attach(server.httpServer, server.config.server),
    configurePreviewServer: (server) => attach(server.httpServer, server.config.preview),
  };
}
