// A protected file in a real browser (headless Chromium): open htdocs/private/index.html through
// lighttpd with the shipped etc/lighttpd.conf (kinde.fcgi as its FastCGI Authorizer), sign in at the
// local provider, and land on the file itself.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser } from '../lib/browser.mjs';
import { startIdp } from '../lib/idp-process.mjs';
import { freePort, startLighttpd } from '../lib/servers.mjs';

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
let idp;
let srv;
let browser;

before(async () => {
  idp = await startIdp({ IDP_REDIRECT_URIS: `${base}/callback` });
  srv = await startLighttpd({ port, procs: 1, appEnv: { KINDE_ISSUER_URL: idp.issuer } });
});
after(async () => {
  await browser?.close();
  await srv?.stop();
  await idp?.stop();
});

test('opening a protected file signs in at the provider and lands on the file', async () => {
  browser = await launchBrowser({ timeoutMs: 15000 });
  // Only loopback: nothing else is reachable here.
  await browser.context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort('blockedbyclient'));
  const { page } = browser;
  const target = `${base}/private/index.html?from=e2e`;
  try {
    await page.goto(target);
    const loginField = page.locator('input[name="login"]');
    await loginField.waitFor();
    assert.ok(page.url().startsWith(idp.issuer), `expected the provider's sign-in page, at ${page.url()}`);
    await loginField.fill('plato');
    await page.locator('input[name="password"]').fill('any password');
    await Promise.all([
      page.waitForURL(target),
      page.locator('form#idp-login button[type="submit"]').click(),
    ]);
    await page.getByRole('heading', { name: 'Members only' }).waitFor();

    // Signed in now: the next protected page opens directly; one needing write:items is refused.
    const again = await page.goto(`${base}/private/index.html`);
    assert.equal(again.status(), 200);
    const staff = await page.goto(`${base}/private/staff/index.html`);
    assert.equal(staff.status(), 403);
    assert.match(await page.locator('body').textContent(), /write:items/);
  } catch (err) {
    err.message += `\n--- lighttpd ---\n${srv.errorLog().slice(-3000)}`;
    throw err;
  }
});
