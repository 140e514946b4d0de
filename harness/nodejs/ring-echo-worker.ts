// Runs in a worker_thread, one of two nodes joined by LocalLinks. Node 0 pings: it sends `count`
// frames of `bytes` bytes one at a time, each after the previous one's echo came back (blocking
// on its doorbell), checks each echo and reports the round trips in µs. Node 1 echoes every frame,
// either blocking on its doorbell (`wait`) or from its event loop through `LocalLinks.watch`
// (`watch`, the way a vCPU node's idle worker notices a message).
import { parentPort, workerData } from "node:worker_threads";
import { LocalLinks, type LocalLinksPlan } from "../../src/runtime/links/local-links.ts";

export interface EchoData {
  plan: LocalLinksPlan;
  count: number;
  bytes: number;
  mode: "wait" | "watch";
}
export interface EchoReport {
  rttsUs: number[];
  errors: string[];
}

const { plan, count, bytes, mode } = workerData.data as EchoData;
const links = new LocalLinks(plan);

if (links.self === 0) {
  const rttsUs: number[] = [];
  const errors: string[] = [];
  for (let i = 0; i < count; i++) {
    const frame = new Uint8Array(bytes).fill(i & 0xff);
    new DataView(frame.buffer).setUint32(0, i, true);
    const t0 = performance.now();
    links.send(1, frame);
    let echo = links.receive();
    while (echo === null) {
      links.waitForTraffic(1000);
      echo = links.receive();
    }
    rttsUs.push((performance.now() - t0) * 1000);
    const seq = new DataView(echo.frame.buffer, echo.frame.byteOffset).getUint32(0, true);
    if (echo.frame.length !== bytes || seq !== i) errors.push(`echo ${i}: got frame ${seq} of ${echo.frame.length} bytes`);
  }
  parentPort!.postMessage({ rttsUs, errors } satisfies EchoReport);
} else {
  let echoed = 0;
  const echoAll = () => {
    for (let d = links.receive(); d !== null; d = links.receive()) {
      links.send(0, d.frame);
      echoed++;
    }
  };
  if (mode === "watch") {
    let done = false;
    const stop = links.watch(() => {
      echoAll();
      done = echoed === count;
    });
    // watch calls back once before it returns; later calls come from the event loop.
    const check = setInterval(() => done && (stop(), clearInterval(check)), 50);
  } else {
    while (echoed < count) {
      echoAll();
      if (echoed < count) links.waitForTraffic(1000);
    }
  }
}
