// A scripted, browser-less sign-in for tests and benchmarks: Node's fetch with
// redirects followed by hand, a small cookie jar, and just enough HTML form
// handling to get through the provider's sign-in form and its auto-submitting
// logout / form_post pages.

import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';

// Cookies are kept per host:port (unlike browsers, which ignore the port), so
// the app's cookies and the provider's stay apart even on one 127.0.0.1.
export class CookieJar {
  constructor() {
    // origin key "host:port" -> Map(`${path}\n${name}` -> {name, value, path, expires})
    this.stores = new Map();
  }

  static keyOf(url) {
    const u = new URL(url);
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    return `${u.hostname}:${port}`;
  }

  // Store the Set-Cookie headers of a response to a request for `url`.
  storeFrom(url, response) {
    const headers = typeof response.headers.getSetCookie === 'function'
      ? response.headers.getSetCookie() : [];
    for (const header of headers) this.setCookie(url, header);
  }

  // setCookie(url, "name=value; Path=/; Max-Age=0 ...")
  setCookie(url, header) {
    const [pair, ...attrs] = header.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = defaultPath(new URL(url).pathname);
    let expires;
    for (const attr of attrs) {
      const [k, ...rest] = attr.split('=');
      const key = k.trim().toLowerCase();
      const v = rest.join('=').trim();
      if (key === 'path' && v.startsWith('/')) path = v;
      else if (key === 'max-age' && /^-?\d+$/.test(v)) expires = Date.now() + Number(v) * 1000;
      else if (key === 'expires' && expires === undefined) {
        const t = Date.parse(v);
        if (!Number.isNaN(t)) expires = t;
      }
    }
    const key = CookieJar.keyOf(url);
    if (!this.stores.has(key)) this.stores.set(key, new Map());
    const store = this.stores.get(key);
    const id = `${path}\n${name}`;
    if (expires !== undefined && expires <= Date.now()) store.delete(id);
    else store.set(id, { name, value, path, expires });
  }

  // cookiesFor(url) -> [{name, value, path}] that a request to url carries,
  // longest path first (the order browsers send them in).
  cookiesFor(url) {
    const store = this.stores.get(CookieJar.keyOf(url));
    if (!store) return [];
    const { pathname } = new URL(url);
    const now = Date.now();
    return [...store.values()]
      .filter((c) => (c.expires === undefined || c.expires > now) && pathMatches(pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length);
  }

  // headerFor(url) -> "a=1; b=2" or "" when nothing applies.
  headerFor(url) {
    return this.cookiesFor(url).map((c) => `${c.name}=${c.value}`).join('; ');
  }

  // cookiesByName(url) -> {name: value} of the cookies set for url's host:port.
  cookiesByName(url) {
    return Object.fromEntries(this.cookiesFor(url).map((c) => [c.name, c.value]));
  }
}

function defaultPath(pathname) {
  const i = pathname.lastIndexOf('/');
  return i <= 0 ? '/' : pathname.slice(0, i);
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|#39|apos);/gi, (m, e) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower] ?? m;
  });
}

function attr(tag, name) {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  if (!m) return undefined;
  return decodeEntities(m[1] ?? m[2] ?? m[3]);
}

// parseForms(html) -> [{action, method, inputs: [[name, value, type]]}]
// Handles the forms the provider renders; not a general HTML parser.
export function parseForms(html) {
  const forms = [];
  const formRe = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  let fm;
  while ((fm = formRe.exec(html)) !== null) {
    const tag = `<form ${fm[1]}>`;
    const inputs = [];
    const inputRe = /<input\b[^>]*>/gi;
    let im;
    while ((im = inputRe.exec(fm[2])) !== null) {
      const name = attr(im[0], 'name');
      if (name === undefined) continue;
      inputs.push([name, attr(im[0], 'value') ?? '', (attr(im[0], 'type') ?? 'text').toLowerCase()]);
    }
    forms.push({
      action: attr(tag, 'action') ?? '',
      method: (attr(tag, 'method') ?? 'get').toLowerCase(),
      inputs,
    });
  }
  return forms;
}

// A page that submits its only form by script on load (oidc-provider's
// form_post and the logout page): a browser would not stop there.
function isAutoSubmitPage(html) {
  return /<script>[^<]*(document\.forms\[0\]\.submit\(\)|\.submit\(\))[^<]*<\/script>/i.test(html);
}

// request(url, jar, {method, form, headers, navigate}) -> Response (body
// unread), one hop: cookies sent from and stored into jar, redirects not
// followed. navigate: send it as a browser's top-level navigation (see
// navigation()) instead of through fetch.
export async function request(url, jar, { method = 'GET', form, headers = {}, navigate = false } = {}) {
  const h = { ...headers };
  const cookie = jar.headerFor(url);
  if (cookie) h.cookie = cookie;
  let body;
  if (form !== undefined) {
    body = new URLSearchParams(form).toString();
    h['content-type'] = 'application/x-www-form-urlencoded';
  }
  const response = navigate
    ? await navigation(url, { method, headers: h, body })
    : await fetch(url, { method, headers: h, body, redirect: 'manual' });
  jar.storeFrom(url, response);
  return response;
}

// navigation(url, {method, headers, body}) -> Response: one plain-HTTP request
// with the headers of a browser's top-level navigation (Accept: text/html,
// Sec-Fetch-Mode: navigate, Sec-Fetch-Dest: document). Some relying parties
// (mod_auth_openidc) start a sign-in only for such requests and answer 401 to
// anything else; fetch always sends Sec-Fetch-Mode: cors, so this uses
// node:http. 10 s timeout.
function navigation(url, { method, headers, body }) {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`navigation() speaks plain HTTP only: ${url}`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(u, {
      method,
      headers: {
        accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
        'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'user-agent': 'kinde-fcgi-tests',
        ...headers,
      },
      timeout: 10000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        const noBody = [204, 205, 304].includes(res.statusCode);
        resolve(new Response(noBody ? null : Buffer.concat(chunks), { status: res.statusCode, headers: h }));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// browse(url, jar, opts) -> {url, status, headers, body, hops}: follows
// redirects and auto-submitting form pages until a page that needs a human
// (or an error) is reached. opts: method, form (first request only),
// maxHops (default 20), stopAt(url) -> true to stop before requesting url,
// navigate (every hop as a browser navigation, see request()).
export async function browse(url, jar, { method = 'GET', form, maxHops = 20, stopAt, navigate = false } = {}) {
  let current = url;
  let currentMethod = method;
  let currentForm = form;
  const hops = [];
  for (let i = 0; i <= maxHops; i += 1) {
    if (stopAt && i > 0 && stopAt(current)) {
      return { url: current, status: 0, headers: new Headers(), body: '', hops, stopped: true };
    }
    hops.push(`${currentMethod} ${current}`);
    const response = await request(current, jar, { method: currentMethod, form: currentForm, navigate });
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.arrayBuffer();
      current = new URL(location, current).href;
      // 307/308 keep the method and body; 301/302/303 turn into GET.
      if (response.status !== 307 && response.status !== 308) {
        currentMethod = 'GET';
        currentForm = undefined;
      }
      continue;
    }
    const body = await response.text();
    const type = response.headers.get('content-type') ?? '';
    if (type.includes('html') && isAutoSubmitPage(body)) {
      const [f] = parseForms(body);
      if (f) {
        current = new URL(f.action || current, current).href;
        currentMethod = f.method === 'post' ? 'POST' : 'GET';
        currentForm = f.inputs.map(([n, v]) => [n, v]);
        if (currentMethod === 'GET') {
          const u = new URL(current);
          for (const [n, v] of currentForm) u.searchParams.append(n, v);
          current = u.href;
          currentForm = undefined;
        }
        continue;
      }
    }
    return { url: current, status: response.status, headers: response.headers, body, hops };
  }
  throw new Error(`more than ${maxHops} redirects starting at ${url}:\n${hops.join('\n')}`);
}

// Find the provider's sign-in form (a form with a `login` field) in a page.
function loginFormIn(html) {
  return parseForms(html).find((f) => f.inputs.some(([n]) => n === 'login'));
}

// signIn(appBaseUrl, login, {path, password, jar, navigate}) ->
//   {cookieHeader, finalUrl, cookies, status, body, jar}
// GETs the app's login URL (appBaseUrl + path), follows redirects to the
// provider, submits its sign-in form as `login`, follows redirects back
// through the app's callback to wherever the app sends the browser.
// cookieHeader / cookies are the cookies the app (appBaseUrl's host:port)
// set; status and body are those of the final page. navigate: every hop as a
// browser navigation (see request()).
export async function signIn(appBaseUrl, login, {
  path = '/login', password = 'any password', jar = new CookieJar(), navigate = false,
} = {}) {
  const start = new URL(path, withSlash(appBaseUrl)).href;
  const page = await browse(start, jar, { navigate });
  const done = await submitSignInForm(page, jar, login, password, { navigate });
  const cookies = jar.cookiesByName(appBaseUrl);
  return {
    cookieHeader: jar.headerFor(appBaseUrl),
    finalUrl: done.url,
    cookies,
    status: done.status,
    body: done.body,
    hops: [...page.hops, ...done.hops],
    jar,
  };
}

// submitSignInForm(page, jar, login, password, browseOptions) -> browse()'s answer after posting the
// provider's sign-in form found in page (a browse() answer) as `login`; throws when page has none.
async function submitSignInForm(page, jar, login, password, browseOptions = {}) {
  const form = loginFormIn(page.body);
  if (!form) {
    throw new Error(`no sign-in form at ${page.url} (status ${page.status}) after:\n${
      page.hops.join('\n')}\n${page.body.slice(0, 500)}`);
  }
  const fields = form.inputs
    .filter(([, , type]) => type !== 'submit' && type !== 'button')
    .map(([n, v]) => {
      if (n === 'login') return [n, login];
      if (n === 'password') return [n, password];
      return [n, v];
    });
  const action = new URL(form.action || page.url, page.url).href;
  return browse(action, jar, { ...browseOptions, method: 'POST', form: fields });
}

// codeFlowTokens(issuer, {clientId, clientSecret, redirectUri, login, scope}) -> the token
// endpoint's answer ({access_token, id_token, refresh_token, expires_in, ...}) after a real
// authorization code flow with PKCE S256 and client_secret_basic, this process playing the client
// (for a relying party whose own client library cannot be installed): the sign-in form is posted as
// `login`, and the provider's redirect to redirectUri is caught, not followed. Throws on a wrong
// state or an error answer.
export async function codeFlowTokens(issuer, {
  clientId, clientSecret, redirectUri, login, password = 'any password',
  scope = 'openid profile email offline',
}) {
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const random = () => randomBytes(32).toString('base64url');
  const verifier = random();
  const state = random();
  const authorize = new URL(discovery.authorization_endpoint);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state, nonce: random(),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  })) authorize.searchParams.set(k, v);
  const jar = new CookieJar();
  const stopAt = (url) => url.startsWith(`${redirectUri}?`);
  const page = await browse(authorize.href, jar, { stopAt });
  const done = await submitSignInForm(page, jar, login, password, { stopAt });
  if (!done.stopped) throw new Error(`the provider did not redirect to ${redirectUri}: ${done.status} at ${done.url}`);
  const back = new URL(done.url).searchParams;
  if (back.get('state') !== state || !back.get('code')) {
    throw new Error(`bad redirect from the provider: ${done.url}`);
  }
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`)
    .toString('base64');
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: back.get('code'), redirect_uri: redirectUri, code_verifier: verifier,
    }),
  });
  const json = await response.json();
  if (!response.ok || typeof json.access_token !== 'string' || typeof json.id_token !== 'string') {
    throw new Error(`code exchange failed (${response.status}): ${JSON.stringify(json)}`);
  }
  return json;
}

// signOut(appBaseUrl, jar, {path}) -> {finalUrl, status, body}: GETs the
// app's logout URL and follows the provider's logout back to where it sends
// the browser.
export async function signOut(appBaseUrl, jar, { path = '/logout' } = {}) {
  const done = await browse(new URL(path, withSlash(appBaseUrl)).href, jar);
  return { finalUrl: done.url, status: done.status, body: done.body, hops: done.hops };
}

function withSlash(base) {
  return base.endsWith('/') ? base : `${base}/`;
}

// clientCredentialsToken(issuer, clientId, clientSecret, audience) -> access
// token string. Finds the token endpoint by discovery; authenticates with
// client_secret_basic; throws with the provider's error on failure.
export async function clientCredentialsToken(issuer, clientId, clientSecret, audience) {
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (audience) body.set('audience', audience);
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`)
    .toString('base64');
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  const json = await response.json();
  if (!response.ok || typeof json.access_token !== 'string') {
    throw new Error(`client_credentials failed (${response.status}): ${JSON.stringify(json)}`);
  }
  return json.access_token;
}
