// A private glewlwyd (Debian's glewlwyd 2.7) for `make interop`: its own sqlite database made from
// the packaged init script, its own copy of the web app, a config file, a loopback port, started
// in the foreground. Through its admin REST API it is told only what a provider must be told: the
// OpenID Connect plugin's issuer and signing key (ES512 on P-521, as glewlwyd's documentation
// generates), a short access-token lifetime (for the refresh steps), one user, and our confidential
// client (id, secret, redirect and post-logout URIs, grant types). Everything else keeps the
// defaults glewlwyd's admin app gives a new plugin instance (tests/interop/glewlwyd-oidc-defaults.json).

import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { start, waitHttp } from './proc.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const INIT_SQL = '/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz';
const WEBAPP = '/usr/share/glewlwyd/webapp';
const WEBAPP_CONFIG = '/etc/glewlwyd/config-2.7.json/config.json';

export const USER = { login: 'ada', password: 'interop-Password-1', name: 'Ada Lovelace', email: 'ada@example.com' };

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
}

function configText({ port, dir }) {
  const mime = [['.html', 'text/html', 1], ['.css', 'text/css', 1], ['.js', 'application/javascript', 1],
    ['.json', 'application/json', 1], ['.png', 'image/png', 0], ['.svg', 'image/svg+xml', 0],
    ['.ico', 'image/x-icon', 0], ['.woff', 'font/woff', 0], ['.woff2', 'font/woff2', 0], ['.ttf', 'font/ttf', 0]];
  return `# written by tests/interop/glewlwyd.mjs
port=${port}
bind_address="127.0.0.1"
external_url="http://127.0.0.1:${port}"
login_url="login.html"
api_prefix="api"
static_files_path="${dir}/webapp/"
allow_origin="*"
log_mode="console"
log_level="INFO"
cookie_secure=0
session_expiration=2419200
session_key="GLEWLWYD_INTEROP_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
user_middleware_module_path="/usr/lib/glewlwyd/user_middleware"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
hash_algorithm="SHA512"
database = { type = "sqlite3"; path = "${dir}/glewlwyd.db"; };
static_files_mime_types = (
${mime.map(([e, m, c]) => `  { extension = "${e}"; mime_type = "${m}"; compress = ${c}; }`).join(',\n')}
);
`;
}

// A tiny cookie-keeping JSON client for the admin API.
function adminClient(base) {
  let cookie = '';
  return async (method, url, body) => {
    const res = await fetch(base + url, {
      method,
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
    });
    const set = res.headers.getSetCookie?.() ?? [];
    if (set.length) cookie = set.map((c) => c.split(';')[0]).join('; ');
    const text = await res.text();
    if (res.status >= 300) throw new Error(`glewlwyd ${method} ${url}: ${res.status} ${text.slice(0, 500)}`);
    return text ? JSON.parse(text) : null;
  };
}

// setUp({dir, port, app: {redirectUri, postLogoutUri}, client: {id, secret}, accessTokenSeconds})
// -> provider handle: {name, issuer, user, proc, stop(), settings}
export async function setUp({ dir, port, app, client, accessTokenSeconds }) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // The database from the packaged init script (it creates admin / password).
  sh('sqlite3', [path.join(dir, 'glewlwyd.db')], { input: sh('zcat', [INIT_SQL]) });
  // The web app (login page). Its symlinks are relative, and its config.json is a link to a
  // directory (a packaging bug): copy the files, then put the real config.json in place.
  cpSync(WEBAPP, path.join(dir, 'webapp'), { recursive: true, dereference: true });
  rmSync(path.join(dir, 'webapp/config.json'), { recursive: true, force: true });
  copyFileSync(WEBAPP_CONFIG, path.join(dir, 'webapp/config.json'));
  // The signing key: EC P-521 (ES512), with the self-signed certificate glewlwyd asks for.
  const key = path.join(dir, 'sign-key.pem');
  const cert = path.join(dir, 'sign-cert.pem');
  sh('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521', '-out', key]);
  sh('openssl', ['req', '-x509', '-new', '-key', key, '-subj', '/CN=glewlwyd-interop', '-days', '2', '-out', cert]);
  const confFile = path.join(dir, 'glewlwyd.conf');
  writeFileSync(confFile, configText({ port, dir }));

  const base = `http://127.0.0.1:${port}`;
  const proc = start('glewlwyd', 'glewlwyd', ['-c', confFile], { cwd: dir });
  await waitHttp(`${base}/api/`, proc);

  const api = adminClient(base);
  await api('POST', '/api/auth/', { username: 'admin', password: 'password' });
  const issuer = `${base}/api/oidc`;
  const defaults = JSON.parse(readFileSync(path.join(HERE, 'glewlwyd-oidc-defaults.json'), 'utf8'));
  const told = {
    iss: issuer,
    'jwt-type': 'ecdsa',
    'jwt-key-size': '512',
    key: readFileSync(key, 'utf8'),
    cert: readFileSync(cert, 'utf8'),
    'access-token-duration': accessTokenSeconds,
  };
  // Provider-wide switches the flow needs, off in glewlwyd's defaults (each found by a failed step):
  const needed = {
    // The app always sends a PKCE challenge; with the default (false) glewlwyd answers the
    // authorization request with error=invalid_request instead of ignoring it (RFC 7636 4.5).
    'pkce-allowed': true,
    // Without it the token endpoint answers 403 to client_credentials, even with scope=openid.
    'allow-non-oidc': true,
    // Its defaults release no email ("no") and the name only when a client asks for it with the claims
    // request parameter ("on-demand"), in the ID token and UserInfo alike: no scope gets them.
    'name-claim': 'mandatory',
    'email-claim': 'mandatory',
  };
  await api('POST', '/api/mod/plugin/', {
    module: 'oidc', name: 'oidc', display_name: 'OpenID Connect', parameters: { ...defaults, ...told, ...needed },
  });
  await api('POST', '/api/user/', {
    username: USER.login, password: USER.password, name: USER.name, email: USER.email, scope: ['openid'], enabled: true,
  });
  const clientRecord = {
    client_id: client.id,
    name: 'kinde-fcgi interop',
    confidential: true,
    enabled: true,
    password: client.secret,
    client_secret: client.secret,
    redirect_uri: [app.redirectUri],
    post_logout_redirect_uri: app.postLogoutUri,
    authorization_type: ['code', 'refresh_token', 'client_credentials'],
    token_endpoint_auth_method: ['client_secret_basic'],
    scope: ['openid'],
  };
  await api('POST', '/api/client/', clientRecord);
  return {
    name: 'glewlwyd',
    version: sh('dpkg-query', ['-W', '-f=${Version}', 'glewlwyd']).toString(),
    issuer,
    user: USER,
    proc,
    settings: { plugin: { ...told, key: '(P-521 PEM)', cert: '(PEM)' }, needed,
      client: { ...clientRecord, password: '***', client_secret: '***' } },
    stop: () => proc.stop(),
  };
}
