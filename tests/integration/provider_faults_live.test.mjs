// Provider faults through the real app under lighttpd (FastCGI, not CGI): a refused connection, a
// provider that accepts and never answers, slow answers, a 500, an HTML page instead of JSON, and a
// JWKS rotated in the middle of a session. Each gives a clear page within the configured timeout,
// and a signed-in user stays signed in while the provider is down, as long as the tokens are valid.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startLighttpd, freePort } from '../lib/servers.mjs';
import { startFakeIdp } from '../lib/fakeidp.mjs';
import { CookieJar, request } from '../lib/idp-client.mjs';

const CLIENT_ID = 'live-faults-client-5e2a';
const CLIENT_SECRET = 'SECRET-live-faults-0d9c8b7a6f5e4d3c';
const TIMEOUT_MS = 1500;  // KINDE_HTTP_TIMEOUT_MS for every app here
const SLACK_MS = 2500;    // what a loaded 2-core machine may add on top of it
const NEAR_EXPIRY = 30;   // seconds: inside the app's 60 s refresh margin

const settings = (issuer) => ({
  KINDE_ISSUER_URL: issuer, KINDE_CLIENT_ID: CLIENT_ID, KINDE_CLIENT_SECRET: CLIENT_SECRET,
  KINDE_HTTP_TIMEOUT_MS: String(TIMEOUT_MS), KINDE_HTTP_CONNECT_TIMEOUT_MS: '1000', KINDE_LOG_LEVEL: 'info',
  // Retry a failed refresh on the next request: the tests decide when the provider is back.
  KINDE_REFRESH_RETRY_SECONDS: '1',
});

let fake;
let live;        // lighttpd in front of the fake provider
let refused;     // lighttpd whose provider port refuses connections
let blackhole;   // lighttpd whose provider accepts and never answers
let silent;      // the never-answering TCP server
const held = new Set();

before(async () => {
  fake = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  silent = net.createServer((sock) => { held.add(sock); sock.on('error', () => {}); sock.on('close', () => held.delete(sock)); });
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const closedPort = await freePort();  // free a moment ago, and nobody listens on it
  [live, refused, blackhole] = await Promise.all([
    startLighttpd({ procs: 1, appEnv: settings(fake.issuer) }),
    startLighttpd({ procs: 1, appEnv: settings(`http://127.0.0.1:${closedPort}`) }),
    startLighttpd({ procs: 1, appEnv: settings(`http://127.0.0.1:${silent.address().port}`) }),
  ]);
});

after(async () => {
  await Promise.all([live, refused, blackhole].map((s) => s?.stop()));
  for (const s of held) s.destroy();
  await new Promise((r) => (silent ? silent.close(r) : r()));
  await fake?.stop();
});

beforeEach(() => {
  fake.resetMode();
  delete fake.token;  // undo a per-test override of the token endpoint (the class method is back)
});

async function timed(fn) {
  const t0 = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - t0 };
}

async function get(base, route, jar = new CookieJar(), headers = {}) {
  const res = await request(`${base}${route}`, jar, { headers });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

// A clear page: the app's own HTML error page with a heading and a way back.
function assertClearPage(res, status, title) {
  assert.equal(res.status, status, `${res.status}: ${res.body.slice(0, 300)}`);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(res.body, title);
  assert.doesNotMatch(res.body, new RegExp(CLIENT_SECRET));
}

// /login -> the fake's authorize endpoint -> the callback URL it sends the browser to.
async function toCallback(jar = new CookieJar()) {
  const login = await request(`${live.baseUrl}/login`, jar);
  await login.arrayBuffer();
  assert.equal(login.status, 302, 'login redirects to the provider');
  const auth = await fetch(login.headers.get('location'), { redirect: 'manual' });
  const callback = auth.headers.get('location');
  assert.ok(callback?.startsWith(`${live.baseUrl}/callback?`), `callback URL: ${callback}`);
  return { jar, callback };
}

async function signIn({ expiresIn = 3600 } = {}) {
  fake.setMode({ expiresIn, refreshExpiresIn: expiresIn });
  const { jar, callback } = await toCallback();
  const res = await request(callback, jar);
  await res.arrayBuffer();
  assert.equal(res.status, 303, 'callback signs in');
  fake.resetMode();
  return jar;
}

async function assertSignedIn(jar, what) {
  const home = await get(live.baseUrl, '/', jar);
  assert.equal(home.status, 200, `${what}: home ${home.status}`);
  assert.match(home.body, /Sign out/, `${what}: home shows the signed-in view`);
  assert.match(home.body, /Ada/, `${what}: the user's name`);
  const me = await get(live.baseUrl, '/api/me', jar);
  assert.equal(me.status, 200, `${what}: /api/me ${me.status} ${me.body.slice(0, 200)}`);
}

test('connection refused: /login answers 503 with a clear page at once', async () => {
  const { value: res, ms } = await timed(() => get(refused.baseUrl, '/login'));
  assertClearPage(res, 503, /Sign-in is unavailable/);
  assert.ok(ms < TIMEOUT_MS + SLACK_MS, `took ${ms} ms`);
  // The rest of the site still works without a provider.
  const home = await get(refused.baseUrl, '/');
  assert.equal(home.status, 200);
  assert.equal((await get(refused.baseUrl, '/api/me')).status, 401);
});

test('a provider that accepts and never answers: 503 within the configured timeout', async () => {
  const { value: res, ms } = await timed(() => get(blackhole.baseUrl, '/login'));
  assertClearPage(res, 503, /Sign-in is unavailable/);
  assert.ok(held.size > 0 || ms >= TIMEOUT_MS - 200, 'the app did connect and wait');
  assert.ok(ms < TIMEOUT_MS + SLACK_MS, `took ${ms} ms, timeout ${TIMEOUT_MS} ms`);
});

test('a slow token endpoint inside the timeout still signs in', async () => {
  const { jar, callback } = await toCallback();
  fake.setMode({ tokenDelayMs: Math.floor(TIMEOUT_MS / 3) });
  const res = await request(callback, jar);
  await res.arrayBuffer();
  assert.equal(res.status, 303);
  await assertSignedIn(jar, 'after a slow exchange');
});

for (const [what, mode, status, title] of [
  ['slower than the timeout', { tokenDelayMs: TIMEOUT_MS + 2500 }, 503, /Sign-in is unavailable/],
  ['a hanging token endpoint', { token: 'hang' }, 503, /Sign-in is unavailable/],
  ['a 500 from the token endpoint', { token: 'http_500' }, 503, /Sign-in is unavailable/],
  ['an HTML page instead of JSON', { token: 'html' }, 503, /Sign-in is unavailable|Sign-in failed/],
  ['truncated JSON', { token: 'invalid_json' }, 503, /Sign-in is unavailable|Sign-in failed/],
]) {
  test(`callback with ${what}: a clear page within the timeout, no session`, async () => {
    const { jar, callback } = await toCallback();
    fake.setMode(mode);
    const { value: res, ms } = await timed(() => get(live.baseUrl, callback.slice(live.baseUrl.length), jar));
    assertClearPage(res, status, title);
    assert.ok(ms < TIMEOUT_MS + SLACK_MS, `took ${ms} ms`);
    assert.ok(!(res.headers.getSetCookie?.() ?? []).some((c) => /^kinde_fcgi_session=[^;]+/.test(c) && !/Max-Age=0/i.test(c)),
      'no session cookie');
    fake.resetMode();
    assert.equal((await get(live.baseUrl, '/api/me', jar)).status, 401, 'not signed in');
  });
}

test('signed in with valid tokens: still signed in while the provider is down in every way', async () => {
  const jar = await signIn();
  await assertSignedIn(jar, 'before');
  for (const mode of [{ discovery: 'http_500', jwks: 'http_500', token: 'http_500' },
    { discovery: 'hang', jwks: 'hang', token: 'hang' }]) {
    fake.setMode(mode);
    const { ms } = await timed(() => assertSignedIn(jar, JSON.stringify(mode)));
    assert.ok(ms < TIMEOUT_MS, `no provider call for a valid session (${ms} ms)`);
  }
});

test('a refresh due while the provider fails keeps the session until the provider is back', async () => {
  const jar = await signIn({ expiresIn: NEAR_EXPIRY });
  for (const mode of [{ token: 'http_500' }, { token: 'html' }, { token: 'hang' }]) {
    const before = fake.grantsOf('refresh_token').length;
    fake.setMode(mode);
    const { ms } = await timed(() => assertSignedIn(jar, `refresh against ${JSON.stringify(mode)}`));
    assert.ok(fake.grantsOf('refresh_token').length > before, 'a refresh was attempted');
    assert.ok(ms < 2 * (TIMEOUT_MS + SLACK_MS), `took ${ms} ms`);
    fake.resetMode();
    await new Promise((r) => setTimeout(r, 1100));  // past KINDE_REFRESH_RETRY_SECONDS
  }
  const before = fake.grantsOf('refresh_token').length;
  fake.setMode({ expiresIn: 3600, refreshExpiresIn: 3600 });
  await assertSignedIn(jar, 'provider back');
  assert.ok(fake.grantsOf('refresh_token').length > before, 'refreshed once the provider answered');
});

test('a 5xx with a JSON error body during a refresh is an outage, not a refusal: still signed in', async () => {
  const jar = await signIn({ expiresIn: NEAR_EXPIRY });
  // oidc-provider and others answer internal errors as 500 {"error":"server_error"}, and RFC 6749
  // names temporarily_unavailable for 503: neither says the refresh token is bad.
  const original = Object.getPrototypeOf(fake).token;
  let served = 0;
  for (const [status, error] of [[500, 'server_error'], [503, 'temporarily_unavailable']]) {
    fake.token = async (req, body, res, json) => {
      if (new URLSearchParams(body).get('grant_type') !== 'refresh_token') return original.call(fake, req, body, res, json);
      served += 1;
      return json(status, { error, error_description: 'fakeidp is having a bad day' });
    };
    await assertSignedIn(jar, `refresh answered ${status} ${error}`);
    await new Promise((r) => setTimeout(r, 1100));
  }
  assert.ok(served >= 2, `the refresh grant met the failing endpoint (${served})`);
});

test('JWKS rotated mid-session: the refreshed ID token under a new key keeps the user signed in', async () => {
  const jar = await signIn({ expiresIn: NEAR_EXPIRY });
  const jwksBefore = fake.countRequests('/.well-known/jwks');
  const oldKid = fake.keys[0].kid;
  fake.setMode({ idToken: 'rotated_kid', expiresIn: 3600, refreshExpiresIn: 3600 });
  assert.notEqual(fake.keys[0].kid, oldKid, 'the fake rotated its signing key');
  const grants = fake.grantsOf('refresh_token').length;
  await assertSignedIn(jar, 'after the rotation');
  assert.equal(fake.grantsOf('refresh_token').length, grants + 1, 'one refresh under the new key');
  assert.ok(fake.countRequests('/.well-known/jwks') > jwksBefore, 'the app fetched the rotated JWKS');
  // And a fresh sign-in under the new key works too.
  await assertSignedIn(await signIn(), 'new sign-in after the rotation');
});
