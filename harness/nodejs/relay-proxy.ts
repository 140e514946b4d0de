// A TCP pass-through to a signaling relay, so a test can cut one tab's relay connection (its
// n-th) while the relay itself runs on: how a tab's network path to the relay breaks.

import { connect, createServer, type Server, type Socket } from "node:net";

/** A TCP pass-through to the relay, so a test can cut one tab's relay connection (its n-th). */
export async function relayProxy(relayPort: number): Promise<{ url: string; cut(n: number): void; close(): Promise<void> }> {
  const pairs: [Socket, Socket][] = [];
  const server: Server = createServer((tab) => {
    const up = connect(relayPort, "127.0.0.1");
    const end = () => (tab.destroy(), up.destroy());
    tab.on("error", end).on("close", end);
    up.on("error", end).on("close", end);
    tab.pipe(up);
    up.pipe(tab);
    pairs.push([tab, up]);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    cut: (n) => pairs[n]?.forEach((s) => s.destroy()),
    close: () => new Promise<void>((r) => (pairs.forEach(([a, b]) => (a.destroy(), b.destroy())), server.close(() => r()))),
  };
}
