// A raw WebSocket client of the relay for tests: it records what the relay sends, in order, and
// waits for the next message that matches (shared by relay.test.ts and relay-limits.test.ts, whose
// clients add what each file needs).

import { type ClientOptions, WebSocket } from "ws";
import { newPeerId } from "../../src/fabric/ids.ts";
import { parseRelayMessage, type RelayMessage } from "../../src/fabric/relay/messages.ts";

export class RawRelayClient {
  readonly ws: WebSocket;
  readonly peer = newPeerId();
  /** Messages received and not yet taken by `next` (validated by the relay messages' own parser). */
  readonly got: RelayMessage[] = [];
  private waiters: (() => void)[] = [];

  constructor(url: string, opts: ClientOptions = {}) {
    this.ws = new WebSocket(url, opts);
    this.ws.on("message", (d) => {
      this.got.push(parseRelayMessage(d.toString()));
      this.waiters.splice(0).forEach((w) => w());
    });
  }

  /** The first message matching `pred` (waiting for it), removed from `got`. */
  async next(pred: (m: RelayMessage) => boolean = () => true): Promise<RelayMessage> {
    for (;;) {
      const m = this.got.find(pred);
      if (m) {
        this.got.splice(this.got.indexOf(m), 1);
        return m;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}
