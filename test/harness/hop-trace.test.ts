import { describe, expect, it } from "vitest";
import { eventsOf, roundTripHops, roundTrips, type HopEvent } from "../../harness/browser/hop-trace.ts";

const hops = roundTripHops(0, 1, (n) => `net ${n}`);
const trip = (t0: number, gaps: number[]): HopEvent[] => {
  let t = t0;
  return hops.map((h, i) => ({ thread: h.thread, point: h.point, at: (t += i === 0 ? 0 : gaps[i - 1]!) }));
};

describe("hop trace round trips", () => {
  it("reads each complete round trip as the times between its hops", () => {
    const gaps = [0.1, 0.3, 0.05, 0.1, 0.07, 0.3, 0.15];
    const got = roundTrips([...trip(10, gaps), ...trip(20, gaps.map((g) => 2 * g))], hops);
    expect(got).toHaveLength(2);
    got[0]!.forEach((g, i) => expect(g).toBeCloseTo(gaps[i]!, 9));
    got[1]!.forEach((g, i) => expect(g).toBeCloseTo(2 * gaps[i]!, 9));
  });

  it("skips other threads' events and a start whose answer never came", () => {
    const lost: HopEvent[] = [{ thread: "node 0", point: "send", at: 1 }, { thread: "net 0", point: "net-out", at: 1.1 }];
    const noise: HopEvent[] = [{ thread: "node 2", point: "send", at: 200.01 }, { thread: "net 1", point: "net-in", at: 200.02 }];
    const events = [...lost, ...trip(200, [1, 1, 1, 1, 1, 1, 1]), ...noise].sort((a, b) => a.at - b.at);
    // The lost start's hops run past 100 ms before the next node-0 send completes them: skipped.
    const got = roundTrips(events, hops);
    expect(got).toEqual([[1, 1, 1, 1, 1, 1, 1]]);
  });

  it("names the node as the writer when it sends on its own channel", () => {
    const own = roundTripHops(0, 1, (n) => `net ${n}`, (n) => `node ${n}`);
    expect(own.map((h) => `${h.thread} ${h.point}`)).toEqual([
      "node 0 send", "node 0 net-out", "net 1 net-in", "node 1 receive", "node 1 send", "node 1 net-out", "net 0 net-in", "node 0 receive",
    ]);
    expect(own[1]!.label).toBe("node 0 writes it on the channel");
  });

  it("turns the threads' batches into one timeline", () => {
    const events = eventsOf([
      { kind: "hops", thread: "node 1", points: [3, 0], times: [5, 6] },
      { kind: "joined", thread: "x" },
      { kind: "hops", thread: "net 0", points: [1], times: [4] },
    ]);
    expect(events).toEqual([
      { thread: "net 0", point: "net-out", at: 4 },
      { thread: "node 1", point: "receive", at: 5 },
      { thread: "node 1", point: "send", at: 6 },
    ]);
  });
});
