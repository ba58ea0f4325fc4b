import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium; playwright-core drives it over CDP (no bundled browser download). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Starts a headless Chromium that never talks to the network on its own. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}
