// Headless Chromium for end-to-end tests: Debian's /usr/bin/chromium driven
// by playwright-core (which cannot download its own browsers here).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// launchBrowser({headless, timeoutMs}) -> {context, page, close()}: a
// persistent context on a fresh temporary profile (so no cookie or cache
// leaks between tests); close() shuts the browser and removes the profile.
export async function launchBrowser({ headless = true, timeoutMs = 15000 } = {}) {
  const profile = await mkdtemp(join(tmpdir(), 'kinde-fcgi-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless,
      args: ARGS,
      timeout: timeoutMs,
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  context.setDefaultTimeout(timeoutMs);
  const page = context.pages()[0] ?? await context.newPage();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      await context.close();
    } finally {
      await rm(profile, { recursive: true, force: true });
    }
  };
  return { context, page, close };
}
