// A folder (an unpacked .deb) as cpio entries, Node only: directories before their contents, names
// sorted so the same tree always gives the same archive, permission bits kept.

import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { CpioEntry } from "./cpio.ts";
import { ImageError } from "./image-checks.ts";

/** Entries for everything under `root` (paths relative to it), skipping `exclude`d subtrees. */
export function treeEntries(root: string, exclude: readonly string[] = []): CpioEntry[] {
  const out: CpioEntry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      if (exclude.includes(path)) continue;
      const full = join(root, path);
      const st = lstatSync(full);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out.push({ kind: "dir", path, mode });
        walk(path);
      } else if (st.isFile()) out.push({ kind: "file", path, data: new Uint8Array(readFileSync(full)), mode });
      else if (st.isSymbolicLink()) out.push({ kind: "symlink", path, target: readlinkSync(full) });
      else throw new ImageError(`${full} is neither a file, a directory nor a symlink`);
    }
  };
  walk("");
  return out;
}
