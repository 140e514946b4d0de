// An independent reader of the newc format, shared by the cpio writer's tests and the larger
// initramfs's tests.
import { expect } from "vitest";

// Written from the format's description (not from the writer): it walks the archive and returns
// every member with its decoded header.
export interface Member {
  name: string;
  ino: number;
  mode: number;
  nlink: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Buffer;
}

export function readNewc(archive: Buffer): Member[] {
  const members: Member[] = [];
  let pos = 0;
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    expect(archive.toString("latin1", pos, pos + 6)).toBe("070701");
    const field = (i: number) => parseInt(archive.toString("latin1", pos + 6 + i * 8, pos + 14 + i * 8), 16);
    const [ino, mode, , , nlink, , filesize, , , rdevMajor, rdevMinor, namesize, check] = Array.from({ length: 13 }, (_, i) => field(i));
    expect(check).toBe(0);
    const nameStart = pos + 110;
    const name = archive.toString("latin1", nameStart, nameStart + namesize! - 1);
    expect(archive[nameStart + namesize! - 1]).toBe(0);
    const dataStart = align(nameStart + namesize!);
    const data = archive.subarray(dataStart, dataStart + filesize!);
    pos = align(dataStart + filesize!);
    if (name === "TRAILER!!!") {
      expect(pos).toBe(archive.length);
      return members;
    }
    members.push({ name, ino: ino!, mode: mode!, nlink: nlink!, rdevMajor: rdevMajor!, rdevMinor: rdevMinor!, data: Buffer.from(data) });
  }
}
