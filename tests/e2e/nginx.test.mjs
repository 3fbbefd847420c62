// A protected PHP page in a real browser (headless Chromium) through Debian's nginx with the
// shipped etc/nginx.conf.example (auth_request to kinde.fcgi under socket activation, PHP-FPM):
// open htdocs/private/whoami.php, sign in at the local provider, land on the page showing the email.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser } from '../lib/browser.mjs';
import { startIdp } from '../lib/idp-process.mjs';
import { startNginxSite } from '../lib/nginx.mjs';
import { freePort } from '../lib/servers.mjs';

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
let idp;
let site;
let browser;

before(async () => {
  idp = await startIdp({ IDP_REDIRECT_URIS: `${base}/kinde/callback` });
  site = await startNginxSite({ issuer: idp.issuer, port });
});
after(async () => {
  await browser?.close();
  await site?.stop();
  await idp?.stop();
});

test('opening a protected PHP page through nginx signs in and shows the user\'s email', async () => {
  browser = await launchBrowser({ timeoutMs: 15000 });
  // Only loopback: nothing else is reachable here.
  await browser.context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort('blockedbyclient'));
  const { page } = browser;
  const target = `${base}/private/whoami.php?from=e2e&x=1`;
  try {
    await page.goto(target);
    const loginField = page.locator('input[name="login"]');
    await loginField.waitFor();
    assert.ok(page.url().startsWith(idp.issuer), `expected the provider's sign-in page, at ${page.url()}`);
    await loginField.fill('alice');
    await page.locator('input[name="password"]').fill('any password');
    await Promise.all([
      page.waitForURL(target),
      page.locator('form#idp-login button[type="submit"]').click(),
    ]);
    assert.equal(await page.locator('b').textContent(), 'alice@example.com');
    assert.match(await page.locator('body').textContent(), /with the permissions: read:items write:items/);

    // Signed in: the stricter folder lets alice in; signing out shuts the page again.
    const staff = await page.goto(`${base}/private/staff/index.html`);
    assert.equal(staff.status(), 200);
    const again = await page.goto(`${base}/private/whoami.php`);
    assert.equal(again.status(), 200);
    // Signed out: the page goes through sign-in again (the provider may still know the browser and
    // send it straight back, so the check is the detour, not its form).
    await page.goto(`${base}/kinde/logout`);
    const detour = page.waitForRequest((r) => r.url().startsWith(`${base}/kinde/login?next=`));
    await page.goto(`${base}/private/whoami.php`);
    assert.equal(new URL((await detour).url()).searchParams.get('next'), '/private/whoami.php');
  } catch (err) {
    // A new error: Playwright's keep their own message.
    throw new Error(`${err.message}\nat ${page.url()}: ${(await page.content()).slice(0, 600)}\n${site.logs()}`);
  }
});
