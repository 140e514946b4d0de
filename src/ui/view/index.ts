// Public surface of the live view (UI layer): mount the panel, feed it, listen to it.
export { mountLiveView } from "./panel.ts";
export type { LiveViewHandle, LiveViewOptions } from "./panel.ts";
export { ViewFeed, ViewInputError, checkViewInput, IPI_KINDS } from "../../protocol/telemetry/inputs.ts";
export { MAX_ADDED_DELAY_MS } from "../../protocol/types.ts";
export type { IpiCount, IpiKind, PageMove, TraceEvent, ViewEvent, ViewInput, ViewSource } from "../../protocol/telemetry/inputs.ts";
export { IpiCountCollector, PageMoveCollector } from "../../protocol/telemetry/collect.ts";
export { statsInput } from "./frames.ts";
export { loadSymbols } from "./symbols-loader.ts";
export { connectControls, feedFromNodes, reportInputs } from "./machine-glue.ts";
export type { ViewControls } from "./machine-glue.ts";
