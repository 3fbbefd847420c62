// Sign-in protocol under attack and failure: build/kinde.fcgi (plain CGI) against the fault-injecting fake
// provider. Every refused sign-in must give the right status, an error page, no session cookie, no new
// session file, and a log line naming the error code.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { startFakeIdp } from '../lib/fakeidp.mjs';
import {
  makeApp, beginLogin, authorize, signIn, withSession, setCookie, cookieValue, isExpiredCookie, responseText,
  signinCookies, SESSION_COOKIE, SIGNIN_FAMILY, CALLBACK_URL,
} from '../fakeidp/harness.mjs';

const CLIENT_ID = 'faults-client-7f3a';
const CLIENT_SECRET = 'SECRET-never-shown-9c1d2e3f4a5b6c7d8e9f';

let fake;
let app;
const apps = [];

function newApp(issuer = fake.issuer, config = {}) {
  const a = makeApp({ issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, config });
  apps.push(a);
  return a;
}

before(async () => {
  fake = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  app = newApp();
});

after(async () => {
  for (const a of apps) a.cleanup();
  await fake.stop();
});

beforeEach(() => fake.resetMode());

// A callback that must be refused: status, error page, no session, no new file, log names the code.
async function assertRefused({ res, before: filesBefore, target = app }, { status, code, text }) {
  assert.equal(res.status, status, `status; body: ${res.body.slice(0, 300)}\nlog: ${res.stderr}`);
  assert.match(res.headers['content-type'] || '', /text\/html/);
  assert.match(res.body, /<html|<!doctype/i);
  if (text) assert.match(res.body, text);
  const sc = setCookie(res, SESSION_COOKIE);
  assert.ok(sc === undefined || isExpiredCookie(sc), `no session cookie may be set, got ${sc}`);
  assert.equal(target.countSessions(), filesBefore, 'no new session file');
  if (code) assert.ok(res.stderr.includes(code), `log names ${code}; log was: ${res.stderr}`);
}

// Login + provider, then the callback as given by `mutate(query)`; files counted before the login.
async function callbackWith(target, mutate = (q) => q, cookie) {
  const filesBefore = target.countSessions();
  const login = await beginLogin(target);
  assert.equal(login.res.status, 302, login.res.body);
  const q = await authorize(login.location);
  const res = await target.run({ path: '/callback', query: mutate(q, login),
    headers: { cookie: cookie === undefined ? login.cookie : cookie } });
  return { res, login, before: filesBefore, target };
}

test('login redirects to the provider with state, nonce, S256 PKCE and its own sealed sign-in cookie', async () => {
  const { res, location, cookieName, setCookie: bc, state, nonce } = await beginLogin(app);
  assert.equal(res.status, 302);
  assert.equal(`${location.origin}${location.pathname}`, `${fake.issuer}/oauth2/auth`);
  const p = location.searchParams;
  assert.equal(p.get('response_type'), 'code');
  assert.equal(p.get('client_id'), CLIENT_ID);
  assert.equal(p.get('redirect_uri'), CALLBACK_URL);
  assert.equal(p.get('code_challenge_method'), 'S256');
  assert.match(p.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  assert.ok(state && state.length >= 32, `state ${state}`);
  assert.ok(nonce && nonce.length >= 32 && nonce !== state, `nonce ${nonce}`);
  const tag = crypto.createHash('sha256').update(state).digest('hex').slice(0, 16);
  assert.equal(cookieName, `${SIGNIN_FAMILY}${tag}`, 'named after its state');
  assert.match(bc, /HttpOnly/);
  assert.match(bc, /SameSite=Lax/);
  assert.match(bc, /Max-Age=900/);
  for (const v of [state, nonce]) assert.ok(!bc.includes(v), 'nothing in clear in the cookie');
  const again = await beginLogin(app);
  assert.notEqual(again.state, state, 'a fresh state per login');
  assert.notEqual(again.nonce, nonce, 'a fresh nonce per login');
});

test('a normal sign-in sets an HttpOnly Lax session cookie, lands on / and shows the user', async () => {
  const before0 = app.countSessions();
  const { res, session, login } = await signIn(app);
  assert.equal(res.status, 303, res.body + res.stderr);
  assert.equal(res.headers.location, '/');
  const sc = setCookie(res, SESSION_COOKIE);
  assert.ok(session && session.length >= 43, `session id ${session}`);
  assert.match(sc, /HttpOnly/);
  assert.match(sc, /SameSite=Lax/);
  assert.match(sc, /Path=\//);
  assert.deepEqual(signinCookies(res).cleared, [login.cookieName], 'its sign-in cookie cleared after use');
  assert.equal(app.countSessions(), before0 + 1, 'one session file');
  // The fake checked PKCE and client authentication; the code grant used Basic auth.
  const g = fake.grantsOf('authorization_code').at(-1);
  assert.ok(g.basic_auth);
  const home = await withSession(app, session);
  assert.equal(home.status, 200);
  assert.match(home.body, /Ada Lovelace/);
  assert.doesNotMatch(home.body, new RegExp(session), 'the session id is not echoed in the page');
});

const idTokenFaults = [
  ['bad_signature', 'jwt_bad_signature'],
  ['wrong_iss', 'token_bad_iss'],
  ['wrong_aud', 'token_bad_aud'],
  ['wrong_azp', 'token_bad_azp'],
  ['missing_sub', 'token_no_sub'],
  ['missing_iat', 'token_no_iat'],
  ['wrong_nonce', 'token_bad_nonce'],
  ['expired', 'token_expired'],
  ['alg_none', 'jwt_alg_not_allowed'],
  ['hs256_pubkey', 'jwt_alg_not_allowed'],
  ['unknown_kid', 'jwt_unknown_kid'],
];

for (const [mode, code] of idTokenFaults) {
  test(`an ID token with ${mode.replace(/_/g, ' ')} is refused with 401 (${code})`, async () => {
    fake.setMode({ idToken: mode });
    const jwksBefore = fake.countRequests('/.well-known/jwks');
    const r = await callbackWith(app);
    await assertRefused(r, { status: 401, code, text: /could not be verified/ });
    // Only an unknown kid is worth a JWKS re-fetch; forged algs and bad claims are not.
    const refetched = fake.countRequests('/.well-known/jwks') - jwksBefore;
    if (mode === 'unknown_kid') assert.equal(refetched, 1, 'one JWKS re-fetch for an unknown kid');
    else assert.equal(refetched, 0, 'no JWKS fetch');
  });
}

test('an unknown kid that the re-fetched JWKS has (key rotation) is accepted', async () => {
  // Its own provider and app: the rotation must not touch the other tests' keys, and the forced JWKS re-fetch
  // is limited to once a minute across every process sharing a provider cache (the unknown_kid case above
  // has just spent `app`'s).
  const rotating = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  try {
    const fresh = newApp(rotating.issuer);
    // Prime the app's JWKS cache with the current key, then rotate.
    const first = await signIn(fresh);
    assert.equal(first.res.status, 303);
    const jwksBefore = rotating.countRequests('/.well-known/jwks');
    rotating.setMode({ idToken: 'rotated_kid' });
    const { res, session } = await signIn(fresh);
    assert.equal(res.status, 303, res.body + res.stderr);
    assert.ok(session);
    assert.equal(rotating.countRequests('/.well-known/jwks') - jwksBefore, 1, 'the app re-fetched the JWKS once');
    const home = await withSession(fresh, session);
    assert.match(home.body, /Ada Lovelace/);
    // Within the minute, another unknown kid is refused without a fetch (shared limit, not one per process).
    rotating.setMode({ idToken: 'unknown_kid' });
    const r = await callbackWith(fresh);
    await assertRefused(r, { status: 401, code: 'jwt_unknown_kid', text: /could not be verified/ });
    assert.equal(rotating.countRequests('/.well-known/jwks') - jwksBefore, 1, 'rate limited across processes');
  } finally {
    await rotating.stop();
  }
});

const tokenFaults = [
  ['invalid_grant', 400, 'invalid_grant', /refused the sign-in code/],
  ['http_500', 503, 'token_endpoint_failed', /cannot be reached/],
  ['html', 503, 'token_response_invalid', /cannot be reached/],
  ['invalid_json', 503, 'token_response_invalid', /cannot be reached/],
];

for (const [mode, status, code, text] of tokenFaults) {
  test(`a token endpoint answering ${mode.replace(/_/g, ' ')} gives ${status} (${code})`, async () => {
    fake.setMode({ token: mode });
    const r = await callbackWith(app);
    await assertRefused(r, { status, code, text });
  });
}

test('a token endpoint that never answers gives 503 within the HTTP timeout', async () => {
  fake.setMode({ token: 'hang' });
  const filesBefore = app.countSessions();
  const login = await beginLogin(app);
  const q = await authorize(login.location);
  const t0 = Date.now();
  const res = await app.run({ path: '/callback', query: q, headers: { cookie: login.cookie } });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 6000, `answered after ${elapsed} ms`);
  assert.ok(elapsed >= 1000, `the app did wait for the provider (${elapsed} ms)`);
  await assertRefused({ res, before: filesBefore }, { status: 503, code: 'token_endpoint_failed', text: /cannot be reached/ });
});

test('a JWKS endpoint that fails or hangs on first use gives 503, not a verification failure', async () => {
  for (const jwks of ['http_500', 'hang']) {
    const fresh = newApp();  // no keys cached yet
    fake.setMode({ jwks });
    const t0 = Date.now();
    const r = await callbackWith(fresh);
    assert.ok(Date.now() - t0 < 6000, `${jwks}: answered within the timeout`);
    await assertRefused(r, { status: 503, code: 'jwks_failed', text: /cannot be reached/ });
  }
});

test('a JWKS without a usable key refuses the ID token with 401', async () => {
  const fresh = newApp();
  fake.setMode({ jwks: 'empty' });
  const r = await callbackWith(fresh);
  await assertRefused(r, { status: 401, code: 'jwks_empty', text: /could not be verified/ });
});

test('a discovery endpoint that fails or hangs gives 503 at /login within the timeout', async () => {
  for (const discovery of ['http_500', 'hang']) {
    const fresh = newApp();
    fake.setMode({ discovery });
    const t0 = Date.now();
    const res = await fresh.run({ path: '/login' });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 6000, `${discovery}: answered after ${elapsed} ms`);
    assert.equal(res.status, 503, discovery);
    assert.equal(res.headers.location, undefined);
    assert.match(res.body, /cannot be reached/);
    assert.ok(res.stderr.includes('discovery_failed'), res.stderr);
  }
});

test('a cached discovery document keeps sign-in working while discovery is down', async () => {
  const primed = await signIn(app);  // discovery cached on disk
  assert.equal(primed.res.status, 303);
  fake.setMode({ discovery: 'http_500' });
  const { res, session } = await signIn(app);
  assert.equal(res.status, 303, res.body + res.stderr);
  assert.ok(session);
});

test('a bearer access token from the provider is accepted; forged ones get 401', async () => {
  await signIn(app);
  const access = fake.issued.at(-1).access_token;
  const ok = await app.run({ path: '/items/7', headers: { authorization: `Bearer ${access}` } });
  assert.equal(ok.status, 200, ok.body + ok.stderr);
  assert.deepEqual(JSON.parse(ok.body), { item_id: 7, q: null });
  const [h, p] = access.split('.');
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
  const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${p}.`;
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, permissions: ['admin'] })).toString('base64url')}.${access.split('.')[2]}`;
  for (const [name, token] of [['alg none', none], ['tampered payload', tampered]]) {
    const res = await app.run({ path: '/items/7', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401, name);
    assert.equal(typeof JSON.parse(res.body).detail, 'string', name);
    assert.ok(!res.body.includes(token), `${name}: the token is not echoed`);
  }
});

test('a discovery document with another issuer is refused: no redirect to the provider', async () => {
  const fresh = newApp();  // nothing cached yet
  fake.setMode({ discovery: 'wrong_issuer' });
  const before0 = fresh.countSessions();
  const res = await fresh.run({ path: '/login' });
  assert.equal(res.status, 503);
  assert.equal(res.headers.location, undefined);
  assert.match(res.body, /cannot be reached/);
  assert.ok(res.stderr.includes('discovery_issuer_mismatch'), res.stderr);
  assert.equal(fresh.countSessions(), before0);
});

test('a provider that refuses connections gives a 503 "cannot be reached" page', async () => {
  const port = await new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const down = newApp(`http://127.0.0.1:${port}`);
  const res = await down.run({ path: '/login' });
  assert.equal(res.status, 503);
  assert.match(res.body, /cannot be reached/);
  assert.ok(res.stderr.includes('discovery_failed'), res.stderr);
});

test('the provider going down between login and callback gives 503, no session', async () => {
  const other = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  const a = newApp(other.issuer);
  const filesBefore = a.countSessions();
  const login = await beginLogin(a);
  const q = await authorize(login.location);
  await other.stop();
  const res = await a.run({ path: '/callback', query: q, headers: { cookie: login.cookie } });
  await assertRefused({ res, before: filesBefore, target: a }, { status: 503, code: 'token_endpoint_failed', text: /cannot be reached/ });
});

test('repeated state or code parameters are refused with 400', async () => {
  const dupState = await callbackWith(app, (q, l) => `${q}&state=${l.state}`);
  assert.equal(dupState.res.status, 400);
  assert.match(dupState.res.body, /repeated parameter state/);
  const dupCode = await callbackWith(app, (q) => `${q}&code=other`);
  assert.equal(dupCode.res.status, 400);
  assert.match(dupCode.res.body, /repeated parameter code/);
  assert.equal(cookieValue(dupCode.res, SESSION_COOKIE), undefined);
  assert.equal(fake.grantsOf('authorization_code').filter((g) => g.code === 'other').length, 0);
});

test('a callback without state is refused with 400 and no code exchange', async () => {
  const grants = fake.grants.length;
  const r = await callbackWith(app, (q) => q.split('&').filter((kv) => !kv.startsWith('state=')).join('&'));
  assert.equal(r.res.status, 400);
  assert.match(r.res.body, /no state/);
  assert.equal(fake.grants.length, grants, 'no token request');
  assert.equal(setCookie(r.res, SESSION_COOKIE), undefined);
});

test('a state used once successfully is refused when replayed', async () => {
  const first = await signIn(app);
  assert.equal(first.res.status, 303);
  assert.deepEqual(signinCookies(first.res).cleared, [first.login.cookieName], 'the callback spent its cookie');
  const filesBefore = app.countSessions();
  const grants = fake.grants.length;
  // The browser obeyed and no longer sends the cookie: refused before any provider call.
  const replay = await app.run({ path: '/callback', query: first.callbackQuery });
  assert.equal(replay.status, 400);
  assert.match(replay.body, /already used, has expired/);
  assert.equal(setCookie(replay, SESSION_COOKIE), undefined);
  assert.equal(app.countSessions(), filesBefore);
  assert.equal(fake.grants.length, grants, 'the code is not presented again');
  // A copy of the cookie taken before it was spent: the code goes to the provider once more, which
  // refuses a used code (RFC 6749 4.1.2). No session follows.
  const copied = await app.run({ path: '/callback', query: first.callbackQuery, headers: { cookie: first.login.cookie } });
  assert.equal(copied.status, 400, copied.body);
  assert.match(copied.body, /refused the sign-in code/);
  assert.equal(setCookie(copied, SESSION_COOKIE), undefined);
  assert.equal(app.countSessions(), filesBefore);
  assert.equal(fake.grants.length, grants + 1);
});

test('a missing, foreign or damaged sign-in cookie is refused with 400', async () => {
  const other = await beginLogin(app);
  const cases = [
    ['no cookie', ''],
    ['another attempt\'s cookie', other.cookie],
    ['a cookie of the right name holding garbage', (login) => `${login.cookieName}=${'A'.repeat(43)}`],
    ['another attempt\'s value under this name', (login) => `${login.cookieName}=${other.cookie.split('=')[1]}`],
  ];
  for (const [what, cookie] of cases) {
    const grants = fake.grants.length;
    const filesBefore = app.countSessions();
    const login = await beginLogin(app);
    const q = await authorize(login.location);
    const res = await app.run({ path: '/callback', query: q,
      headers: { cookie: typeof cookie === 'function' ? cookie(login) : cookie } });
    await assertRefused({ res, before: filesBefore }, { status: 400, code: 'sign-in cookie', text: /started in another browser/ });
    assert.equal(fake.grants.length, grants, `${what}: no token request`);
  }
});

test('provider error=access_denied gives a friendly 400 page', async () => {
  const login = await beginLogin(app);
  const res = await app.run({ path: '/callback',
    query: `error=access_denied&error_description=User%20cancelled&state=${login.state}`,
    headers: { cookie: login.cookie } });
  assert.equal(res.status, 400);
  assert.match(res.body, /Sign-in was cancelled/);
  assert.match(res.body, /Sign in again/);
  assert.equal(setCookie(res, SESSION_COOKIE), undefined);
  assert.ok(res.stderr.includes('access_denied'), res.stderr);
  // The sign-in is spent: its cookie is cleared, so its state cannot be used afterwards.
  assert.deepEqual(signinCookies(res).cleared, [login.cookieName]);
  const q = await authorize(login.location);
  const late = await app.run({ path: '/callback', query: q });
  assert.equal(late.status, 400);
});

test('error=login_link_expired with reauth_state restarts the sign-in at /login', async () => {
  const reauth = Buffer.from(JSON.stringify({ login_hint: 'ada@example.test', org_code: 'org_faults' })).toString('base64');
  const res = await app.run({ path: '/callback',
    query: `error=login_link_expired&reauth_state=${encodeURIComponent(reauth)}` });
  assert.ok([302, 303].includes(res.status), `status ${res.status}`);
  const loc = new URL(res.headers.location, 'http://app.invalid');
  assert.equal(loc.pathname, '/login');
  assert.equal(loc.searchParams.get('login_hint'), 'ada@example.test');
  assert.equal(loc.searchParams.get('org_code'), 'org_faults');
  assert.equal(setCookie(res, SESSION_COOKIE), undefined);
  // Following it goes to the provider with those values.
  const again = await beginLogin(app, loc.search.slice(1));
  assert.equal(again.res.status, 302);
  assert.equal(again.location.searchParams.get('login_hint'), 'ada@example.test');
});

test('next=/items/42 lands on /items/42 after sign-in', async () => {
  const { res, session } = await signIn(app, { next: '/items/42' });
  assert.equal(res.status, 303);
  assert.equal(res.headers.location, '/items/42');
  const withQuery = await signIn(app, { next: '/items/42?q=hello' });
  assert.equal(withQuery.res.headers.location, '/items/42?q=hello', 'a local path keeps its query');
  const item = await withSession(app, session, '/items/42');
  assert.equal(item.status, 200);
  assert.deepEqual(JSON.parse(item.body), { item_id: 42, q: null });
});

// Raw query strings (as a browser would send them) whose `next` points off-site.
const openRedirects = [
  `next=${encodeURIComponent('//evil.com')}`,
  `next=${encodeURIComponent('/\\evil.com')}`,
  `next=${encodeURIComponent('/\\\\evil.com')}`,
  `next=${encodeURIComponent('\\\\evil.com')}`,
  `next=${encodeURIComponent('https://evil.com')}`,
  'next=/%2F%2Fevil.com',
  `next=${encodeURIComponent('/%2F%2Fevil.com')}`,
  'next=%2F%5Cevil',
  'next=/%09/evil.com',
  `next=${encodeURIComponent('javascript:alert(1)')}`,
  'next=https:evil.com',
  'next=/%5Cevil.com',
  'next=%0D%0A/evil.com',
  `next=${encodeURIComponent('evil.com')}`,
];

test('open-redirect attempts in next land on /', async () => {
  for (const q of openRedirects) {
    const { res } = await signIn(app, { loginQuery: q });
    assert.equal(res.status, 303, `${q}: ${res.body}`);
    assert.equal(res.headers.location, '/', `${q} landed on ${res.headers.location}`);
  }
});

test('logout removes the session file, expires the cookie and redirects to the end-session URL', async () => {
  const { session } = await signIn(app);
  const idToken = fake.issued.at(-1).id_token;
  const filesBefore = app.countSessions();
  const res = await withSession(app, session, '/logout');
  assert.equal(res.status, 303);
  assert.ok(isExpiredCookie(setCookie(res, SESSION_COOKIE)), `cookie: ${setCookie(res, SESSION_COOKIE)}`);
  assert.equal(app.countSessions(), filesBefore - 1, 'session file removed');
  const loc = res.headers.location;
  assert.ok(loc.startsWith(`${fake.issuer}/logout?`), loc);
  const rawQuery = loc.slice(loc.indexOf('?') + 1);
  const p = new URL(loc).searchParams;
  assert.equal(p.get('redirect'), 'http://127.0.0.1/');
  assert.equal(p.get('post_logout_redirect_uri'), 'http://127.0.0.1/');
  assert.equal(p.get('client_id'), CLIENT_ID);
  assert.equal(p.get('id_token_hint'), idToken);
  assert.match(rawQuery, /(^|&)redirect=http%3A%2F%2F127\.0\.0\.1%2F(&|$)/, 'redirect is URL-encoded');
  assert.match(rawQuery, /(^|&)post_logout_redirect_uri=http%3A%2F%2F127\.0\.0\.1%2F(&|$)/);
  // The old cookie no longer signs anyone in.
  const home = await withSession(app, session);
  assert.match(home.body, /Sign in/);
  assert.doesNotMatch(home.body, /Ada Lovelace/);
});

// Runs last: every response of every test above (and a debug-level sign-in and sign-out) is checked.
test('the client secret never appears in any response body, header or log, even at debug level', async () => {
  const debug = newApp(fake.issuer, { KINDE_LOG_LEVEL: 'debug' });
  fake.setMode({ expiresIn: 30 });  // the next request refreshes: the token request is logged at debug
  const { res, session } = await signIn(debug);
  assert.equal(res.status, 303);
  const home = await withSession(debug, session, '/');
  assert.match(home.stderr, /: debug: /, 'debug logging is on');
  await withSession(debug, session, '/logout');
  fake.setMode({ token: 'invalid_grant' });
  await callbackWith(debug);
  let checked = 0;
  for (const a of apps) {
    for (const r of a.seen) {
      assert.ok(!responseText(r).includes(CLIENT_SECRET), `client secret leaked: ${r.status} ${r.stderr}`);
      checked += 1;
    }
  }
  assert.ok(checked > 50, `checked ${checked} responses`);
  // The fake did receive it (so the check above is meaningful): client authentication succeeded.
  assert.ok(fake.grantsOf('authorization_code').some((g) => g.basic_auth));
});
