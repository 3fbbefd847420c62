// kinde.fcgi behind Debian's nginx with auth_request, configured by the shipped
// etc/nginx.conf.example and etc/nginx/snippets/ (tests/lib/nginx.mjs): the app at /kinde/ under
// socket activation, PHP-FPM in the protected /private/ and /private/staff/ (write:items), and a
// proxied app at /reports/. A real sign-in through the local provider.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { signIn } from '../lib/idp-client.mjs';
import { startIdp } from '../lib/idp-process.mjs';
import { startNginxSite } from '../lib/nginx.mjs';
import { freePort } from '../lib/servers.mjs';

const HTML = 'text/html,application/xhtml+xml,*/*;q=0.8';
const port = await freePort();
let idp;
let site;

before(async () => {
  idp = await startIdp({ IDP_REDIRECT_URIS: `http://127.0.0.1:${port}/kinde/callback` });
  site = await startNginxSite({ issuer: idp.issuer, port });
});

after(async () => {
  await site?.stop();
  await idp?.stop();
});

async function get(url, { jar, headers = {}, method = 'GET' } = {}) {
  const h = { ...headers };
  const cookie = jar?.headerFor(url);
  if (cookie) h.cookie = cookie;
  const res = await fetch(url, { method, headers: h, redirect: 'manual' });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

const jars = new Map();
async function jarFor(login) {
  if (!jars.has(login)) {
    const done = await signIn(site.appBase, login, { path: 'login' });
    assert.equal(done.status, 200, `sign-in as ${login}: ${done.hops.join('\n')}\n${site.logs()}`);
    jars.set(login, done.jar);
  }
  return jars.get(login);
}

// What PHP saw, from tests/data/php/server.php.
async function php(pathAndQuery, opts) {
  const r = await get(`${site.origin}${pathAndQuery}`, opts);
  assert.equal(r.status, 200, `${pathAndQuery}: ${r.status} ${r.body.slice(0, 300)}\n${site.logs()}`);
  return JSON.parse(r.body);
}

describe('nginx auth_request: a protected PHP folder', () => {
  test('the app itself answers at /kinde/, and unprotected PHP runs without a session', async () => {
    const health = await get(`${site.appBase}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok');
    // The site's own PHP location (a regex) must not take a protected location's requests: ^~
    // on the protected locations sees to that (/reports/*.php below).
    const open = await php('/server.php');
    assert.equal(open.server.KINDE_EMAIL, undefined, 'outside the protected folders nothing is set');
    const forged = await php('/server.php', { headers: { 'X-Kinde-Email': 'mallory@example.com' } });
    assert.equal(forged.server.KINDE_EMAIL, undefined);
  });

  test('no session: a browser is sent to sign in and back to the page it asked for', async () => {
    const r = await get(`${site.origin}/private/server.php?x=1&y=2`, { headers: { accept: HTML } });
    assert.equal(r.status, 302, site.logs());
    assert.equal(r.headers.get('location'),
      `${site.appBase}/login?next=${encodeURIComponent('/private/server.php?x=1&y=2')}`);
    assert.doesNotMatch(r.body, /"server"/);
    // The whole way round: sign in from the protected page, land on it with the user shown.
    const done = await signIn(site.origin, 'plato', { path: '/private/whoami.php?x=1&y=2', navigate: true });
    assert.equal(done.status, 200, done.hops.join('\n'));
    assert.equal(done.finalUrl, `${site.origin}/private/whoami.php?x=1&y=2`);
    assert.match(done.body, /Signed in as <b>plato@example\.com<\/b>, with the permissions: read:items/);
  });

  test('no session: API clients, static files and other methods get 401 JSON, never the content', async () => {
    for (const [p, method] of [['/private/server.php', 'GET'], ['/private/index.html', 'GET'],
      ['/private/server.php', 'POST'], ['/private/staff/index.html', 'DELETE']]) {
      const r = await get(`${site.origin}${p}`, { method, headers: { accept: 'application/json' } });
      assert.equal(r.status, 401, `${method} ${p}: ${r.body}`);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
      assert.deepEqual(JSON.parse(r.body), { detail: 'Not authenticated' });
    }
  });

  test('signed in: PHP reads the user from $_SERVER', async () => {
    const jar = await jarFor('plato');
    const seen = await php('/private/server.php', { jar });
    assert.match(seen.server.KINDE_USER_ID, /^kp_[0-9a-f]{32}$/);
    assert.equal(seen.server.REMOTE_USER, seen.server.KINDE_USER_ID);
    assert.equal(seen.server.KINDE_EMAIL, 'plato@example.com');
    assert.equal(seen.server.KINDE_GIVEN_NAME, 'Plato');
    assert.equal(seen.server.KINDE_FAMILY_NAME, '');
    assert.equal(seen.server.KINDE_PERMISSIONS, 'read:items');
    assert.equal(seen.server.KINDE_ORG_CODE, 'org_123');
    assert.equal(seen.server.KINDE_ORG_CODES, 'org_123');
    assert.equal(seen.server.KINDE_ROLES, 'member');
    const page = await get(`${site.origin}/private/whoami.php`, { jar });
    assert.equal(page.status, 200);
    assert.match(page.body, /Signed in as <b>plato@example\.com<\/b>/);
    assert.match(page.headers.get('cache-control') ?? '', /no-store/);
    assert.equal([...page.headers.keys()].filter((k) => k.startsWith('x-kinde')).length, 0,
      'the user\'s details stay out of the response headers');
    const file = await get(`${site.origin}/private/index.html`, { jar });
    assert.equal(file.status, 200);
    assert.match(file.body, /Members only/);
    assert.match(file.headers.get('cache-control') ?? '', /private, no-store/);
  });

  test('forged headers and query parameters cannot set the user\'s values', async () => {
    const forged = {
      'X-Kinde-Email': 'mallory@example.com', 'X-Kinde-User-Id': 'kp_admin', 'X-Kinde-Permissions': 'write:items',
      KINDE_EMAIL: 'mallory@example.com', 'Kinde-Email': 'mallory@example.com', 'Remote-User': 'kp_admin',
      'Variable-KINDE_EMAIL': 'mallory@example.com',
    };
    const query = '?KINDE_EMAIL=mallory%40example.com&KINDE_PERMISSIONS=write:items&REMOTE_USER=kp_admin';
    const jar = await jarFor('plato');
    const seen = await php(`/private/server.php${query}`, { jar, headers: forged });
    assert.equal(seen.server.KINDE_EMAIL, 'plato@example.com');
    assert.equal(seen.server.KINDE_PERMISSIONS, 'read:items');
    assert.notEqual(seen.server.KINDE_USER_ID, 'kp_admin');
    assert.equal(seen.server.REMOTE_USER, seen.server.KINDE_USER_ID);
    for (const name of ['HTTP_X_KINDE_EMAIL', 'HTTP_X_KINDE_USER_ID', 'HTTP_X_KINDE_PERMISSIONS']) {
      assert.equal(seen.server[name], undefined, `${name}: the visitor's header is not passed to PHP`);
    }
    assert.equal(seen.get.KINDE_EMAIL, 'mallory@example.com', 'a query parameter stays in $_GET');
    // Only as HTTP_* (Kinde-Email, Remote-User: not our names) and in the query itself.
    for (const [name, value] of Object.entries(seen.server)) {
      if (name.startsWith('HTTP_') || name === 'QUERY_STRING' || name === 'REQUEST_URI') continue;
      assert.doesNotMatch(String(value), /mallory|kp_admin|write:items/, name);
    }
    assert.equal(seen.server.HTTP_KINDE_EMAIL, 'mallory@example.com');
    // Without a session the same request gets nowhere.
    const anon = await get(`${site.origin}/private/server.php${query}`, { headers: forged });
    assert.equal(anon.status, 401);
    assert.doesNotMatch(anon.body, /mallory/);
  });

  test('a rule that fails gives the 403 page; a user who meets it gets in', async () => {
    const plato = await jarFor('plato');
    for (const p of ['/private/staff/index.html', '/private/staff/server.php']) {
      const denied = await get(`${site.origin}${p}`, { jar: plato, headers: { accept: HTML } });
      assert.equal(denied.status, 403, `${p}\n${site.logs()}`);
      assert.match(denied.headers.get('content-type') ?? '', /text\/html/);
      assert.match(denied.body, /write:items/);
      assert.match(denied.body, /plato@example\.com/);
      assert.doesNotMatch(denied.body, /Staff only|"server"/);
    }
    const api = await get(`${site.origin}/private/staff/server.php`, { jar: plato, headers: { accept: 'application/json' } });
    assert.equal(api.status, 403);
    assert.match(JSON.parse(api.body).detail, /write:items/);

    const alice = await jarFor('alice');
    const ok = await php('/private/staff/server.php', { jar: alice });
    assert.equal(ok.server.KINDE_EMAIL, 'alice@example.com');
    assert.equal(ok.server.KINDE_PERMISSIONS, 'read:items write:items');
    const file = await get(`${site.origin}/private/staff/index.html`, { jar: alice });
    assert.equal(file.status, 200);
    assert.match(file.body, /Staff only/);
  });

  test('a proxied app gets the user as X-Kinde-* headers, never the visitor\'s', async () => {
    const jar = await jarFor('alice');
    const forged = { 'X-Kinde-Email': 'mallory@example.com', 'X-Kinde-Roles': 'admin superuser' };
    const r = await get(`${site.origin}/reports/q?x=1`, { jar, headers: forged });
    assert.equal(r.status, 200, site.logs());
    const { url, headers } = JSON.parse(r.body);
    assert.equal(url, '/reports/q?x=1');
    assert.equal(headers['x-kinde-email'], 'alice@example.com');
    assert.equal(headers['x-kinde-given-name'], 'Alice');
    assert.equal(headers['x-kinde-family-name'], 'Liddell');
    assert.equal(headers['x-kinde-roles'], 'admin');
    assert.equal(headers['x-kinde-org-codes'], 'org_123 org_456');
    // A value the user does not have is removed, not left as the visitor sent it.
    const plato = await jarFor('plato');
    const p = JSON.parse((await get(`${site.origin}/reports/`, { jar: plato, headers: { 'X-Kinde-Family-Name': 'Forged' } })).body);
    assert.equal(p.headers['x-kinde-family-name'], undefined);
    assert.equal(p.headers['x-kinde-email'], 'plato@example.com');
    const anon = await get(`${site.origin}/reports/`, { headers: { accept: HTML, ...forged } });
    assert.equal(anon.status, 302);
    // Not even a name the site's PHP location would match gets past the check.
    const php = await get(`${site.origin}/reports/server.php`, { headers: { accept: 'application/json' } });
    assert.equal(php.status, 401);
  });

  test('the auth location is not reachable from outside', async () => {
    const jar = await jarFor('plato');
    for (const p of ['/_kinde/auth', '/_kinde/auth/staff']) {
      const r = await get(`${site.origin}${p}`, { jar });
      assert.equal(r.status, 404, p);
      assert.equal(r.headers.get('x-kinde-email'), null);
    }
  });
});
