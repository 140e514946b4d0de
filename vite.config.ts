import { createReadStream, existsSync, statSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { join, normalize, resolve } from "node:path";
import type { Connect, Plugin } from "vite";
import { defineConfig } from "vite";
import { ensureInstrumentedWasm } from "./src/engine/instrument/ensure.ts";
import { fabricRelay } from "./src/fabric/relay/vite-plugin.ts";
import { buildFirmware } from "./src/platform/firmware/bios-build.ts";

const GUEST_DIR = resolve(import.meta.dirname, ".cache/guest");

// Cross-origin isolation (SharedArrayBuffer, Atomics.wait) needs these on every response.
const isolationHeaders = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

const ENGINE_WASM_PATH = "/engine/v86-giantweb.wasm";
const FIRMWARE_PATH = "/engine/firmware.bin";

function send(res: ServerResponse, file: string, type: string): void {
  for (const [k, v] of Object.entries(isolationHeaders)) res.setHeader(k, v);
  res.setHeader("Content-Type", type);
  res.setHeader("Content-Length", String(statSync(file).size));
  res.setHeader("Cache-Control", "no-cache");
  createReadStream(file).pipe(res);
}

/** Serves the guest images built by the setup (.cache/guest, git-ignored) at /guest/, and the engine. */
function guestImages(): Plugin {
  const middleware: Connect.NextHandleFunction = async (req, res, next) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === ENGINE_WASM_PATH) {
      // The engine: v86's wasm with our instrumentation, built (and cached) by the setup.
      try {
        return send(res, await ensureInstrumentedWasm(), "application/wasm");
      } catch (err) {
        res.statusCode = 500;
        res.end(`cannot build the instrumented engine: ${(err as Error).message}`);
        return;
      }
    }
    if (url.pathname === FIRMWARE_PATH) {
      // Our firmware for N CPUs (direct Linux boot), built by the setup.
      try {
        return send(res, buildFirmware(), "application/octet-stream");
      } catch (err) {
        res.statusCode = 500;
        res.end(`cannot build the firmware: ${(err as Error).message}`);
        return;
      }
    }
    if (!url.pathname.startsWith("/guest/")) return next();
    const file = normalize(join(GUEST_DIR, decodeURIComponent(url.pathname.slice("/guest/".length))));
    if (!file.startsWith(GUEST_DIR + "/") || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.setHeader("Content-Type", "text/plain");
      res.end(`guest image ${url.pathname} not found: run the setup (npm run setup) to build ${GUEST_DIR}`);
      return;
    }
    send(res, file, "application/octet-stream");
  };
  return {
    name: "giantweb-guest-images",
    configureServer: (server) => void server.middlewares.use(middleware),
    configurePreviewServer: (server) => void server.middlewares.use(middleware),
  };
}

export default defineConfig({
  // fabricRelay: the signaling relay at /fabric-relay for tabs on other machines (never VM traffic).
  plugins: [guestImages(), fabricRelay()],
  server: { headers: isolationHeaders, host: "127.0.0.1", port: 5173 },
  preview: { headers: isolationHeaders, host: "127.0.0.1", port: 4173 },
  worker: { format: "es" },
  build: { target: "es2022", chunkSizeWarningLimit: 2048 },
});
