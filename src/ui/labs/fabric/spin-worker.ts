// A worker that keeps one core busy while its flag is 1: the CPU a vCPU takes when it spins in its
// guest (the self-test's CPU 0 waiting for an IPI's answer), for the raw round trip measured under
// the same load (the bench's yardstick beside the idle one).

self.onmessage = (e: MessageEvent<SharedArrayBuffer>) => {
  const flag = new Int32Array(e.data);
  const t0 = performance.now();
  self.postMessage("spinning");
  while (Atomics.load(flag, 0) === 1);
  self.postMessage({ spunMs: performance.now() - t0 });
};
