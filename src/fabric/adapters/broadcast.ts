// Signaling between tabs of one browser (same origin) through a BroadcastChannel: no server.
// Every tab of the cluster listens on one channel named after the cluster and keeps only what is
// addressed to it. The channel cannot tell when a tab closes; links and "leave" messages do.

import { FabricError } from "../errors.ts";
import { type Address, type Envelope, parseEnvelope, type SignalBody } from "../messages.ts";
import { Listeners, type SignalTransport, type TransportFactory } from "../signaling.ts";

export const channelName = (cluster: string) => `giantweb-fabric.${cluster}`;

export class BroadcastTransport implements SignalTransport {
  readonly kind = "broadcast";
  private readonly channel: BroadcastChannel;
  private readonly messages = new Listeners<[string, SignalBody]>();
  private readonly invalid = new Listeners<[FabricError]>();
  private closed = false;

  constructor(
    private readonly cluster: string,
    readonly self: string,
  ) {
    if (typeof BroadcastChannel !== "function")
      throw new FabricError("signaling", "this browser has no BroadcastChannel: join through a relay instead");
    this.channel = new BroadcastChannel(channelName(cluster));
    this.channel.onmessage = (ev: MessageEvent) => {
      let env: Envelope;
      try {
        env = parseEnvelope(ev.data);
      } catch (e) {
        this.invalid.emit(e as FabricError);
        return;
      }
      if (env.cluster !== this.cluster || env.from === this.self) return;
      if (env.to !== "*" && env.to !== this.self) return;
      this.messages.emit(env.from, env.body);
    };
  }

  send(to: Address, body: SignalBody): void {
    if (this.closed) return;
    const env: Envelope = { cluster: this.cluster, from: this.self, to, body };
    this.channel.postMessage(env);
  }

  onMessage(cb: (from: string, body: SignalBody) => void): void {
    this.messages.add(cb);
  }
  onPeerGone(): void {
    // A BroadcastChannel has no notion of its other ends going away.
  }
  onInvalid(cb: (err: FabricError) => void): void {
    this.invalid.add(cb);
  }
  onFatal(): void {
    // Nothing can fail after construction.
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
  }
}

export const broadcastTransport: TransportFactory = async (req) => new BroadcastTransport(req.cluster, req.self);
