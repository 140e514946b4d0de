// The fabric as a page uses it: BroadcastChannel signaling for tabs of this browser, the
// WebSocket relay when a relay URL is given, simple-peer links. The lead's UI imports from here.

import { type JoinLink, parseJoinLink } from "../join-link.ts";
import { type CommonOptions, type CreateOptions, FabricMember, type JoinOptions } from "../member.ts";
import { simplePeerConnector, type SimplePeerOptions } from "./peer-simple.ts";
import { broadcastTransport } from "./broadcast.ts";
import { relayTransport } from "./relay-client.ts";
import { workerClock } from "./worker-clock.ts";

type Defaulted<T> = Omit<T, "transport" | "connector"> & Partial<Pick<CommonOptions, "transport" | "connector">> & { webrtc?: SimplePeerOptions };

export function createCluster(opts: Defaulted<CreateOptions>): Promise<FabricMember> {
  return FabricMember.create({
    ...opts,
    transport: opts.transport ?? (opts.relay ? relayTransport(opts.relay) : broadcastTransport),
    connector: opts.connector ?? simplePeerConnector(opts.webrtc),
    link: { clock: workerClock(), ...opts.link },
  });
}

export function joinCluster(link: string | JoinLink, opts: Defaulted<JoinOptions>): Promise<FabricMember> {
  const parsed = typeof link === "string" ? parseJoinLink(link) : link;
  return FabricMember.join(parsed, {
    ...opts,
    transport: opts.transport ?? (parsed.relay ? relayTransport(parsed.relay) : broadcastTransport),
    connector: opts.connector ?? simplePeerConnector(opts.webrtc),
    link: { clock: workerClock(), ...opts.link },
  });
}

export { FabricMember } from "../member.ts";
export type { FabricEvent, LinkInfo } from "../member.ts";
export { FabricError } from "../errors.ts";
export type { FabricErrorCode } from "../errors.ts";
export { formatJoinLink, hasJoinFragment, parseJoinLink } from "../join-link.ts";
export type { Member, Role } from "../messages.ts";
