import { describe, expect, it } from "vitest";
import { DemoCluster } from "../../../src/ui/labs/view/demo-cluster.ts";
import { DSM_TID, pidOf, tidOfVcpu, TraceRecorder, traceFileName, type ChromeTrace } from "../../../src/ui/view/model/trace.ts";

describe("trace writer (Chrome trace-event JSON)", () => {
  it("writes a file that parses, with one track per node and vCPU and the recorded events", () => {
    const cluster = new DemoCluster(3, 32);
    const rec = new TraceRecorder();
    cluster.access(1, 1, 5, "write", 50); // before the recording: must not appear
    rec.add(cluster.takeEvents()); // not recording yet: ignored
    rec.start(100);
    cluster.access(1, 1, 6, "read", 110); // node 0 sends page 6 to node 1 (and the ownership)
    cluster.access(2, 2, 6, "read", 120); // node 1, now the owner, sends it to node 2
    cluster.access(0, 0, 6, "write", 130); // node 0 writes: node 1's copy is invalidated, node 2 hands over
    rec.add(cluster.takeEvents());
    rec.add([
      { type: "ipi", node: 0, src: 0, dest: 1, kind: "fixed", vector: 0xfd, atMs: 125 },
      { type: "io", node: 1, vcpu: 1, op: "port-read", addr: 0x3fd, startMs: 126, endMs: 127.5 },
    ]);
    rec.stop(3100);
    rec.add([{ type: "ipi", node: 0, src: 0, dest: 1, kind: "fixed", atMs: 3200 }]); // after stop: ignored

    const text = JSON.stringify(rec.build({ nodes: 3, vcpuHome: [0, 1, 2], describePage: (p) => (p === 6 ? "jiffies" : undefined) }));
    const trace = JSON.parse(text) as ChromeTrace;
    expect(trace.displayTimeUnit).toBe("ms");
    expect(trace.otherData).toMatchObject({ recordedMs: 3000, events: 9 });

    const meta = trace.traceEvents.filter((e) => e.ph === "M");
    const names = meta.filter((e) => e.name === "process_name" || e.name === "thread_name").map((e) => [e.pid, e.tid ?? null, e.args.name]);
    const dsmTrack = "DSM (pages sent, invalidations)";
    expect(names).toEqual([
      [1, null, "node 0 (devices)"],
      [1, DSM_TID, dsmTrack],
      [2, null, "node 1"],
      [2, DSM_TID, dsmTrack],
      [3, null, "node 2"],
      [3, DSM_TID, dsmTrack],
      [1, tidOfVcpu(0), "vCPU 0"],
      [2, tidOfVcpu(1), "vCPU 1"],
      [3, tidOfVcpu(2), "vCPU 2"],
    ]);

    const events = trace.traceEvents.filter((e) => e.ph === "X" || e.ph === "i");
    // every event sits on a named track and times count from the start of the recording (µs)
    const tracks = new Set(names.map(([pid, tid]) => `${pid}/${tid}`));
    for (const e of trace.traceEvents) if (e.ph !== "M") expect(tracks.has(`${e.pid}/${e.tid}`)).toBe(true);
    expect(events.map((e) => [e.ph, e.name, e.pid, e.tid, e.ts])).toEqual([
      ["X", "page to node 1", pidOf(0), DSM_TID, 10_000],
      ["X", "read fault", pidOf(1), tidOfVcpu(1), 10_000],
      ["X", "page to node 2", pidOf(1), DSM_TID, 20_000],
      ["X", "read fault", pidOf(2), tidOfVcpu(2), 20_000],
      ["i", "IPI fixed to CPU 1", pidOf(0), tidOfVcpu(0), 25_000],
      ["X", "port-read", pidOf(1), tidOfVcpu(1), 26_000],
      ["i", "invalidate", pidOf(1), DSM_TID, 30_000],
      // node 0 kept the page's bytes at version 1: node 2 answers "current", no bytes
      ["X", "page to node 0", pidOf(2), DSM_TID, 30_000],
      ["X", "write fault", pidOf(0), tidOfVcpu(0), 30_000],
    ]);
    const args = (i: number) => {
      const e = events[i]!;
      return e.ph === "X" || e.ph === "i" ? e.args : null;
    };
    const x = events.find((e) => e.name === "port-read");
    expect(x && x.ph === "X" ? x.dur : -1).toBe(1500);
    expect(args(0)).toEqual({ page: "0x6", symbols: "jiffies", form: "zero", to: 1 });
    expect(args(7)).toMatchObject({ form: "current", to: 0 });
    expect(args(4)).toEqual({ dest: 1, vector: "0xfd" });

    // Each page sent is an arrow from the sender's DSM track into the fault it answered.
    const flows = trace.traceEvents.filter((e) => e.ph === "s" || e.ph === "f");
    expect(flows.map((e) => [e.ph, e.id, e.pid, e.tid, e.ts])).toEqual([
      ["s", 1, pidOf(0), DSM_TID, 10_000],
      ["f", 1, pidOf(1), tidOfVcpu(1), 10_000],
      ["s", 2, pidOf(1), DSM_TID, 20_000],
      ["f", 2, pidOf(2), tidOfVcpu(2), 20_000],
      ["s", 3, pidOf(2), DSM_TID, 30_000],
      ["f", 3, pidOf(0), tidOfVcpu(0), 30_000],
    ]);
  });

  it("bounds the recording and names files for a download", () => {
    const rec = new TraceRecorder(3);
    rec.start(0);
    rec.add(Array.from({ length: 5 }, (_, i) => ({ type: "invalidate" as const, node: 0, page: i, by: 1, atMs: i })));
    rec.stop(10);
    expect(rec.count).toBe(3);
    expect(rec.build({ nodes: 1, vcpuHome: [0] }).otherData.dropped).toBe(2);
    expect(traceFileName(new Date("2026-11-25T09:30:05.123Z"))).toBe("giantweb-trace-2026-11-25T09-30-05.json");
    expect(() => new TraceRecorder().build({ nodes: 1, vcpuHome: [] })).toThrow(/no trace/);
  });

  it("puts I/O the device node served for a remote vCPU on a named track of the device node", () => {
    const rec = new TraceRecorder();
    rec.start(0);
    rec.add([
      { type: "io", node: 1, vcpu: 1, op: "port-read", addr: 0x3fd, startMs: 1, endMs: 3 }, // at the client, on vCPU 1's own track
      { type: "io", node: 0, vcpu: 1, op: "port-read", addr: 0x3fd, startMs: 2, endMs: 2 }, // served at node 0
    ]);
    rec.stop(10);
    const trace = rec.build({ nodes: 2, vcpuHome: [0, 1] });
    const threads = trace.traceEvents.flatMap((e) => (e.ph === "M" && e.name === "thread_name" ? [[e.pid, e.tid, e.args.name]] : []));
    expect(threads).toContainEqual([pidOf(0), tidOfVcpu(1), "I/O served for vCPU 1"]);
    expect(threads.filter((t) => t[2] === "I/O served for vCPU 1")).toHaveLength(1);
    const slices = trace.traceEvents.filter((e) => e.ph === "X" && e.cat === "io").map((e) => e.ph === "X" && [e.pid, e.tid, e.dur]);
    expect(slices).toEqual([
      [pidOf(1), tidOfVcpu(1), 2000],
      [pidOf(0), tidOfVcpu(1), 0],
    ]);
  });
});
