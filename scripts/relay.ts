// Starts the signaling relay for tabs on other machines:
//   npx tsx scripts/relay.ts [--host 0.0.0.0] [--port 8787]
// Join links then carry relay=ws://<this machine>:<port>/ (or wss:// behind a TLS proxy).

import { startRelay } from "../src/fabric/relay/server.ts";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return process.env[`RELAY_${name.toUpperCase()}`] ?? fallback;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`);
  return v;
}

const host = arg("host", "127.0.0.1");
const portText = arg("port", "8787");
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`relay: --port ${portText} is not a TCP port number`);
  process.exit(2);
}

const relay = await startRelay({ host, port, log: (line) => console.error(`relay: ${line}`) });
console.log(`relay: listening on ${relay.url} (signaling only; give tabs on other machines this machine's address)`);
const stop = () => void relay.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
