// Starts the signaling relay on a port of its own:
//   npx tsx scripts/relay.ts [--host 0.0.0.0] [--port 8787] [--cert cert.pem --key key.pem]
// Join links then carry relay=ws://<this machine>:<port>/ (wss:// with --cert/--key, which a page
// served over HTTPS needs: browsers refuse ws:// from https:// pages except to localhost).
// The Vite plugin (src/fabric/relay/vite-plugin.ts) serves the same relay on the page's own
// server at /fabric-relay, which needs neither this script nor a second certificate.

import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { startRelay } from "../src/fabric/relay/server.ts";

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return process.env[`RELAY_${name.toUpperCase()}`] ?? fallback;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`);
  return v;
}

const host = arg("host", "127.0.0.1")!;
const portText = arg("port", "8787")!;
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`relay: --port ${portText} is not a TCP port number`);
  process.exit(2);
}
const cert = arg("cert");
const key = arg("key");
if ((cert === undefined) !== (key === undefined)) {
  console.error("relay: --cert and --key go together (PEM files of one certificate)");
  process.exit(2);
}
const server = cert && key ? createServer({ cert: readFileSync(cert), key: readFileSync(key) }) : undefined;

const relay = await startRelay({ host, port, log: (line) => console.error(`relay: ${line}`), ...(server ? { server } : {}) });
console.log(`relay: listening on ${relay.url} (signaling only; give tabs on other machines this machine's address)`);
const stop = () => void relay.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
