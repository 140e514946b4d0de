// CPU cost of the protocol core alone (no engine, no network): what one page transfer costs in
// DSM handling and in the codec, to set against a link's round trip (about 1 ms over WebRTC).

import { decode, encode } from "../../src/protocol/codec.ts";
import type { DsmEffect } from "../../src/protocol/dsm/effects.ts";
import { DsmNode } from "../../src/protocol/dsm/node.ts";
import type { DsmMessage } from "../../src/protocol/messages.ts";
import { PAGE_SIZE } from "../../src/protocol/types.ts";
import { runSimulation, simOptionsForSeed } from "../../harness/protocol/dsm-sim.ts";
import type { BenchModule, Metrics } from "../types.ts";

/** Two nodes taking one page from each other by write faults, every message encoded and decoded. */
function pingPongFaults(transfers: number): number {
  const nodes = [0, 1].map((self) => new DsmNode({ self, nodes: 2, pages: 1 }));
  const mem = [new Uint8Array(PAGE_SIZE).fill(1), new Uint8Array(PAGE_SIZE)];
  const inbox: { from: number; to: number; frame: Uint8Array }[] = [];
  const run = (node: number, effects: DsmEffect[]) => {
    for (const e of effects) {
      if (e.type === "send") inbox.push({ from: node, to: e.to, frame: encode(e.msg) });
      else if (e.type === "revoke") run(node, nodes[node]!.revoked(e.page, e.wantBytes ? mem[node]!.slice() : undefined));
      else if (e.type === "grant") {
        if (e.data.form === "bytes") mem[node]!.set(e.data.bytes);
        mem[node]![0]!++;
        run(node, nodes[node]!.accessDone(e.page));
      }
    }
  };
  const start = performance.now();
  for (let i = 0; i < transfers; i++) {
    const node = (i + 1) % 2;
    run(node, nodes[node]!.onLocalFault(0, "write"));
    while (inbox.length > 0) {
      const m = inbox.shift()!;
      run(m.to, nodes[m.to]!.onMessage(m.from, decode(m.frame) as DsmMessage));
    }
  }
  const elapsed = performance.now() - start;
  if (nodes[transfers % 2]!.inspect(0).state !== "modified") throw new Error("ping-pong ended in the wrong state");
  return (elapsed * 1000) / transfers;
}

function codecPageMicros(rounds: number): number {
  const bytes = new Uint8Array(PAGE_SIZE).map((_, i) => i & 0xff);
  const msg: DsmMessage = {
    type: "dsm-grant",
    page: 1234,
    access: "write",
    owner: true,
    version: 9,
    copyset: [],
    acks: 1,
    data: { form: "bytes", bytes },
  };
  const start = performance.now();
  for (let i = 0; i < rounds; i++) decode(encode(msg));
  return ((performance.now() - start) * 1000) / rounds;
}

function simEventsPerSecond(seeds: number): number {
  let events = 0;
  const start = performance.now();
  for (let seed = 1; seed <= seeds; seed++) events += runSimulation(simOptionsForSeed(seed)).events;
  return events / ((performance.now() - start) / 1000);
}

const protocol: BenchModule = {
  prefixes: ["protocol."],
  async run(ctx) {
    const out: Metrics = {};
    if (ctx.wants("protocol.fault_cpu_us")) {
      pingPongFaults(2000); // warm-up
      out["protocol.fault_cpu_us"] = {
        value: pingPongFaults(20000),
        unit: "µs",
        note: "DSM + codec CPU per page transfer (write-fault ping-pong between 2 nodes, one 4 KiB page per transfer, every message encoded and decoded)",
      };
    }
    if (ctx.wants("protocol.codec_page_us")) {
      codecPageMicros(5000);
      out["protocol.codec_page_us"] = { value: codecPageMicros(50000), unit: "µs", note: "encode + decode of a 4 KiB grant" };
    }
    if (ctx.wants("protocol.sim_events_per_s")) {
      out["protocol.sim_events_per_s"] = {
        value: Math.round(simEventsPerSecond(2000)),
        unit: "events/s",
        note: "deterministic DSM simulation throughput (seeds 1..2000)",
      };
    }
    ctx.log(`protocol: ${Object.keys(out).join(", ")}`);
    return out;
  },
};

export default protocol;
