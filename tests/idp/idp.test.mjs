// Tests of the local stand-in for Kinde (tests/idp/server.mjs) and of the
// helpers other tests use with it (tests/lib/*.mjs). Each test starts its own
// provider on a free port with its own key directory, plus a tiny relying
// party written here (PKCE, state, nonce, client_secret_basic) playing "the
// app". Run: cd tests && node --test idp/

import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { subFor } from './accounts.mjs';
import {
  CookieJar, browse, clientCredentialsToken, parseForms, signIn, signOut,
} from '../lib/idp-client.mjs';
import { startIdp } from '../lib/idp-process.mjs';

const CLIENT_ID = 'rp-under-test';
const CLIENT_SECRET = 'rp-under-test-secret-0123456789';
const M2M_ID = 'm2m-under-test';
const M2M_SECRET = 'm2m-under-test-secret-0123456789';

// ------------------------------------------------------------ JWT helpers

function decodeJwt(token) {
  const [h, p, s] = token.split('.');
  assert.ok(h && p && s, `not a JWS compact token: ${token}`);
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

async function fetchJson(url, init) {
  const response = await fetch(url, init);
  return { status: response.status, json: await response.json() };
}

// Verifies an RS256 JWT against the provider's JWKS; returns its payload.
async function verifyJwt(token, issuer) {
  const jwt = decodeJwt(token);
  assert.equal(jwt.header.alg, 'RS256');
  const { json: jwks } = await fetchJson(`${issuer}/.well-known/jwks`);
  const jwk = jwks.keys.find((k) => k.kid === jwt.header.kid);
  assert.ok(jwk, `kid ${jwt.header.kid} not in JWKS`);
  const ok = cryptoVerify('RSA-SHA256', Buffer.from(jwt.signingInput),
    createPublicKey({ key: jwk, format: 'jwk' }), jwt.signature);
  assert.equal(ok, true, 'signature does not verify');
  return jwt.payload;
}

// ------------------------------------------------------------ stand-in RP

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// A minimal relying party: /login, /callback, /home, /logout, /bye.
async function startRelyingParty() {
  const pending = new Map(); // state -> {nonce, verifier}
  const sessions = new Map(); // session id -> token response
  const rp = {
    issuer: undefined,
    discovery: undefined,
    sessions,
    lastTokenResponse: undefined,
    callbackErrors: [],
  };

  const server = createServer(async (req, res) => {
    try {
      await route(req, res);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err.stack ?? err));
    }
  });

  const cookiesOf = (req) => Object.fromEntries((req.headers.cookie ?? '').split(';')
    .map((c) => c.trim()).filter(Boolean).map((c) => [c.slice(0, c.indexOf('=')), c.slice(c.indexOf('=') + 1)]));

  async function route(req, res) {
    const url = new URL(req.url, rp.base);
    if (url.pathname === '/login') {
      const state = b64url(randomBytes(16));
      const nonce = b64url(randomBytes(16));
      const verifier = b64url(randomBytes(32));
      pending.set(state, { nonce, verifier });
      const auth = new URL(rp.discovery.authorization_endpoint);
      auth.search = new URLSearchParams({
        response_type: 'code',
        client_id: CLIENT_ID,
        redirect_uri: `${rp.base}/callback`,
        scope: url.searchParams.get('scope') ?? 'openid profile email offline',
        state,
        nonce,
        code_challenge: b64url(createHash('sha256').update(verifier).digest()),
        code_challenge_method: 'S256',
      }).toString();
      for (const extra of ['prompt', 'org_code', 'is_create_org', 'org_name', 'login_hint', 'lang']) {
        if (url.searchParams.has(extra)) auth.searchParams.set(extra, url.searchParams.get(extra));
      }
      if (url.searchParams.get('no_pkce') === '1') {
        auth.searchParams.delete('code_challenge');
        auth.searchParams.delete('code_challenge_method');
      }
      res.writeHead(302, {
        location: auth.href,
        'set-cookie': `rp_state=${state}; Path=/; HttpOnly; SameSite=Lax`,
      });
      res.end();
      return;
    }
    if (url.pathname === '/callback') {
      const q = url.searchParams;
      if (q.has('error')) {
        rp.callbackErrors.push(Object.fromEntries(q));
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`error: ${q.get('error')}`);
        return;
      }
      const state = q.get('state');
      const flow = pending.get(state);
      if (!flow || cookiesOf(req).rp_state !== state) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('bad state');
        return;
      }
      pending.delete(state);
      if (q.get('iss') !== rp.issuer) throw new Error(`iss parameter ${q.get('iss')} != ${rp.issuer}`);
      const basic = Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64');
      const tokenRes = await fetch(rp.discovery.token_endpoint, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: q.get('code'),
          redirect_uri: `${rp.base}/callback`,
          code_verifier: flow.verifier,
        }),
      });
      const tokens = await tokenRes.json();
      if (!tokenRes.ok) throw new Error(`token endpoint: ${JSON.stringify(tokens)}`);
      const sid = b64url(randomBytes(32));
      sessions.set(sid, { ...tokens, expectedNonce: flow.nonce });
      rp.lastTokenResponse = { ...tokens, expectedNonce: flow.nonce, sid };
      res.writeHead(302, {
        location: '/home',
        'set-cookie': [
          `kinde_fcgi_session=${sid}; Path=/; HttpOnly; SameSite=Lax`,
          'rp_state=; Path=/; Max-Age=0',
        ],
      });
      res.end();
      return;
    }
    if (url.pathname === '/home') {
      const session = sessions.get(cookiesOf(req).kinde_fcgi_session);
      if (!session) {
        res.writeHead(401, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<h1>Signed out</h1>');
        return;
      }
      const claims = decodeJwt(session.id_token).payload;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<h1 id="who">Hello ${claims.name}</h1>`);
      return;
    }
    if (url.pathname === '/logout') {
      const sid = cookiesOf(req).kinde_fcgi_session;
      const session = sessions.get(sid);
      sessions.delete(sid);
      const end = new URL(rp.discovery.end_session_endpoint);
      if (url.searchParams.get('style') === 'oidc' && session) {
        end.searchParams.set('id_token_hint', session.id_token);
        end.searchParams.set('post_logout_redirect_uri', `${rp.base}/bye`);
        end.searchParams.set('state', 'logout-state-1');
      } else {
        end.searchParams.set('redirect', `${rp.base}/bye`); // Kinde's form
      }
      res.writeHead(302, {
        location: end.href,
        'set-cookie': 'kinde_fcgi_session=; Path=/; Max-Age=0',
      });
      res.end();
      return;
    }
    if (url.pathname === '/bye') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<h1>Bye</h1><p id="state">${url.searchParams.get('state') ?? ''}</p>`);
      return;
    }
    res.writeHead(404);
    res.end();
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  rp.base = `http://127.0.0.1:${server.address().port}`;
  rp.close = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  });
  return rp;
}

// Starts an RP and a provider that knows it; stops both when the test ends,
// whether it passed or not.
async function world(t, env = {}) {
  const keyDir = await mkdtemp(join(tmpdir(), 'idp-test-'));
  t.after(() => rm(keyDir, { recursive: true, force: true }));
  const rp = await startRelyingParty();
  t.after(() => rp.close());
  const idp = await startIdp({
    IDP_CLIENT_ID: CLIENT_ID,
    IDP_CLIENT_SECRET: CLIENT_SECRET,
    IDP_M2M_CLIENT_ID: M2M_ID,
    IDP_M2M_CLIENT_SECRET: M2M_SECRET,
    IDP_REDIRECT_URIS: `${rp.base}/callback`,
    IDP_POST_LOGOUT_REDIRECT_URIS: `${rp.base}/bye`,
    IDP_KEY_FILE: join(keyDir, 'key.json'),
    ...env,
  });
  t.after(() => idp.stop());
  rp.issuer = idp.issuer;
  rp.discovery = (await fetchJson(`${idp.issuer}/.well-known/openid-configuration`)).json;
  return { rp, idp, keyDir };
}

async function tokenRequest(rp, params, { auth = 'basic' } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const body = new URLSearchParams(params);
  if (auth === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
  } else {
    body.set('client_id', CLIENT_ID);
    body.set('client_secret', CLIENT_SECRET);
  }
  return fetchJson(rp.discovery.token_endpoint, { method: 'POST', headers, body });
}

// ------------------------------------------------------------ tests

test('discovery uses Kinde-shaped endpoints under an http issuer without trailing slash', async (t) => {
  const { idp, rp } = await world(t);
  assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(idp.port, Number(new URL(idp.issuer).port));
  const d = rp.discovery;
  assert.equal(d.issuer, idp.issuer);
  assert.equal(d.authorization_endpoint, `${idp.issuer}/oauth2/auth`);
  assert.equal(d.token_endpoint, `${idp.issuer}/oauth2/token`);
  assert.equal(d.end_session_endpoint, `${idp.issuer}/logout`);
  assert.equal(d.jwks_uri, `${idp.issuer}/.well-known/jwks`);
  assert.equal(d.userinfo_endpoint, `${idp.issuer}/oauth2/v2/user_profile`);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  assert.ok(d.scopes_supported.includes('offline'));
  const alias = await fetchJson(`${idp.issuer}/.well-known/jwks.json`);
  assert.equal(alias.status, 200);
  assert.equal(alias.json.keys.length, 1);
  assert.equal(alias.json.keys[0].d, undefined, 'private key material must not be published');
});

test('code flow for alice yields a signed ID token with nonce and profile claims, a Kinde access token and a refresh token', async (t) => {
  const { rp, idp } = await world(t, { IDP_ACCESS_TTL: '120', IDP_ID_TTL: '60' });
  const result = await signIn(rp.base, 'alice');
  assert.equal(result.status, 200, result.body);
  assert.equal(result.finalUrl, `${rp.base}/home`);
  assert.match(result.body, /Hello Alice Liddell/);
  assert.ok(result.cookies.kinde_fcgi_session, 'the app session cookie is returned');
  assert.equal(result.cookies.rp_state, undefined, 'a cookie the app deleted is gone');
  assert.equal(result.cookieHeader, `kinde_fcgi_session=${result.cookies.kinde_fcgi_session}`);
  assert.ok(!('idp_session' in result.cookies), 'provider cookies are not the app\'s');

  const tokens = rp.lastTokenResponse;
  assert.equal(tokens.token_type, 'Bearer');
  assert.equal(typeof tokens.refresh_token, 'string');

  const id = await verifyJwt(tokens.id_token, idp.issuer);
  assert.equal(id.iss, idp.issuer);
  assert.equal(id.aud, CLIENT_ID);
  assert.equal(id.sub, subFor('alice'));
  assert.match(id.sub, /^kp_[0-9a-f]{32}$/);
  assert.equal(id.nonce, tokens.expectedNonce);
  assert.equal(id.given_name, 'Alice');
  assert.equal(id.family_name, 'Liddell');
  assert.equal(id.name, 'Alice Liddell');
  assert.equal(id.email, 'alice@example.com');
  assert.equal(id.picture, 'https://images.example.com/avatars/alice.png');
  assert.deepEqual(id.org_codes, ['org_123', 'org_456']);
  assert.equal(typeof id.auth_time, 'number');
  assert.equal(id.exp - id.iat, 60);

  const at = await verifyJwt(tokens.access_token, idp.issuer);
  assert.equal(at.iss, idp.issuer);
  assert.equal(at.sub, id.sub);
  assert.deepEqual(at.aud, [`${idp.issuer}/api`]);
  assert.equal(at.azp, CLIENT_ID);
  assert.equal(at.exp - at.iat, 120);
  assert.equal(typeof at.jti, 'string');
  assert.deepEqual([...at.scp].sort(), ['email', 'offline', 'openid', 'profile']);
  assert.deepEqual(at.permissions, ['read:items', 'write:items']);
  assert.equal(at.org_code, 'org_123');
  assert.deepEqual(at.feature_flags, {
    theme: { t: 's', v: 'pink' },
    is_dark_mode: { t: 'b', v: true },
    competitions_limit: { t: 'i', v: 5 },
  });
  assert.deepEqual(at.roles, [{ id: 'role_01a1', key: 'admin', name: 'Admin' }]);

  const profile = await fetchJson(rp.discovery.userinfo_endpoint, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  });
  assert.equal(profile.status, 200);
  assert.equal(profile.json.id, id.sub);
  assert.equal(profile.json.family_name, 'Liddell');
  const forged = `${tokens.access_token.slice(0, -4)}AAAA`;
  const refused = await fetch(rp.discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${forged}` } });
  assert.equal(refused.status, 401);
});

test('refresh rotates the refresh token and refuses the old one afterwards', async (t) => {
  const { rp, idp } = await world(t);
  await signIn(rp.base, 'alice');
  const first = rp.lastTokenResponse.refresh_token;

  const r1 = await tokenRequest(rp, { grant_type: 'refresh_token', refresh_token: first });
  assert.equal(r1.status, 200, JSON.stringify(r1.json));
  assert.equal(typeof r1.json.refresh_token, 'string');
  assert.notEqual(r1.json.refresh_token, first);
  const at = await verifyJwt(r1.json.access_token, idp.issuer);
  assert.equal(at.sub, subFor('alice'));
  assert.deepEqual(at.permissions, ['read:items', 'write:items']);
  const id = await verifyJwt(r1.json.id_token, idp.issuer);
  assert.equal(id.given_name, 'Alice');

  // oidc-provider treats reuse of a rotated token as replay: invalid_grant,
  // and it revokes the whole grant (so the new token dies too). Kinde keeps
  // a short overlap instead; an RP must store the newest token either way.
  const reuse = await tokenRequest(rp, { grant_type: 'refresh_token', refresh_token: first });
  assert.equal(reuse.status, 400);
  assert.equal(reuse.json.error, 'invalid_grant');
  const after = await tokenRequest(rp, { grant_type: 'refresh_token', refresh_token: r1.json.refresh_token });
  assert.equal(after.json.error, 'invalid_grant');
});

test('client_secret_post is accepted as well as client_secret_basic', async (t) => {
  const { rp } = await world(t);
  await signIn(rp.base, 'alice');
  const r = await tokenRequest(rp, {
    grant_type: 'refresh_token', refresh_token: rp.lastTokenResponse.refresh_token,
  }, { auth: 'post' });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const wrong = await fetchJson(rp.discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token', refresh_token: r.json.refresh_token, client_id: CLIENT_ID, client_secret: 'wrong',
    }),
  });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.error, 'invalid_client');
});

test('without the offline scope no refresh token is issued', async (t) => {
  const { rp } = await world(t);
  await signIn(rp.base, 'alice', { path: '/login?scope=openid%20profile%20email' });
  assert.equal(typeof rp.lastTokenResponse.access_token, 'string');
  assert.equal(rp.lastTokenResponse.refresh_token, undefined);
});

test('plato has a given name and no family_name claim at all', async (t) => {
  const { rp, idp } = await world(t);
  await signIn(rp.base, 'plato');
  const id = await verifyJwt(rp.lastTokenResponse.id_token, idp.issuer);
  assert.equal(id.given_name, 'Plato');
  assert.equal(id.name, 'Plato');
  assert.equal('family_name' in id, false);
  assert.equal('picture' in id, false);
});

test('zoe\'s non-ASCII names arrive intact in the ID token, the access token and the profile', async (t) => {
  const { rp, idp } = await world(t);
  const result = await signIn(rp.base, 'zoe');
  assert.match(result.body, /Hello Zoë Łukasiewicz-Ørsted/);
  const id = await verifyJwt(rp.lastTokenResponse.id_token, idp.issuer);
  assert.equal(id.given_name, 'Zoë');
  assert.equal(id.family_name, 'Łukasiewicz-Ørsted');
  assert.equal(id.name, 'Zoë Łukasiewicz-Ørsted');
  const at = await verifyJwt(rp.lastTokenResponse.access_token, idp.issuer);
  assert.equal(at.org_name, 'Ørsted & Søn — Göteborg');
  assert.equal(at.feature_flags.greeting.v, 'Hej, Zoë! 👋');
  const profile = await fetchJson(rp.discovery.userinfo_endpoint, {
    headers: { authorization: `Bearer ${rp.lastTokenResponse.access_token}` },
  });
  assert.equal(profile.json.family_name, 'Łukasiewicz-Ørsted');
});

test('nobody has no permissions, no organisation and no flags; an unknown login gets only a given name', async (t) => {
  const { rp, idp } = await world(t);
  await signIn(rp.base, 'nobody');
  const at = await verifyJwt(rp.lastTokenResponse.access_token, idp.issuer);
  assert.deepEqual(at.permissions, []);
  assert.equal('org_code' in at, false);
  assert.deepEqual(at.feature_flags, {});
  const id = await verifyJwt(rp.lastTokenResponse.id_token, idp.issuer);
  assert.deepEqual(id.org_codes, []);

  await signIn(rp.base, 'grace');
  const id2 = await verifyJwt(rp.lastTokenResponse.id_token, idp.issuer);
  assert.equal(id2.sub, subFor('grace'));
  assert.notEqual(id2.sub, subFor('nobody'));
  assert.equal(id2.given_name, 'grace');
  assert.equal('family_name' in id2, false);
  assert.equal(id2.email, 'grace@example.test');
});

test('prompt=create shows the sign-up form; org_code and is_create_org pick the token\'s organisation', async (t) => {
  const { rp, idp } = await world(t);
  const jar = new CookieJar();
  const page = await browse(`${rp.base}/login?prompt=create&lang=en&login_hint=alice`, jar);
  assert.equal(page.status, 200);
  assert.match(page.body, /Create your account/);
  const form = parseForms(page.body).find((f) => f.inputs.some(([n]) => n === 'login'));
  assert.ok(form, 'sign-up page has the login form');
  assert.deepEqual(form.inputs.find(([n]) => n === 'login').slice(0, 2), ['login', 'alice']);

  await signIn(rp.base, 'alice', { path: '/login?org_code=org_456' });
  let at = decodeJwt(rp.lastTokenResponse.access_token).payload;
  assert.equal(at.org_code, 'org_456');

  await signIn(rp.base, 'alice', { path: '/login?org_code=org_not_mine' });
  at = decodeJwt(rp.lastTokenResponse.access_token).payload;
  assert.equal(at.org_code, 'org_123', 'an organisation the user is not in falls back to the default');

  await signIn(rp.base, 'plato', { path: '/login?is_create_org=true&org_name=Academy%20of%20Athens' });
  at = await verifyJwt(rp.lastTokenResponse.access_token, idp.issuer);
  assert.match(at.org_code, /^org_[0-9a-f]{11}$/);
  assert.equal(at.org_name, 'Academy of Athens');
  const id = decodeJwt(rp.lastTokenResponse.id_token).payload;
  assert.ok(id.org_codes.includes(at.org_code));
});

test('PKCE is required: an authorization request without code_challenge is refused', async (t) => {
  const { rp } = await world(t);
  const page = await browse(`${rp.base}/login?no_pkce=1`, new CookieJar());
  assert.equal(page.status, 400);
  assert.equal(rp.callbackErrors.length, 1);
  assert.equal(rp.callbackErrors[0].error, 'invalid_request');
  assert.match(rp.callbackErrors[0].error_description, /PKCE/);
});

test('an unregistered redirect_uri gets an error page, not a redirect', async (t) => {
  const { rp } = await world(t);
  const auth = new URL(rp.discovery.authorization_endpoint);
  auth.search = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: 'http://127.0.0.1:1/evil',
    scope: 'openid', state: 's', nonce: 'n', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
  }).toString();
  const response = await fetch(auth, { redirect: 'manual' });
  assert.equal(response.status, 400);
  assert.equal(response.headers.get('location'), null);
});

test('client credentials yield a JWT for the API audience with the machine claims', async (t) => {
  const { idp } = await world(t);
  const token = await clientCredentialsToken(idp.issuer, M2M_ID, M2M_SECRET, `${idp.issuer}/api`);
  const at = await verifyJwt(token, idp.issuer);
  assert.deepEqual(at.aud, [`${idp.issuer}/api`]);
  assert.equal(at.sub, M2M_ID);
  assert.equal(at.azp, M2M_ID);
  assert.deepEqual(at.gty, ['client_credentials']);
  assert.deepEqual(at.permissions, ['read:items']);
  assert.deepEqual(at.feature_flags, { api_rate_limit: { t: 'i', v: 100 } });
  assert.equal(at.given_name, undefined);

  const defaulted = decodeJwt(await clientCredentialsToken(idp.issuer, M2M_ID, M2M_SECRET)).payload;
  assert.deepEqual(defaulted.aud, [`${idp.issuer}/api`]);
  await assert.rejects(clientCredentialsToken(idp.issuer, M2M_ID, 'wrong'), /invalid_client/);
  await assert.rejects(clientCredentialsToken(idp.issuer, M2M_ID, M2M_SECRET, 'https://other.example/api'),
    /invalid_target/);
});

test('IDP_AUDIENCE sets the audience of user and machine tokens', async (t) => {
  const { rp, idp } = await world(t, { IDP_AUDIENCE: 'https://api.example.com' });
  await signIn(rp.base, 'alice');
  assert.deepEqual(decodeJwt(rp.lastTokenResponse.access_token).payload.aud, ['https://api.example.com']);
  const m2m = decodeJwt(await clientCredentialsToken(idp.issuer, M2M_ID, M2M_SECRET)).payload;
  assert.deepEqual(m2m.aud, ['https://api.example.com']);
});

test('Kinde-style logout (?redirect=) returns to the app without a confirmation page and ends the provider session', async (t) => {
  const { rp } = await world(t);
  const { jar } = await signIn(rp.base, 'alice');
  // Still signed in at the provider: a second login needs no form.
  const sso = await browse(`${rp.base}/login`, jar);
  assert.equal(sso.url, `${rp.base}/home`);

  const out = await signOut(rp.base, jar);
  assert.equal(out.finalUrl, `${rp.base}/bye`);
  assert.equal(out.status, 200);
  assert.ok(!out.hops.some((h) => h.includes('/logout/confirm') && h.startsWith('GET')));
  assert.ok(out.hops.some((h) => h.startsWith('POST') && h.includes('/logout/confirm')),
    `the logout page submits itself: ${out.hops.join(' | ')}`);

  const again = await browse(`${rp.base}/login`, jar);
  assert.equal(again.status, 200);
  assert.match(again.body, /name="login"/, 'after logout the provider asks to sign in again');
});

test('OIDC logout with id_token_hint and post_logout_redirect_uri returns state', async (t) => {
  const { rp } = await world(t);
  const { jar } = await signIn(rp.base, 'plato');
  const out = await signOut(rp.base, jar, { path: '/logout?style=oidc' });
  assert.equal(out.finalUrl, `${rp.base}/bye?state=logout-state-1`);
  assert.match(out.body, /logout-state-1/);
});

test('the signing key persists across a restart with the same RFC 7638 kid', async (t) => {
  const keyDir = await mkdtemp(join(tmpdir(), 'idp-key-'));
  t.after(() => rm(keyDir, { recursive: true, force: true }));
  const env = { IDP_KEY_FILE: join(keyDir, 'nested', 'key.json') };

  const first = await startIdp(env);
  t.after(() => first.stop());
  const jwks1 = (await fetchJson(`${first.issuer}/.well-known/jwks`)).json;
  assert.deepEqual(await first.stop(), { code: 0, signal: null }, 'SIGTERM is a clean exit');

  const stored = JSON.parse(await readFile(env.IDP_KEY_FILE, 'utf8'));
  const thumb = b64url(createHash('sha256').update(JSON.stringify({ e: stored.e, kty: 'RSA', n: stored.n })).digest());
  assert.equal(jwks1.keys[0].kid, thumb);

  const second = await startIdp(env);
  t.after(() => second.stop());
  const jwks2 = (await fetchJson(`${second.issuer}/.well-known/jwks`)).json;
  assert.equal(jwks2.keys[0].kid, jwks1.keys[0].kid);
  assert.equal(jwks2.keys[0].n, jwks1.keys[0].n);

  const otherDir = await mkdtemp(join(tmpdir(), 'idp-key-'));
  t.after(() => rm(otherDir, { recursive: true, force: true }));
  const third = await startIdp({ IDP_KEY_FILE: join(otherDir, 'key.json') });
  t.after(() => third.stop());
  const jwks3 = (await fetchJson(`${third.issuer}/.well-known/jwks`)).json;
  assert.notEqual(jwks3.keys[0].kid, jwks1.keys[0].kid, 'a fresh key gets a fresh kid');
});

test('startIdp rejects with the provider\'s stderr when it cannot start', async () => {
  await assert.rejects(startIdp({ IDP_ACCESS_TTL: 'soon' }), (err) => {
    assert.match(err.message, /exited before ready/);
    assert.match(err.message, /IDP_ACCESS_TTL must be an integer/);
    return true;
  });
});

test('a real browser signs in through the provider form and lands on the app', async (t) => {
  const { launchBrowser } = await import('../lib/browser.mjs');
  const { rp } = await world(t);
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const { page } = browser;
  await page.goto(`${rp.base}/login`);
  await page.waitForSelector('input[name=login]');
  await page.fill('input[name=login]', 'zoe');
  await page.fill('input[name=password]', 'secret');
  await Promise.all([
    page.waitForURL(`${rp.base}/home`),
    page.click('button[type=submit]'),
  ]);
  assert.equal(await page.textContent('#who'), 'Hello Zoë Łukasiewicz-Ørsted');
  const cookies = await browser.context.cookies(rp.base);
  assert.ok(cookies.some((c) => c.name === 'kinde_fcgi_session'));

  // Logout runs the provider's self-submitting page in a real browser too.
  await page.goto(`${rp.base}/logout`);
  await page.waitForURL(`${rp.base}/bye`);
  assert.equal(await page.textContent('h1'), 'Bye');
});
