import { Worker, type WorkerOptions } from "node:worker_threads";

const BOOTSTRAP = new URL("./ts-worker.mjs", import.meta.url);

/** A worker_thread running a TypeScript module; its own workerData is in `workerData.data`. */
export function startTsWorker(entry: URL, data: unknown, options: WorkerOptions = {}): Worker {
  return new Worker(BOOTSTRAP, { ...options, workerData: { entry: entry.href, data } });
}
