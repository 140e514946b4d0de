// Worker bootstrap: lets a worker_threads worker load the TypeScript entry through tsx.
import { register } from "tsx/esm/api";

register();
await import("./shared-counter-worker.ts");
