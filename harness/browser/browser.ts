// Debian's Chromium driven by playwright-core (never a browser Playwright downloads itself).

import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Lets two tabs on loopback connect over WebRTC (host candidates are not hidden behind mDNS).
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  // Background tabs must keep running their vCPUs at full speed.
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run \`npm run setup\` (it installs Debian's chromium package)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh, empty profile of its own.
    args: CHROMIUM_ARGS,
  });
}
