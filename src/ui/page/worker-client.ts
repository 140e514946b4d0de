// The page's side of the VM worker: a real Web Worker behind Comlink, with a start-up check so a
// worker that cannot load (bad script, blocked by headers, crash) is reported instead of hanging.

import * as Comlink from "comlink";
import type { VmWorkerApi } from "../../runtime/web/vm-api.ts";

const START_TIMEOUT_MS = 20_000;

export async function startVmWorker(): Promise<VmWorkerApi & { terminate(): void }> {
  const worker = new Worker(new URL("../../runtime/web/vm-worker.ts", import.meta.url), { type: "module", name: "vcpu0" });
  const remote = Comlink.wrap<VmWorkerApi>(worker);
  const failed = new Promise<never>((_, reject) => {
    worker.addEventListener("error", (e) => reject(new Error(e.message || "the worker script could not be loaded")));
    setTimeout(() => reject(new Error(`no answer from the worker within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
  });
  try {
    await Promise.race([remote.ping(), failed]);
  } catch (err) {
    worker.terminate();
    throw err;
  }
  failed.catch(() => {}); // later worker errors surface through the VM's own events
  return {
    ping: () => remote.ping(),
    boot: (images, options, onEvent) =>
      remote.boot(
        Comlink.transfer(images, [images.wasm, images.bios, images.vgaBios, images.bzImage, images.initrd]),
        options,
        Comlink.proxy(onEvent),
      ),
    serialInput: (bytes) => remote.serialInput(bytes),
    stop: () => remote.stop(),
    terminate: () => {
      remote[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}

/** A download refused or given up: it stalled, or it is (or grew) larger than its cap. */
export class DownloadError extends Error {
  override name = "DownloadError";
  constructor(
    readonly url: string,
    readonly reason: "stalled" | "too-large",
    /** The limit passed: ms without a byte for "stalled", bytes for "too-large". */
    readonly limit: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * No byte for this long and a download is given up. A stall, not a total time: images range from
 * 100 KiB to a 30 MB initramfs and links from loopback to a slow LAN (30 MB at 1 Mbit/s takes four
 * minutes, yet bytes arrive every few ms); a server or link that stopped sends nothing.
 */
export const DOWNLOAD_STALL_MS = 30_000;
/**
 * The largest download (guest images and the engine): eight times the default 30 MB initramfs,
 * and far above the kernel (~8 MB), firmware (128 KiB) and engine (~2 MB); enough that a wrong or
 * hostile URL cannot make the tab buffer gigabytes.
 */
export const DOWNLOAD_MAX_BYTES = 256 * 1024 * 1024;

export interface DownloadOptions {
  /** Give up when no byte (nor the response's headers) came for this long (default DOWNLOAD_STALL_MS). */
  stallMs?: number;
  /** Refuse a Content-Length above this, and stop when the body grows past it (default DOWNLOAD_MAX_BYTES). */
  maxBytes?: number;
}

const sizeText = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB (${n} bytes)` : `${n} bytes`);

/**
 * fetch with progress, for the status line; a non-2xx answer is an error naming the status. A
 * download that stalls for `stallMs`, announces more than `maxBytes` or grows past it is aborted
 * and rejects with a DownloadError naming the URL and the limit.
 */
export async function fetchWithProgress(
  url: string,
  onProgress: (loaded: number, total: number | null) => void,
  options: DownloadOptions = {},
): Promise<ArrayBuffer> {
  const stallMs = options.stallMs ?? DOWNLOAD_STALL_MS;
  const maxBytes = options.maxBytes ?? DOWNLOAD_MAX_BYTES;
  if (!(stallMs > 0)) throw new RangeError(`the download stall timeout must be a positive number of ms, got ${stallMs}`);
  if (!(Number.isInteger(maxBytes) && maxBytes >= 0)) throw new RangeError(`the download size cap must be a whole number of bytes, got ${maxBytes}`);
  const abort = new AbortController();
  // One watchdog for the whole download: armed before the request, re-armed by the headers and by
  // every chunk. When it fires, the request is aborted and whatever is awaited loses the race to it.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stalled!: (err: DownloadError) => void;
  const stall = new Promise<never>((_, reject) => (stalled = reject));
  stall.catch(() => {});
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const err = new DownloadError(url, "stalled", stallMs, `the download of ${url} stalled: no data for ${stallMs / 1000} s`);
      stalled(err);
      abort.abort(err);
    }, stallMs);
  };
  const tooLarge = (what: string) => {
    abort.abort();
    return new DownloadError(url, "too-large", maxBytes, `the download of ${url} ${what}, more than the limit of ${sizeText(maxBytes)}`);
  };
  try {
    arm();
    const response = await Promise.race([fetch(url, { signal: abort.signal }), stall]);
    if (!response.ok) {
      abort.abort();
      throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
    }
    const total = Number(response.headers.get("content-length")) || null;
    if (total !== null && total > maxBytes) throw tooLarge(`is announced as ${total} bytes`);
    if (!response.body) {
      arm();
      const whole = await Promise.race([response.arrayBuffer(), stall]);
      if (whole.byteLength > maxBytes) throw tooLarge(`has ${whole.byteLength} bytes`);
      return whole;
    }
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    try {
      for (;;) {
        arm();
        const { done, value } = await Promise.race([reader.read(), stall]);
        if (done) break;
        loaded += value.length;
        if (loaded > maxBytes) throw tooLarge(`reached ${loaded} bytes`);
        chunks.push(value);
        onProgress(loaded, total);
      }
    } catch (err) {
      reader.cancel().catch(() => {});
      throw err;
    }
    const out = new Uint8Array(loaded);
    let offset = 0;
    for (const c of chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out.buffer;
  } finally {
    clearTimeout(timer);
  }
}
