// What a cluster of tabs boots: the default Linux guest (our firmware boots it directly with tables
// for every vCPU) or the SMP self-test guest (multiboot, MP and ACPI tables written by node 0).
// Each kind needs a fixed set of named images; tab 0 announces their digests under these names
// and every joining tab must hold the same bytes, so the names are part of the wire protocol.

export const GUEST_KINDS = ["linux", "selftest"] as const;
export type GuestKind = (typeof GUEST_KINDS)[number];

/** The images each guest kind boots from, by the name the VM configuration announces them under. */
export const GUEST_IMAGES = {
  linux: ["engine", "firmware", "kernel", "initramfs"],
  selftest: ["engine", "elf"],
} as const satisfies Record<GuestKind, readonly string[]>;

export type ImageName = (typeof GUEST_IMAGES)[GuestKind][number];

export type ClusterGuest =
  | { kind: "linux"; wasm: ArrayBuffer; firmware: ArrayBuffer; bzImage: ArrayBuffer; initrd: ArrayBuffer; cmdline: string; memoryMiB: number }
  | { kind: "selftest"; wasm: ArrayBuffer; elf: ArrayBuffer; cmdline: string; memoryMiB: number };

export const isGuestKind = (v: unknown): v is GuestKind => typeof v === "string" && (GUEST_KINDS as readonly string[]).includes(v);

/** The guest's images by name, in the order GUEST_IMAGES lists them. */
export function guestImages(g: ClusterGuest): [ImageName, ArrayBuffer][] {
  switch (g.kind) {
    case "linux":
      return [["engine", g.wasm], ["firmware", g.firmware], ["kernel", g.bzImage], ["initramfs", g.initrd]];
    case "selftest":
      return [["engine", g.wasm], ["elf", g.elf]];
  }
}

/** Builds a guest from images fetched by name; throws naming the first missing image. */
export function guestFromImages(kind: GuestKind, got: Partial<Record<ImageName, ArrayBuffer>>, cmdline: string, memoryMiB: number): ClusterGuest {
  const need = (name: ImageName): ArrayBuffer => {
    const b = got[name];
    if (!b) throw new Error(`the ${kind} guest needs the ${name} image, which was not announced`);
    return b;
  };
  switch (kind) {
    case "linux":
      return { kind, wasm: need("engine"), firmware: need("firmware"), bzImage: need("kernel"), initrd: need("initramfs"), cmdline, memoryMiB };
    case "selftest":
      return { kind, wasm: need("engine"), elf: need("elf"), cmdline, memoryMiB };
  }
}

/**
 * Checks that bytes are a 32-bit x86 ELF with a multiboot (v1) header in its first 8 KiB, the way
 * v86 loads the self-test guest; throws naming what is wrong.
 */
export function checkMultibootElf(bytes: Uint8Array, what = "the self-test image"): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 64 || dv.getUint32(0, false) !== 0x7f454c46) throw new Error(`${what} is not an ELF file`);
  if (bytes[4] !== 1 || dv.getUint16(18, true) !== 3) throw new Error(`${what} is not a 32-bit x86 ELF`);
  for (let off = 0; off + 12 <= Math.min(bytes.length, 8192); off += 4) {
    if (dv.getUint32(off, true) !== 0x1badb002) continue;
    if (((0x1badb002 + dv.getUint32(off + 4, true) + dv.getUint32(off + 8, true)) >>> 0) === 0) return;
  }
  throw new Error(`${what} has no valid multiboot header in its first 8 KiB`);
}
