// A second provider nobody here wrote: oauth2-mock-server (tests/mockidp/server.mjs), one instance per case,
// against build/kinde.fcgi run as plain CGI. The habits of certified providers that are not Kinde: an issuer
// ending in "/", the name only in UserInfo, opaque access tokens checked by introspection, no
// end_session_endpoint, ES512 / PS512 / EdDSA signing keys, RFC 9068 at+jwt access tokens, no refresh token.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';

import { binary } from '../lib/cgi.mjs';
import { makeApp, signIn, withSession, setCookie, isExpiredCookie, SESSION_COOKIE, CALLBACK_URL } from '../fakeidp/harness.mjs';
import { startMockIdp, SUBJECT } from '../mockidp/server.mjs';

const CLIENT_ID = 'mock-client-4d2e';
const CLIENT_SECRET = 'SECRET-mock-never-shown-8a1b2c3d';
const cleanups = [];

after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// A mock provider with `options` and an app configured for it (`config` adds keys; `issuer` overrides the one
// the app is told).
async function setUp(options = {}, config = {}, issuer) {
  const idp = await startMockIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, ...options });
  cleanups.push(() => idp.stop());
  const app = makeApp({ issuer: issuer ?? idp.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
    config: { KINDE_SCOPES: 'openid profile email offline_access', ...config } });
  cleanups.push(() => app.cleanup());
  return { idp, app };
}

function checkConfig(app) {
  return new Promise((resolve) => {
    execFile(binary, ['--check-config'], { env: { PATH: process.env.PATH, KINDE_CONFIG: app.configPath }, timeout: 20000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

async function signedIn(app) {
  const s = await signIn(app);
  assert.equal(s.res.status, 303, `callback: ${s.res.status} ${s.res.body.slice(0, 300)}\nlog: ${s.res.stderr}`);
  assert.ok(s.session, 'a session cookie');
  return s;
}

async function me(app, session) {
  const r = await withSession(app, session, '/api/me');
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body);
}

test('an issuer ending in "/" signs in, its tokens pass, and --check-config checks the same', async () => {
  const { idp, app } = await setUp({ trailingSlash: true, idTokenClaims: { name: 'Slash User' } });
  assert.ok(idp.issuer.endsWith('/'), idp.issuer);
  const cc = await checkConfig(app);
  assert.equal(cc.code, 0, cc.stdout + cc.stderr);
  assert.match(cc.stdout, new RegExp(`issuer is exactly '${idp.issuer}'`));
  const { session } = await signedIn(app);
  assert.equal((await me(app, session)).user.id, SUBJECT);
  // The same provider told without the slash: refused by --check-config and by sign-in alike, with the fix named.
  const bare = makeApp({ issuer: idp.issuer.replace(/\/$/, ''), clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  cleanups.push(() => bare.cleanup());
  const bad = await checkConfig(bare);
  assert.notEqual(bad.code, 0, bad.stdout);
  assert.match(bad.stdout, /FAIL.*set KINDE_ISSUER_URL to exactly/);
  const login = await bare.run({ path: '/login' });
  assert.equal(login.status, 503);
  assert.match(login.stderr, /discovery_issuer_mismatch/);
});

test('a name given only by UserInfo is shown; UserInfo is asked once, with the access token', async () => {
  const { idp, app } = await setUp({ userinfo: { given_name: 'Grace', family_name: 'Hopper', email: 'grace@example.com' } });
  const { session } = await signedIn(app);
  assert.equal(idp.calls.userinfo.length, 1);
  assert.match(idp.calls.userinfo[0].authorization, /^Bearer \S+/);
  const home = await withSession(app, session, '/');
  assert.match(home.body, /Grace Hopper/);
  assert.match(home.body, />GH</, 'avatar initials');
  assert.equal((await me(app, session)).user.email, 'grace@example.com');
  assert.equal(idp.calls.userinfo.length, 1, 'not asked again on later requests');
});

test('a user nothing names is shown by subject, never a blank or "?"', async () => {
  const { app } = await setUp({});
  const { session } = await signedIn(app);
  const home = await withSession(app, session, '/');
  assert.match(home.body, new RegExp(SUBJECT));
  assert.match(home.body, />J</, 'avatar letter from the subject');
});

test('an opaque access token: the session keeps ID token + UserInfo claims; a bearer one is introspected', async () => {
  const { idp, app } = await setUp({ accessToken: 'opaque', userinfo: { name: 'Opaque Olga' } });
  const { session } = await signedIn(app);
  assert.equal(idp.calls.introspect.length, 0, 'a session token is not introspected');
  const mine = await me(app, session);
  assert.equal(mine.type, 'user');
  assert.equal(mine.user.full_name, 'Opaque Olga');
  const token = await idp.clientCredentialsToken();
  assert.ok(!token.includes('.'), 'opaque');
  const items = await app.run({ path: '/items/7', headers: { authorization: `Bearer ${token}` } });
  assert.equal(items.status, 200, items.body + items.stderr);
  assert.deepEqual(JSON.parse(items.body), { item_id: 7, q: null });
  assert.equal(idp.calls.introspect.length, 1);
  const auth = idp.calls.introspect[0].authorization;
  assert.equal(auth, `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`, 'client-authenticated');
  const machine = await app.run({ path: '/api/me', headers: { authorization: `Bearer ${token}` } });
  assert.equal(JSON.parse(machine.body).client_id, CLIENT_ID);
  idp.revoke(token);
  const revoked = await app.run({ path: '/items/7', headers: { authorization: `Bearer ${token}` } });
  assert.equal(revoked.status, 401);
  assert.match(revoked.stderr, /token_inactive/);
  const unknown = await app.run({ path: '/items/7', headers: { authorization: 'Bearer not-a-token-anyone-issued' } });
  assert.equal(unknown.status, 401);
  for (const r of [items, machine, revoked]) assert.ok(!r.stderr.includes(token), 'the token is never logged');
});

test('without an end_session_endpoint, sign-out ends the local session and returns to KINDE_LOGOUT_URL', async () => {
  const { idp, app } = await setUp({ endSession: false }, { KINDE_LOGOUT_URL: 'http://127.0.0.1/goodbye' });
  const { session } = await signedIn(app);
  const out = await withSession(app, session, '/logout');
  assert.equal(out.status, 303);
  assert.equal(out.headers.location, 'http://127.0.0.1/goodbye');
  assert.ok(isExpiredCookie(setCookie(out, SESSION_COOKIE)));
  assert.match(out.stderr, /lists no end_session_endpoint/);
  assert.equal(app.countSessions(), 0);
  assert.equal(idp.calls.endSession.length, 0);
});

test('with an end_session_endpoint, sign-out sends state and the provider returns it', async () => {
  const { idp, app } = await setUp({});
  const { session } = await signedIn(app);
  const out = await withSession(app, session, '/logout');
  assert.equal(out.status, 303);
  const to = new URL(out.headers.location);
  assert.equal(`${to.origin}${to.pathname}`, `${idp.issuer}/endsession`);
  const state = to.searchParams.get('state');
  assert.match(state, /^[A-Za-z0-9_-]{43,}$/);
  assert.ok(to.searchParams.get('id_token_hint'));
  const back = await fetch(to, { redirect: 'manual' });
  assert.equal(back.status, 302);
  const home = new URL(back.headers.get('location'));
  assert.equal(home.searchParams.get('state'), state);
  assert.equal(`${home.origin}${home.pathname}`, new URL('/', CALLBACK_URL).href);
});

for (const alg of ['ES512', 'PS512', 'EdDSA']) {
  test(`ID and access tokens signed ${alg} verify`, async () => {
    const { app } = await setUp({ alg, accessToken: 'at+jwt', idTokenClaims: { given_name: alg } });
    const { session } = await signedIn(app);
    const mine = await me(app, session);
    assert.equal(mine.user.given_name, alg);
    assert.ok(mine.permissions !== undefined);
  });
}

test('an RFC 9068 at+jwt access token: the bearer call names the client from client_id', async () => {
  const { idp, app } = await setUp({ accessToken: 'at+jwt', accessTokenClaims: { permissions: ['read:items'] } });
  const token = await idp.clientCredentialsToken();
  const [header] = token.split('.');
  assert.equal(JSON.parse(Buffer.from(header, 'base64url').toString()).typ, 'at+jwt');
  const r = await app.run({ path: '/api/me', headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, r.body + r.stderr);
  const body = JSON.parse(r.body);
  assert.equal(body.client_id, CLIENT_ID);
  assert.deepEqual(body.permissions, ['read:items']);
  // A user's at+jwt token in a session: its claims count (verified, typed, issued to this client).
  const { session } = await signedIn(app);
  assert.deepEqual((await me(app, session)).permissions, ['read:items']);
});

test('no refresh token: said once in the log at sign-in; --check-config names the listed refresh scope', async () => {
  const { app } = await setUp({ refreshToken: false });
  const s = await signedIn(app);
  assert.match(s.res.stderr, /the provider gave no refresh token/);
  const cc = await checkConfig(app);
  assert.match(cc.stdout, /refresh tokens: /);
  const withRt = await setUp({});
  const t = await signedIn(withRt.app);
  assert.doesNotMatch(t.res.stderr, /no refresh token/);
});
