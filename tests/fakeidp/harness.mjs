// Drives build/kinde.fcgi (as plain CGI) against the fake provider: a temp config and session dir per
// app, the sign-in dance (login -> fake /oauth2/auth -> callback), cookie and session-file helpers.
// Every response and log seen is kept, so a test can check that no secret ever leaked.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCgi, projectRoot } from '../lib/cgi.mjs';

export const CALLBACK_URL = 'http://127.0.0.1/callback';
export const SESSION_COOKIE = 'kinde_fcgi_session';
// Sign-in cookies: one per attempt, kinde_fcgi_auth_<16 hex of SHA-256(state)>, sealed (not Secure
// here: http on loopback, so no __Host- prefix).
export const SIGNIN_FAMILY = 'kinde_fcgi_auth_';

// makeApp({issuer, clientId, clientSecret, config}) -> app: {dir, sessionDir, configPath, run(opts),
// seen: [responses], countSessions(), cleanup()}. `config` adds or overrides config-file keys.
export function makeApp({ issuer, clientId, clientSecret, config = {} }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kinde-faults-'));
  const sessionDir = path.join(dir, 'sessions');
  const keys = {
    KINDE_ISSUER_URL: issuer,
    KINDE_CLIENT_ID: clientId,
    KINDE_CLIENT_SECRET: clientSecret,
    KINDE_CALLBACK_URL: CALLBACK_URL,
    KINDE_SESSION_DIR: sessionDir,
    KINDE_TEMPLATE_DIR: path.join(projectRoot, 'templates'),
    KINDE_HTTP_TIMEOUT_MS: '1500',
    KINDE_HTTP_CONNECT_TIMEOUT_MS: '1000',
    KINDE_LOG_LEVEL: 'info',
    ...config,
  };
  const configPath = path.join(dir, 'kinde.conf');
  fs.writeFileSync(configPath, Object.entries(keys).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  const seen = [];
  return {
    dir, sessionDir, configPath, seen,
    // runCgi with this app's config; the response is recorded in `seen`.
    async run(opts = {}) {
      const res = await runCgi({ ...opts, env: { KINDE_CONFIG: configPath, ...(opts.env || {}) } });
      seen.push(res);
      return res;
    },
    countSessions() { return countSessionFiles(sessionDir); },
    cleanup() { fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

// Session records in the store: regular files whose name does not start with '.' (.lock, .tmp-*,
// .provider-cache.json are bookkeeping).
export function countSessionFiles(dir) {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) n += countSessionFiles(path.join(dir, e.name));
    else if (e.isFile()) n += 1;
  }
  return n;
}

// The Set-Cookie header for `name` (or undefined).
export function setCookie(res, name) {
  return (res.headers['set-cookie'] || []).find((c) => c.startsWith(`${name}=`));
}

// The value set for cookie `name` ('' when expired, undefined when not set).
export function cookieValue(res, name) {
  const c = setCookie(res, name);
  if (c === undefined) return undefined;
  return c.slice(name.length + 1).split(';')[0];
}

export function isExpiredCookie(header) {
  return header !== undefined && /=;/.test(header) && /Max-Age=0/i.test(header);
}

// The sign-in cookies a response sets, as {name, value, header}; `cleared` the names it expires.
export function signinCookies(res) {
  const all = (res.headers['set-cookie'] || []).map((h) => {
    const eq = h.indexOf('=');
    return { name: h.slice(0, eq), value: h.slice(eq + 1).split(';')[0], header: h };
  }).filter((c) => c.name.includes(SIGNIN_FAMILY));
  return { set: all.filter((c) => !isExpiredCookie(c.header)), cleared: all.filter((c) => isExpiredCookie(c.header)).map((c) => c.name) };
}

// GET /login[?query]: returns {res, location (URL), cookie ("name=value" of its sign-in cookie),
// cookieName, setCookie (the whole header), state, nonce}.
export async function beginLogin(app, query = '', headers = {}) {
  const res = await app.run({ path: '/login', query, headers });
  const location = res.headers.location ? new URL(res.headers.location) : null;
  const [mine] = signinCookies(res).set;
  return {
    res, location, cookie: mine ? `${mine.name}=${mine.value}` : undefined, cookieName: mine?.name,
    setCookie: mine?.header, state: location?.searchParams.get('state'), nonce: location?.searchParams.get('nonce'),
  };
}

// Follows the authorize URL at the fake provider; returns the callback's query string.
export async function authorize(location) {
  const r = await fetch(location, { redirect: 'manual' });
  if (r.status !== 302) throw new Error(`fake authorize answered ${r.status}`);
  const back = new URL(r.headers.get('location'));
  return back.search.slice(1);
}

// The whole sign-in: login, provider, callback. Returns {login, callbackQuery, res, session}.
export async function signIn(app, { next, loginQuery } = {}) {
  const q = loginQuery ?? (next !== undefined ? `next=${encodeURIComponent(next)}` : '');
  const login = await beginLogin(app, q);
  if (login.res.status !== 302) throw new Error(`login answered ${login.res.status}: ${login.res.body}`);
  const callbackQuery = await authorize(login.location);
  const res = await app.run({ path: '/callback', query: callbackQuery, headers: { cookie: login.cookie } });
  return { login, callbackQuery, res, session: cookieValue(res, SESSION_COOKIE) };
}

// GET `p` with the session cookie.
export function withSession(app, session, p = '/', extra = {}) {
  return app.run({ path: p, headers: { cookie: `${SESSION_COOKIE}=${session}` }, ...extra });
}

// Every place a response could leak a value: body, headers, log.
export function responseText(res) {
  return [res.body, JSON.stringify(res.headers), res.stderr, String(res.status)].join('\n');
}
