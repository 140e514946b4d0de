// Starts the signaling relay on a port of its own:
//   npx tsx scripts/relay.ts [--host 0.0.0.0] [--port 8787] [--cert cert.pem --key key.pem]
//                            [--allow-origin https://host:5173 ...] [--limit name=value ...]
// Join links then carry relay=ws://<this machine>:<port>/ (wss:// with --cert/--key, which a page
// served over HTTPS needs: browsers refuse ws:// from https:// pages except to localhost).
// The Vite plugin (src/fabric/relay/vite-plugin.ts) serves the same relay on the page's own
// server at /fabric-relay, which needs neither this script nor a second certificate.
// `--help` prints the usage below.

import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { DEFAULT_RELAY_LIMITS, type RelayLimits, startRelay } from "../src/fabric/relay/server.ts";

const USAGE = `usage: npx tsx scripts/relay.ts [options]
  --host <address>        address to listen on (default 127.0.0.1; 0.0.0.0 for other machines)
  --port <n>              TCP port (default 8787)
  --cert <pem> --key <pem>  serve wss:// with this certificate (pages served over HTTPS need it)
  --allow-origin <list>   browser pages that may use the relay, by origin: https://host:port,
                          "loopback" (pages served from this machine), or "*" (any page: not
                          recommended). Repeat the option or separate with commas.
                          Default: loopback only, so a page on another site, opened in a browser
                          anywhere, cannot use this relay; give the origin your page is served
                          from, e.g. --allow-origin https://192.168.1.20:5173
                          Clients that are not browsers send no Origin and are not checked (they
                          could claim any origin); a cluster's token is what keeps them out.
  --limit <name>=<n>      change a limit (repeatable); defaults:
${Object.entries(DEFAULT_RELAY_LIMITS)
  .map(([k, v]) => `                            ${k}=${v}`)
  .join("\n")}
Environment: RELAY_HOST, RELAY_PORT, RELAY_CERT, RELAY_KEY, RELAY_ALLOW_ORIGIN stand in for the options.`;

function fail(why: string): never {
  console.error(`relay: ${why}\n${USAGE}`);
  process.exit(2);
}

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  console.log(USAGE);
  process.exit(0);
}

/** Every value given for --name, in order (or the environment's, or the fallback). */
function args(name: string): string[] {
  const out: string[] = [];
  for (let i = 2; i < process.argv.length; i++) {
    if (process.argv[i] !== `--${name}`) continue;
    const v = process.argv[i + 1];
    if (v === undefined || v.startsWith("--")) fail(`--${name} needs a value`);
    out.push(v);
    i++;
  }
  if (out.length === 0) {
    const env = process.env[`RELAY_${name.toUpperCase().replaceAll("-", "_")}`];
    if (env !== undefined) out.push(env);
  }
  return out;
}
const arg = (name: string, fallback?: string): string | undefined => args(name).at(-1) ?? fallback;

const known = new Set(["host", "port", "cert", "key", "allow-origin", "limit"]);
for (const a of process.argv.slice(2)) if (a.startsWith("--") && !known.has(a.slice(2))) fail(`unknown option ${a}`);

const host = arg("host", "127.0.0.1")!;
const portText = arg("port", "8787")!;
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${portText} is not a TCP port number`);
const cert = arg("cert");
const key = arg("key");
if ((cert === undefined) !== (key === undefined)) fail("--cert and --key go together (PEM files of one certificate)");

const given = args("allow-origin").flatMap((v) => v.split(",").map((o) => o.trim()).filter(Boolean));
const allowedOrigins = given.length > 0 ? given : ["loopback"];

const limits: Partial<Record<keyof RelayLimits, number>> = {};
for (const l of args("limit")) {
  const m = /^([A-Za-z]+)=(.+)$/.exec(l);
  if (!m) fail(`--limit ${l} is not name=value`);
  limits[m[1] as keyof RelayLimits] = Number(m[2]);
}

const server = cert && key ? createServer({ cert: readFileSync(cert), key: readFileSync(key) }) : undefined;

let relay: Awaited<ReturnType<typeof startRelay>>;
try {
  relay = await startRelay({ host, port, allowedOrigins, limits, log: (line) => console.error(`relay: ${line}`), ...(server ? { server } : {}) });
} catch (e) {
  if (e instanceof RangeError) fail(e.message.replace(/^relay: /, ""));
  throw e;
}
console.log(`relay: listening on ${relay.url} (signaling only; give tabs on other machines this machine's address)`);
console.log(`relay: pages allowed by origin: ${allowedOrigins.join(", ")}${given.length === 0 ? " (the default; see --allow-origin)" : ""}`);
const stop = () => void relay.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
