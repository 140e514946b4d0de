// The app as a user gets it from the demo command: Vite's server with this repository's config.

import { createServer, type ViteDevServer } from "vite";
import { REPO_ROOT } from "../../src/guests/images.ts";

export async function startWebServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server: ViteDevServer = await createServer({
    root: REPO_ROOT,
    configFile: `${REPO_ROOT}/vite.config.ts`,
    // No file watching or hot reload: a file changing under a running test must not reload the page.
    server: { port: 0, host: "127.0.0.1", strictPort: false, hmr: false, watch: null },
    logLevel: "warn",
  });
  await server.listen();
  const address = server.httpServer!.address();
  if (!address || typeof address === "string") throw new Error("vite did not report a TCP address");
  return { url: `http://127.0.0.1:${address.port}/`, close: () => server.close() };
}
