import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { dirname, join, normalize, relative, resolve } from "node:path";
import type { Connect, Plugin } from "vite";
import { defineConfig } from "vite";
import { ensureInstrumentedWasm } from "./src/engine/instrument/ensure.ts";
import { fabricRelay } from "./src/fabric/relay/vite-plugin.ts";
import { buildSelftest } from "./src/guests/selftest/build.ts";
import { buildFirmware } from "./src/runtime/nodejs/firmware-build.ts";

const GUEST_DIR = resolve(import.meta.dirname, ".cache/guest");

// Cross-origin isolation (SharedArrayBuffer, Atomics.wait) needs these on every response.
const isolationHeaders = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** Files the page fetches that are built by the setup, not by Vite: served by the dev and preview servers, emitted by `vite build`. */
export const BUILT_FILES = [
  // The engine: v86's wasm with our instrumentation (.cache/v86).
  { path: "/engine/v86-giantweb.wasm", type: "application/wasm", required: true, build: () => ensureInstrumentedWasm() },
  // Our firmware for N CPUs (direct Linux boot), guests/firmware/build.
  { path: "/engine/firmware.bin", type: "application/octet-stream", required: true, build: async () => buildFirmware() },
  // The SMP self-test guest (multiboot ELF) a cluster of tabs can boot instead of Linux.
  { path: "/engine/selftest.elf", type: "application/octet-stream", required: false, build: () => buildSelftest() },
] as const;

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
    const built = BUILT_FILES.find((f) => f.path === url.pathname);
    if (built) {
      try {
        return send(res, await built.build(), built.type);
      } catch (err) {
        res.statusCode = 500;
        res.end(`cannot build ${built.path}: ${(err as Error).message}`);
        return;
      }
    }
    if (!url.pathname.startsWith("/guest/")) return next();
    let name: string;
    try {
      name = decodeURIComponent(url.pathname.slice("/guest/".length));
    } catch {
      // A malformed escape (/guest/%E0) is the client's error; never let it throw in this server,
      // which also runs the relay.
      res.statusCode = 400;
      res.setHeader("Content-Type", "text/plain");
      res.end(`bad guest image path ${url.pathname.slice(0, 120)}: not valid percent-encoding`);
      return;
    }
    const file = normalize(join(GUEST_DIR, name));
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
    // `vite build`: the same files go into dist/ at the same paths, so any static host serves the
    // app whole (it must still send the three isolation headers above).
    async generateBundle() {
      for (const f of BUILT_FILES) {
        let file: string;
        try {
          file = await f.build();
        } catch (err) {
          if (f.required) throw new Error(`cannot build ${f.path} for dist/: ${(err as Error).message}`);
          this.warn(`${f.path} is left out of dist/: ${(err as Error).message}`);
          continue;
        }
        this.emitFile({ type: "asset", fileName: f.path.slice(1), source: readFileSync(file) });
      }
      if (!existsSync(GUEST_DIR)) throw new Error(`${GUEST_DIR} is missing: run the setup (npm run setup) to build the guest images`);
      for (const file of filesUnder(GUEST_DIR))
        this.emitFile({ type: "asset", fileName: `guest/${relative(GUEST_DIR, file)}`, source: readFileSync(file) });
    },
  };
}

/**
 * Every Web Worker entry under src/, found by the literal `new Worker(new URL("…", import.meta.url))`
 * shape (the only one Vite bundles as a worker). Vite's dependency scan crawls the pages but not
 * into workers, so a package only workers import (v86) was first met while a VM booted: Vite then
 * re-optimized and reloaded every page under the running VM (issue 11, a fresh clone's first run).
 */
export function workerEntries(): string[] {
  const src = resolve(import.meta.dirname, "src");
  const shape = /new Worker\(\s*new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g;
  const found = new Set<string>();
  for (const file of filesUnder(src).filter((f) => /\.ts$/.test(f)))
    for (const m of readFileSync(file, "utf8").matchAll(shape)) found.add(relative(import.meta.dirname, resolve(dirname(file), m[1]!)));
  return [...found].sort();
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

export default defineConfig({
  // fabricRelay: the signaling relay at /fabric-relay for tabs on other machines (never VM traffic).
  // It serves only this server's own pages (Origin, checked against the Host the request came to
  // and server.allowedHosts); its limits are in src/fabric/README.md, "Relay".
  plugins: [guestImages(), fabricRelay()],
  server: { headers: isolationHeaders, host: "127.0.0.1", port: 5173 },
  preview: { headers: isolationHeaders, host: "127.0.0.1", port: 4173 },
  worker: { format: "es" },
  // Scan the pages and every worker before the first page loads, so no dependency is discovered
  // (and no page reloaded) while a VM boots.
  optimizeDeps: { entries: ["*.html", ...workerEntries()] },
  build: { target: "es2022", chunkSizeWarningLimit: 2048 },
});
