// A writer for the "newc" cpio format (the one the Linux kernel unpacks as an initramfs).
// Pure: entries in, bytes out. No external cpio tool, no file system access.

export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "chardev"; path: string; major: number; minor: number; mode?: number };

export class CpioError extends Error {
  override name = "CpioError";
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAGIC = "070701";
const TRAILER = "TRAILER!!!";
const encoder = new TextEncoder();

function checkPath(path: string): void {
  if (path.length === 0) throw new CpioError("cpio entry has an empty path");
  if (path.startsWith("/")) throw new CpioError(`cpio path "${path}" must be relative (no leading /)`);
  if (path.split("/").some((part) => part === "" || part === "." || part === ".."))
    throw new CpioError(`cpio path "${path}" has an empty, "." or ".." component`);
  if (path.includes("\0")) throw new CpioError(`cpio path "${path}" contains a NUL byte`);
  if (path === TRAILER) throw new CpioError(`cpio path "${path}" is reserved for the trailer`);
}

function checkPermissions(path: string, mode: number): void {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)
    throw new CpioError(`cpio entry "${path}" has invalid permission bits ${mode}`);
}

function hex8(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new CpioError(`cpio header field ${value} does not fit in 32 bits`);
  return value.toString(16).padStart(8, "0");
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

interface Record {
  name: string;
  mode: number;
  data: Uint8Array;
  rdevMajor: number;
  rdevMinor: number;
}

function toRecord(entry: CpioEntry): Record {
  checkPath(entry.path);
  switch (entry.kind) {
    case "dir": {
      const perm = entry.mode ?? 0o755;
      checkPermissions(entry.path, perm);
      return { name: entry.path, mode: S_IFDIR | perm, data: new Uint8Array(), rdevMajor: 0, rdevMinor: 0 };
    }
    case "file": {
      const perm = entry.mode ?? 0o644;
      checkPermissions(entry.path, perm);
      return { name: entry.path, mode: S_IFREG | perm, data: entry.data, rdevMajor: 0, rdevMinor: 0 };
    }
    case "symlink":
      if (entry.target.length === 0) throw new CpioError(`symlink "${entry.path}" has an empty target`);
      return { name: entry.path, mode: S_IFLNK | 0o777, data: encoder.encode(entry.target), rdevMajor: 0, rdevMinor: 0 };
    case "chardev": {
      const perm = entry.mode ?? 0o600;
      checkPermissions(entry.path, perm);
      for (const n of [entry.major, entry.minor])
        if (!Number.isInteger(n) || n < 0 || n > 0xfff)
          throw new CpioError(`device "${entry.path}" has an invalid number ${n}`);
      return { name: entry.path, mode: S_IFCHR | perm, data: new Uint8Array(), rdevMajor: entry.major, rdevMinor: entry.minor };
    }
  }
}

function header(r: Record, ino: number, nameBytes: number): string {
  const nlink = (r.mode & 0o170000) === S_IFDIR ? 2 : 1;
  return (
    MAGIC +
    hex8(ino) +
    hex8(r.mode) +
    hex8(0) + // uid: root
    hex8(0) + // gid: root
    hex8(nlink) +
    hex8(0) + // mtime: fixed, so the same inputs give the same archive
    hex8(r.data.length) +
    hex8(0) + hex8(0) + // devmajor, devminor of the archive's own device
    hex8(r.rdevMajor) +
    hex8(r.rdevMinor) +
    hex8(nameBytes) +
    hex8(0) // check: unused in newc
  );
}

/** Serialises entries, in order, followed by the trailer. Rejects duplicate paths. */
export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const seen = new Set<string>();
  const records = entries.map((entry) => {
    const r = toRecord(entry);
    if (seen.has(r.name)) throw new CpioError(`cpio path "${r.name}" appears twice`);
    seen.add(r.name);
    return r;
  });
  records.push({ name: TRAILER, mode: 0, data: new Uint8Array(), rdevMajor: 0, rdevMinor: 0 });

  const chunks: Uint8Array[] = [];
  let size = 0;
  records.forEach((r, i) => {
    const name = encoder.encode(r.name + "\0");
    const head = encoder.encode(header(r, r.name === TRAILER ? 0 : i + 1, name.length));
    const parts = [head, name, new Uint8Array(pad4(head.length + name.length)), r.data, new Uint8Array(pad4(r.data.length))];
    for (const p of parts) {
      chunks.push(p);
      size += p.length;
    }
  });
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
