// oauth2-mock-server (npm, pinned in tests/package.json) set up per test case as a provider nobody here wrote:
// a free loopback port, one signing key of the case's algorithm, and the habits of real providers that are not
// Kinde, each switched on by an option. Its /authorize signs in "johndoe" at once (no login form).
//
//   const idp = await startMockIdp({ clientId, clientSecret, alg: 'ES512', trailingSlash: true,
//     idTokenClaims: {}, userinfo: { name: 'Ada' }, accessToken: 'opaque' | 'jwt' | 'at+jwt',
//     endSession: false, refreshToken: false });
//   idp.issuer            // exactly as the provider states it (with the trailing slash when asked)
//   idp.calls.userinfo    // [{authorization}] ; calls.introspect [{token, authorization}] ; calls.endSession [{query}]
//   idp.clientCredentialsToken()  // an access token for the client (client_credentials grant)
//   idp.revoke(token)     // introspection says active: false from now on
//   await idp.stop();
import crypto from 'node:crypto';

import { OAuth2Server } from 'oauth2-mock-server';

export const SUBJECT = 'johndoe';  // the mock's one user

const BUILTIN_INTROSPECT = '/builtin-introspect';  // moved aside: ours answers per token (see below)

function basicCredentials(header) {
  const m = /^Basic (.+)$/.exec(header || '');
  if (!m) return null;
  const [id, secret] = Buffer.from(m[1], 'base64').toString('utf8').split(':');
  return { id: decodeURIComponent(id), secret: decodeURIComponent(secret ?? '') };
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startMockIdp({
  clientId, clientSecret, alg = 'RS256', trailingSlash = false, idTokenClaims = {}, userinfo = {},
  accessToken = 'jwt', accessTokenClaims = {}, endSession = true, refreshToken = true,
} = {}) {
  const server = new OAuth2Server(undefined, undefined, {
    shouldIssuerUrlBeSuffixedWithATralingSlash: trailingSlash,
    endpoints: { introspect: BUILTIN_INTROSPECT },
  });
  await server.issuer.keys.generate(alg);
  const calls = { userinfo: [], introspect: [], endSession: [], token: [] };
  const opaque = new Map();  // opaque access token -> its introspection answer
  const service = server.service;
  const combine = (path) => server.issuer.url.replace(/\/$/, '') + path;

  service.on('beforeWellKnownOpenIdConfiguration', (doc) => {
    doc.body.introspection_endpoint = combine('/introspect');
    if (!endSession) delete doc.body.end_session_endpoint;
  });
  // The ID token: only sub unless the case adds profile claims (the mock's own habit, and LemonLDAP's default).
  service.on('beforeTokenSigning', (token, req) => {
    // The mock gives every access token a scope member (possibly undefined) and no ID token one.
    if (!('scope' in token.payload)) {
      Object.assign(token.payload, idTokenClaims);
      return;
    }
    // An access token. RFC 9068: typed at+jwt, the client in client_id.
    if (accessToken === 'at+jwt') {
      token.header.typ = 'at+jwt';
      token.payload.client_id = clientId;
      if (req.body?.grant_type === 'client_credentials') token.payload.sub = clientId;
      Object.assign(token.payload, accessTokenClaims);
    }
  });
  service.on('beforeResponse', (response, req) => {
    calls.token.push({ grant: req.body?.grant_type });
    const body = response.body;
    if (!refreshToken) delete body.refresh_token;
    if (accessToken === 'opaque' && body.access_token) {
      // LemonLDAP's and Google's kind: a random reference only the provider can resolve.
      const token = crypto.randomBytes(24).toString('hex');
      const cc = req.body?.grant_type === 'client_credentials';
      opaque.set(token, {
        active: true, client_id: clientId, sub: cc ? clientId : SUBJECT, scope: body.scope || 'openid',
        token_type: 'Bearer', exp: Math.floor(Date.now() / 1000) + 3600, iss: server.issuer.url,
      });
      body.access_token = token;
    }
  });
  service.on('beforeUserinfo', (response, req) => {
    calls.userinfo.push({ authorization: req.headers.authorization || '' });
    Object.assign(response.body, userinfo);
  });
  service.on('beforePostLogoutRedirect', (_redirect, req) => {
    calls.endSession.push({ query: Object.fromEntries(new URL(req.url, 'http://x').searchParams) });
  });
  // RFC 7662: the client authenticates (Basic, as the token endpoint); the answer is per token.
  service.addRoute('POST', '/introspect', (req, res) => {
    const who = basicCredentials(req.headers.authorization);
    const token = req.body?.token;
    calls.introspect.push({ token, authorization: req.headers.authorization || '' });
    if (!who || who.id !== clientId || who.secret !== clientSecret) {
      sendJson(res, 401, { error: 'invalid_client' });
      return;
    }
    sendJson(res, 200, opaque.get(token) ?? { active: false });
  });

  await server.start(0, '127.0.0.1');
  const issuer = server.issuer.url;
  return {
    server, calls, issuer,
    // An access token for the client itself (client_credentials), as a machine caller would get one.
    async clientCredentialsToken() {
      const r = await fetch(combine('/token'), {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          Authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'openid' }).toString(),
      });
      if (r.status !== 200) throw new Error(`mock token endpoint answered ${r.status}: ${await r.text()}`);
      return (await r.json()).access_token;
    },
    revoke(token) {
      const answer = opaque.get(token);
      if (answer) answer.active = false;
    },
    async stop() { await server.stop(); },
  };
}
