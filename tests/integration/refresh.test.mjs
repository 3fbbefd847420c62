// Token refresh through build/kinde.fcgi (plain CGI) against the fake provider: an access token that
// expires inside the app's 60 s refresh margin makes the next request refresh it, under the session lock.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeIdp } from '../lib/fakeidp.mjs';
import {
  makeApp, signIn, withSession, setCookie, isExpiredCookie, responseText, SESSION_COOKIE,
} from '../fakeidp/harness.mjs';

const CLIENT_ID = 'refresh-client-41b2';
const CLIENT_SECRET = 'SECRET-refresh-never-shown-0a1b2c3d4e5f';
const SHORT = 30;  // seconds: inside the app's 60 s refresh margin, so the next request refreshes

let fake;
const apps = [];

function newApp(issuer = fake.issuer, config = {}) {
  const a = makeApp({ issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, config });
  apps.push(a);
  return a;
}

// A fresh app signed in with a short-lived access token; returns {app, session, refreshToken}.
async function signedInShortLived(idp = fake, config = {}) {
  const app = newApp(idp.issuer, config);
  idp.setMode({ expiresIn: SHORT });
  const { res, session } = await signIn(app);
  assert.equal(res.status, 303, res.body + res.stderr);
  assert.ok(session);
  return { app, session, refreshToken: idp.issued.at(-1).refresh_token };
}

function assertSignedIn(res) {
  assert.equal(res.status, 200, res.body.slice(0, 300) + res.stderr);
  assert.match(res.body, /Ada Lovelace/);
  const sc = setCookie(res, SESSION_COOKIE);
  assert.ok(!isExpiredCookie(sc), `session cookie must not be expired: ${sc}`);
}

function assertSignedOut(res) {
  assert.equal(res.status, 200, res.body.slice(0, 300) + res.stderr);
  assert.match(res.body, /Sign in/);
  assert.doesNotMatch(res.body, /Ada Lovelace/);
  assert.ok(isExpiredCookie(setCookie(res, SESSION_COOKIE)), `session cookie expired: ${setCookie(res, SESSION_COOKIE)}`);
}

before(async () => {
  fake = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
});

after(async () => {
  for (const a of apps) a.cleanup();
  await fake.stop();
});

beforeEach(() => fake.resetMode());

test('a near-expired access token is refreshed once and the rotated refresh token is stored', async () => {
  const { app, session, refreshToken } = await signedInShortLived();
  const start = fake.grantsOf('refresh_token').length;
  fake.setMode({ refresh: 'rotate', refreshExpiresIn: SHORT });  // still short: the next request refreshes again

  assertSignedIn(await withSession(app, session));
  let grants = fake.grantsOf('refresh_token').slice(start);
  assert.equal(grants.length, 1, 'one refresh grant');
  assert.equal(grants[0].refresh_token, refreshToken, 'the first refresh presents the sign-in refresh token');
  const rotated = fake.issued.at(-1).refresh_token;
  assert.notEqual(rotated, refreshToken);

  // The fake has spent the old token: only the stored rotated one can work, and the app presents it.
  fake.setMode({ refreshExpiresIn: 3600 });
  assertSignedIn(await withSession(app, session));
  grants = fake.grantsOf('refresh_token').slice(start);
  assert.equal(grants.length, 2);
  assert.equal(grants[1].refresh_token, rotated, 'the second refresh presents the rotated token');

  // Now the access token is good for an hour: no more refreshes.
  assertSignedIn(await withSession(app, session));
  assert.equal(fake.grantsOf('refresh_token').length - start, 2, 'no refresh while the token is fresh');
});

test('a refresh answer without a new refresh token keeps the old one', async () => {
  const { app, session, refreshToken } = await signedInShortLived();
  const start = fake.grantsOf('refresh_token').length;
  fake.setMode({ refresh: 'same', refreshExpiresIn: SHORT });
  assertSignedIn(await withSession(app, session));
  assertSignedIn(await withSession(app, session));
  const grants = fake.grantsOf('refresh_token').slice(start);
  assert.equal(grants.length, 2);
  assert.deepEqual(grants.map((g) => g.refresh_token), [refreshToken, refreshToken]);
});

test('a refresh answered invalid_grant signs the user out and removes the session', async () => {
  const { app, session } = await signedInShortLived();
  const files = app.countSessions();
  fake.setMode({ refresh: 'invalid_grant' });
  const res = await withSession(app, session);
  assertSignedOut(res);
  assert.match(res.stderr, /invalid_grant/);
  assert.equal(app.countSessions(), files - 1, 'session file removed');
  // The same cookie stays signed out, and is not refreshed again.
  const grants = fake.grantsOf('refresh_token').length;
  const again = await withSession(app, session);
  assert.match(again.body, /Sign in/);
  assert.equal(fake.grantsOf('refresh_token').length, grants);
});

test('a refresh while the provider is down keeps the session and retries later', async () => {
  const own = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  try {
    const { app, session, refreshToken } = await signedInShortLived(own, { KINDE_REFRESH_RETRY_SECONDS: '2' });
    const port = own.port;
    await own.stop();
    const t0 = Date.now();
    const res = await withSession(app, session);
    assert.ok(Date.now() - t0 < 6000);
    assertSignedIn(res);
    assert.match(res.stderr, /refresh failed, keeping session/);
    assert.equal(app.countSessions() > 0, true);
    // Right after a failure the provider is not asked again: no request waits on a dead provider.
    const quick = await withSession(app, session);
    assertSignedIn(quick);
    assert.doesNotMatch(quick.stderr, /refresh failed/);
    await new Promise((r) => setTimeout(r, 3100));

    // Back up on the same port with the same keys and tokens: the next request refreshes with the kept token.
    await own.start(port);
    own.setMode({ refreshExpiresIn: 3600 });
    assertSignedIn(await withSession(app, session));
    const grants = own.grantsOf('refresh_token');
    assert.equal(grants.length, 1);
    assert.equal(grants[0].refresh_token, refreshToken);
  } finally {
    await own.stop();
  }
});

test('a refresh answered by a hanging provider keeps the session within the timeout', async () => {
  const { app, session } = await signedInShortLived();
  fake.setMode({ token: 'hang' });
  const t0 = Date.now();
  const res = await withSession(app, session);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 6000, `answered after ${elapsed} ms`);
  assertSignedIn(res);
});

test('a refreshed ID token for a different sub signs the user out', async () => {
  const { app, session } = await signedInShortLived();
  const files = app.countSessions();
  fake.setMode({ refresh: 'changed_sub' });
  const res = await withSession(app, session);
  assertSignedOut(res);
  assert.match(res.stderr, /changed iss or sub/);
  assert.equal(app.countSessions(), files - 1);
});

test('a refreshed ID token that fails verification signs the user out', async () => {
  const { app, session } = await signedInShortLived();
  fake.setMode({ idToken: 'bad_signature' });
  const res = await withSession(app, session);
  assertSignedOut(res);
  assert.match(res.stderr, /jwt_bad_signature/);
});

test('concurrent requests on a near-expired session cause exactly one refresh grant', async () => {
  const { app, session } = await signedInShortLived();
  const start = fake.grantsOf('refresh_token').length;
  // A slow provider makes the requests overlap while the first one holds the session lock.
  fake.setMode({ tokenDelayMs: 400, refreshExpiresIn: 3600 });
  const N = 6;
  const timed = async () => {
    const t0 = Date.now();
    const res = await withSession(app, session);
    return { res, ms: Date.now() - t0 };
  };
  const results = await Promise.all(Array.from({ length: N }, timed));
  for (const { res } of results) assertSignedIn(res);
  assert.equal(fake.grantsOf('refresh_token').length - start, 1, 'exactly one refresh grant');
  // The requests really overlapped the refresh: each one either made the slow grant or waited for the
  // lock held during it (a request arriving after the refresh would have been quick).
  for (const { ms } of results) assert.ok(ms >= 350, `a request took only ${ms} ms: it did not overlap the refresh`);
});

// Runs last: no response or log of the refresh tests above carried the client secret.
test('the client secret never appears in a response or log during refreshes', () => {
  let checked = 0;
  for (const a of apps) {
    for (const r of a.seen) {
      assert.ok(!responseText(r).includes(CLIENT_SECRET), `client secret leaked: ${r.status} ${r.stderr}`);
      checked += 1;
    }
  }
  assert.ok(checked > 20, `checked ${checked} responses`);
});
