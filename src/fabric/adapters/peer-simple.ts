// PeerConnector over simple-peer (pinned 9.11.1), for the browser.
//
// Why the prebuilt bundle (simple-peer/simplepeer.min.js) rather than the package's index.js:
// index.js is written against Node.js's Buffer, streams, process and events; in the browser it needs
// those shimmed in the Vite config for dev and build alike. The bundle the package ships was built
// by simple-peer's authors with those shims inside, so it runs as is, needs no Vite change, and is
// exactly the pinned version. The cost is a ~100 KB minified file we cannot tree-shake.

import SimplePeer from "simple-peer/simplepeer.min.js";
import type { ConnectorFactory, PeerConnector } from "../connector.ts";
import { FabricError } from "../errors.ts";
import type { RawChannel } from "../link.ts";
import type { SignalData } from "../messages.ts";
import { type AttemptProgress, failedAttemptError, stalledAttemptError } from "../peer-steps.ts";

export interface SimplePeerOptions {
  /**
   * ICE servers. Default none: tabs on one machine or one LAN connect through host candidates,
   * and simple-peer's default (Google's public STUN) would contact a third party for nothing.
   */
  iceServers?: RTCIceServer[];
  /** Deadline for the data channel to open. */
  connectTimeoutMs?: number;
}

/** simple-peer keeps its RTCDataChannel and RTCPeerConnection in these (undocumented) fields. */
interface SimplePeerInternals {
  _channel: RTCDataChannel | null;
  _pc: RTCPeerConnection | null;
}

// Chromium's SCTP limit is 256 KiB; when the browser does not say, 64 KiB is safe everywhere.
const FALLBACK_MAX_MESSAGE = 64 * 1024;

export function simplePeerConnector(opts: SimplePeerOptions = {}): ConnectorFactory {
  return ({ initiator, remoteTab }) => {
    const peer = new SimplePeer({
      initiator,
      trickle: true,
      config: { iceServers: opts.iceServers ?? [] },
      channelConfig: { ordered: true }, // reliable is the default (no maxRetransmits/maxPacketLifeTime)
    });
    const progress: AttemptProgress = { remoteDescription: false, iceConnected: false };
    const signalCbs: ((d: SignalData) => void)[] = [];
    const connectCbs: ((raw: RawChannel) => void)[] = [];
    const errorCbs: ((e: FabricError) => void)[] = [];
    let connected = false;
    let settled = false;
    const timeoutMs = opts.connectTimeoutMs ?? 20_000;
    const timer = setTimeout(() => fail(stalledAttemptError(remoteTab, timeoutMs, progress)), timeoutMs);

    function fail(e: FabricError): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const cb of errorCbs) cb(e);
      peer.destroy();
    }

    peer.on("signal", (data: unknown) => {
      for (const cb of signalCbs) cb(data as SignalData);
    });
    peer.on("iceStateChange", (state: string) => {
      if (state === "connected" || state === "completed") progress.iceConnected = true;
    });
    peer.on("error", (err: Error & { code?: string }) => {
      if (!connected) fail(failedAttemptError(remoteTab, err.code, err.message));
    });
    peer.on("close", () => {
      if (!connected) fail(new FabricError("channel", `link to tab ${remoteTab}: the connection closed before the data channel opened`));
    });
    peer.on("connect", () => {
      if (settled) return;
      settled = true;
      connected = true;
      clearTimeout(timer);
      const raw = rawChannel(peer, remoteTab);
      for (const cb of connectCbs) cb(raw);
    });

    const connector: PeerConnector = {
      signal(data) {
        if (data.type === "offer" || data.type === "answer") progress.remoteDescription = true;
        if (!peer.destroyed) peer.signal(data as SimplePeer.SignalData);
      },
      onSignal: (cb) => void signalCbs.push(cb),
      onConnect: (cb) => void connectCbs.push(cb),
      onError: (cb) => void errorCbs.push(cb),
      destroy() {
        settled = true;
        clearTimeout(timer);
        peer.destroy();
      },
    };
    return connector;
  };
}

function rawChannel(peer: SimplePeer.Instance, remoteTab: number): RawChannel {
  const internals = peer as unknown as SimplePeerInternals;
  const channel = internals._channel;
  if (!channel) throw new FabricError("channel", `link to tab ${remoteTab}: simple-peer reported a connection without a data channel`);
  const sctpMax = internals._pc?.sctp?.maxMessageSize;
  const maxMessageSize = sctpMax && Number.isFinite(sctpMax) && sctpMax > 0 ? sctpMax : FALLBACK_MAX_MESSAGE;
  const closeCbs: ((e?: FabricError) => void)[] = [];
  let closed = false;
  const closeOnce = (e?: FabricError) => {
    if (closed) return;
    closed = true;
    for (const cb of closeCbs) cb(e);
  };
  peer.on("close", () => closeOnce());
  peer.on("error", (err: Error & { code?: string }) =>
    closeOnce(new FabricError("channel", `link to tab ${remoteTab} failed: ${err.message}${err.code ? ` (${err.code})` : ""}`)),
  );
  return {
    get bufferedAmount() {
      return channel.bufferedAmount;
    },
    maxMessageSize,
    get lowThreshold() {
      return channel.bufferedAmountLowThreshold;
    },
    // Straight to the channel: simple-peer's send() does the same, minus nothing we need.
    send: (data) => channel.send(data as Uint8Array<ArrayBuffer>),
    // simple-peer sets the threshold (64 KiB) and uses onbufferedamountlow for its stream API;
    // a listener of our own coexists with it.
    onBufferedAmountLow: (cb) => channel.addEventListener("bufferedamountlow", cb),
    // Through simple-peer's 'data' so its readable stream stays flowing (and does not buffer).
    onMessage: (cb) => peer.on("data", (d: Uint8Array) => cb(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))),
    onClose: (cb) => void closeCbs.push(cb),
    // Ordered and reliable like the link's own channel; created in the caller's task so that it
    // can still be transferred to a worker (Chromium allows that only in the creating task).
    openSideChannel: (label, id) => {
      const pc = internals._pc;
      if (!pc) throw new FabricError("channel", `link to tab ${remoteTab}: simple-peer has no peer connection`);
      return { channel: pc.createDataChannel(label, { negotiated: true, id, ordered: true }), maxMessage: Math.min(maxMessageSize, 64 * 1024) };
    },
    // Close the channel first so what is queued (the bye) still goes out; simple-peer's own
    // channel-close handling then tears the connection down. The timer covers a stuck close.
    close: () => {
      try {
        channel.close();
      } catch {
        // already closing
      }
      setTimeout(() => peer.destroy(), 1000);
    },
  };
}
