// The page server (Vite with this repository's config, as `npm start` runs it) answers a malformed
// request with a client error and keeps serving: it also hosts the relay, so a throw in one of its
// handlers must never take it down.

import { afterAll, beforeAll, expect, it } from "vitest";
import { startWebServer } from "../../harness/browser/web-server.ts";

let server: Awaited<ReturnType<typeof startWebServer>>;
beforeAll(async () => {
  server = await startWebServer();
});
afterAll(async () => {
  await server?.close();
});

it("answers 400 to a guest image path that is not valid percent-encoding, and serves on", async () => {
  for (const path of ["guest/%E0", "guest/%E0%A4%A", "guest/x%"]) {
    // Before the fix the handler threw and the request was never answered: fail, do not hang.
    const r = await fetch(new URL(path, server.url), { signal: AbortSignal.timeout(30_000) });
    expect(r.status, path).toBe(400);
    expect(await r.text(), path).toMatch(/not valid percent-encoding/);
  }
  const missing = await fetch(new URL("guest/no-such-image", server.url));
  expect(missing.status).toBe(404);
  const page = await fetch(server.url);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain("<title>");
});
