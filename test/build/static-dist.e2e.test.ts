// `vite build` emits everything the page fetches (the instrumented engine, our firmware, the
// self-test guest, the guest images) into the output folder, byte for byte, so a static host
// serves the whole app: served by a plain file server (only the isolation headers, none of the
// dev server's middleware), two tabs run the self-test guest and every check passes.

import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { build } from "vite";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { reportProblems } from "../../src/guests/selftest/expectations.ts";
import { parseSelftestOutput } from "../../src/guests/selftest/report.ts";
import { buildSelftest } from "../../src/guests/selftest/build.ts";
import { ensureGuestImages, GUEST_DIR, REPO_ROOT } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/runtime/nodejs/firmware-build.ts";
import { launchChromium } from "../../harness/browser/browser.ts";
import { runSelftestOnTabs } from "../../harness/browser/selftest-tabs.ts";

let out: string;
let browser: Browser | undefined;
let server: Server | undefined;

beforeAll(async () => {
  ensureGuestImages();
  out = mkdtempSync(join(tmpdir(), "giantweb-dist-"));
  await build({ root: REPO_ROOT, configFile: `${REPO_ROOT}/vite.config.ts`, logLevel: "error", build: { outDir: out, emptyOutDir: true } });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  if (out) rmSync(out, { recursive: true, force: true });
});

const same = (built: string, source: string) => {
  const path = join(out, built);
  expect(existsSync(path), `${built} is missing from the build`).toBe(true);
  expect(readFileSync(path).equals(readFileSync(source)), `${built} differs from ${source}`).toBe(true);
};

it("emits the engine, the firmware, the self-test guest and the guest images, identical to their sources", async () => {
  same("engine/v86-giantweb.wasm", await ensureInstrumentedWasm());
  same("engine/firmware.bin", buildFirmware());
  same("engine/selftest.elf", await buildSelftest());
  for (const f of ["linux/bzImage", "linux/initramfs.cpio.gz", "bios/seabios.bin", "bios/vgabios.bin"]) same(`guest/${f}`, join(GUEST_DIR, f));
  expect(existsSync(join(out, "index.html"))).toBe(true);
});

/** A static file server: the build's files and the three cross-origin isolation headers, nothing else. */
function serveStatic(root: string): Promise<string> {
  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm" };
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = normalize(join(root, path === "/" ? "index.html" : path));
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
    if (!file.startsWith(root + "/") || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.end("not found");
      return;
    }
    res.setHeader("Content-Type", types[extname(file)] ?? "application/octet-stream");
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server!.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server!.address() as { port: number }).port}/`)));
}

it("served as static files, runs the self-test guest on two tabs with every check passing", async () => {
  const url = await serveStatic(out);
  browser = await launchChromium();
  const run = await runSelftestOnTabs(await browser.newContext(), url, [1, 1]);
  expect(reportProblems(parseSelftestOutput(run.output), 2, true)).toEqual([]);
  expect(run.errors).toEqual([]);
});
