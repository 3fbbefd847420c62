#!/usr/bin/env node
// A local OpenID provider that stands in for Kinde in tests and `make run`.
// It is oidc-provider (an OpenID Certified implementation) configured to
// behave like a Kinde business domain: Kinde's endpoint paths, PKCE S256 for
// every client, the `offline` scope for refresh tokens (rotated on each use),
// profile/email claims in the ID token, JWT access tokens with Kinde's claims
// (permissions, org_code, feature_flags, roles), prompt=create, Kinde's extra
// authorization parameters, and logout without a confirmation click.
//
// Environment (all optional):
//   IDP_PORT                      port to listen on; 0 (default) picks a free one
//   IDP_HOST                      address and issuer host (default 127.0.0.1)
//                                 issuer = http://IDP_HOST:PORT (no trailing slash)
//   IDP_CLIENT_ID                 the confidential web client (default kinde-fcgi-test)
//   IDP_CLIENT_SECRET             its secret (default kinde-fcgi-test-secret). Registered as
//                                 client_secret_basic; oidc-provider accepts
//                                 client_secret_post from such a client as well.
//   IDP_REDIRECT_URIS             comma-separated exact redirect URIs
//                                 (default http://127.0.0.1:8080/callback)
//   IDP_POST_LOGOUT_REDIRECT_URIS comma-separated exact post-logout URIs
//                                 (default http://127.0.0.1:8080/)
//   IDP_M2M_CLIENT_ID             client_credentials machine client (default kinde-fcgi-m2m)
//   IDP_M2M_CLIENT_SECRET         its secret (default kinde-fcgi-m2m-secret)
//   IDP_AUDIENCE                  API audience of access tokens (default issuer + "/api")
//   IDP_KEY_FILE                  RSA signing key (JWK) file; generated on first start with
//                                 kid = RFC 7638 thumbprint, reused afterwards
//                                 (default tests/idp/data/signing-key.json)
//   IDP_USERS                     users fixture (default tests/idp/users.json)
//   IDP_ACCESS_TTL                access token lifetime, seconds (default 86400)
//   IDP_ID_TTL                    ID token lifetime, seconds (default 3600)
//   IDP_REFRESH_TTL               refresh token lifetime, seconds (default 2592000)
//
// Output: exactly one line on stdout once listening,
//   {"ready":true,"issuer":"http://127.0.0.1:PORT","port":PORT}
// and everything else on stderr. SIGTERM / SIGINT close the server and exit 0.
//
// Endpoints (also in /.well-known/openid-configuration):
//   GET  /oauth2/auth             authorization (prompt=create shows the same form, titled
//                                 for sign-up; org_code, is_create_org, org_name, lang,
//                                 login_hint, connection_id, audience, invitation_code accepted)
//   POST /oauth2/token            code, refresh_token and client_credentials grants
//   GET  /logout                  RP-initiated logout; post_logout_redirect_uri + client_id or
//                                 id_token_hint, or Kinde's ?redirect=<url>
//   GET  /.well-known/jwks        keys (also /.well-known/jwks.json)
//   GET  /oauth2/v2/user_profile  Kinde's profile for a Bearer access token
//   POST /oauth2/revoke, /oauth2/introspect
//   GET  /interaction/:uid        the sign-in form (fields login, password; any password)
//
// Sessions, codes and tokens live in memory: a restart forgets them, but not
// the signing key.

import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { AccountStore, loadFixture } from './accounts.mjs';

// oidc-provider prints notices with console.info (stdout); stdout is reserved
// for the single ready line that callers parse, so route the rest to stderr
// before the library is loaded.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { default: Provider, errors: oidcErrors } = await import('oidc-provider');

const here = dirname(fileURLToPath(import.meta.url));
const env = process.env;

function intEnv(name, fallback, { min = 1 } = {}) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function listEnv(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

const config = {
  host: env.IDP_HOST || '127.0.0.1',
  port: intEnv('IDP_PORT', 0, { min: 0 }),
  clientId: env.IDP_CLIENT_ID || 'kinde-fcgi-test',
  clientSecret: env.IDP_CLIENT_SECRET || 'kinde-fcgi-test-secret',
  redirectUris: listEnv('IDP_REDIRECT_URIS', ['http://127.0.0.1:8080/callback']),
  postLogoutRedirectUris: listEnv('IDP_POST_LOGOUT_REDIRECT_URIS', ['http://127.0.0.1:8080/']),
  m2mClientId: env.IDP_M2M_CLIENT_ID || 'kinde-fcgi-m2m',
  m2mClientSecret: env.IDP_M2M_CLIENT_SECRET || 'kinde-fcgi-m2m-secret',
  keyFile: env.IDP_KEY_FILE || join(here, 'data', 'signing-key.json'),
  usersFile: env.IDP_USERS || join(here, 'users.json'),
  accessTtl: intEnv('IDP_ACCESS_TTL', 86400),
  idTtl: intEnv('IDP_ID_TTL', 3600),
  refreshTtl: intEnv('IDP_REFRESH_TTL', 30 * 86400),
};

// ---------------------------------------------------------------- signing key

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

// RFC 7638: SHA-256 over the required members in lexicographic order, no
// whitespace. A kid derived from the key means a new key can never be served
// under an old kid (a caching relying party would then fail signatures).
function rsaThumbprint(jwk) {
  const canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
  return b64url(createHash('sha256').update(canonical).digest());
}

function loadOrCreateSigningKey(path) {
  if (existsSync(path)) {
    const jwk = JSON.parse(readFileSync(path, 'utf8'));
    if (jwk.kty !== 'RSA' || !jwk.d) throw new Error(`${path} does not hold a private RSA JWK`);
    return { ...jwk, kid: rsaThumbprint(jwk), alg: 'RS256', use: 'sig' };
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const raw = privateKey.export({ format: 'jwk' });
  const jwk = { ...raw, kid: rsaThumbprint(raw), alg: 'RS256', use: 'sig' };
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600 });
  console.error(`idp: generated signing key ${jwk.kid} in ${path}`);
  return jwk;
}

console.error('idp: oidc-provider loaded');
const signingJwk = loadOrCreateSigningKey(config.keyFile);
console.error('idp: signing key ready');
const publicKey = createPublicKey({ key: signingJwk, format: 'jwk' });

// ---------------------------------------------------------------- accounts

const accounts = new AccountStore(loadFixture(config.usersFile));
// Organisation chosen at authorization time (org_code / is_create_org), by
// grant id: the token endpoint no longer sees the authorization parameters,
// but every code, access and refresh token carries its grant id.
const orgByGrant = new Map();

function orgCodeForName(name) {
  return `org_${createHash('sha256').update(name).digest('hex').slice(0, 11)}`;
}

// ---------------------------------------------------------------- HTTP listener

// Listen first so that IDP_PORT=0 yields the real port, which is part of the
// issuer the provider must be constructed with.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port, config.host, resolve);
});
const port = server.address().port;
const hostForUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
const issuer = `http://${hostForUrl}:${port}`;
const audience = env.IDP_AUDIENCE || `${issuer}/api`;

// ---------------------------------------------------------------- provider

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.clientId,
      client_secret: config.clientSecret,
      client_name: 'kinde-fcgi (test)',
      application_type: 'web',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: config.redirectUris,
      post_logout_redirect_uris: config.postLogoutRedirectUris,
      token_endpoint_auth_method: 'client_secret_basic',
      require_auth_time: true,
    },
    {
      client_id: config.m2mClientId,
      client_secret: config.m2mClientSecret,
      client_name: 'kinde-fcgi machine client (test)',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingJwk] },
  cookies: {
    // Distinct from the app's kinde_fcgi_session; cookies ignore ports, so
    // on 127.0.0.1 the app sees these too.
    names: { session: 'idp_session', interaction: 'idp_interaction', resume: 'idp_interaction_resume' },
    keys: [randomBytes(32).toString('base64url')],
  },
  routes: {
    authorization: '/oauth2/auth',
    token: '/oauth2/token',
    end_session: '/logout',
    jwks: '/.well-known/jwks',
    revocation: '/oauth2/revoke',
    introspection: '/oauth2/introspect',
    userinfo: '/oauth2/userinfo',
  },
  scopes: ['openid', 'offline', 'profile', 'email'],
  claims: {
    openid: ['sub', 'org_codes'],
    profile: ['name', 'given_name', 'family_name', 'picture', 'updated_at'],
    email: ['email', 'email_verified'],
    auth_time: null,
    iss: null,
    sid: null,
  },
  conformIdTokenClaims: false,
  extraParams: ['org_code', 'is_create_org', 'org_name', 'lang', 'connection_id', 'audience',
    'invitation_code', 'start_page', 'reauth_state', 'kinde_prompt'],
  pkce: { required: () => true },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  discovery: {
    // Kinde's profile endpoint; oidc-provider's own userinfo is off (it
    // would refuse the JWT access tokens Kinde hands out).
    userinfo_endpoint: `${issuer}/oauth2/v2/user_profile`,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: false },
    rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, _client, oneOf) => {
        if (oneOf) return Array.isArray(oneOf) ? oneOf[0] : oneOf;
        // Kinde's `audience` parameter names the API; at the token endpoint
        // it arrives in the body, which oidc-provider parsed but ignores.
        return ctx.oidc.params?.audience || ctx.oidc.body?.audience || audience;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== audience) throw new oidcErrors.InvalidTarget(`unknown audience ${indicator}`);
        return {
          scope: '',
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: config.accessTtl,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  findAccount: async (_ctx, sub) => {
    const account = accounts.find(sub);
    if (!account) return undefined;
    return {
      accountId: account.id,
      claims: async () => account.oidcClaims(),
    };
  },
  loadExistingGrant,
  issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('offline'),
  // Kinde rotates refresh tokens on every use.
  rotateRefreshToken: () => true,
  expiresWithSession: async (_ctx, code) => !code.scopes.has('offline'),
  extraTokenClaims: async (_ctx, token) => kindeClaims(token),
  formats: {
    customizers: {
      jwt: async (_ctx, token, jwt) => {
        // Kinde's access tokens carry aud as a list and azp = client id.
        const { payload } = jwt;
        if (payload.aud !== undefined && !Array.isArray(payload.aud)) payload.aud = [payload.aud];
        payload.azp = token.clientId;
        payload.scp ??= token.scope ? token.scope.split(' ') : [];
      },
    },
  },
  ttl: {
    AccessToken: () => config.accessTtl,
    ClientCredentials: () => config.accessTtl,
    IdToken: () => config.idTtl,
    RefreshToken: () => config.refreshTtl,
    AuthorizationCode: () => 60,
    Interaction: () => 3600,
    Session: () => 14 * 86400,
    Grant: () => 14 * 86400,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Something went wrong', `<h1>Something went wrong</h1>${
      Object.entries(out).map(([k, v]) => `<p><strong>${esc(k)}</strong>: ${esc(v)}</p>`).join('')}`);
  },
});

async function kindeClaims(token) {
  if (token.kind === 'ClientCredentials') {
    return accounts.machineClaims(token.clientId);
  }
  if (!token.accountId) return undefined;
  const account = accounts.find(token.accountId);
  if (!account) return undefined;
  // The resource server has no scopes of its own, so token.scope is empty;
  // Kinde lists the granted OpenID scopes in `scp`.
  const grant = token.grantId ? await provider.Grant.find(token.grantId) : undefined;
  return {
    ...account.accessTokenClaims(orgByGrant.get(token.grantId)),
    scp: grant ? grant.getOIDCScope().split(' ').filter(Boolean) : [],
  };
}

// No consent page: everything asked for is granted (Kinde does not ask the
// user for first-party apps). Also records the organisation chosen with
// org_code or created with is_create_org.
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const accountId = oidc.session.accountId;
  if (!accountId || !oidc.client) return undefined;
  const clientId = oidc.client.clientId;

  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  if (grant && grant.accountId !== accountId) grant = undefined;
  grant ??= new provider.Grant({ accountId, clientId });

  grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  if (oidc.requestParamClaims?.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
  for (const [indicator, resourceServer] of Object.entries(oidc.resourceServers ?? {})) {
    const scopes = [...oidc.requestParamScopes].filter((s) => resourceServer.scopes.has(s));
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const savedId = await grant.save();

  const account = accounts.find(accountId);
  const params = oidc.params ?? {};
  let orgCode = params.org_code;
  if (account && params.is_create_org === 'true' && params.org_name) {
    orgCode = orgCodeForName(params.org_name);
    if (!account.organizations.some((o) => o.code === orgCode)) {
      account.organizations.push({ code: orgCode, name: params.org_name });
    }
  }
  if (orgCode) orgByGrant.set(savedId, orgCode);
  else orgByGrant.delete(savedId);

  return grant;
}

// ---------------------------------------------------------------- pages

function esc(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f4f5;margin:0;padding:40px 16px}
main{max-width:340px;margin:0 auto;background:#fff;border-radius:8px;padding:24px 28px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.4em;font-weight:600;margin:0 0 8px}
p.note{color:#555;font-size:.9em}
input[type=text],input[type=password]{display:block;width:100%;box-sizing:border-box;height:40px;margin:8px 0;padding:0 8px;font-size:16px}
button{width:100%;height:40px;margin-top:8px;background:#111;color:#fff;border:0;border-radius:4px;font-size:15px;cursor:pointer}
a.cancel{display:block;text-align:center;margin-top:12px;color:#666;font-size:.9em}
</style>
</head>
<body><main>
${body}
</main></body>
</html>`;
}

// RP-initiated logout: Kinde does not ask "are you sure?", so the form that
// oidc-provider hands us (it carries the xsrf token) is submitted by script
// at once, with logout=yes to end the whole provider session.
async function logoutSource(ctx, form) {
  const withLogout = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
  ctx.type = 'html';
  ctx.body = page('Signing out', `<h1>Signing out…</h1>
${withLogout}
<noscript><button type="submit" form="op.logoutForm">Continue</button></noscript>
<script>document.forms[0].submit();</script>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<h1>Signed out</h1><p class="note">You have been signed out.</p>');
}

function loginPage(uid, params) {
  const signUp = params.start_page === 'registration' || params.kinde_prompt === 'create';
  const createOrg = params.is_create_org === 'true';
  let title = signUp ? 'Create your account' : 'Sign in';
  if (createOrg) title = 'Create your organization';
  const note = createOrg && params.org_name
    ? `<p class="note">Organization: ${esc(params.org_name)}</p>` : '';
  return page(title, `<h1>${esc(title)}</h1>
${note}<form id="idp-login" autocomplete="off" action="/interaction/${esc(uid)}/login" method="post">
<input type="hidden" name="prompt" value="login"/>
<input required type="text" name="login" placeholder="Enter any login" autofocus value="${esc(params.login_hint ?? '')}"/>
<input type="password" name="password" placeholder="and any password"/>
<button type="submit">${signUp ? 'Sign up' : 'Sign in'}</button>
</form>
<a class="cancel" href="/interaction/${esc(uid)}/abort">Cancel</a>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// ---------------------------------------------------------------- Kinde-isms

function verifyAccessToken(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  let header;
  let payload;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (header.alg !== 'RS256' || header.kid !== signingJwk.kid) return undefined;
  const ok = cryptoVerify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`),
    publicKey, Buffer.from(parts[2], 'base64url'));
  if (!ok || payload.iss !== issuer) return undefined;
  if (typeof payload.exp !== 'number' || payload.exp <= Math.floor(Date.now() / 1000)) return undefined;
  return payload;
}

// Routes oidc-provider does not have, and rewrites that make Kinde-shaped
// requests acceptable to it. Runs before the provider's own router.
provider.use(async (ctx, next) => {
  const { path, method } = ctx;

  if (path === '/.well-known/jwks.json' && method === 'GET') {
    ctx.path = '/.well-known/jwks';
    return next();
  }

  if (path === '/oauth2/auth' && method === 'GET') {
    const q = new URLSearchParams(ctx.querystring);
    const prompt = q.get('prompt');
    if (prompt && prompt.split(' ').includes('create')) {
      // Kinde's sign-up: treated as a forced login, form titled for sign-up.
      const values = new Set(prompt.split(' ').map((p) => (p === 'create' ? 'login' : p)));
      q.set('prompt', [...values].join(' '));
      q.set('kinde_prompt', 'create');
      ctx.querystring = q.toString();
    }
    return next();
  }

  if (path === '/logout' && method === 'GET') {
    const q = new URLSearchParams(ctx.querystring);
    const redirect = q.get('redirect');
    if (redirect !== null && !q.has('post_logout_redirect_uri')) {
      // Kinde's /logout?redirect=<url> has no client_id; oidc-provider needs
      // one to honour a return URL, so use the client that registered it.
      q.delete('redirect');
      q.set('post_logout_redirect_uri', redirect);
      if (!q.has('client_id') && !q.has('id_token_hint')
          && config.postLogoutRedirectUris.includes(redirect)) {
        q.set('client_id', config.clientId);
      }
      ctx.querystring = q.toString();
    }
    return next();
  }

  if (path === '/oauth2/v2/user_profile' && method === 'GET') {
    const auth = ctx.get('authorization');
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    const claims = m ? verifyAccessToken(m[1]) : undefined;
    const account = claims ? accounts.find(claims.sub) : undefined;
    ctx.set('Cache-Control', 'no-store');
    if (!account) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      ctx.body = { error: 'invalid_token' };
      return undefined;
    }
    ctx.body = account.profile();
    return undefined;
  }

  const interaction = /^\/interaction\/([^/]+)(?:\/(login|abort))?$/.exec(path);
  if (interaction) {
    ctx.set('Cache-Control', 'no-store');
    return handleInteraction(ctx, interaction[2]);
  }

  return next();
});

async function handleInteraction(ctx, action) {
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Sign-in expired', `<h1>Sign-in expired</h1><p class="note">${esc(err.message)}</p>`);
    return;
  }
  const { uid, prompt, params } = details;

  if (action === 'abort') {
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }

  if (action === 'login' && ctx.method === 'POST') {
    const form = await readForm(ctx.req);
    const login = (form.get('login') ?? '').trim();
    if (!login) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = loginPage(uid, params);
      return;
    }
    const account = accounts.accountForLogin(login);
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: account.id },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }

  if (ctx.method !== 'GET') {
    ctx.status = 405;
    return;
  }

  if (prompt.name === 'consent') {
    // loadExistingGrant grants everything, so this is reached only in odd
    // cases (e.g. a claims request); grant what is missing without a page.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      consent: { grantId: await grant.save() },
    }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }

  ctx.type = 'html';
  ctx.body = loginPage(uid, params);
}

provider.on('server_error', (_ctx, err) => console.error('idp: server_error', err));
provider.on('grant.error', (_ctx, err) => console.error('idp: grant.error', err.message, err.error_description ?? ''));
provider.on('authorization.error', (_ctx, err) => console.error('idp: authorization.error', err.message, err.error_description ?? ''));
provider.on('end_session.error', (_ctx, err) => console.error('idp: end_session.error', err.message, err.error_description ?? ''));

server.on('request', provider.callback());

process.stdout.write(`${JSON.stringify({ ready: true, issuer, port })}\n`);
console.error(`idp: listening on ${issuer} (client ${config.clientId}, audience ${audience}, kid ${signingJwk.kid})`);

function shutdown(signal) {
  console.error(`idp: ${signal}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  // Idle keep-alive sockets are closed above; do not hang on anything else.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
