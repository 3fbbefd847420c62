// Bearer tokens count only when issued to this app (RFC 9068 4, RFC 8725 3.9), and an ID token never counts:
// build/kinde.fcgi as plain CGI against the fake provider, at /api/me, /items/7 and in the FastCGI Authorizer role
// (FCGI_ROLE=AUTHORIZER, as lighttpd and mod_fcgid call it). Without KINDE_AUDIENCE only this app's own access
// tokens pass (azp = KINDE_CLIENT_ID); with it, any token whose aud holds it (an M2M app's). Also: one parser for
// the Bearer scheme, and an unknown kid costing one JWKS fetch a minute however many CGI processes meet it.
import { test, before, after, beforeEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeIdp } from '../lib/fakeidp.mjs';
import { makeApp, signIn, withSession } from '../fakeidp/harness.mjs';

const CLIENT_ID = 'binding-app-4d1e';
const CLIENT_SECRET = 'binding-secret-never-shown-1f2e3d';
const OTHER_APP = 'another-app-9c2b';      // another application of the same Kinde business
const M2M_ID = 'm2m-reporting-77aa';       // a machine-to-machine app of the same business
const M2M_SECRET = 'm2m-secret-5e6f7a8b';
const API = 'https://api.binding.example';
const OTHER_API = 'https://billing.binding.example';
const HTML = 'text/html,application/xhtml+xml,*/*;q=0.8';

let fake;
const apps = [];

function newApp(config = {}) {
  const a = makeApp({ issuer: fake.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, config });
  apps.push(a);
  return a;
}

// A real client_credentials grant at the fake provider, as an M2M app gets its token.
async function m2mToken(audience) {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (audience) form.set('audience', audience);
  const r = await fetch(`${fake.issuer}/oauth2/token`, {
    method: 'POST', body: form,
    headers: { authorization: `Basic ${Buffer.from(`${M2M_ID}:${M2M_SECRET}`).toString('base64')}` },
  });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));

// The three places a bearer token is checked, each with the token under `scheme`.
async function everywhere(app, token, { scheme = 'Bearer', accept } = {}) {
  const headers = { authorization: `${scheme} ${token}`, ...(accept ? { accept } : {}) };
  const me = await app.run({ path: '/api/me', headers });
  const items = await app.run({ path: '/items/7', headers });
  // The Authorizer role for a protected file that needs a permission every token below carries.
  const authz = await app.run({ path: '', scriptName: '/private/report.txt', headers,
    env: { FCGI_ROLE: 'AUTHORIZER', KINDE_REQUIRE_PERMISSION: 'read:items' } });
  return { me, items, authz };
}

async function assertAccepted(app, token, opts) {
  const r = await everywhere(app, token, opts);
  assert.equal(r.me.status, 200, `/api/me: ${r.me.body}\n${r.me.stderr}`);
  assert.equal(r.items.status, 200, `/items/7: ${r.items.body}\n${r.items.stderr}`);
  assert.equal(r.items.body, '{"item_id":7,"q":null}');
  assert.equal(r.authz.status, 200, `authorizer: ${r.authz.body}\n${r.authz.stderr}`);
  assert.equal(r.authz.headers['variable-kinde_permissions'], claimsOf(token).permissions.join(' '));
  return r;
}

async function assertRefused(app, token, code, opts) {
  const r = await everywhere(app, token, opts);
  for (const [where, res] of Object.entries(r)) {
    assert.equal(res.status, 401, `${where}: ${res.status} ${res.body}\n${res.stderr}`);
    assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', where);
    assert.equal(res.headers.location, undefined, `${where}: no sign-in redirect for a bearer call`);
    assert.match(res.headers['content-type'], /application\/json/, where);
    assert.ok(res.stderr.includes(code), `${where}: the log names ${code}: ${res.stderr}`);
    assert.ok(!res.body.includes(token), `${where}: the token is not echoed`);
  }
}

before(async () => {
  fake = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  fake.addClient(M2M_ID, M2M_SECRET);
});

after(async () => {
  for (const a of apps) a.cleanup();
  await fake.stop();
});

beforeEach(() => fake.resetMode());

describe('without KINDE_AUDIENCE: only tokens issued to this app', () => {
  let app;
  before(() => { app = newApp(); });

  test("this app's own access token passes everywhere", async () => {
    const own = fake.makeAccessToken({ expiresIn: 3600 });  // what the token endpoint hands this app
    assert.equal(claimsOf(own).azp, CLIENT_ID);
    await assertAccepted(app, own);
  });

  test("another application's ID token is refused everywhere", async () => {
    const foreignId = fake.makeIdToken({ nonce: 'their-nonce', clientId: OTHER_APP });
    await assertRefused(app, foreignId, 'token_is_id_token');
  });

  test("another M2M app's token is refused everywhere, whatever its permissions", async () => {
    for (const audience of [OTHER_API, undefined]) {
      const token = await m2mToken(audience);
      assert.equal(claimsOf(token).azp, M2M_ID);
      assert.ok(claimsOf(token).permissions.includes('read:items'), 'it would satisfy KINDE_REQUIRE_PERMISSION');
      await assertRefused(app, token, 'token_bad_azp');
    }
  });

  test("another app's access token is refused everywhere", async () => {
    await assertRefused(app, fake.mintAccessToken({ clientId: OTHER_APP }), 'token_bad_azp');
    // A token naming no client at all.
    await assertRefused(app, fake.mintAccessToken({ extra: { azp: undefined } }), 'token_no_azp');
  });

  test("this app's own ID token is refused everywhere, also the one a sign-out put in the logout URL", async () => {
    await assertRefused(app, fake.makeIdToken({ nonce: 'n-1' }), 'token_is_id_token');
    const { session } = await signIn(app);
    assert.ok(session);
    const out = await withSession(app, session, '/logout');
    const hint = new URL(out.headers.location).searchParams.get('id_token_hint');
    assert.ok(hint && hint.split('.').length === 3, 'the logout URL carries the ID token');
    await assertRefused(app, hint, 'token_is_id_token');
    // A refreshed ID token without nonce is still an ID token (auth_time, at_hash, aud = this client).
    await assertRefused(app, fake.makeIdToken({}), 'token_is_id_token');
  });
});

describe('with KINDE_AUDIENCE: tokens for that API', () => {
  let app;
  before(() => { app = newApp({ KINDE_AUDIENCE: API }); });

  test('an M2M token for KINDE_AUDIENCE passes everywhere', async () => {
    const token = await m2mToken(API);
    assert.deepEqual(claimsOf(token).aud, [API]);
    const r = await assertAccepted(app, token);
    assert.equal(JSON.parse(r.me.body).type, 'machine');
  });

  test("this app's own access token for the API passes everywhere", async () => {
    await assertAccepted(app, fake.mintAccessToken({ audience: [API] }));
  });

  test("another API's M2M token and ID tokens are refused everywhere", async () => {
    await assertRefused(app, await m2mToken(OTHER_API), 'token_bad_aud');
    await assertRefused(app, await m2mToken(undefined), 'token_bad_aud');
    // The audience does not reopen the door to ID tokens: neither another app's nor this app's own.
    await assertRefused(app, fake.makeIdToken({ nonce: 'x', clientId: OTHER_APP }), 'token_is_id_token');
    await assertRefused(app, fake.makeIdToken({ nonce: 'y' }), 'token_is_id_token');
  });
});

test('the Bearer scheme is read the same way by the API, the authorizer and the JSON-or-HTML choice', async () => {
  const app = newApp();
  const own = fake.makeAccessToken({ expiresIn: 3600 });
  for (const scheme of ['bearer', 'BEARER', 'Bearer ']) {
    await assertAccepted(app, own, { scheme, accept: HTML });
    // Not a JWT: an opaque token, and the fake provider lists no introspection_endpoint to ask.
    await assertRefused(app, 'not-a-jwt', 'token_opaque', { scheme, accept: HTML });
    await assertRefused(app, 'not.a.jwt', 'jwt_malformed', { scheme, accept: HTML });
    // Any path: an API client gets JSON errors, a browser HTML pages.
    const missing = await app.run({ path: '/no-such-page', headers: { authorization: `${scheme} ${own}`, accept: HTML } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body, '{"detail":"Not Found"}', `${scheme}: ${missing.body.slice(0, 80)}`);
  }
  // "Bearer" with no token is a bearer call with an invalid token, never a fall back to the browser path.
  const empty = await app.run({ path: '', scriptName: '/private/report.txt', env: { FCGI_ROLE: 'AUTHORIZER' },
    headers: { authorization: 'Bearer', accept: HTML } });
  assert.equal(empty.status, 401);
  assert.equal(empty.headers['www-authenticate'], 'Bearer error="invalid_token"');
  assert.ok(empty.stderr.includes('bearer_empty'), empty.stderr);
  // Another scheme is not a bearer call: a browser is sent to sign in, a page is HTML.
  const basic = await app.run({ path: '', scriptName: '/private/report.txt', env: { FCGI_ROLE: 'AUTHORIZER' },
    headers: { authorization: 'Basic dXNlcjpwYXNz', accept: HTML } });
  assert.equal(basic.status, 302);
  const page = await app.run({ path: '/no-such-page', headers: { authorization: 'Basic dXNlcjpwYXNz', accept: HTML } });
  assert.match(page.headers['content-type'], /text\/html/);
});

test('several CGI processes meeting an unknown kid cause one JWKS fetch within a minute', async () => {
  const app = newApp();
  const own = fake.makeAccessToken({ expiresIn: 3600 });
  const primed = await app.run({ path: '/api/me', headers: { authorization: `Bearer ${own}` } });
  assert.equal(primed.status, 200, primed.body);  // discovery and keys now in the shared provider cache
  const jwks = () => fake.countRequests('/.well-known/jwks');
  const before0 = jwks();
  const stray = fake.mintAccessToken({ stray: true });  // signed by a key the JWKS never lists
  const call = () => app.run({ path: '/api/me', headers: { authorization: `Bearer ${stray}` } });
  const burst = await Promise.all(Array.from({ length: 6 }, call));
  for (const r of burst) {
    assert.equal(r.status, 401, r.body);
    assert.ok(r.stderr.includes('jwt_unknown_kid'), r.stderr);
  }
  for (let i = 0; i < 3; i += 1) assert.equal((await call()).status, 401);
  assert.equal(jwks() - before0, 1, 'one forced JWKS fetch for nine processes');
  // The key set still works for good tokens, without another fetch.
  assert.equal((await app.run({ path: '/items/7', headers: { authorization: `Bearer ${own}` } })).status, 200);
  assert.equal(jwks() - before0, 1);
});
