// What the app trusts the provider's metadata and token answers with: build/kinde.fcgi as plain CGI (and
// --check-config) against the fake provider. A discovery document naming an endpoint on another host gets a 503
// page, a clear --check-config line, and not one request to that host, unless KINDE_TRUSTED_HOSTS names it.
// Sign-out revokes the refresh token at the revocation endpoint (RFC 7009) with the token endpoint's client
// authentication, and a failing or hanging revocation endpoint never holds the sign-out. A token answer with
// token_type in capitals is accepted; one without expires_in takes the access token's exp.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { binary } from '../lib/cgi.mjs';
import { startFakeIdp } from '../lib/fakeidp.mjs';
import { makeApp, signIn, withSession, setCookie, isExpiredCookie, SESSION_COOKIE } from '../fakeidp/harness.mjs';

const CLIENT_ID = 'trust-client-2a7c';
const CLIENT_SECRET = 'SECRET-trust-never-shown-6b5a4c3d';

let fake;
const apps = [];

function newApp(config = {}) {
  const a = makeApp({ issuer: fake.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, config });
  apps.push(a);
  return a;
}

function checkConfig(app, env = {}) {
  return new Promise((resolve) => {
    execFile(binary, ['--check-config'], { env: { PATH: process.env.PATH, KINDE_CONFIG: app.configPath, ...env },
      timeout: 20000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

before(async () => {
  fake = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
});

after(async () => {
  for (const a of apps) a.cleanup();
  await fake.stop();
});

beforeEach(() => fake.resetMode());

// The same fake provider under another host name: a request there is a request to a foreign host.
const foreignHost = () => `localhost:${fake.port}`;
const requestsTo = (host) => fake.requests.filter((r) => r.host === host);

test('a discovery document naming a token endpoint on another host: 503, --check-config says why, no request there', async () => {
  fake.setMode({ discoveryOverrides: { token_endpoint: `http://${foreignHost()}/oauth2/token` } });
  const app = newApp();
  const login = await app.run({ path: '/login' });
  assert.equal(login.status, 503, login.body);
  assert.equal(login.headers.location, undefined, 'no redirect to the provider');
  assert.match(login.body, /Sign-in is unavailable/);
  assert.ok(login.stderr.includes('discovery_foreign_endpoint'), login.stderr);
  assert.equal(app.countSessions(), 0);
  // The callback (the step that would send the secret, the code and the PKCE verifier) and the API alike.
  const callback = await app.run({ path: '/callback', query: 'code=c&state=' + 'A'.repeat(43) });
  assert.notEqual(callback.status, 200);
  const api = await app.run({ path: '/api/me', headers: { authorization: `Bearer ${fake.makeAccessToken({ expiresIn: 60 })}` } });
  assert.equal(api.status, 401);

  const check = await checkConfig(app);
  assert.equal(check.code, 1, check.stdout);
  assert.match(check.stdout, /FAIL {2}discovery .*token_endpoint 'http:\/\/localhost:\d+\/oauth2\/token' is on host localhost, not the issuer's host 127\.0\.0\.1/);
  assert.match(check.stdout, /KINDE_TRUSTED_HOSTS/);
  assert.ok(!check.stdout.includes(CLIENT_SECRET));
  assert.deepEqual(requestsTo(foreignHost()), [], 'the foreign host saw no request at all');
});

test('every endpoint the app calls or sends the browser to is checked, not only the token endpoint', async () => {
  for (const name of ['authorization_endpoint', 'jwks_uri', 'revocation_endpoint', 'end_session_endpoint', 'userinfo_endpoint']) {
    fake.setMode({ discoveryOverrides: { [name]: `http://${foreignHost()}/x` } });
    const app = newApp();
    const login = await app.run({ path: '/login' });
    assert.equal(login.status, 503, `${name}: ${login.status}`);
    assert.ok(login.stderr.includes('discovery_foreign_endpoint'), `${name}: ${login.stderr}`);
  }
  assert.deepEqual(requestsTo(foreignHost()), []);
});

test('KINDE_TRUSTED_HOSTS lets the provider use another host of its own', async () => {
  fake.setMode({ discoveryOverrides: { token_endpoint: `http://${foreignHost()}/oauth2/token` } });
  const app = newApp({ KINDE_TRUSTED_HOSTS: 'auth.example.com, localhost' });
  const check = await checkConfig(app);
  assert.equal(check.code, 0, check.stdout);
  assert.match(check.stdout, /provider endpoints may also be on: auth\.example\.com, localhost/);
  const { res, session } = await signIn(app);
  assert.equal(res.status, 303, res.body + res.stderr);
  assert.ok(session);
  const grants = requestsTo(foreignHost()).filter((r) => r.path === '/oauth2/token');
  assert.equal(grants.length, 1, 'the code went to the trusted token endpoint');
});

test('sign-out revokes the refresh token with client authentication, then redirects', async () => {
  for (const [auth, basic] of [['client_secret_basic', true], ['client_secret_post', false]]) {
    const app = newApp({ KINDE_TOKEN_AUTH: auth });
    const { session } = await signIn(app);
    const refreshToken = fake.issued.at(-1).refresh_token;
    const before0 = fake.revocations.length;
    const out = await withSession(app, session, '/logout');
    assert.equal(out.status, 303, out.body + out.stderr);
    assert.ok(out.headers.location.startsWith(`${fake.issuer}/logout?`));
    assert.equal(fake.revocations.length, before0 + 1, `${auth}: one revocation`);
    const rev = fake.revocations.at(-1);
    assert.equal(rev.method, 'POST');
    assert.equal(rev.token, refreshToken);
    assert.equal(rev.token_type_hint, 'refresh_token');
    assert.equal(rev.client, CLIENT_ID, `${auth}: the client authenticated`);
    assert.equal(rev.basic_auth, basic, auth);
    assert.equal(fake.refreshTokens.get(refreshToken).valid, false, 'the provider revoked it');
    assert.ok(!out.stderr.includes(refreshToken), 'the refresh token is not logged');
  }
});

test('a revocation endpoint that hangs or fails never holds or blocks the sign-out', async () => {
  for (const revocation of ['hang', 'http_500']) {
    // A long HTTP timeout: the revocation has its own short one.
    const app = newApp({ KINDE_HTTP_TIMEOUT_MS: '10000', KINDE_HTTP_CONNECT_TIMEOUT_MS: '3000' });
    const { session } = await signIn(app);
    assert.equal(app.countSessions(), 1);
    fake.setMode({ revocation });
    const before0 = fake.revocations.length;
    const t0 = Date.now();
    const out = await withSession(app, session, '/logout');
    const elapsed = Date.now() - t0;
    assert.equal(out.status, 303, `${revocation}: ${out.body}`);
    assert.ok(elapsed < 4500, `${revocation}: sign-out took ${elapsed} ms`);
    assert.ok(isExpiredCookie(setCookie(out, SESSION_COOKIE)));
    assert.equal(app.countSessions(), 0, 'the session is gone');
    assert.equal(fake.revocations.length, before0 + 1, 'the revocation was attempted');
    assert.match(out.stderr, /refresh token not revoked at sign-out: revocation_failed/);
    const home = await withSession(app, session, '/');
    assert.match(home.body, /Sign in/);
    fake.resetMode();
  }
});

test('without a revocation_endpoint in discovery, sign-out sends none', async () => {
  fake.setMode({ revocation: 'absent' });
  const app = newApp();
  const { session } = await signIn(app);
  const before0 = fake.revocations.length;
  const out = await withSession(app, session, '/logout');
  assert.equal(out.status, 303);
  assert.equal(fake.revocations.length, before0);
  assert.equal(fake.countRequests('/oauth2/revoke'), before0);
});

test('token_type is compared case-insensitively (RFC 6749 5.1)', async () => {
  fake.setMode({ tokenType: 'BEARER' });
  const app = newApp();
  const upper = await signIn(app);
  assert.equal(upper.res.status, 303, upper.res.body + upper.res.stderr);
  assert.ok(upper.session);
});

test('a token answer without expires_in takes the access token exp for the session refresh', async () => {
  const app = newApp();
  // No expires_in; the access token expires in 30 s, inside the 60 s refresh margin: the next request refreshes.
  fake.setMode({ expiresIn: null, accessTokenTtl: 30 });
  const { res, session } = await signIn(app);
  assert.equal(res.status, 303, res.body + res.stderr);
  assert.equal(fake.issued.at(-1).expires_in, undefined, 'the answer had no expires_in');
  const refreshes = fake.grantsOf('refresh_token').length;
  fake.setMode({ accessTokenTtl: null, refreshExpiresIn: 3600 });
  const home = await withSession(app, session, '/');
  assert.equal(home.status, 200);
  assert.equal(fake.grantsOf('refresh_token').length, refreshes + 1, 'refreshed before the access token expired');
});
