// Nothing secret reaches a log, even at KINDE_LOG_LEVEL=debug: a whole run against the local
// provider (tests/idp) through lighttpd — sign in, API calls, a token refresh, sign out, failing
// callbacks — then lighttpd's error log and the app's stderr are searched for the client secret,
// every token the provider issued (learned by opening the session records with the store's key),
// the session ids, the authorization codes and anything shaped like a JWT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { startSite } from '../lib/site.mjs';
import { CookieJar, browse, signIn, signOut, request } from '../lib/idp-client.mjs';

const CLIENT_ID = 'secrets-client-3b9d';
const CLIENT_SECRET = 'SECRET-logs-must-never-show-9f8e7d6c5b4a';
const SESSION_COOKIE = 'kinde_fcgi_session';
const ACCESS_TTL = 62;  // the app refreshes 60 s before expiry: a request 2+ s after sign-in refreshes
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]+\.eyJ/;

let site;
let server;
let base;

before(async () => {
  site = await startSite({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, accessTtl: ACCESS_TTL, name: 'secrets' });
  ({ server, base } = site);
});

after(async () => {
  await site?.stop();
});

// The session record for `id`, opened as the store does (src/session/sealed.hpp): key =
// HKDF-SHA256(the key file, session.key beside kinde.conf, info "kinde-fcgi session v1"); record =
// header(20) | nonce(12) | ciphertext | tag(16); AAD = header + hex SHA-256 of the id. Returns the
// session's data.
function openSession(id) {
  const dir = path.join(server.runDir, 'sessions');
  const key = Buffer.from(crypto.hkdfSync('sha256', readFileSync(path.join(server.runDir, 'session.key')), Buffer.alloc(0),
    Buffer.from('kinde-fcgi session v1'), 32));
  const hash = crypto.createHash('sha256').update(id).digest('hex');
  const blob = readFileSync(path.join(dir, hash.slice(0, 2), hash));
  const header = blob.subarray(0, 20);
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, blob.subarray(20, 32));
  decipher.setAAD(Buffer.concat([header, Buffer.from(hash, 'latin1')]));
  decipher.setAuthTag(blob.subarray(blob.length - 16));
  const plain = Buffer.concat([decipher.update(blob.subarray(32, blob.length - 16)), decipher.final()]);
  return JSON.parse(plain.toString('utf8'));
}

function tokensOf(data) {
  const t = data.tokens || {};
  return [t.access_token, t.id_token, t.refresh_token].filter((v) => typeof v === 'string' && v.length > 0);
}

const codeOf = (hops) => hops.map((h) => /\/callback\?(.*)$/.exec(h)?.[1]).filter(Boolean)
  .map((q) => new URLSearchParams(q).get('code')).find(Boolean);

// The state of a fresh /login: the provider URL the app redirects to, with its jar.
async function startLogin() {
  const jar = new CookieJar();
  const res = await request(`${base}/login`, jar);
  await res.arrayBuffer();
  assert.equal(res.status, 302, 'login redirects to the provider');
  return { jar, state: new URL(res.headers.get('location')).searchParams.get('state') };
}

test('a full run at debug level logs no secret, token, code or session id', async () => {
  const secrets = new Map([['client secret', CLIENT_SECRET]]);

  // Sign in; the code is visible in the callback hop, the tokens in the session record.
  const jar = new CookieJar();
  const signed = await signIn(base, 'logs-user', { jar });
  assert.equal(signed.status, 200, signed.body.slice(0, 300));
  assert.match(signed.body, /Sign out/);
  const code = codeOf(signed.hops);
  assert.ok(code, `an authorization code in the hops: ${signed.hops.join(' ')}`);
  secrets.set('authorization code', code);
  const sid = signed.cookies[SESSION_COOKIE];
  assert.ok(sid, 'a session cookie');
  secrets.set('session id', sid);
  const first = tokensOf(openSession(sid));
  assert.equal(first.length, 3, 'access, ID and refresh token in the session');
  first.forEach((t, i) => secrets.set(`token ${i} at sign-in`, t));

  for (const route of ['/api/me', '/items/7', '/']) {
    const res = await request(`${base}${route}`, jar);
    assert.equal(res.status, 200, `${route}: ${res.status}`);
    await res.arrayBuffer();
  }

  // Past the refresh margin: the next request refreshes and the tokens rotate.
  await new Promise((r) => setTimeout(r, 2500));
  const me = await request(`${base}/api/me`, jar);
  assert.equal(me.status, 200);
  await me.arrayBuffer();
  const second = tokensOf(openSession(sid));
  assert.notEqual(second[2], first[2], 'the refresh token rotated (a refresh happened)');
  second.forEach((t, i) => secrets.set(`token ${i} after refresh`, t));

  // Failing callbacks: an unknown state, a real state with a forged code, a spent real code.
  const forged = `forged-code-${crypto.randomBytes(12).toString('hex')}`;
  secrets.set('forged code', forged);
  let res = await request(`${base}/callback?state=not-a-state&code=${forged}`, new CookieJar());
  assert.equal(res.status, 400);
  await res.arrayBuffer();
  let login = await startLogin();
  res = await request(`${base}/callback?state=${login.state}&code=${forged}`, login.jar);
  assert.ok(res.status >= 400 && res.status < 500, `forged code: ${res.status}`);
  await res.arrayBuffer();
  login = await startLogin();
  res = await request(`${base}/callback?state=${login.state}&code=${encodeURIComponent(code)}`, login.jar);
  assert.ok(res.status >= 400 && res.status < 500, `spent code: ${res.status}`);
  await res.arrayBuffer();

  const out = await signOut(base, jar);
  assert.equal(out.status, 200);
  assert.match(out.body, /Sign in/);
  const after = await browse(`${base}/`, jar);
  assert.doesNotMatch(after.body, /Sign out/, 'signed out');

  // A second user, so two sessions' worth of values are in play at once.
  const other = await signIn(base, 'logs-user-2');
  secrets.set('second session id', other.cookies[SESSION_COOKIE]);
  secrets.set('second code', codeOf(other.hops));
  tokensOf(openSession(other.cookies[SESSION_COOKIE])).forEach((t, i) => secrets.set(`second user token ${i}`, t));

  await new Promise((r) => setTimeout(r, 300));  // let lighttpd flush the last lines
  const logs = server.errorLog();
  assert.match(logs, /tokens refreshed/, 'debug lines are in the log (the refresh was logged)');
  assert.match(logs, /callback|state|sign-in/i, 'the failing callbacks were logged');
  for (const [what, value] of secrets) {
    assert.ok(value && value.length >= 16, `${what} learned`);
    assert.ok(!logs.includes(value), `${what} appears in the log`);
    // Also a distinctive slice, in case a line cut or quoted it.
    assert.ok(!logs.includes(value.slice(0, 24)), `the start of the ${what} appears in the log`);
  }
  assert.doesNotMatch(logs, JWT_SHAPE, 'something shaped like a JWT appears in the log');
});
