// A synthetic bzImage: a setup header with the fields the boot protocol defines and a
// recognisable protected-mode payload, so unit tests need no real kernel.

export interface FakeKernelOptions {
  version?: number;
  loadflags?: number;
  setupSects?: number;
  payloadSize?: number;
  initSize?: number;
  prefAddress?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
}

export function fakeBzImage(o: FakeKernelOptions = {}): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const payload = o.payloadSize ?? 0x3000;
  const img = new Uint8Array((setupSects + 1) * 512 + payload);
  const d = new DataView(img.buffer);
  img[0x1f1] = setupSects;
  d.setUint32(0x1f4, payload >> 4, true);
  d.setUint16(0x1fe, 0xaa55, true);
  img[0x200] = 0xeb; // short jump over the header, which ends at 0x268
  img[0x201] = 0x66;
  img.set([0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS"
  d.setUint16(0x206, o.version ?? 0x20f, true);
  img[0x211] = o.loadflags ?? 0x01;
  d.setUint32(0x214, 0x100000, true);
  d.setUint32(0x22c, o.initrdAddrMax ?? 0x7fffffff, true);
  d.setUint32(0x230, 0x1000000, true);
  img[0x234] = 1;
  d.setUint32(0x238, o.cmdlineSize ?? 2047, true);
  d.setBigUint64(0x258, BigInt(o.prefAddress ?? 0x1000000), true);
  d.setUint32(0x260, o.initSize ?? 0x800000, true);
  for (let i = (setupSects + 1) * 512; i < img.length; i++) img[i] = (i * 7 + 3) & 0xff;
  return img;
}
