// A worker-owned RTCDataChannel as the links see it (VmPort, NodeChannelPort): the net worker's
// channels and a node's own send channels alike.

import type { NodeChannelPort } from "../links/node-channels.ts";

export function dataChannelPort(channel: RTCDataChannel): NodeChannelPort {
  channel.binaryType = "arraybuffer";
  return {
    send: (b: Uint8Array) => channel.send(b as Uint8Array<ArrayBuffer>),
    get bufferedAmount() {
      return channel.bufferedAmount;
    },
    get open() {
      return channel.readyState === "open";
    },
    get closed() {
      return channel.readyState === "closing" || channel.readyState === "closed";
    },
  };
}
