// Sign in and out in a real browser (headless Chromium) against the local OpenID provider, with
// the app behind lighttpd (at the site root) and behind Apache + mod_fcgid (at /app).
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { launchBrowser } from '../lib/browser.mjs';
import { projectRoot } from '../lib/cgi.mjs';
import { startIdp } from '../lib/idp-process.mjs';
import { freePort, startApache, startLighttpd } from '../lib/servers.mjs';

const ARTIFACTS = path.join(projectRoot, 'tests/artifacts');
const SCREENSHOT = path.join(ARTIFACTS, 'signed-in.png');
const DOCS_SCREENSHOT = path.join(projectRoot, 'docs/signed-in.png');

// The fixture users' pictures live on images.example.com, which this sandbox cannot reach: the
// browser gets a stand-in avatar instead, so pages load completely and screenshots look right.
function avatarSvg(text) {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">
<rect width="96" height="96" rx="48" fill="#111"/>
<text x="48" y="60" font-family="Arial, sans-serif" font-size="36" fill="#fff" text-anchor="middle">${text}</text>
</svg>`;
}

// A fresh browser whose only network is loopback (plus the stand-in avatars).
async function openBrowser() {
  const browser = await launchBrowser({ timeoutMs: 15000 });
  await browser.context.route((url) => url.hostname !== '127.0.0.1', async (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === 'images.example.com') {
      const who = decodeURIComponent(path.basename(url.pathname, '.png'));
      await route.fulfill({ status: 200, contentType: 'image/svg+xml', body: avatarSvg(who.slice(0, 2).toUpperCase()) });
    } else {
      await route.abort('blockedbyclient');
    }
  });
  return browser;
}

// Ports first: the provider must know the app's redirect URIs before the servers start.
const ports = { lighttpd: await freePort(), apache: await freePort() };
const bases = {
  lighttpd: `http://127.0.0.1:${ports.lighttpd}`,
  apache: `http://127.0.0.1:${ports.apache}/app`,
};

let idp;
before(async () => {
  idp = await startIdp({
    IDP_REDIRECT_URIS: Object.values(bases).map((b) => `${b}/callback`).join(','),
    IDP_POST_LOGOUT_REDIRECT_URIS: Object.values(bases).map((b) => `${b}/`).join(','),
  });
});
after(async () => { await idp?.stop(); });

const appEnv = () => ({ KINDE_ISSUER_URL: idp.issuer });

// Signs `login` in through the browser from the home page; returns when the app's signed-in
// home page is shown.
async function signInThroughPage(page, base, login) {
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in' }).first().click();
  // The provider's form.
  const loginField = page.locator('input[name="login"]');
  await loginField.waitFor();
  assert.ok(page.url().startsWith(idp.issuer), `expected the provider, at ${page.url()}`);
  await loginField.fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await Promise.all([
    page.waitForURL(`${base}/`),
    page.locator('form#idp-login button[type="submit"]').click(),
  ]);
}

// GET /api/me in the browser (with its session cookie) -> parsed JSON.
async function apiMe(page, base) {
  const response = await page.goto(`${base}/api/me`);
  assert.equal(response.status(), 200, await response.text());
  assert.match(response.headers()['content-type'], /^application\/json/);
  return JSON.parse(await response.text());
}

function serverSuite(kind, start) {
  describe(`sign-in in Chromium through ${kind}`, () => {
    let srv;
    let browser;
    const base = bases[kind];
    before(async () => {
      srv = await start();
      assert.equal(srv.baseUrl, base);
    });
    after(async () => {
      await browser?.close();
      await srv?.stop();
    });

    const diag = (fn) => async () => {
      try {
        await fn();
      } catch (err) {
        err.message += `\n--- ${kind} logs ---\n${srv?.errorLog().slice(-4000)}\n--- idp ---\n${idp.stderr().slice(-2000)}`;
        throw err;
      }
    };

    test('alice signs in, sees her name, reads /api/me, signs out here and at the provider', diag(async () => {
      browser = await openBrowser();
      const { page } = browser;

      await page.goto(`${base}/`);
      assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0);

      await signInThroughPage(page, base, 'alice');
      await page.getByRole('heading', { name: 'Alice Liddell' }).waitFor();
      assert.equal((await page.locator('.email').textContent()).trim(), 'alice@example.com');
      // Alice has a picture: the avatar is that image (initials are for users without one).
      assert.equal(await page.locator('img.avatar').getAttribute('src'),
        'https://images.example.com/avatars/alice.png');
      assert.match(await page.locator('body').textContent(), /read:items/);
      if (kind === 'lighttpd') {
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.setViewportSize({ width: 1200, height: 900 });
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        // The README's copy is refreshed only on request, so a test run leaves the tree clean.
        if (!existsSync(DOCS_SCREENSHOT) || process.env.KFCGI_UPDATE_SCREENSHOT) {
          mkdirSync(path.dirname(DOCS_SCREENSHOT), { recursive: true });
          copyFileSync(SCREENSHOT, DOCS_SCREENSHOT);
        }
        assert.ok(statSync(SCREENSHOT).size > 10000, 'screenshot looks empty');
      }

      const me = await apiMe(page, base);
      assert.equal(me.type, 'user');
      assert.equal(me.user.full_name, 'Alice Liddell');
      assert.equal(me.user.initials, 'AL');
      assert.equal(me.user.email, 'alice@example.com');
      assert.match(me.user.id, /^kp_[0-9a-f]{32}$/);
      assert.ok(me.permissions.includes('write:items'), JSON.stringify(me));

      // The session cookie is scoped to the app's path and never readable by scripts.
      const cookies = await browser.context.cookies(base);
      const session = cookies.find((c) => c.name === 'kinde_fcgi_session');
      assert.ok(session, `no session cookie in ${JSON.stringify(cookies.map((c) => c.name))}`);
      assert.equal(session.httpOnly, true);
      assert.equal(session.path, kind === 'apache' ? '/app' : '/');

      await page.goto(`${base}/`);
      await Promise.all([
        page.waitForURL(`${base}/`, { waitUntil: 'load' }),
        page.getByRole('button', { name: 'Sign out' }).click(),
      ]);
      await page.getByRole('link', { name: 'Sign up' }).first().waitFor();
      assert.doesNotMatch(await page.locator('body').textContent(), /Alice Liddell/);
      assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0);

      // The API no longer knows her.
      const gone = await page.goto(`${base}/api/me`);
      assert.equal(gone.status(), 401);

      // Signed out at the provider too: signing in again asks for a user name.
      await page.goto(`${base}/login`);
      await page.locator('input[name="login"]').waitFor();
      assert.ok(page.url().startsWith(idp.issuer), `expected the provider's form, at ${page.url()}`);
    }));

    if (kind === 'lighttpd') {
      test('plato (no family name) gets the initial "P"', diag(async () => {
        await browser?.close();
        browser = await openBrowser();
        const { page } = browser;
        await signInThroughPage(page, base, 'plato');
        await page.getByRole('heading', { name: 'Plato' }).waitFor();
        assert.equal((await page.locator('.avatar-initials').textContent()).trim(), 'P');
        const me = await apiMe(page, base);
        assert.equal(me.user.full_name, 'Plato');
        assert.equal(me.user.initials, 'P');
      }));

      test('two tabs start signing in at once; each finishes with its own sign-in cookie', diag(async () => {
        await browser?.close();
        browser = await openBrowser();
        const first = browser.page;
        const second = await browser.context.newPage();
        // Both tabs reach the provider's form before either finishes.
        await first.goto(`${base}/login?next=%2Fitems%2F1`);
        await first.locator('input[name="login"]').waitFor();
        await second.goto(`${base}/login?next=%2Fitems%2F2`);
        await second.locator('input[name="login"]').waitFor();
        const pending = (await browser.context.cookies(base)).filter((c) => c.name.startsWith('kinde_fcgi_auth_'));
        assert.equal(pending.length, 2, `one sign-in cookie per tab: ${pending.map((c) => c.name)}`);
        assert.ok(pending.every((c) => c.httpOnly && c.sameSite === 'Lax'));
        // The second tab finishes first, then the first.
        for (const [page, login, item] of [[second, 'plato', 2], [first, 'alice', 1]]) {
          await page.locator('input[name="login"]').fill(login);
          await page.locator('input[name="password"]').fill('any password');
          await Promise.all([
            page.waitForURL(`${base}/items/${item}`),
            page.locator('form#idp-login button[type="submit"]').click(),
          ]);
          assert.deepEqual(JSON.parse(await page.locator('body').textContent()), { item_id: item, q: null });
        }
        const left = (await browser.context.cookies(base)).filter((c) => c.name.startsWith('kinde_fcgi_auth_'));
        assert.deepEqual(left.map((c) => c.name), [], 'both sign-in cookies spent');
        const me = await apiMe(first, base);
        assert.equal(me.user.full_name, 'Alice Liddell');
        await second.close();
      }));

      test('zoe gets non-ASCII initials and her name intact', diag(async () => {
        await browser?.close();
        browser = await openBrowser();
        const { page } = browser;
        await signInThroughPage(page, base, 'zoe');
        await page.getByRole('heading', { name: 'Zoë Łukasiewicz-Ørsted' }).waitFor();
        const me = await apiMe(page, base);
        assert.equal(me.user.full_name, 'Zoë Łukasiewicz-Ørsted');
        assert.equal(me.user.initials, 'ZŁ');
        assert.equal(me.org_code ?? me.org_codes?.[0], 'org_789');
      }));
    }
  });
}

serverSuite('lighttpd', () => startLighttpd({ port: ports.lighttpd, appEnv }));
serverSuite('apache', () => startApache({ port: ports.apache, prefix: '/app', appEnv }));
