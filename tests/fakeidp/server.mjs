// A fault-injecting fake OpenID provider for the integration tests. Unlike tests/idp (a real, certified
// provider), this one does exactly what the test tells it, including the wrong things: forged or
// mis-claimed ID tokens, token endpoints that fail in every way, a lying discovery document.
//
// Endpoints: /.well-known/openid-configuration, /.well-known/jwks (and .json), /oauth2/auth (records
// state, nonce and PKCE challenge, then redirects to redirect_uri with a code), /oauth2/token
// (authorization_code, refresh_token and client_credentials grants), /oauth2/revoke (RFC 7009, recorded in
// `revocations`), /logout, and /_control (POST JSON = setMode, GET = state) for use from another process.
// Only node:crypto and node:http.
//
// Modes (setMode merges; they last until changed or resetMode()):
//   idToken   normal | bad_signature | wrong_iss | wrong_aud (no azp) | wrong_azp | missing_sub | missing_iat |
//             wrong_nonce | expired | alg_none | hs256_pubkey (HMAC keyed with the public key PEM) |
//             rotated_kid (new key published beside the old, signs from now on) | unknown_kid (never published)
//   token     normal | invalid_grant | http_500 | html | invalid_json | hang          (every grant)
//   refresh   rotate (default) | same (no new refresh token) | changed_sub | invalid_grant
//   discovery normal | wrong_issuer | http_500 | hang;   jwks  normal | http_500 | empty | hang
//   delayMs (every request but /_control answers this much later: a slow provider)
//   expiresIn, refreshExpiresIn (seconds; null = no expires_in in the answer), tokenDelayMs, nonce (override the
//   recorded one), tokenType (token_type of every answer), accessTokenTtl (exp of access tokens, seconds)
//   revocation normal | http_500 | hang | absent (not listed in discovery)
//   discoveryOverrides  an object merged into the discovery document (e.g. a token_endpoint on another host)
// Tokens for other parties, signed with the published key: mintAccessToken({clientId, audience, ...}) and
// makeIdToken({clientId, ...}); addClient(id, secret) registers another (M2M) client for client_credentials.
//   accessClaims / idClaims (objects merged into the claims of the next access / ID tokens)
// The code grant is checked like a provider would: known unused code, same redirect_uri, PKCE S256 and
// client authentication (Basic or post); the nonce put in the ID token is the one sent to /oauth2/auth.
//
// Run standalone: node tests/fakeidp/server.mjs [port]   (prints "fakeidp listening <issuer>")

import crypto from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

export const ID_TOKEN_MODES = ['normal', 'bad_signature', 'wrong_iss', 'wrong_aud', 'wrong_azp', 'missing_sub', 'missing_iat',
  'wrong_nonce', 'expired', 'alg_none', 'hs256_pubkey', 'rotated_kid', 'unknown_kid'];
export const TOKEN_MODES = ['normal', 'invalid_grant', 'http_500', 'html', 'invalid_json', 'hang'];
export const REFRESH_MODES = ['rotate', 'same', 'changed_sub', 'invalid_grant'];
export const DISCOVERY_MODES = ['normal', 'wrong_issuer', 'http_500', 'hang'];
export const JWKS_MODES = ['normal', 'http_500', 'empty', 'hang'];
export const REVOCATION_MODES = ['normal', 'http_500', 'hang', 'absent'];

const DEFAULT_MODE = {
  idToken: 'normal',      // how the next ID tokens are made (ID_TOKEN_MODES)
  token: 'normal',        // how the token endpoint answers every grant (TOKEN_MODES)
  refresh: 'rotate',      // what a successful refresh grant returns (REFRESH_MODES)
  discovery: 'normal',    // DISCOVERY_MODES
  jwks: 'normal',         // JWKS_MODES
  expiresIn: 3600,        // expires_in of code-grant answers
  refreshExpiresIn: 3600, // expires_in of refresh-grant answers
  tokenDelayMs: 0,        // delay before the token endpoint answers (to overlap concurrent refreshes)
  delayMs: 0,             // delay before any endpoint but /_control answers (a slow provider)
  nonce: null,            // force the nonce put in ID tokens (null: the one recorded at /oauth2/auth)
  tokenType: 'bearer',    // token_type of every token answer
  accessTokenTtl: null,   // exp of issued access tokens, seconds from now (null: the answer's expires_in)
  revocation: 'normal',   // REVOCATION_MODES
  discoveryOverrides: null, // members merged into the discovery document
  accessClaims: null,     // merged into access-token claims (e.g. permissions holding spaces)
  idClaims: null,         // merged into ID-token claims
};

export const DEFAULT_USER = {
  sub: 'kp_fault0000user0001', given_name: 'Ada', family_name: 'Lovelace', name: 'Ada Lovelace',
  email: 'ada@example.test', picture: '',
};

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const b64uJson = (obj) => b64u(JSON.stringify(obj));

function newKey(prefix) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  // RFC 7638 thumbprint as the kid, as real providers do: a new key never reuses an old kid.
  const thumb = crypto.createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest('base64url');
  const kid = `${prefix}-${thumb.slice(0, 16)}`;
  return { kid, privateKey, publicKey, jwk: { ...jwk, kid, use: 'sig', alg: 'RS256' } };
}

function signRs256(header, payload, key) {
  const input = `${b64uJson(header)}.${b64uJson(payload)}`;
  const sig = crypto.sign('sha256', Buffer.from(input), key.privateKey);
  return `${input}.${b64u(sig)}`;
}

export class FakeIdp {
  // options: {clientId, clientSecret, user}
  constructor({ clientId = 'faults-client', clientSecret = 'faults-secret', user = DEFAULT_USER } = {}) {
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.user = { ...user };
    this.mode = { ...DEFAULT_MODE };
    this.keys = [newKey('k1')];          // keys[0] signs; all are published
    this.strayKey = null;                // signs 'unknown_kid' tokens; never published
    this.authorizations = [];            // every /oauth2/auth request's parameters
    this.codes = new Map();              // code -> {nonce, codeChallenge, redirectUri, used}
    this.refreshTokens = new Map();      // refresh token -> {valid, sub}
    this.grants = [];                    // every token request: {grant_type, code, refresh_token, ...}
    this.requests = [];                  // every request: {method, path}
    this.issued = [];                    // every token response body sent
    this.clients = new Map();            // other registered clients: id -> secret (client_credentials)
    this.revocations = [];               // every /oauth2/revoke request: {token, token_type_hint, client, basic_auth}
    this.hanging = new Set();
    this.server = null;
    this.issuer = '';
    this.port = 0;
  }

  // Merges `changes` into the current mode ('rotated_kid' rotates the signing key once, here).
  setMode(changes = {}) {
    for (const [k, v] of Object.entries(changes)) {
      if (!(k in DEFAULT_MODE)) throw new Error(`fakeidp: unknown mode field ${k}`);
      const allowed = { idToken: ID_TOKEN_MODES, token: TOKEN_MODES, refresh: REFRESH_MODES,
        discovery: DISCOVERY_MODES, jwks: JWKS_MODES, revocation: REVOCATION_MODES }[k];
      if (allowed && !allowed.includes(v)) throw new Error(`fakeidp: ${k} cannot be ${v}`);
    }
    if (changes.idToken === 'rotated_kid' && this.mode.idToken !== 'rotated_kid') this.rotateKey();
    Object.assign(this.mode, changes);
    return { ...this.mode };
  }

  // Back to normal behaviour (keys, recorded requests and issued tokens are kept).
  resetMode() { this.mode = { ...DEFAULT_MODE }; }

  // A new signing key, published first in the JWKS beside the old ones (rotation with overlap).
  rotateKey() {
    this.keys.unshift(newKey(`k${this.keys.length + 1}`));
    return this.keys[0].kid;
  }

  grantsOf(type) { return this.grants.filter((g) => g.grant_type === type); }
  countRequests(path) { return this.requests.filter((r) => r.path === path).length; }
  lastAuthorization() { return this.authorizations[this.authorizations.length - 1]; }

  // Registers another client (an M2M app) that may use the client_credentials grant.
  addClient(id, secret) { this.clients.set(id, secret); }

  discovery() {
    const iss = this.mode.discovery === 'wrong_issuer' ? 'http://127.0.0.1:1/not-this-issuer' : this.issuer;
    const doc = {
      issuer: iss,
      authorization_endpoint: `${this.issuer}/oauth2/auth`,
      token_endpoint: `${this.issuer}/oauth2/token`,
      jwks_uri: `${this.issuer}/.well-known/jwks`,
      end_session_endpoint: `${this.issuer}/logout`,
      userinfo_endpoint: `${this.issuer}/oauth2/v2/user_profile`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    };
    if (this.mode.revocation !== 'absent') doc.revocation_endpoint = `${this.issuer}/oauth2/revoke`;
    return Object.assign(doc, this.mode.discoveryOverrides || {});
  }

  jwks() { return { keys: this.keys.map((k) => k.jwk) }; }

  // ID token for `sub` with `nonce`, damaged as this.mode.idToken says.
  makeIdToken({ nonce, sub = this.user.sub, now = Math.floor(Date.now() / 1000), clientId = this.clientId }) {
    const mode = this.mode.idToken;
    const key = this.keys[0];
    const claims = {
      iss: this.issuer, sub, aud: [clientId], azp: clientId, iat: now, exp: now + 3600,
      auth_time: now, at_hash: 'unused', given_name: this.user.given_name, family_name: this.user.family_name,
      name: this.user.name, email: this.user.email, picture: this.user.picture, org_codes: ['org_faults'],
    };
    if (nonce) claims.nonce = nonce;
    Object.assign(claims, this.mode.idClaims || {});
    if (mode === 'wrong_iss') claims.iss = 'https://attacker.example';
    if (mode === 'wrong_aud') { claims.aud = ['some-other-client']; delete claims.azp; }
    if (mode === 'wrong_azp') claims.azp = 'some-other-client';
    if (mode === 'missing_sub') delete claims.sub;
    if (mode === 'missing_iat') delete claims.iat;
    if (mode === 'wrong_nonce') claims.nonce = 'not-the-nonce-the-app-sent';
    if (mode === 'expired') { claims.iat = now - 7200; claims.auth_time = now - 7200; claims.exp = now - 3600; }
    const header = { alg: 'RS256', typ: 'JWT', kid: key.kid };
    switch (mode) {
      case 'alg_none':
        return `${b64uJson({ alg: 'none', typ: 'JWT' })}.${b64uJson(claims)}.`;
      case 'hs256_pubkey': {
        // The classic key-confusion forgery: HMAC keyed with the public key the RP can download.
        const h = { alg: 'HS256', typ: 'JWT', kid: key.kid };
        const input = `${b64uJson(h)}.${b64uJson(claims)}`;
        const pem = key.publicKey.export({ type: 'spki', format: 'pem' });
        return `${input}.${b64u(crypto.createHmac('sha256', pem).update(input).digest())}`;
      }
      case 'bad_signature': {
        const t = signRs256(header, claims, key);
        const [h, p, s] = t.split('.');
        const sig = Buffer.from(s, 'base64url');
        sig[sig.length >> 1] ^= 0x5a;  // same length, wrong bytes
        return `${h}.${p}.${b64u(sig)}`;
      }
      case 'unknown_kid': {
        this.strayKey ||= newKey('stray');
        return signRs256({ alg: 'RS256', typ: 'JWT', kid: this.strayKey.kid }, claims, this.strayKey);
      }
      default:
        return signRs256(header, claims, key);
    }
  }

  makeAccessToken({ sub = this.user.sub, now = Math.floor(Date.now() / 1000), expiresIn }) {
    const ttl = this.mode.accessTokenTtl ?? expiresIn ?? 3600;
    return signRs256({ alg: 'RS256', typ: 'JWT', kid: this.keys[0].kid }, {
      iss: this.issuer, sub, aud: [], azp: this.clientId, iat: now, exp: now + ttl,
      jti: crypto.randomUUID(), scp: ['openid', 'profile', 'email', 'offline'], org_code: 'org_faults',
      permissions: ['read:items'], feature_flags: { theme: { t: 's', v: 'dark' } }, ...(this.mode.accessClaims || {}),
    }, this.keys[0]);
  }

  // An access token for any party, Kinde's shape: azp = clientId, aud = the audiences (a list); client_credentials
  // tokens (gty) carry no user. stray: signed by a key never published (an unknown kid). extra: more claims.
  mintAccessToken({ clientId = this.clientId, audience = [], sub = this.user.sub, m2m = false, stray = false,
    expiresIn = 3600, now = Math.floor(Date.now() / 1000), extra = {} } = {}) {
    const claims = {
      iss: this.issuer, aud: [].concat(audience), azp: clientId, iat: now, exp: now + expiresIn,
      jti: crypto.randomUUID(), permissions: ['read:items', 'write:items'], org_code: 'org_faults', ...extra,
    };
    if (m2m) Object.assign(claims, { gty: ['client_credentials'], scope: '', scp: [] });
    else Object.assign(claims, { sub, scp: ['openid', 'profile', 'email', 'offline'] });
    if (stray) this.strayKey ||= newKey('stray');
    const key = stray ? this.strayKey : this.keys[0];
    return signRs256({ alg: 'RS256', typ: 'JWT', kid: key.kid }, claims, key);
  }

  newRefreshToken(sub) {
    const rt = `rt-${crypto.randomBytes(16).toString('hex')}`;
    this.refreshTokens.set(rt, { valid: true, sub });
    return rt;
  }

  // ---- HTTP ----

  async start(port = 0) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) { res.writeHead(500, { 'content-type': 'text/plain' }); }
        res.end(`fakeidp error: ${e.message}`);
      });
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.issuer = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async stop() {
    if (!this.server) return;
    const s = this.server;
    this.server = null;
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    s.closeAllConnections();
    await new Promise((resolve) => s.close(() => resolve()));
  }

  async handle(req, res) {
    const url = new URL(req.url, this.issuer);
    const body = await new Promise((resolve) => {
      const parts = [];
      req.on('data', (d) => parts.push(d));
      req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    });
    this.requests.push({ method: req.method, path: url.pathname, host: req.headers.host });
    if (this.mode.delayMs > 0 && url.pathname !== '/_control') await new Promise((r) => setTimeout(r, this.mode.delayMs));
    const json = (status, obj, extra = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...extra });
      res.end(JSON.stringify(obj));
    };
    switch (url.pathname) {
      case '/.well-known/openid-configuration':
        if (this.mode.discovery === 'http_500') return json(500, { error: 'server_error' });
        if (this.mode.discovery === 'hang') return this.hang(res);
        return json(200, this.discovery());
      case '/.well-known/jwks':
      case '/.well-known/jwks.json':
        if (this.mode.jwks === 'http_500') return json(500, { error: 'server_error' });
        if (this.mode.jwks === 'hang') return this.hang(res);
        return json(200, this.mode.jwks === 'empty' ? { keys: [] } : this.jwks());
      case '/oauth2/auth': return this.authorize(url, res);
      case '/oauth2/token': return this.token(req, body, res, json);
      case '/oauth2/revoke': return this.revoke(req, body, res, json);
      case '/logout': {
        const target = url.searchParams.get('redirect') || url.searchParams.get('post_logout_redirect_uri');
        res.writeHead(target ? 302 : 200, target ? { location: target } : { 'content-type': 'text/plain' });
        return res.end(target ? '' : 'signed out');
      }
      case '/_control':
        if (req.method === 'POST') {
          try { return json(200, this.setMode(JSON.parse(body || '{}'))); } catch (e) { return json(400, { error: e.message }); }
        }
        return json(200, { mode: this.mode, grants: this.grants, authorizations: this.authorizations,
          requests: this.requests, revocations: this.revocations, keys: this.keys.map((k) => k.kid) });
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('not found');
    }
  }

  // Never answers; stop() tears the connection down.
  hang(res) {
    this.hanging.add(res);
    res.on('close', () => this.hanging.delete(res));
  }

  authorize(url, res) {
    const p = Object.fromEntries(url.searchParams);
    this.authorizations.push(p);
    const redirect = p.redirect_uri;
    if (!redirect) { res.writeHead(400, { 'content-type': 'text/plain' }); return res.end('no redirect_uri'); }
    const code = `code-${crypto.randomBytes(12).toString('hex')}`;
    this.codes.set(code, { nonce: p.nonce, codeChallenge: p.code_challenge, method: p.code_challenge_method,
      redirectUri: redirect, used: false });
    const target = new URL(redirect);
    target.searchParams.set('code', code);
    if (p.state !== undefined) target.searchParams.set('state', p.state);
    res.writeHead(302, { location: target.toString() });
    return res.end();
  }

  // Checks client authentication like a provider would: Basic (form-encoded id:secret) or post.
  clientAuthenticated(req, form) { return this.clientOf(req, form) === this.clientId; }

  // The client that authenticated (Basic or post): this app's or one added with addClient; null if none.
  clientOf(req, form) {
    const secretOf = (id) => (id === this.clientId ? this.clientSecret : this.clients.get(id));
    const h = req.headers.authorization || '';
    let id; let secret;
    if (h.startsWith('Basic ')) {
      const raw = Buffer.from(h.slice(6), 'base64').toString('utf8');
      const i = raw.indexOf(':');
      if (i <= 0) return null;
      const dec = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
      [id, secret] = [dec(raw.slice(0, i)), dec(raw.slice(i + 1))];
    } else {
      [id, secret] = [form.get('client_id'), form.get('client_secret')];
    }
    return id && secret !== undefined && secretOf(id) !== undefined && secretOf(id) === secret ? id : null;
  }

  // RFC 7009: records the request (never answering with the token), then revokes a known refresh token.
  async revoke(req, body, res, json) {
    const form = new URLSearchParams(body);
    const client = this.clientOf(req, form);
    this.revocations.push({ token: form.get('token'), token_type_hint: form.get('token_type_hint'), client,
      basic_auth: (req.headers.authorization || '').startsWith('Basic '), method: req.method, at: Date.now() });
    if (this.mode.revocation === 'hang') return this.hang(res);
    if (this.mode.revocation === 'http_500') return json(500, { error: 'server_error' });
    if (req.method !== 'POST') return json(405, { error: 'invalid_request' });
    if (!client) return json(401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="fakeidp"' });
    const rt = this.refreshTokens.get(form.get('token'));
    if (rt) rt.valid = false;
    res.writeHead(200, { 'cache-control': 'no-store' });
    return res.end();
  }

  async token(req, body, res, json) {
    const form = new URLSearchParams(body);
    const grant = {
      grant_type: form.get('grant_type'), code: form.get('code'), refresh_token: form.get('refresh_token'),
      code_verifier: form.get('code_verifier'), redirect_uri: form.get('redirect_uri'),
      basic_auth: (req.headers.authorization || '').startsWith('Basic '), at: Date.now(),
    };
    this.grants.push(grant);
    if (this.mode.tokenDelayMs > 0) await new Promise((r) => setTimeout(r, this.mode.tokenDelayMs));
    if (req.method !== 'POST') return json(405, { error: 'invalid_request' });
    if (grant.grant_type === 'client_credentials' && this.clientOf(req, form)) {
      // An M2M app's token (Kinde: aud = the requested API audience, azp = the M2M app, gty).
      const audience = form.get('audience');
      const answer = { access_token: this.mintAccessToken({ clientId: this.clientOf(req, form), m2m: true,
        audience: audience ? [audience] : [] }), token_type: this.mode.tokenType, expires_in: 3600 };
      this.issued.push(answer);
      return json(200, answer);
    }
    if (!this.clientAuthenticated(req, form)) {
      return json(401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="fakeidp"' });
    }
    switch (this.mode.token) {
      case 'invalid_grant': return json(400, { error: 'invalid_grant', error_description: 'fakeidp says no' });
      case 'http_500':
        res.writeHead(500, { 'content-type': 'text/plain' });
        return res.end('Internal Server Error');
      case 'html':
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<!doctype html><html><body><h1>Maintenance</h1></body></html>');
      case 'invalid_json':
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"access_token": "abc", "token_type": "Bearer",');
      case 'hang': return this.hang(res);
      default: break;
    }
    const now = Math.floor(Date.now() / 1000);
    if (grant.grant_type === 'authorization_code') {
      const entry = this.codes.get(grant.code);
      if (!entry || entry.used) return json(400, { error: 'invalid_grant', error_description: 'unknown or used code' });
      entry.used = true;
      if (entry.redirectUri !== grant.redirect_uri) return json(400, { error: 'invalid_grant', error_description: 'redirect_uri mismatch' });
      const challenge = crypto.createHash('sha256').update(grant.code_verifier || '').digest('base64url');
      if (entry.method !== 'S256' || challenge !== entry.codeChallenge) {
        return json(400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
      }
      const nonce = this.mode.nonce ?? entry.nonce;
      const answer = {
        access_token: this.makeAccessToken({ now, expiresIn: this.mode.expiresIn }),
        id_token: this.makeIdToken({ nonce, now }),
        refresh_token: this.newRefreshToken(this.user.sub),
        token_type: this.mode.tokenType, expires_in: this.mode.expiresIn, scope: 'openid profile email offline',
      };
      if (this.mode.expiresIn === null) delete answer.expires_in;
      this.issued.push(answer);
      return json(200, answer);
    }
    if (grant.grant_type === 'refresh_token') {
      const rt = this.refreshTokens.get(grant.refresh_token);
      if (this.mode.refresh === 'invalid_grant' || !rt || !rt.valid) {
        return json(400, { error: 'invalid_grant', error_description: 'refresh token not valid' });
      }
      const sub = this.mode.refresh === 'changed_sub' ? 'kp_someone0else00002' : rt.sub;
      const answer = {
        access_token: this.makeAccessToken({ sub, now, expiresIn: this.mode.refreshExpiresIn }),
        id_token: this.makeIdToken({ sub, now }),
        token_type: this.mode.tokenType, expires_in: this.mode.refreshExpiresIn, scope: 'openid profile email offline',
      };
      if (this.mode.refreshExpiresIn === null) delete answer.expires_in;
      if (this.mode.refresh !== 'same') {
        rt.valid = false;  // rotation: the old token is spent
        answer.refresh_token = this.newRefreshToken(rt.sub);
      }
      this.issued.push(answer);
      return json(200, answer);
    }
    return json(400, { error: 'unsupported_grant_type' });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fake = new FakeIdp({ clientId: process.env.FAKEIDP_CLIENT_ID, clientSecret: process.env.FAKEIDP_CLIENT_SECRET });
  await fake.start(Number(process.argv[2] || 0));
  console.log(`fakeidp listening ${fake.issuer}`);
  process.on('SIGTERM', () => fake.stop().then(() => process.exit(0)));
  process.on('SIGINT', () => fake.stop().then(() => process.exit(0)));
}
