import { createReadStream, existsSync, statSync } from "node:fs";
import { join, normalize, resolve } from "node:path";
import type { Connect, Plugin } from "vite";
import { defineConfig } from "vite";

const GUEST_DIR = resolve(import.meta.dirname, ".cache/guest");

// Cross-origin isolation (SharedArrayBuffer, Atomics.wait) needs these on every response.
const isolationHeaders = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** Serves the guest images built by the setup (.cache/guest, git-ignored) at /guest/. */
function guestImages(): Plugin {
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (!url.pathname.startsWith("/guest/")) return next();
    const file = normalize(join(GUEST_DIR, decodeURIComponent(url.pathname.slice("/guest/".length))));
    if (!file.startsWith(GUEST_DIR + "/") || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.setHeader("Content-Type", "text/plain");
      res.end(`guest image ${url.pathname} not found: run the setup (npm run setup) to build ${GUEST_DIR}`);
      return;
    }
    for (const [k, v] of Object.entries(isolationHeaders)) res.setHeader(k, v);
    res.setHeader("Content-Type", "application/octet-stream");
    res.setHeader("Content-Length", String(statSync(file).size));
    res.setHeader("Cache-Control", "no-cache");
    createReadStream(file).pipe(res);
  };
  return {
    name: "giantweb-guest-images",
    configureServer: (server) => void server.middlewares.use(middleware),
    configurePreviewServer: (server) => void server.middlewares.use(middleware),
  };
}

export default defineConfig({
  plugins: [guestImages()],
  server: { headers: isolationHeaders, host: "127.0.0.1", port: 5173 },
  preview: { headers: isolationHeaders, host: "127.0.0.1", port: 4173 },
  worker: { format: "es" },
  build: { target: "es2022", chunkSizeWarningLimit: 2048 },
});
