// From the wire to the view: a node's encoded `stats` frame (protocol codec) as a ViewInput.

import { decode } from "../../protocol/codec.ts";
import { ViewInputError, type ViewInput } from "../../protocol/telemetry/inputs.ts";

/** Decodes one frame; throws CodecError for a bad frame, ViewInputError for another message type. */
export function statsInput(frame: Uint8Array, receivedMs: number): Extract<ViewInput, { kind: "stats" }> {
  const msg = decode(frame);
  if (msg.type !== "stats") throw new ViewInputError(`expected a stats frame, got a ${msg.type} message`);
  return { kind: "stats", snapshot: msg, receivedMs };
}
