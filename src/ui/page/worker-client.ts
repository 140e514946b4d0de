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

/** fetch with progress, for the status line; a non-2xx answer is an error naming the status. */
export async function fetchWithProgress(url: string, onProgress: (loaded: number, total: number | null) => void): Promise<ArrayBuffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
  const total = Number(response.headers.get("content-length")) || null;
  if (!response.body) return response.arrayBuffer();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out.buffer;
}
