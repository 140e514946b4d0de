// Starts a TypeScript module in a worker_thread: Node cannot load .ts by itself, so the worker
// registers tsx's loader first, then imports the entry named in workerData.entry.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
