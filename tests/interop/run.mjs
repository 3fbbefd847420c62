// make interop: the app against real OpenID providers nobody here wrote, each a private instance
// under build/interop/ (glewlwyd.mjs, lemonldap.mjs), with build/kinde.fcgi behind lighttpd
// (tests/lib/servers.mjs) and the browser flow of the e2e tests in Debian's Chromium: sign in at the
// provider's own login page, /api/me, /items/7, a bearer call with a client_credentials token,
// two refreshes (the provider gives 70 s access tokens, the app refreshes 60 s before expiry),
// sign out, sign back in. Every step runs and is reported; a failed step says why, with the app's
// log lines. Prints one table (provider x step) and exits non-zero if any step failed.
// INTEROP_PROVIDERS=glewlwyd,lemonldap picks providers; results also go to build/interop/results.json
// (with the last INTEROP_PROVIDER_LOG_LINES lines of each provider's log, default 200).

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { launchBrowser } from '../lib/browser.mjs';
import { binary, projectRoot } from '../lib/cgi.mjs';
import { freePort, startLighttpd } from '../lib/servers.mjs';
import * as glewlwyd from './glewlwyd.mjs';
import * as lemonldap from './lemonldap.mjs';
import { sleep } from './proc.mjs';

const OUT = path.join(projectRoot, 'build/interop');
const ACCESS_TOKEN_SECONDS = 70;  // just above the app's 60 s refresh margin
const REFRESH_MARGIN = 60;
const CLIENT = { id: 'kinde-fcgi-interop', secret: 'interop-Secret-5f3c9a1e7b2d4c68' };
// The app's configuration for a standard provider: the standard scope for a refresh token.
const SCOPES = 'openid profile email offline_access';

const STEPS = ['setup', 'check-config', 'sign-in', 'api-me', 'items', 'bearer', 'refresh-1', 'refresh-2',
  'sign-out', 'sign-in-again'];

// lemonldap keeps LemonLDAP's default issuer, the portal URL, which ends in "/".
const PROVIDERS = {
  glewlwyd: { setUp: glewlwyd.setUp, login: glewlwydLogin },
  lemonldap: { setUp: lemonldap.setUp, login: lemonldapLogin, logout: lemonldapLogout },
};

class StepError extends Error {}
const fail = (msg) => { throw new StepError(msg); };

// ---- the providers' own pages ------------------------------------------------------------------

// glewlwyd's login app: user name and password on one form, then (first time only) a page to grant
// the client its scopes ("Grant access"), then "Continue" back to the client.
async function glewlwydLogin(page, user, base) {
  let granted = false;
  for (let round = 0; round < 8; round++) {
    if (page.url().startsWith(base)) return;
    const password = page.locator('#password');
    const grant = page.getByRole('button', { name: 'Grant access' });
    const next = page.getByRole('button', { name: 'Continue' });
    await Promise.race([password.waitFor({ timeout: 10000 }), next.waitFor({ timeout: 10000 }),
      page.waitForURL((u) => u.href.startsWith(base), { timeout: 10000 })]).catch(() => {});
    if (page.url().startsWith(base)) return;
    if (await password.isVisible().catch(() => false)) {
      await page.locator('#username').fill(user.login);
      await password.fill(user.password);
      await password.press('Enter');
    } else if (!granted && await grant.isVisible().catch(() => false)) {
      await grant.click();
      granted = true;
    } else if (await next.isVisible().catch(() => false)) {
      await next.click();
    }
    await page.waitForLoadState('load').catch(() => {});
    await sleep(500);
  }
  if (!page.url().startsWith(base)) fail(`still at the provider after logging in: ${page.url()}`);
}

// LemonLDAP::NG's portal: a login form (user, password), then a consent page for an RP that does not
// bypass it (ours does, see lemonldap.mjs; accepted here should one appear).
async function lemonldapLogin(page, user, base) {
  for (let round = 0; round < 6; round++) {
    if (page.url().startsWith(base)) return;
    const userField = page.locator('input[name="user"]');
    const accept = page.locator('button, input[type="submit"]', { hasText: /accept/i });
    await Promise.race([userField.waitFor({ timeout: 10000 }), accept.first().waitFor({ timeout: 10000 }),
      page.waitForURL((u) => u.href.startsWith(base), { timeout: 10000 })]).catch(() => {});
    if (page.url().startsWith(base)) return;
    if (await userField.isVisible().catch(() => false)) {
      await userField.fill(user.login);
      await page.locator('input[name="password"]').fill(user.password);
      await page.locator('input[name="password"]').press('Enter');
    } else if (await accept.first().isVisible().catch(() => false)) {
      await accept.first().click();
    }
    await page.waitForLoadState('load').catch(() => {});
    await sleep(300);
  }
  if (!page.url().startsWith(base)) fail(`still at the provider after logging in: ${page.url()}`);
}

// LemonLDAP::NG asks the user to confirm an RP-initiated logout (its default): press the positive
// button, as a user would.
async function lemonldapLogout(page, base) {
  const confirm = page.locator('button.positive[type="submit"]');
  await confirm.waitFor({ timeout: 10000 }).catch(() => {});
  if (!page.url().startsWith(base) && await confirm.isVisible().catch(() => false)) await confirm.click();
}

// ---- helpers -----------------------------------------------------------------------------------

// A browser whose only network is loopback.
async function openBrowser() {
  const browser = await launchBrowser({ timeoutMs: 20000 });
  await browser.context.route((url) => url.hostname !== '127.0.0.1', (route) => route.abort('blockedbyclient'));
  return browser;
}

async function pageText(page) {
  return (await page.locator('body').innerText().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 300);
}

async function getJson(page, url) {
  const res = await page.goto(url);
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status(), text: text.slice(0, 400), json };
}

async function signedIn(page) {
  return (await page.getByRole('button', { name: 'Sign out' }).count()) > 0;
}

// From the app's home page through the provider's login back to the app.
async function signIn(page, base, provider, user) {
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Sign in' }).first().click();
  await page.waitForURL((u) => !u.href.startsWith(base) || u.pathname !== '/', { timeout: 15000 }).catch(() => {});
  let sawForm = false;
  if (!page.url().startsWith(base)) {
    sawForm = true;
    await provider.login(page, user, base);
  }
  await page.waitForLoadState('load');
  if (!page.url().startsWith(`${base}/`)) fail(`ended at ${page.url()}: ${await pageText(page)}`);
  if (!(await signedIn(page))) fail(`back at ${page.url()} but not signed in: ${await pageText(page)}`);
  return sawForm;
}

async function discovery(issuer) {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  return (await fetch(url)).json();
}

async function clientCredentials(issuer) {
  const d = await discovery(issuer);
  const basic = Buffer.from(`${encodeURIComponent(CLIENT.id)}:${encodeURIComponent(CLIENT.secret)}`).toString('base64');
  const res = await fetch(d.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    // glewlwyd answers 403 to a client_credentials request without a scope (RFC 6749 4.4.2 makes it
    // optional); openid is a scope every provider here knows.
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'openid' }),
  });
  const text = await res.text();
  let json = {};
  try { json = JSON.parse(text); } catch { /* reported below */ }
  if (!res.ok || typeof json.access_token !== 'string') {
    fail(`the provider refused client_credentials: HTTP ${res.status} ${text.slice(0, 200)}`);
  }
  return json.access_token;
}

function kind(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return 'opaque';
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
    return `JWT ${header.alg}${header.typ ? ` typ ${header.typ}` : ''}`;
  } catch {
    return 'opaque';
  }
}

// ---- one provider ------------------------------------------------------------------------------

async function runProvider(name, def) {
  const results = Object.fromEntries(STEPS.map((s) => [s, { status: 'FAIL', reason: 'not run: an earlier step it needs failed' }]));
  const info = { name };
  let provider;
  let srv;
  let browser;
  const appLog = () => (srv ? srv.errorLog() : '');
  // The app's log lines ("kinde-fcgi[pid]: level: text"), wherever lighttpd put them (its error log
  // prefixes FastCGI stderr with a timestamp and "FastCGI-stderr:").
  const appLines = (from = 0) => appLog().split('\n').map((l) => /kinde-fcgi\[\d+\]: (.*)$/.exec(l)?.[1])
    .filter((l) => l && !l.startsWith('debug: page')).slice(from);
  const refreshCount = () => appLog().split('\n').filter((l) => l.includes('tokens refreshed for a session')).length;

  async function step(id, fn) {
    const mark = appLines().length;
    const t0 = Date.now();
    try {
      const note = await fn();
      results[id] = { status: 'PASS', reason: note || '' };
    } catch (err) {
      const reason = err instanceof StepError ? err.message : `${err.message.split('\n')[0]}`;
      results[id] = { status: 'FAIL', reason };
      if (browser) {
        mkdirSync(path.join(OUT, 'artifacts'), { recursive: true });
        await browser.page.screenshot({ path: path.join(OUT, 'artifacts', `${name}-${id}.png`) }).catch(() => {});
      }
    }
    results[id].seconds = Math.round((Date.now() - t0) / 100) / 10;
    results[id].log = appLines(mark).slice(-12);
    const r = results[id];
    console.log(`${name} ${id}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`);
    if (r.status === 'FAIL') for (const l of r.log) console.log(`    app: ${l}`);
    return r.status === 'PASS';
  }

  const providerPort = await freePort();
  const appPort = await freePort();
  const base = `http://127.0.0.1:${appPort}`;
  try {
    const ok = await step('setup', async () => {
      provider = await def.setUp({
        dir: path.join(OUT, name), port: providerPort,
        app: { redirectUri: `${base}/callback`, postLogoutUri: `${base}/` },
        client: CLIENT, accessTokenSeconds: ACCESS_TOKEN_SECONDS,
      });
      info.version = provider.version;
      info.issuer = provider.issuer;
      info.settings = provider.settings;
      srv = await startLighttpd({
        port: appPort,
        appEnv: {
          KINDE_ISSUER_URL: provider.issuer,
          KINDE_CLIENT_ID: CLIENT.id,
          KINDE_CLIENT_SECRET: CLIENT.secret,
          KINDE_LOGOUT_URL: `${base}/`,
          KINDE_SCOPES: SCOPES,
          KINDE_LOG_LEVEL: 'debug',
        },
      });
      browser = await openBrowser();
      return `${name} ${provider.version}, issuer ${provider.issuer}`;
    });
    if (!ok) return { info, results };
    const { page } = browser;
    const user = provider.user;

    await step('check-config', async () => {
      try {
        const out = execFileSync(binary, ['--check-config'], {
          env: { ...process.env, KINDE_CONFIG: path.join(srv.runDir, 'kinde.conf') }, encoding: 'utf8',
        });
        return out.split('\n').filter((l) => /scope|issuer/i.test(l)).join('; ').slice(0, 200);
      } catch (err) {
        fail(`exit ${err.status}: ${`${err.stdout}`.split('\n').filter((l) => /FAIL/.test(l)).join('; ').slice(0, 300)}`);
      }
    });

    let lastTokens = 0;
    const signedInOk = await step('sign-in', async () => {
      await signIn(page, base, def, user);
      lastTokens = Date.now();
      return `as ${user.login} at the provider's login page`;
    });

    await step('api-me', async () => {
      if (!signedInOk) fail('not signed in');
      const me = await getJson(page, `${base}/api/me`);
      if (me.status !== 200) fail(`HTTP ${me.status}: ${me.text}`);
      const u = me.json.user ?? {};
      const problems = [];
      if (me.json.type !== 'user') problems.push(`type ${me.json.type}`);
      if (u.full_name !== user.name) problems.push(`full_name ${JSON.stringify(u.full_name)}, expected ${JSON.stringify(user.name)}`);
      if (u.email !== user.email) problems.push(`email ${JSON.stringify(u.email)}, expected ${JSON.stringify(user.email)}`);
      if (!u.id) problems.push('no user id');
      await page.goto(`${base}/`);
      const shown = await pageText(page);
      if (!shown.includes(user.name)) problems.push(`home page does not show "${user.name}"`);
      if (problems.length) fail(problems.join('; '));
      return `id ${u.id}`;
    });

    await step('items', async () => {
      if (!signedInOk) fail('not signed in');
      const r = await getJson(page, `${base}/items/7?q=interop`);
      if (r.status !== 200 || r.json?.item_id !== 7 || r.json?.q !== 'interop') fail(`HTTP ${r.status}: ${r.text}`);
    });

    await step('bearer', async () => {
      const token = await clientCredentials(provider.issuer);
      const auth = { authorization: `Bearer ${token}` };
      const items = await fetch(`${base}/items/7`, { headers: auth });
      const itemsText = await items.text();
      const problems = [];
      if (items.status !== 200) problems.push(`/items/7 with a ${kind(token)} access token: HTTP ${items.status} ${itemsText.slice(0, 120)}`);
      const me = await fetch(`${base}/api/me`, { headers: auth });
      const meText = await me.text();
      if (me.status !== 200) {
        problems.push(`/api/me: HTTP ${me.status}`);
      } else {
        const j = JSON.parse(meText);
        if (j.type !== 'machine' || j.client_id !== CLIENT.id) {
          problems.push(`/api/me says type ${j.type}, client_id ${JSON.stringify(j.client_id)} (expected ${CLIENT.id})`);
        }
      }
      if (problems.length) fail(problems.join('; '));
      return `${kind(token)} token`;
    });

    // The app refreshes when a request comes within 60 s of the access token's expiry.
    for (const id of ['refresh-1', 'refresh-2']) {
      await step(id, async () => {
        if (!signedInOk) fail('not signed in');
        const due = lastTokens + (ACCESS_TOKEN_SECONDS - REFRESH_MARGIN + 2) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
        const before = refreshCount();
        const me = await getJson(page, `${base}/api/me`);
        if (me.status !== 200) fail(`/api/me after the access token's refresh point: HTTP ${me.status} ${me.text}`);
        if (refreshCount() !== before + 1) {
          fail(`no refresh happened (${refreshCount() - before} "tokens refreshed" lines); still signed in: the session carries on with an expiring access token`);
        }
        lastTokens = Date.now();
      });
    }

    await step('sign-out', async () => {
      if (!signedInOk) fail('not signed in');
      await page.goto(`${base}/`);
      if (!(await signedIn(page))) fail('not signed in before signing out');
      // The state of the app's end-session request, if it went to the provider: RP-Initiated Logout 1.0
      // section 3 has the provider return it on the post-logout redirect, so the browser may land on
      // KINDE_LOGOUT_URL with that state and nothing else.
      let sentState = null;
      const watch = (r) => {
        const u = new URL(r.url());
        if (r.isNavigationRequest() && u.origin !== new URL(base).origin && u.searchParams.has('post_logout_redirect_uri')) {
          sentState = u.searchParams.get('state');
        }
      };
      const atHome = (u) => u.origin === new URL(base).origin && u.pathname === '/';
      page.on('request', watch);
      try {
        await page.getByRole('button', { name: 'Sign out' }).click();
        await page.waitForURL(atHome, { timeout: 10000 }).catch(() => {});
        if (!page.url().startsWith(base) && def.logout) {
          await def.logout(page, base);
          await page.waitForURL(atHome, { timeout: 10000 }).catch(() => {});
        }
        await page.waitForLoadState('load');
      } finally {
        page.off('request', watch);
      }
      const problems = [];
      const landed = new URL(page.url());
      const extra = [...landed.searchParams.keys()].filter((k) => k !== 'state');
      const stateBack = landed.searchParams.get('state');
      if (!atHome(landed) || extra.length || landed.hash) {
        problems.push(`landed on ${page.url()} (${await pageText(page)})`);
      } else if (sentState === null ? stateBack !== null : stateBack !== sentState) {
        problems.push(`landed on ${page.url()}: the state that came back is not the one the app sent (${sentState})`);
      }
      const me = await fetch(`${base}/api/me`, {
        headers: { cookie: (await browser.context.cookies(base)).map((c) => `${c.name}=${c.value}`).join('; ') },
      });
      if (me.status !== 401) problems.push(`/api/me still ${me.status}`);
      // A provider with an end_session_endpoint signed the user out too: a new sign-in shows its login
      // form. Without one (glewlwyd's default) only the app's session can end, and the app says so.
      const rpLogout = Boolean((await discovery(provider.issuer)).end_session_endpoint);
      if (rpLogout) {
        await page.goto(`${base}/login`);
        await page.waitForLoadState('load');
        if (page.url().startsWith(`${base}/`)) problems.push('the provider signed the user in again without asking (its session was not ended)');
      } else if (!appLines().some((l) => l.includes('lists no end_session_endpoint'))) {
        problems.push('no end_session_endpoint, yet the app did not say that only its own session ended');
      }
      if (problems.length) fail(problems.join('; '));
      if (!rpLogout) return 'the provider lists no end_session_endpoint: the app\'s session ended';
      return `signed out at the provider too, back at ${landed.pathname}${stateBack === null ? '' : ' with the state the app sent'}`;
    });

    await step('sign-in-again', async () => {
      await page.goto(`${base}/`);
      let note = '';
      if (await signedIn(page)) {
        // The sign-out step's check signed in again at once (the provider kept its session): drop
        // the app's session cookie so this step still starts signed out.
        await browser.context.clearCookies({ name: 'kinde_fcgi_session' });
        await page.goto(`${base}/`);
        if (await signedIn(page)) fail('still signed in from before');
        note = ' (app session cookie cleared first)';
      }
      const sawForm = await signIn(page, base, def, user);
      const me = await getJson(page, `${base}/api/me`);
      if (me.status !== 200) fail(`/api/me HTTP ${me.status}`);
      return (sawForm ? 'through the provider\'s pages' : 'straight back, without the provider\'s pages') + note;
    });
  } finally {
    info.appLog = appLines().slice(-200);
    info.providerLog = provider ? provider.proc.output().split('\n').slice(-(Number(process.env.INTEROP_PROVIDER_LOG_LINES) || 200)) : [];
    await browser?.close().catch(() => {});
    await srv?.stop().catch(() => {});
    await provider?.stop().catch(() => {});
  }
  return { info, results };
}

// ---- main --------------------------------------------------------------------------------------

const chosen = (process.env.INTEROP_PROVIDERS || Object.keys(PROVIDERS).join(',')).split(',').filter(Boolean);
mkdirSync(OUT, { recursive: true });
const runs = {};
const started = Date.now();
for (const name of chosen) {
  if (!PROVIDERS[name]) throw new Error(`unknown provider ${name} (known: ${Object.keys(PROVIDERS).join(', ')})`);
  console.log(`== ${name}`);
  runs[name] = await runProvider(name, PROVIDERS[name]);
}

const width = Math.max(...STEPS.map((s) => s.length));
console.log(`\n${'step'.padEnd(width)}  ${chosen.map((n) => n.padEnd(17)).join('  ')}`);
for (const s of STEPS) console.log(`${s.padEnd(width)}  ${chosen.map((n) => runs[n].results[s].status.padEnd(17)).join('  ')}`);
let failed = 0;
console.log('');
for (const n of chosen) {
  for (const s of STEPS) {
    const r = runs[n].results[s];
    if (r.status !== 'PASS') {
      failed++;
      console.log(`${n} ${s}: ${r.reason}`);
    }
  }
}
const date = new Date().toISOString().slice(0, 10);
writeFileSync(path.join(OUT, 'results.json'), JSON.stringify({ date, seconds: Math.round((Date.now() - started) / 1000), runs }, null, 1));
console.log(`\ninterop ${date}: ${chosen.length * STEPS.length - failed} passed, ${failed} failed (${Math.round((Date.now() - started) / 1000)} s; details in build/interop/results.json)`);
process.exit(failed ? 1 : 0);
