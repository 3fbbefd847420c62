// Sign-in state kept in the browser, not on the server: build/kinde.fcgi (plain CGI) against the fake
// provider. /login writes nothing to the session store; each attempt has its own sealed cookie (at
// most five at once); a callback needs its own cookie, fresh and untampered; the callback's `iss`
// must be the issuer (RFC 9207); unknown provider errors show fixed words; a sign-out started by
// another site asks first; Secure cookies carry __Host-/__Secure- prefixes, also in the Authorizer
// role; list variables never split a value; user details follow a refreshed ID token.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeIdp } from '../lib/fakeidp.mjs';
import {
  makeApp, beginLogin, authorize, signIn, withSession, setCookie, cookieValue, isExpiredCookie, signinCookies,
  SESSION_COOKIE, SIGNIN_FAMILY,
} from '../fakeidp/harness.mjs';

const CLIENT_ID = 'state-client-5e6f';
const CLIENT_SECRET = 'SECRET-state-never-shown-7a8b9c0d1e2f';

let fake;
let app;
const apps = [];

function newApp(config = {}) {
  const a = makeApp({ issuer: fake.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, config });
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

// Every name under dir, recursively.
function listing(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

// The sign-in cookie format (src/session/sealed.hpp, Sealer): key = HKDF-SHA256(key material, no
// salt, info "kinde-fcgi sign-in v1"); value = base64url(0x01 | nonce(12) | AES-256-GCM | tag(16));
// associated data = info | 0x00 | 0x01 | the cookie's name. Opened and sealed here with the app's
// own key file, to make cookies the app did not make.
function signinKey(a) {
  const material = fs.readFileSync(path.join(a.dir, 'session.key'));
  return Buffer.from(crypto.hkdfSync('sha256', material, Buffer.alloc(0), Buffer.from('kinde-fcgi sign-in v1'), 32));
}
const aadFor = (name) => Buffer.concat([Buffer.from('kinde-fcgi sign-in v1'), Buffer.from([0, 1]), Buffer.from(name)]);

function openSignin(a, name, value) {
  const raw = Buffer.from(value, 'base64url');
  assert.equal(raw[0], 1, 'format version 1');
  const d = crypto.createDecipheriv('aes-256-gcm', signinKey(a), raw.subarray(1, 13));
  d.setAAD(aadFor(name));
  d.setAuthTag(raw.subarray(raw.length - 16));
  return JSON.parse(Buffer.concat([d.update(raw.subarray(13, raw.length - 16)), d.final()]).toString('utf8'));
}

function sealSignin(a, name, payload) {
  const nonce = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', signinKey(a), nonce);
  c.setAAD(aadFor(name));
  const ct = Buffer.concat([c.update(JSON.stringify(payload), 'utf8'), c.final()]);
  return Buffer.concat([Buffer.from([1]), nonce, ct, c.getAuthTag()]).toString('base64url');
}

test('many /login requests write nothing to the session store', async () => {
  const fresh = newApp();
  for (let i = 0; i < 40; i += 1) {
    const { res } = await beginLogin(fresh, `next=${encodeURIComponent(`/items/${i}`)}`);
    assert.equal(res.status, 302, res.body + res.stderr);
  }
  // The only files are the provider's discovery cache (one, rewritten daily) and its lock file: no
  // session record, no shard folder, no session lock, no temp file.
  assert.deepEqual(listing(fresh.sessionDir).filter((n) => n !== '.provider-cache.json.lock'), ['.provider-cache.json']);
  assert.equal(fresh.countSessions(), 0);
});

test('several tabs sign in at once, finishing in any order, each with its own cookie', async () => {
  const a = newApp();
  const tabs = [];
  let jar = '';
  for (const next of ['/items/1', '/items/2', '/items/3']) {
    const login = await beginLogin(a, `next=${encodeURIComponent(next)}`, jar ? { cookie: jar } : {});
    assert.equal(login.res.status, 302);
    assert.deepEqual(signinCookies(login.res).cleared, [], 'no other tab\'s cookie dropped');
    tabs.push({ next, login, query: await authorize(login.location) });
    jar = tabs.map((t) => t.login.cookie).join('; ');
  }
  assert.equal(new Set(tabs.map((t) => t.login.cookieName)).size, 3, 'one cookie per attempt');
  for (const t of [tabs[1], tabs[2], tabs[0]]) {
    const res = await a.run({ path: '/callback', query: t.query, headers: { cookie: jar } });
    assert.equal(res.status, 303, res.body + res.stderr);
    assert.equal(res.headers.location, t.next);
    assert.deepEqual(signinCookies(res).cleared, [t.login.cookieName], 'only its own cookie is spent');
    jar = jar.split('; ').filter((c) => !c.startsWith(`${t.login.cookieName}=`)).join('; ');
  }
  assert.equal(a.countSessions(), 3);
});

test('a browser holds at most five sign-in cookies: the sixth login drops the oldest', async () => {
  const logins = [];
  for (let i = 0; i < 6; i += 1) {
    const cookie = logins.map((l) => l.cookie).join('; ');
    const login = await beginLogin(app, '', cookie ? { cookie } : {});
    const { cleared } = signinCookies(login.res);
    if (i < 5) assert.deepEqual(cleared, [], `login ${i + 1}: nothing dropped`);
    else assert.deepEqual(cleared, [logins[0].cookieName], 'the oldest is dropped');
    logins.push(login);
    // Sealed times have a one-second grain: keep them apart so "oldest" is well defined.
    if (i === 0) await new Promise((r) => setTimeout(r, 1100));
  }
});

test('a sign-in cookie sealed with the app\'s key opens; an old one is refused, a fresh copy works', async () => {
  // The format above is the app's: re-sealing what it sealed (with a new nonce) still signs in.
  const login = await beginLogin(app);
  const q = await authorize(login.location);
  const payload = openSignin(app, login.cookieName, login.cookie.split('=')[1]);
  assert.equal(payload.s, login.state);
  assert.equal(payload.n, login.nonce);
  assert.equal(payload.x, '/');
  assert.ok(Math.abs(payload.t - Date.now() / 1000) < 60);

  const grants = fake.grants.length;
  const old = sealSignin(app, login.cookieName, { ...payload, t: payload.t - 901 });
  const late = await app.run({ path: '/callback', query: q, headers: { cookie: `${login.cookieName}=${old}` } });
  assert.equal(late.status, 400);
  assert.match(late.body, /took too long/);
  assert.equal(fake.grants.length, grants, 'no token request for an expired sign-in');
  assert.deepEqual(signinCookies(late).cleared, [login.cookieName]);

  // A cookie holding another state under this state's name (sealed properly) is refused too.
  const swapped = sealSignin(app, login.cookieName, { ...payload, s: 'B'.repeat(43) });
  const wrong = await app.run({ path: '/callback', query: q, headers: { cookie: `${login.cookieName}=${swapped}` } });
  assert.equal(wrong.status, 400);
  assert.ok(wrong.stderr.includes('sign-in cookie rejected'), wrong.stderr);

  const resealed = sealSignin(app, login.cookieName, payload);
  const ok = await app.run({ path: '/callback', query: q, headers: { cookie: `${login.cookieName}=${resealed}` } });
  assert.equal(ok.status, 303, ok.body + ok.stderr);
  assert.ok(cookieValue(ok, SESSION_COOKIE));
});

test('servers sharing KINDE_SESSION_SECRET finish each other\'s sign-ins; another secret cannot', async () => {
  const secret = crypto.randomBytes(36).toString('base64');
  const a = newApp({ KINDE_SESSION_SECRET: secret });
  const b = newApp({ KINDE_SESSION_SECRET: secret });
  const c = newApp({ KINDE_SESSION_SECRET: crypto.randomBytes(36).toString('base64') });
  const login = await beginLogin(a);
  const q = await authorize(login.location);
  const onC = await c.run({ path: '/callback', query: q, headers: { cookie: login.cookie } });
  assert.equal(onC.status, 400, 'another secret: refused');
  assert.ok(onC.stderr.includes('sign-in cookie rejected'), onC.stderr);
  const onB = await b.run({ path: '/callback', query: q, headers: { cookie: login.cookie } });
  assert.equal(onB.status, 303, onB.body + onB.stderr);
  assert.equal(b.countSessions(), 1);
  assert.equal(a.countSessions(), 0, 'nothing was stored where the sign-in started');
});

test('the callback\'s iss must be the issuer (RFC 9207)', async () => {
  for (const iss of ['https://attacker.example', `${'http://127.0.0.1:1'}`, `${fake.issuer}/`, '']) {
    const grants = fake.grants.length;
    const login = await beginLogin(app);
    const q = await authorize(login.location);
    const res = await app.run({ path: '/callback', query: `${q}&iss=${encodeURIComponent(iss)}`,
      headers: { cookie: login.cookie } });
    assert.equal(res.status, 400, `iss=${iss}`);
    assert.match(res.body, /another provider/);
    assert.equal(setCookie(res, SESSION_COOKIE), undefined);
    assert.equal(fake.grants.length, grants, `iss=${iss}: no token request`);
  }
  const login = await beginLogin(app);
  const q = await authorize(login.location);
  const res = await app.run({ path: '/callback', query: `${q}&iss=${encodeURIComponent(fake.issuer)}`,
    headers: { cookie: login.cookie } });
  assert.equal(res.status, 303, res.body + res.stderr);
});

test('an unknown error code shows fixed words; the raw value goes to the log only', async () => {
  const login = await beginLogin(app);
  const res = await app.run({ path: '/callback',
    query: `error=visit_evil_example_now&error_description=${encodeURIComponent('Call +1 555 0100')}&state=${login.state}`,
    headers: { cookie: login.cookie } });
  assert.equal(res.status, 400);
  assert.match(res.body, /could not complete the sign-in/);
  assert.doesNotMatch(res.body, /visit_evil|555 0100/);
  assert.ok(res.stderr.includes('visit_evil_example_now'), res.stderr);
  assert.deepEqual(signinCookies(res).cleared, [login.cookieName]);
});

test('a sign-out another site starts asks first and ends nothing; our own, typed or old clients sign out', async () => {
  const { session } = await signIn(app);
  const files = app.countSessions();
  for (const [method, site, status] of [['GET', 'cross-site', 200], ['GET', 'same-site', 200], ['POST', 'cross-site', 403],
    ['POST', 'same-site', 403]]) {
    const res = await app.run({ method, path: '/logout', headers: {
      cookie: `${SESSION_COOKIE}=${session}`, 'sec-fetch-site': site,
      ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) } });
    assert.equal(res.status, status, `${method} ${site}`);
    assert.equal(res.headers.location, undefined);
    assert.match(res.body, /<form method="post" action="&#x2F;logout"/);
    assert.match(res.headers['content-security-policy'], /form-action 'self'/);
    assert.equal(setCookie(res, SESSION_COOKIE), undefined, 'the cookie stays');
    assert.equal(app.countSessions(), files, 'the session stays');
  }
  assert.match((await withSession(app, session)).body, /Ada Lovelace/);
  // The button posts from our page (same-origin): signed out.
  const out = await app.run({ method: 'POST', path: '/logout', headers: {
    cookie: `${SESSION_COOKIE}=${session}`, 'sec-fetch-site': 'same-origin' } });
  assert.equal(out.status, 303);
  assert.ok(isExpiredCookie(setCookie(out, SESSION_COOKIE)));
  assert.equal(app.countSessions(), files - 1);
  for (const site of ['none', undefined]) {
    const s = (await signIn(app)).session;
    const r = await app.run({ path: '/logout', headers: { cookie: `${SESSION_COOKIE}=${s}`, ...(site ? { 'sec-fetch-site': site } : {}) } });
    assert.equal(r.status, 303, `Sec-Fetch-Site: ${site}`);
    assert.doesNotMatch((await withSession(app, s)).body, /Ada Lovelace/);
  }
});

test('Secure cookies are __Host- at "/" and __Secure- under a prefix; a plain name is no session', async () => {
  const secure = newApp({ SESSION_COOKIE_SECURE: 'true' });
  const host = `__Host-${SESSION_COOKIE}`;
  const login = await beginLogin(secure);
  assert.ok(login.cookieName.startsWith(`__Host-${SIGNIN_FAMILY}`), login.cookieName);
  assert.match(login.setCookie, /; Path=\/;.*Secure/);
  assert.doesNotMatch(login.setCookie, /Domain=/i);
  const q = await authorize(login.location);
  const res = await secure.run({ path: '/callback', query: q, headers: { cookie: login.cookie } });
  assert.equal(res.status, 303, res.body + res.stderr);
  const session = cookieValue(res, host);
  assert.ok(session, `a ${host} cookie: ${res.headers['set-cookie']}`);
  assert.match(setCookie(res, host), /Secure/);
  assert.match((await secure.run({ headers: { cookie: `${host}=${session}` } })).body, /Ada Lovelace/);
  // What a sibling subdomain or plain http could plant carries no prefix: not read.
  assert.doesNotMatch((await secure.run({ headers: { cookie: `${SESSION_COOKIE}=${session}` } })).body, /Ada Lovelace/);

  // The Authorizer role (a protected file elsewhere on the site) reads the same __Host- cookie.
  const authz = await secure.run({ path: '', scriptName: '/private/a.txt', env: { FCGI_ROLE: 'AUTHORIZER' },
    headers: { cookie: `${host}=${session}` } });
  assert.equal(authz.status, 200, authz.body + authz.stderr);
  assert.equal(authz.headers['variable-kinde_email'], 'ada@example.test');

  // Under a prefix (SCRIPT_NAME /app, Path=/app): __Secure-.
  const prefixed = await secure.run({ path: '/login', scriptName: '/app' });
  const [c] = signinCookies(prefixed).set;
  assert.ok(c.name.startsWith(`__Secure-${SIGNIN_FAMILY}`), c.name);
  assert.match(c.header, /; Path=\/app;/);
});

test('permissions, roles and organisations holding spaces are never split in the authorizer\'s variables', async () => {
  fake.setMode({
    accessClaims: { permissions: ['read:items', 'write items', 'delete:items'], roles: [{ key: 'editor' }, { key: 'super admin' }] },
    idClaims: { org_codes: ['org_a', 'org b', 'org_c'] },
  });
  const { session } = await signIn(app);
  const res = await app.run({ path: '', scriptName: '/private/a.txt', env: { FCGI_ROLE: 'AUTHORIZER' },
    headers: { cookie: `${SESSION_COOKIE}=${session}` } });
  assert.equal(res.status, 200, res.body + res.stderr);
  assert.equal(res.headers['variable-kinde_permissions'], 'read:items delete:items');
  assert.equal(res.headers['variable-kinde_roles'], 'editor');
  assert.equal(res.headers['variable-kinde_org_codes'], 'org_a org_c');
  assert.match(res.stderr, /holding whitespace is left out/);
  // A rule still sees the whole value.
  const rule = await app.run({ path: '', scriptName: '/private/a.txt',
    env: { FCGI_ROLE: 'AUTHORIZER', KINDE_REQUIRE_PERMISSION: 'delete:items' }, headers: { cookie: `${SESSION_COOKIE}=${session}` } });
  assert.equal(rule.status, 200);
});

test('a refreshed ID token brings the user\'s new name, email and picture', async () => {
  fake.setMode({ expiresIn: 30 });  // inside the refresh margin: the next request refreshes
  const { session } = await signIn(app);
  const user = { ...fake.user };
  try {
    Object.assign(fake.user, { given_name: 'Augusta', family_name: 'King', name: 'Augusta King',
      email: 'augusta@example.test', picture: 'https://images.example.com/augusta.png' });
    const home = await withSession(app, session);
    assert.equal(home.status, 200, home.body + home.stderr);
    assert.match(home.body, /Augusta King/);
    assert.doesNotMatch(home.body, /Ada Lovelace/);
    const me = JSON.parse((await withSession(app, session, '/api/me')).body);
    assert.equal(me.user.email, 'augusta@example.test');
    assert.equal(me.user.picture, 'https://images.example.com/augusta.png');
    assert.ok(fake.grantsOf('refresh_token').length >= 1);
  } finally {
    Object.assign(fake.user, user);
  }
});
