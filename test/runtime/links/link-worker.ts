// Runs in a worker_thread: node `self` sends `count` seeded frames to every other node and checks
// that every frame from every peer arrives intact and in order, blocking on its doorbell when idle.
import { parentPort, workerData } from "node:worker_threads";
import { LocalLinks, type LocalLinksPlan } from "../../../src/runtime/links/local-links.ts";

const { plan, count } = workerData.data as { plan: LocalLinksPlan; count: number };
const links = new LocalLinks(plan);

function frameFor(from: number, to: number, seq: number): Uint8Array {
  // Sizes from 0 to ~3 KiB, contents a function of (from, to, seq).
  const size = (seq * 7919 + from * 31 + to * 17) % 3000;
  const f = new Uint8Array(size + 8);
  new DataView(f.buffer).setUint32(0, seq, true);
  new DataView(f.buffer).setUint32(4, from, true);
  for (let i = 8; i < f.length; i++) f[i] = (seq + i * from + to) & 0xff;
  return f;
}

const expected = new Array(links.nodes).fill(0);
let received = 0;
const wanted = count * (links.nodes - 1);
let sent = 0;
let errors: string[] = [];
const deadline = Date.now() + 120_000;
while ((received < wanted || !links.flush()) && Date.now() < deadline) {
  // Interleave sending and receiving, a few frames at a time.
  for (let k = 0; k < 5 && sent < count; k++, sent++)
    for (let to = 0; to < links.nodes; to++) if (to !== links.self) links.send(to, frameFor(links.self, to, sent));
  links.flush();
  let d;
  let got = 0;
  while ((d = links.receive()) !== null) {
    got++;
    const want = frameFor(d.from, links.self, expected[d.from]);
    const ok = want.length === d.frame.length && want.every((b, i) => d!.frame[i] === b);
    if (!ok && errors.length < 5) errors.push(`frame ${expected[d.from]} from node ${d.from} differs`);
    expected[d.from]++;
    received++;
  }
  if (got === 0 && sent >= count) links.waitForTraffic(50);
}
parentPort!.postMessage({ self: links.self, received, errors, perPeer: expected });
