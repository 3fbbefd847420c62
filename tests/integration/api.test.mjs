// The protected JSON API for machine clients, end to end: the local provider issues a client_credentials
// access token (Kinde's M2M apps), the app runs as plain CGI and verifies it against the provider's JWKS.
// Bad tokens (tampered, expired, wrong audience, wrong issuer, another key, alg none) get 401 with
// WWW-Authenticate: Bearer error="invalid_token" and a JSON body that says why without echoing the token.
// Bad tokens other than "tampered" are signed here with the provider's own key (its key file lives in a
// temp dir), so only the one claim under test is wrong.
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { projectRoot, runCgi } from '../lib/cgi.mjs';
import { clientCredentialsToken } from '../lib/idp-client.mjs';
import { startIdp } from '../lib/idp-process.mjs';

const M2M_ID = 'api-test-m2m';
const M2M_SECRET = 'api-test-m2m-secret-0123456789';

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function decodePart(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

// A compact RS256 JWS over payload with the given private key (a KeyObject) and kid.
function signJwt(payload, key, kid) {
  const head = b64url({ alg: 'RS256', typ: 'at+jwt', kid });
  const body = b64url(payload);
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), key).toString('base64url');
  return `${head}.${body}.${sig}`;
}

describe('API with machine (bearer) tokens, app as CGI', () => {
  let idp;
  let dir;
  let audience;
  let token;        // a real client_credentials access token
  let payload;      // its claims
  let signingKey;   // the provider's private key
  let kid;

  const call = (p, { auth, query = '', method = 'GET', cookie } = {}) => {
    const headers = {};
    if (auth !== undefined) headers.authorization = auth;
    if (cookie !== undefined) headers.cookie = cookie;
    return runCgi({ method, path: p, query, headers, env: { KINDE_CONFIG: path.join(dir, 'kinde.conf') } });
  };

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kinde-api-'));
    const keyFile = path.join(dir, 'idp-key.json');
    idp = await startIdp({ IDP_M2M_CLIENT_ID: M2M_ID, IDP_M2M_CLIENT_SECRET: M2M_SECRET, IDP_KEY_FILE: keyFile });
    audience = `${idp.issuer}/api`;
    writeFileSync(path.join(dir, 'kinde.conf'), [
      `KINDE_ISSUER_URL=${idp.issuer}`,
      'KINDE_CLIENT_ID=kinde-fcgi-test',
      'KINDE_CLIENT_SECRET=kinde-fcgi-test-secret',
      'KINDE_CALLBACK_URL=http://127.0.0.1:8080/callback',
      `KINDE_AUDIENCE=${audience}`,
      `KINDE_SESSION_DIR=${path.join(dir, 'sessions')}`,
      `KINDE_TEMPLATE_DIR=${path.join(projectRoot, 'templates')}`,
      'KINDE_LOG_LEVEL=info',
      '',
    ].join('\n'));
    token = await clientCredentialsToken(idp.issuer, M2M_ID, M2M_SECRET, audience);
    payload = decodePart(token.split('.')[1]);
    const jwk = JSON.parse(readFileSync(keyFile, 'utf8'));
    kid = jwk.kid;
    signingKey = createPrivateKey({ key: jwk, format: 'jwk' });
  });

  after(async () => {
    await idp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the provider issues a JWT access token with the audience and Kinde claims', () => {
    assert.equal(token.split('.').length, 3);
    assert.equal(payload.iss, idp.issuer);
    assert.ok([].concat(payload.aud).includes(audience), JSON.stringify(payload.aud));
    assert.ok(Array.isArray(payload.permissions));
    assert.equal(decodePart(token.split('.')[0]).kid, kid, 'the key file is the one the provider signs with');
  });

  test('a machine client calls /items/7 with its token: 200 as FastAPI', async () => {
    const r = await call('/items/7', { auth: `Bearer ${token}` });
    assert.equal(r.status, 200, r.body + r.stderr);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.body, '{"item_id":7,"q":null}');
    const q = await call('/items/7', { auth: `Bearer ${token}`, query: 'q=hello%20world' });
    assert.equal(q.body, '{"item_id":7,"q":"hello world"}');
  });

  test('a machine client calls /api/me: its subject, permissions and flags', async () => {
    const r = await call('/api/me', { auth: `Bearer ${token}` });
    assert.equal(r.status, 200, r.body + r.stderr);
    const me = JSON.parse(r.body);
    assert.equal(me.type, 'machine');
    assert.equal(me.sub, payload.sub);
    assert.equal(me.client_id, M2M_ID);
    assert.deepEqual(me.permissions, payload.permissions);
    assert.equal(typeof me.feature_flags, 'object');
    assert.equal(me.user, undefined);
    assert.ok(!r.body.includes(token));
  });

  test('with a valid token, validation still answers 422 in FastAPI shape', async () => {
    const r = await call('/items/4.5', { auth: `Bearer ${token}` });
    assert.equal(r.status, 422);
    assert.deepEqual(JSON.parse(r.body), {
      detail: [{ loc: ['path', 'item_id'], msg: 'value is not a valid integer', type: 'type_error.integer' }],
    });
  });

  test('without credentials: 401 Not authenticated, before validation', async () => {
    for (const p of ['/items/7', '/items/abc', '/api/me']) {
      const r = await call(p);
      assert.equal(r.status, 401, p);
      assert.equal(r.body, '{"detail":"Not authenticated"}');
    }
  });

  const badTokens = {
    tampered: () => {
      // The payload changed (more permissions), the provider's signature kept.
      const [h, , s] = token.split('.');
      return `${h}.${b64url({ ...payload, permissions: ['admin:everything'] })}.${s}`;
    },
    expired: () => signJwt({ ...payload, iat: payload.iat - 7200, exp: Math.floor(Date.now() / 1000) - 3600 },
      signingKey, kid),
    'wrong audience': () => signJwt({ ...payload, aud: ['https://other-api.example'] }, signingKey, kid),
    'wrong issuer': () => signJwt({ ...payload, iss: 'https://evil.example' }, signingKey, kid),
    'another key under the same kid': () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      return signJwt(payload, privateKey, kid);
    },
    'alg none': () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`,
    garbage: () => 'not-a-jwt-at-all',
  };

  for (const [name, make] of Object.entries(badTokens)) {
    test(`${name} token: 401 invalid_token, and the body does not contain it`, async () => {
      const bad = make();
      for (const p of ['/items/7', '/api/me']) {
        const r = await call(p, { auth: `Bearer ${bad}` });
        assert.equal(r.status, 401, `${p}: ${r.body}\n${r.stderr}`);
        assert.equal(r.headers['www-authenticate'], 'Bearer error="invalid_token"');
        assert.equal(r.headers['content-type'], 'application/json');
        const body = JSON.parse(r.body);
        assert.equal(typeof body.detail, 'string');
        assert.match(body.detail, /\S/, 'the body says why');
        if (process.env.API_TEST_VERBOSE) console.error(name, p, r.body);
        assert.ok(!r.body.includes(bad), 'the token is echoed');
        for (const part of bad.split('.').filter((x) => x.length > 8)) {
          assert.ok(!r.body.includes(part), 'a part of the token is echoed');
        }
      }
    });
  }

  test('why a token was refused is told apart', async () => {
    const detail = async (t) => JSON.parse((await call('/items/7', { auth: `Bearer ${t}` })).body).detail;
    assert.match(await detail(badTokens.expired()), /exp/i);
    assert.match(await detail(badTokens['wrong audience']()), /aud/i);
    assert.match(await detail(badTokens['wrong issuer']()), /iss/i);
    assert.match(await detail(badTokens.tampered()), /signature/i);
  });

  test('the bearer token decides over a session cookie', async () => {
    // A cookie (unknown session) with a good token: the token is honoured.
    const cookie = `kinde_fcgi_session=${'A'.repeat(43)}`;
    const good = await call('/api/me', { auth: `Bearer ${token}`, cookie });
    assert.equal(good.status, 200, good.body);
    assert.equal(JSON.parse(good.body).type, 'machine');
    const bad = await call('/api/me', { auth: `Bearer ${badTokens.expired()}`, cookie });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers['www-authenticate'], 'Bearer error="invalid_token"');
  });

  test('unknown API paths are JSON 404 and wrong methods JSON 405', async () => {
    for (const p of ['/api/nothing', '/items/7/more']) {
      const r = await call(p, { auth: `Bearer ${token}` });
      assert.equal(r.status, 404, p);
      assert.equal(r.body, '{"detail":"Not Found"}');
    }
    const r = await call('/items/7', { auth: `Bearer ${token}`, method: 'DELETE' });
    assert.equal(r.status, 405);
    assert.equal(r.body, '{"detail":"Method Not Allowed"}');
  });

  test('/openapi.json describes the API and /docs loads Swagger UI from static files', async () => {
    const spec = await call('/openapi.json');
    assert.equal(spec.status, 200);
    const doc = JSON.parse(spec.body);
    assert.ok(doc.paths['/items/{item_id}'].get);
    assert.ok(doc.paths['/api/me'].get);
    assert.equal(doc.components.securitySchemes.HTTPBearer.scheme, 'bearer');
    const docs = await call('/docs');
    assert.equal(docs.status, 200);
    assert.match(docs.body, /<script src="\/docs\/swagger-ui-bundle\.js"><\/script>/);
    assert.match(docs.body, /data-spec-url="\/openapi\.json"/);
    assert.match(readFileSync(path.join(projectRoot, 'htdocs/docs/swagger-init.js'), 'utf8'), /data-spec-url/);
  });
});
