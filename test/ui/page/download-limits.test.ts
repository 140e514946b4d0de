// Issue 13: "Downloads have a timeout and a size cap." fetchWithProgress (the page's fetch of the
// guest images and the engine) against a local HTTP server that stalls, announces too much or never
// stops sending; and, with a mocked fetch and fake timers, that the stall timer restarts with every
// chunk (a slow but steady download is never given up).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { DOWNLOAD_MAX_BYTES, DOWNLOAD_STALL_MS, DownloadError, fetchWithProgress } from "../../../src/ui/page/worker-client.ts";

/** What each path does; `closed` records the paths whose response the client broke off. */
const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
const closedEarly = new Set<string>();
let server: Server;
let base: string;
const open = new Set<ServerResponse>();
const pending: ReturnType<typeof setInterval>[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    open.add(res);
    res.on("close", () => {
      open.delete(res);
      if (!res.writableFinished) closedEarly.add(req.url!);
    });
    const route = routes.get(req.url!);
    if (route) route(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await fetch(`${base}/warm-up`); // the first fetch of a process loads its HTTP client (~0.4 s here)
});
afterAll(async () => {
  pending.splice(0).forEach(clearInterval);
  for (const res of open) res.destroy();
  await new Promise((r) => server.close(r));
});

/** Waits until the server saw the client break off the response to `path`. */
async function brokenOff(path: string): Promise<void> {
  while (!closedEarly.has(path)) await new Promise((r) => setTimeout(r, 10));
}

// Guards against the hang these tests exist to catch (without the timeout the download never ends).
const HANG_GUARD_MS = 30_000;

describe("a download from a server", () => {
  it("that stalls after some bytes is given up, naming the URL and the limit", async () => {
    routes.set("/stall-body", (_req, res) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write(new Uint8Array(100)); // ... and nothing more
    });
    const err = await fetchWithProgress(`${base}/stall-body`, () => {}, { stallMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err).toMatchObject({ name: "DownloadError", reason: "stalled", limit: 300, url: `${base}/stall-body` });
    expect((err as Error).message).toBe(`the download of ${base}/stall-body stalled: no data for 0.3 s`);
    // (Whether the 100 bytes came before the 300 ms ran out depends on this machine's load; the
    // fake-clock test below stalls after a byte for sure.)
    await brokenOff("/stall-body"); // the request was aborted, not left open
  }, HANG_GUARD_MS);

  it("that never answers is given up the same way", async () => {
    routes.set("/stall-headers", () => {});
    const err = await fetchWithProgress(`${base}/stall-headers`, () => {}, { stallMs: 300 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "DownloadError", reason: "stalled" });
    expect((err as Error).message).toContain(`${base}/stall-headers stalled`);
    await brokenOff("/stall-headers");
  }, HANG_GUARD_MS);

  it("that announces more than the cap is refused before any byte is read", async () => {
    routes.set("/announced", (_req, res) => {
      res.writeHead(200, { "content-length": String(5000) });
      res.write(new Uint8Array(2000)); // the rest would follow; the client must not wait for it
    });
    const progress: number[] = [];
    const err = await fetchWithProgress(`${base}/announced`, (loaded) => progress.push(loaded), { maxBytes: 4096 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err).toMatchObject({ reason: "too-large", limit: 4096 });
    expect((err as Error).message).toBe(`the download of ${base}/announced is announced as 5000 bytes, more than the limit of 4096 bytes`);
    expect(progress).toEqual([]);
    await brokenOff("/announced");
  }, HANG_GUARD_MS);

  it("whose body grows past the cap (no Content-Length, sent without end) is stopped", async () => {
    routes.set("/endless", (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" }); // chunked: no length announced
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(new Uint8Array(1000))), 2);
      pending.push(t);
    });
    const progress: number[] = [];
    const err = await fetchWithProgress(`${base}/endless`, (loaded) => progress.push(loaded), { maxBytes: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect(err).toMatchObject({ reason: "too-large", limit: 10_000 });
    expect((err as Error).message).toMatch(new RegExp(`^the download of ${base}/endless reached \\d+ bytes, more than the limit of 10000 bytes$`));
    expect(Math.max(...progress)).toBeLessThanOrEqual(10_000);
    await brokenOff("/endless");
  }, HANG_GUARD_MS);

  it("within the limits arrives whole, with progress", async () => {
    const body = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff);
    routes.set("/ok", (_req, res) => {
      res.writeHead(200, { "content-length": String(body.length) });
      res.end(body);
    });
    const progress: [number, number | null][] = [];
    const buf = await fetchWithProgress(`${base}/ok`, (loaded, total) => progress.push([loaded, total]), { maxBytes: body.length, stallMs: 10_000 });
    expect(buf.byteLength).toBe(body.length);
    expect(Buffer.from(buf).equals(body)).toBe(true);
    expect(progress.at(-1)).toEqual([body.length, body.length]);
  });

  it("answering 404 still fails with the status", async () => {
    await expect(fetchWithProgress(`${base}/missing`, () => {})).rejects.toThrow("HTTP 404 Not Found");
  });
});

describe("the stall timer (mocked fetch, fake clock)", () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("restarts with every chunk: a download slower than the timeout in total, but never silent that long, completes", async () => {
    vi.useFakeTimers();
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (push = c) });
    vi.stubGlobal("fetch", async () => new Response(body, { headers: { "content-length": "50" } }));
    const got: number[] = [];
    const download = fetchWithProgress("/guest/slow", (loaded) => got.push(loaded), { stallMs: 1000 });
    let settled = false;
    void download.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(900);
      push.enqueue(new Uint8Array(10));
    }
    push.close();
    const buf = await download;
    expect(buf.byteLength).toBe(50);
    expect(got).toEqual([10, 20, 30, 40, 50]);
    expect(settled).toBe(true);
  });

  it("fires after the given time of silence on the fake clock, not before", async () => {
    vi.useFakeTimers();
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (push = c) });
    vi.stubGlobal("fetch", async () => new Response(body));
    const progress: number[] = [];
    const download = fetchWithProgress("/guest/initrd.cpio", (loaded) => progress.push(loaded), { stallMs: 5000 });
    let error: unknown = null;
    download.catch((e: unknown) => (error = e));
    push.enqueue(new Uint8Array(1));
    await vi.advanceTimersByTimeAsync(4999);
    expect(progress).toEqual([1]);
    expect(error).toBe(null);
    await vi.advanceTimersByTimeAsync(1);
    expect(error).toMatchObject({ name: "DownloadError", reason: "stalled", message: "the download of /guest/initrd.cpio stalled: no data for 5 s" });
  });

  it("defaults: a 30 s stall, and a cap that holds a 30 MB initramfs with room to spare", () => {
    expect(DOWNLOAD_STALL_MS).toBe(30_000);
    expect(DOWNLOAD_MAX_BYTES).toBeGreaterThanOrEqual(8 * 30e6);
  });
});
