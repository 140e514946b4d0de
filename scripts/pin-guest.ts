// Prints the manifest line that pins another kernel as the default guest's, from what apt offers now:
//   npx tsx scripts/pin-guest.ts 56            prints the "kernel" line for linux-image-6.1.0-56-686-unsigned
//   npx tsx scripts/pin-guest.ts 56 --write    also puts it into guests/linux/pinned.json
// The version and SHA-256 are apt's (its signed index); the next setup downloads the .deb and checks it.

import { readFileSync, writeFileSync } from "node:fs";
import { archivePin } from "../src/guests/debs.ts";
import { parsePinnedManifest, PINNED_MANIFEST } from "../src/guests/pinned.ts";

const [abi, flag] = process.argv.slice(2);
if (!abi || !/^\d+$/.test(abi) || (flag !== undefined && flag !== "--write")) {
  console.error("usage: npx tsx scripts/pin-guest.ts N [--write]   (N of linux-image-6.1.0-N-686-unsigned)");
  process.exit(2);
}
try {
  const pin = archivePin(`linux-image-6.1.0-${abi}-686-unsigned`, "i386", (l) => console.error(`[pin] ${l}`));
  const line = `  "kernel": ${JSON.stringify(pin).replace(/":/g, '": ').replace(/,"/g, ', "').replace(/^\{/, "{ ").replace(/\}$/, " }")},`;
  console.log(line);
  if (flag === "--write") {
    const text = readFileSync(PINNED_MANIFEST, "utf8");
    const lines = text.split("\n");
    const i = lines.findIndex((l) => /^\s*"kernel":/.test(l));
    if (i < 0) throw new Error(`${PINNED_MANIFEST} has no "kernel" line`);
    lines[i] = line;
    const next = lines.join("\n");
    parsePinnedManifest(next); // never write a manifest that does not parse
    writeFileSync(PINNED_MANIFEST, next);
    console.error(`[pin] ${PINNED_MANIFEST}: kernel is now ${pin.package} ${pin.version}`);
  }
} catch (err) {
  console.error(`[pin] ${(err as Error).message}`);
  process.exit(1);
}
