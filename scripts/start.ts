// The demo's page server, run by `npm start` (after scripts/setup.sh demo):
//   npm start                     http://127.0.0.1:5173/, this machine only (as `vite` serves it)
//   npm start -- --lan            HTTPS on every interface, for tabs on other machines: prints the
//                                 LAN address(es) to open; the relay runs beside the page at
//                                 wss://<address>:<port>/fabric-relay (src/fabric/relay/vite-plugin.ts)
//   npm start -- --port <n>       another port (0: any free one; the address printed is the real one)
// Other machines need a secure context for SharedArrayBuffer, hence HTTPS: the certificate is made
// by @vitejs/plugin-basic-ssl (self-signed: each browser asks once to accept it) and kept in
// .cache/lan-cert (git-ignored) so restarts reuse it and browsers need not accept it again.
// The options are checked before anything starts: an unknown one, or a bad port, is an error
// that names it.

import { networkInterfaces } from "node:os";
import { resolve } from "node:path";
import basicSsl from "@vitejs/plugin-basic-ssl";
import { createServer, type InlineConfig } from "vite";

const ROOT = resolve(import.meta.dirname, "..");
const CERT_DIR = ".cache/lan-cert";
const RELAY_PATH = "/fabric-relay";

const USAGE = `usage: npm start [-- options]
  --lan         serve HTTPS on all interfaces for tabs on other machines (self-signed certificate
                kept in ${CERT_DIR}), and print the addresses to open there
  --port <n>    TCP port, 0-65535 (default 5173; 0 picks a free one; a busy port moves to the next)
  --help        this text`;

function fail(why: string): never {
  console.error(`npm start: ${why}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): { lan: boolean; port: number | undefined } {
  let lan = false;
  let port: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    if (name === "--help" || name === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else if (name === "--lan") {
      if (inline !== undefined) fail(`--lan takes no value (got "${arg}")`);
      lan = true;
    } else if (name === "--port") {
      const value = inline ?? argv[++i];
      if (value === undefined) fail("--port needs a number");
      if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) fail(`bad port "${value.slice(0, 40)}" for --port: give a whole number from 0 to 65535`);
      port = Number(value);
    } else {
      fail(`unknown option "${arg.slice(0, 60)}"`);
    }
  }
  return { lan, port };
}

/** This machine's addresses other machines can reach it at: every non-internal IPv4 address. */
function lanAddresses(interfaces = networkInterfaces()): string[] {
  return Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((a) => a.family === "IPv4" && !a.internal)
    .map((a) => a.address);
}

const { lan, port } = parseArgs(process.argv.slice(2));

const config: InlineConfig = {
  root: ROOT,
  configFile: `${ROOT}/vite.config.ts`,
  // Unset options keep vite.config.ts's values (127.0.0.1:5173, HTTP).
  // No file watching or hot reload: a VM runs in every open tab, and a reload would end it there.
  server: { ...(port !== undefined ? { port } : {}), ...(lan ? { host: "0.0.0.0" } : {}), hmr: false, watch: null },
  // basicSsl sets server.https with its certificate (made once, then read from CERT_DIR). The
  // plugin changes Vite's config hash: a dependency cache of its own keeps the two modes (and a
  // test's server running beside this one) from re-optimizing each other's dependencies.
  ...(lan
    ? { plugins: [basicSsl({ name: "giantweb", certDir: resolve(ROOT, CERT_DIR), ttlDays: 365 })], cacheDir: resolve(ROOT, "node_modules/.vite-lan") }
    : {}),
};

// Ctrl-C and SIGTERM end it as they end `vite` (Vite closes the server on SIGTERM itself).
const server = await createServer(config);
await server.listen();
const address = server.httpServer?.address();
if (!address || typeof address === "string") throw new Error("the page server did not report a TCP port");

if (!lan) {
  server.printUrls();
} else {
  const addresses = lanAddresses();
  const lines = [
    "",
    "  giantweb is served on the LAN over HTTPS (self-signed certificate: each browser asks once to accept it).",
    "  Open on any machine:",
    ...addresses.map((ip) => `    https://${ip}:${address.port}/`),
    ...(addresses.length === 0
      ? [`    (none: this machine has no network address other than loopback; only https://localhost:${address.port}/ works)`]
      : []),
    `  The relay for "other machines (relay)" runs beside the page:`,
    ...addresses.map((ip) => `    wss://${ip}:${address.port}${RELAY_PATH}`),
    `  This machine: https://localhost:${address.port}/   certificate: ${CERT_DIR}/`,
    "",
  ];
  console.log(lines.join("\n"));
  if (addresses.length === 0) console.error("npm start: no LAN address found (no non-internal IPv4 interface)");
}
server.bindCLIShortcuts({ print: true });
