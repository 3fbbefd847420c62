// Hostile requests through real servers (lighttpd + mod_fastcgi, Apache + mod_fcgid) and plain CGI:
// bodies without a type or over the limit, floods of cookies, CR/LF and NUL in parameters, invalid
// UTF-8, repeated callback parameters, and headers that imitate the claim variables. Each answer is
// a clean 4xx (or 200/3xx where the input is harmless), never a 5xx; no header is split or injected;
// no imitation header makes anyone signed in; and no log line holds a secret.
//
// Requests go over a raw socket (HTTP/1.0, Connection: close), so the test controls every byte and
// sees the response head exactly as sent, before any client library would reject or fold it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startLighttpd, startApache } from '../lib/servers.mjs';
import { runCgi } from '../lib/cgi.mjs';
import { startFakeIdp } from '../lib/fakeidp.mjs';
import { makeApp, CALLBACK_URL } from '../fakeidp/harness.mjs';

const CLIENT_ID = 'hostile-client-7c1e';
const CLIENT_SECRET = 'SECRET-hostile-never-logged-5f4e3d2c1b0a';
const SESSION_COOKIE = 'kinde_fcgi_session';
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]+\.eyJ/;

let fake;
const servers = {};
let cgiApp;
const handedOut = new Set();  // session ids and codes seen in responses: none may reach a log

before(async () => {
  fake = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  const appEnv = {
    KINDE_ISSUER_URL: fake.issuer, KINDE_CLIENT_ID: CLIENT_ID, KINDE_CLIENT_SECRET: CLIENT_SECRET,
    KINDE_LOG_LEVEL: 'debug', KINDE_HTTP_TIMEOUT_MS: '2000', KINDE_HTTP_CONNECT_TIMEOUT_MS: '1000',
  };
  [servers.lighttpd, servers.apache] = await Promise.all([
    startLighttpd({ appEnv, procs: 2 }),
    startApache({ prefix: '/app', appEnv, procs: 2 }),
  ]);
  cgiApp = makeApp({ issuer: fake.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, config: { KINDE_LOG_LEVEL: 'debug' } });
});

after(async () => {
  await Promise.all(Object.values(servers).map((s) => s?.stop()));
  cgiApp?.cleanup();
  await fake?.stop();
});

// raw(server, method, pathAndQuery, headerLines[], body) -> {status, lines (header lines as sent),
// headers: {lower-name: [values]}, body, reset}. pathAndQuery is relative to the server's base.
function raw(server, method, target, headerLines = [], body = Buffer.alloc(0)) {
  const u = new URL(server.baseUrl);
  const head = Buffer.concat([
    Buffer.from(`${method} ${u.pathname.replace(/\/$/, '')}`, 'latin1'),
    Buffer.isBuffer(target) ? target : Buffer.from(target, 'latin1'),
    Buffer.from(` HTTP/1.0\r\nHost: ${u.host}\r\nConnection: close\r\n`, 'latin1'),
    ...headerLines.map((l) => Buffer.concat([Buffer.isBuffer(l) ? l : Buffer.from(l, 'latin1'), Buffer.from('\r\n')])),
    Buffer.from(body.length || method === 'POST' ? `Content-Length: ${body.length}\r\n\r\n` : '\r\n', 'latin1'),
  ]);
  return new Promise((resolve, reject) => {
    const chunks = [];
    let reset = false;
    const sock = net.connect(server.port, '127.0.0.1');
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer within 20 s: ${method} ${target}`)); }, 20000);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => { if (e.code === 'ECONNRESET' || e.code === 'EPIPE') reset = true; else { clearTimeout(timer); reject(e); } });
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const sep = text.indexOf('\r\n\r\n');
      const headText = sep >= 0 ? text.slice(0, sep) : text;
      const [statusLine, ...lines] = headText.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine || '');
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) (headers[l.slice(0, i).toLowerCase()] ||= []).push(l.slice(i + 1).trim());
      }
      for (const sc of headers['set-cookie'] || []) {
        const v = /^[^=]+=([^;]*)/.exec(sc)?.[1];
        if (v && v.length >= 20) handedOut.add(v);
      }
      resolve({ status: m ? Number(m[1]) : 0, lines, headers, body: sep >= 0 ? text.slice(sep + 4) : '', reset });
    });
    sock.write(Buffer.concat([head, body]), () => {});
  });
}

// Through CGI: the same request as a server would hand it over (already percent-encoded query).
async function cgi(method, target, headers = {}, body = '') {
  const q = target.indexOf('?');
  const res = await cgiApp.run({
    method, path: q >= 0 ? target.slice(0, q) : target, query: q >= 0 ? target.slice(q + 1) : '', headers, body,
  });
  for (const sc of res.headers['set-cookie'] || []) {
    const v = /^[^=]+=([^;]*)/.exec(sc)?.[1];
    if (v && v.length >= 20) handedOut.add(v);
  }
  return res;
}

function assertNo5xx(res, what) {
  assert.ok(res.status < 500, `${what}: got ${res.status} ${String(res.body).slice(0, 300)}`);
}

function assertNoInjection(res, what) {
  for (const l of res.lines ?? []) {
    assert.doesNotMatch(l, /^set-cookie:\s*x=/i, `${what}: injected cookie header ${l}`);
    assert.doesNotMatch(l, /^x=y/i, `${what}: split header ${l}`);
    assert.ok(!/[\0]/.test(l), `${what}: NUL in a header line`);
  }
  for (const sc of (res.headers['set-cookie'] || [])) assert.doesNotMatch(sc, /^x=/, `${what}: cookie x set`);
  for (const loc of (res.headers.location ? [].concat(res.headers.location) : [])) {
    assert.doesNotMatch(loc, /[\r\n\0]/, `${what}: raw control character in Location`);
    assert.doesNotMatch(loc, /Set-Cookie/i, `${what}: Location carries a header: ${loc}`);
  }
}

const signedOutHome = (res, what) => {
  assert.equal(res.status, 200, `${what}: ${res.status}`);
  assert.match(res.body, /Sign in/, what);
  assert.doesNotMatch(res.body, /Sign out/, `${what}: shows a signed-in page`);
};

const NEXT_INJECTION = '/login?next=/%0d%0aSet-Cookie:x=y';
const IMITATIONS = [
  'Kinde-User-Id: kp_imposter0000000000000000000001', 'Remote-User: admin', 'X-Remote-User: admin',
  'Variable-KINDE_USER_ID: kp_imposter0000000000000000000001', 'Variable-KINDE_PERMISSIONS: admin:all',
  'Kinde-Permissions: admin:all', 'X-Kinde-User: {"id":"kp_imposter","email":"evil@example.test"}',
  'Authorization: Basic YWRtaW46YWRtaW4=', 'Auth-Type: Basic',
];

for (const name of ['lighttpd', 'apache']) {
  test(`${name}: a POST without Content-Type is answered without a 5xx`, async () => {
    const res = await raw(servers[name], 'POST', '/logout', [], Buffer.from('a=1&b=2'));
    assertNo5xx(res, 'POST /logout without type');
    assert.ok(res.status === 303 || (res.status >= 400 && res.status < 500), `status ${res.status}`);
    const home = await raw(servers[name], 'POST', '/', [], Buffer.from('junk'));
    assertNo5xx(home, 'POST / without type');
    assert.ok(home.status >= 400, `POST / is not a route: ${home.status}`);
  });

  test(`${name}: a body over 64 KiB is refused with 413 (or the server's own 4xx)`, async () => {
    const body = Buffer.alloc(70 * 1024, 'a');
    const res = await raw(servers[name], 'POST', '/logout', ['Content-Type: application/x-www-form-urlencoded'], body);
    assertNo5xx(res, 'big body');
    assert.ok(res.status === 413 || (res.status >= 400 && res.status < 500), `status ${res.status}`);
  });

  test(`${name}: 10,000 cookies and a 1 MB Cookie header get a 4xx or a signed-out page`, async () => {
    const many = Array.from({ length: 10000 }, (_, i) => `c${i}=v`).join('; ');
    for (const [what, header] of [['10,000 cookies', `Cookie: ${many}`],
      ['1 MB cookie', `Cookie: ${SESSION_COOKIE}=${'A'.repeat(1024 * 1024)}`],
      ['a few long cookies', `Cookie: a=${'b'.repeat(3000)}; ${SESSION_COOKIE}=${'c'.repeat(3000)}`]]) {
      const res = await raw(servers[name], 'GET', '/', [header]);
      // A server may cut the connection on an oversized head (no answer at all): also a refusal.
      if (res.status === 0) { assert.ok(res.reset || res.body === '', `${what}: no status line`); continue; }
      assertNo5xx(res, what);
      if (res.status === 200) signedOutHome(res, what);
      else assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status}`);
    }
  });

  test(`${name}: CR/LF and NUL in parameters never split a header or set a cookie`, async () => {
    for (const target of [NEXT_INJECTION, '/login?next=%0d%0aLocation:%20https://evil.example',
      '/login?next=/%00/evil', '/login?next=/ok%0d%0a%0d%0a<script>x</script>', '/items/7%0d%0aSet-Cookie:x=y',
      '/login?org_code=a%0d%0aSet-Cookie:x=y', '/?q=%00%0d%0a']) {
      const res = await raw(servers[name], 'GET', target);
      assertNo5xx(res, target);
      assertNoInjection(res, target);
    }
    // A raw NUL or bare LF in the request line is the server's to refuse.
    const nul = await raw(servers[name], 'GET', Buffer.from('/login?next=/\0x', 'latin1'));
    assertNo5xx(nul, 'raw NUL');
    assertNoInjection(nul, 'raw NUL');
  });

  test(`${name}: an injected next survives a whole sign-in only as a safe local redirect`, async () => {
    const login = await raw(servers[name], 'GET', NEXT_INJECTION);
    assertNoInjection(login, 'login');
    if (login.status === 400 && !login.headers['set-cookie']) {
      // lighttpd refuses encoded control characters in the URL itself (url-ctrls-reject): the
      // request never reaches the app, which is as safe as it gets.
      assert.doesNotMatch(login.body, /Sign in/, 'the refusal is the server\'s, not the app\'s');
      return;
    }
    assert.ok([302, 303].includes(login.status), `login: ${login.status} ${login.body.slice(0, 200)}`);
    const cookies = (login.headers['set-cookie'] || []).map((c) => c.split(';')[0]).join('; ');
    const auth = await fetch(login.headers.location[0], { redirect: 'manual' });
    const cb = new URL(auth.headers.get('location'));
    const base = new URL(servers[name].baseUrl);
    assert.equal(cb.origin, base.origin);
    const res = await raw(servers[name], 'GET', cb.pathname.slice(base.pathname.replace(/\/$/, '').length) + cb.search,
      cookies ? [`Cookie: ${cookies}`] : []);
    assert.ok([302, 303].includes(res.status), `callback: ${res.status} ${res.body.slice(0, 300)}`);
    assertNoInjection(res, 'callback');
    const loc = res.headers.location[0];
    const target = new URL(loc, servers[name].baseUrl);
    assert.equal(target.origin, base.origin, `callback leaves the site: ${loc}`);
    assert.doesNotMatch(decodeURIComponent(target.pathname), /[\r\n]/);
  });

  test(`${name}: invalid UTF-8 in parameter and cookie names is harmless`, async () => {
    for (const target of ['/login?%ff%fe=1', '/login?next=/%c3%28', '/login?org_name=%ed%a0%80&is_create_org=true',
      '/?%c0%af=1', '/items/7?q=%ff']) {
      const res = await raw(servers[name], 'GET', target);
      assertNo5xx(res, target);
      assertNoInjection(res, target);
    }
    const res = await raw(servers[name], 'GET', '/', [Buffer.from(`Cookie: \xff\xfe=1; ${SESSION_COOKIE}=\xc3\x28\x80`, 'latin1')]);
    assertNo5xx(res, 'binary cookie');
    if (res.status === 200) signedOutHome(res, 'binary cookie');
  });

  test(`${name}: repeated state or code on the callback is a 400`, async () => {
    for (const target of ['/callback?state=a&state=b&code=c', '/callback?state=a&code=c&code=d',
      '/callback?state=a&code=c&state=a']) {
      const res = await raw(servers[name], 'GET', target);
      assert.equal(res.status, 400, `${target}: ${res.status}`);
      assert.equal(res.headers['set-cookie']?.some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !/Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(c)) ?? false, false);
    }
  });

  test(`${name}: headers imitating claim variables sign nobody in`, async () => {
    const me = await raw(servers[name], 'GET', '/api/me', IMITATIONS);
    assert.equal(me.status, 401, `/api/me: ${me.status} ${me.body.slice(0, 200)}`);
    assert.doesNotMatch(me.body, /imposter|admin:all/);
    const items = await raw(servers[name], 'GET', '/items/7', IMITATIONS);
    assert.equal(items.status, 401);
    const home = await raw(servers[name], 'GET', '/', IMITATIONS);
    signedOutHome(home, 'home with imitation headers');
    assert.doesNotMatch(home.body, /imposter|evil@example/);
  });
}

test('CGI: the same hostile inputs give 4xx or harmless answers, never 5xx', async () => {
  const post = await cgi('POST', '/logout', {}, 'a=1&b=2');
  assertNo5xx(post, 'CGI POST without type');
  const big = await cgi('POST', '/logout', { 'content-type': 'application/x-www-form-urlencoded' }, 'a'.repeat(70 * 1024));
  assert.equal(big.status, 413);
  const many = Array.from({ length: 10000 }, (_, i) => `c${i}=v`).join('; ');
  signedOutHome(await cgi('GET', '/', { cookie: many }), 'CGI 10,000 cookies');
  // An environment string is capped at 128 KiB by the kernel (E2BIG): the largest a CGI can get.
  signedOutHome(await cgi('GET', '/', { cookie: `${SESSION_COOKIE}=${'A'.repeat(120 * 1024)}` }), 'CGI 120 KiB cookie');
  for (const target of [NEXT_INJECTION, '/login?next=/%00/evil', '/login?%ff%fe=1', '/login?next=/%c3%28', '/?%c0%af=1']) {
    const res = await cgi('GET', target);
    assertNo5xx(res, `CGI ${target}`);
    for (const sc of res.headers['set-cookie'] || []) assert.doesNotMatch(sc, /^x=/);
    assert.doesNotMatch(res.headers.location ?? '', /[\r\n\0]|Set-Cookie/i);
  }
  for (const target of ['/callback?state=a&state=b&code=c', '/callback?state=a&code=c&code=d']) {
    assert.equal((await cgi('GET', target)).status, 400, target);
  }
  const headers = Object.fromEntries(IMITATIONS.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
  assert.equal((await cgi('GET', '/api/me', headers)).status, 401);
  signedOutHome(await cgi('GET', '/', headers), 'CGI imitation headers');
  // Variables a server sets (not headers) are outside a client's reach; REMOTE_USER from the
  // environment must not sign anyone in either.
  const env = await cgiApp.run({ path: '/api/me', env: { REMOTE_USER: 'admin', AUTH_TYPE: 'Basic', KINDE_USER_ID: 'kp_x' } });
  assert.equal(env.status, 401);
});

test('no log line of any server or CGI run holds a secret, a token, a code or a session id', async () => {
  // The app's own lines: the servers' error logs and stderr. Apache's access log is left out: it
  // records every request line, the callback's one-time, PKCE-bound code included (as any site's).
  const appLog = (s) => s.errorLog().replace(/--- access\.log ---\n[\s\S]*?(?=\n--- |$)/, '');
  const logs = [appLog(servers.lighttpd), appLog(servers.apache), ...cgiApp.seen.map((r) => r.stderr)].join('\n');
  assert.match(logs, /bad request/, 'the app logged the refused requests (at debug level)');
  assert.ok(logs.length > 0, 'the servers logged something');
  assert.ok(!logs.includes(CLIENT_SECRET), 'client secret in a log');
  assert.doesNotMatch(logs, JWT_SHAPE, 'a JWT in a log');
  for (const code of fake.codes.keys()) assert.ok(!logs.includes(code), `authorization code ${code} in a log`);
  for (const v of handedOut) assert.ok(!logs.includes(v), `a cookie value handed out appears in a log: ${v.slice(0, 8)}...`);
});
