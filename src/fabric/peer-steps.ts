// Which step of opening a WebRTC link failed, from simple-peer's error codes or from how far an
// attempt got before its deadline. Pure, so the wording is unit-tested.

import { FabricError } from "./errors.ts";

export type LinkStep = "signaling" | "ice" | "channel";

/** simple-peer's `err.code` -> the step it belongs to. */
export function stepOfSimplePeerCode(code: string | undefined): LinkStep {
  switch (code) {
    case "ERR_ICE_CONNECTION_FAILURE":
    case "ERR_ICE_CONNECTION_CLOSED":
    case "ERR_CONNECTION_FAILURE":
      return "ice";
    case "ERR_DATA_CHANNEL":
      return "channel";
    default:
      // ERR_SIGNALING, ERR_SET_REMOTE_DESCRIPTION, ERR_ADD_ICE_CANDIDATE, ERR_CREATE_OFFER,
      // ERR_CREATE_ANSWER, ERR_SET_LOCAL_DESCRIPTION, ERR_PC_CONSTRUCTOR, ERR_WEBRTC_SUPPORT, ...
      return "signaling";
  }
}

export interface AttemptProgress {
  /** An answer (initiator) or offer (responder) came from the other side. */
  remoteDescription: boolean;
  /** ICE reached "connected" or "completed". */
  iceConnected: boolean;
}

/** The error for an attempt that did not open in time, naming where it stalled. */
export function stalledAttemptError(tab: number, ms: number, p: AttemptProgress): FabricError {
  if (!p.remoteDescription)
    return new FabricError("signaling", `link to tab ${tab}: no offer/answer came back within ${ms} ms (signaling)`);
  if (!p.iceConnected)
    return new FabricError("ice", `link to tab ${tab}: ICE found no working network path within ${ms} ms (firewall, or no STUN/TURN between networks)`);
  return new FabricError("channel", `link to tab ${tab}: ICE connected but the data channel did not open within ${ms} ms`);
}

export function failedAttemptError(tab: number, code: string | undefined, message: string): FabricError {
  const step = stepOfSimplePeerCode(code);
  return new FabricError(step, `link to tab ${tab} failed at the ${step} step: ${message}${code ? ` (${code})` : ""}`);
}
