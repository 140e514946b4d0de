// One Chromium and one page server for a test file: readies what the page serves, starts both
// before the file's tests and closes them after. Tabs of one browser share `context`
// (BroadcastChannel signaling reaches only pages of one context).

import { afterAll, beforeAll } from "vitest";
import type { Browser, BrowserContext } from "playwright-core";
import { ensureInstrumentedWasm } from "../../src/engine/instrument/ensure.ts";
import { ensureGuestImages } from "../../src/guests/images.ts";
import { buildFirmware } from "../../src/runtime/nodejs/firmware-build.ts";
import { launchChromium } from "./browser.ts";
import { startWebServer } from "./web-server.ts";

export interface BrowserSession {
  readonly browser: Browser;
  readonly context: BrowserContext;
  /** The page server's root URL (ends with "/"). */
  readonly url: string;
}

/** What a Linux VM page needs: the guest images, our firmware and the instrumented engine. */
export async function prepareLinuxVm(): Promise<void> {
  ensureGuestImages();
  buildFirmware();
  await ensureInstrumentedWasm();
}

/** Registers the file's beforeAll/afterAll; `enabled: false` (a skipped heavy file) starts nothing. */
export function useBrowserSession(prepare: () => unknown = prepareLinuxVm, { enabled = true } = {}): BrowserSession {
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let server: Awaited<ReturnType<typeof startWebServer>> | undefined;
  beforeAll(async () => {
    if (!enabled) return;
    await prepare();
    server = await startWebServer();
    browser = await launchChromium();
    context = await browser.newContext();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the browser session has not started (used outside a test, or the file is disabled)");
    return value;
  };
  return {
    get browser() {
      return started(browser);
    },
    get context() {
      return started(context);
    },
    get url() {
      return started(server).url;
    },
  };
}
