// The app behind real web servers: lighttpd + mod_fastcgi (app at the site root), Apache 2.4 +
// mod_fcgid (app at /app via Alias), Apache in shared-hosting shape (only an .htaccess), and one
// plain-CGI run. Signed-out pages only: no provider is needed (discovery happens at sign-in).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { runCgi, projectRoot } from '../lib/cgi.mjs';
import { dotenv, HTACCESS_EXAMPLE, startApache, startLighttpd } from '../lib/servers.mjs';

// href/src attribute values of a page, entities decoded (mstch writes "/" as &#x2F;).
function links(html) {
  const decode = (s) => s.replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  return [...html.matchAll(/\s(?:href|src|action)="([^"]*)"/g)].map((m) => decode(m[1]));
}

// The signed-out home page and its headers, wherever it is served from. `base` is the prefix the
// app's links must carry ("" at the site root).
function assertSignedOutHome({ status, headers, body }, base) {
  assert.equal(status, 200, body.slice(0, 300));
  assert.match(headers['content-type'], /^text\/html/);
  assert.match(body, />\s*Sign in\s*</);
  assert.match(body, />\s*Sign up\s*</);
  assert.doesNotMatch(body, /Sign out/);
  const hrefs = links(body);
  assert.ok(hrefs.includes('/styles.css'), `no stylesheet link in ${hrefs}`);
  assert.match(body, /<link rel="stylesheet" href="[^"]*styles\.css">/);
  assert.ok(hrefs.includes(`${base}/login`), `no ${base}/login link in ${hrefs}`);
  assert.ok(hrefs.includes(`${base}/register`), `no ${base}/register link in ${hrefs}`);
  assert.ok(hrefs.includes(`${base}/`), `no ${base}/ home link in ${hrefs}`);
  // Every link the app builds to itself carries the prefix.
  for (const h of hrefs) {
    if (h.startsWith('/') && h !== '/styles.css') assert.ok(h.startsWith(`${base}/`), `${h} lacks prefix ${base}`);
  }
  const csp = headers['content-security-policy'];
  assert.ok(csp, 'no Content-Security-Policy');
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /default-src 'self'/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'no-referrer');
}

async function get(url, init = {}) {
  const res = await fetch(url, { redirect: 'manual', ...init });
  const body = await res.text();
  return { status: res.status, headers: Object.fromEntries(res.headers), body };
}

function withDiagnostics(server, fn) {
  return async () => {
    try {
      await fn();
    } catch (err) {
      err.message += `\n--- server logs ---\n${server().errorLog().slice(-4000)}`;
      throw err;
    }
  };
}

describe('lighttpd + mod_fastcgi, app at the site root', () => {
  let srv;
  before(async () => { srv = await startLighttpd({ procs: 2 }); });
  after(async () => { await srv?.stop(); });

  test('signed-out home page has Sign in, Sign up, the stylesheet and security headers',
    withDiagnostics(() => srv, async () => {
      assertSignedOutHome(await get(`${srv.baseUrl}/`), '');
    }));

  test('the stylesheet is served by lighttpd as text/css', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/styles.css`);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/css/);
    assert.equal(r.body, readFileSync(path.join(projectRoot, 'htdocs/styles.css'), 'utf8'));
  }));

  test('an unknown path is the app\'s 404 page', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/no/such/page`);
    assert.equal(r.status, 404);
    assert.match(r.headers['content-type'], /^text\/html/);
    assert.match(r.body, /Not Found/);
    assert.ok(r.headers['content-security-policy'], 'the 404 comes from the app, with its headers');
  }));

  test('/healthz answers ok', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
  }));

  test('/login without a reachable provider is a 503 page, not a crash', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/login`);
    assert.equal(r.status, 503);
    assert.equal(r.headers.location, undefined);
    // The server keeps serving afterwards.
    assert.equal((await get(`${srv.baseUrl}/healthz`)).body, 'ok');
  }));
});

describe('Apache + mod_fcgid, app at /app', () => {
  let srv;
  let origin;
  before(async () => {
    srv = await startApache({ prefix: '/app' });
    origin = new URL(srv.baseUrl).origin;
  });
  after(async () => { await srv?.stop(); });

  test('baseUrl ends in the prefix', () => {
    assert.match(srv.baseUrl, /^http:\/\/127\.0\.0\.1:\d+\/app$/);
  });

  test('signed-out home page at /app/ has /app-prefixed links, the stylesheet and security headers',
    withDiagnostics(() => srv, async () => {
      assertSignedOutHome(await get(`${srv.baseUrl}/`), '/app');
    }));

  test('/app without the slash also reaches the app', withDiagnostics(() => srv, async () => {
    const r = await get(srv.baseUrl);
    assert.ok(r.status === 200 || (r.status >= 300 && r.status < 400), `status ${r.status}`);
    if (r.status === 200) assert.match(r.body, /Sign in/);
  }));

  test('the stylesheet is served by Apache from htdocs/ as text/css', withDiagnostics(() => srv, async () => {
    const r = await get(`${origin}/styles.css`);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/css/);
    assert.match(r.body, /kinde-fcgi/);
  }));

  test('an unknown path under /app is the app\'s 404 page', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/no/such/page`);
    assert.equal(r.status, 404);
    assert.match(r.body, /Not Found/);
    assert.match(r.body, /href="&#x2F;app&#x2F;"|href="\/app\/"/);
    assert.ok(r.headers['content-security-policy']);
  }));

  test('/appfoo is not the app (Alias matches whole segments)', withDiagnostics(() => srv, async () => {
    const r = await get(`${origin}/appfoo`);
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-security-policy'], undefined, 'Apache\'s own 404, not the app');
  }));

  test('/app/healthz answers ok', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
  }));

  test('the Authorization header reaches the app (CGIPassAuth On)', withDiagnostics(() => srv, async () => {
    const none = await get(`${srv.baseUrl}/api/me`);
    assert.equal(none.status, 401);
    assert.deepEqual(JSON.parse(none.body), { detail: 'Not authenticated' });
    const bad = await get(`${srv.baseUrl}/api/me`, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(bad.status, 401);
    // Only an app that saw the token can call it invalid.
    assert.match(JSON.parse(bad.body).detail, /^Invalid token/);
  }));
});

describe('Apache + mod_fcgid, app at the site root (AliasMatch, as in apache-conf/kinde-fcgi.conf)', () => {
  let srv;
  before(async () => { srv = await startApache({ prefix: '' }); });
  after(async () => { await srv?.stop(); });

  test('signed-out home page at / has unprefixed links and the security headers',
    withDiagnostics(() => srv, async () => {
      assertSignedOutHome(await get(`${srv.baseUrl}/`), '');
    }));

  test('static files stay with Apache, everything else is the app', withDiagnostics(() => srv, async () => {
    const css = await get(`${srv.baseUrl}/styles.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers['content-type'], /^text\/css/);
    assert.equal(css.headers['content-security-policy'], undefined);
    const health = await get(`${srv.baseUrl}/healthz`);
    assert.equal(health.body, 'ok');
    const missing = await get(`${srv.baseUrl}/styles.css.bak`);
    assert.equal(missing.status, 404);
    assert.ok(missing.headers['content-security-policy'], 'the app answers paths that are not static files');
  }));
});

describe('Apache + mod_fcgid, shared hosting with only an .htaccess', () => {
  let srv;
  before(async () => {
    srv = await startApache({ htaccess: readFileSync(HTACCESS_EXAMPLE, 'utf8') });
  });
  after(async () => { await srv?.stop(); });

  test('the home page is rewritten to the app and its links work', withDiagnostics(() => srv, async () => {
    const home = await get(`${srv.baseUrl}/`);
    assert.equal(home.status, 200, home.body.slice(0, 300));
    assert.match(home.body, />\s*Sign in\s*</);
    assert.ok(links(home.body).includes('/styles.css'));
    assert.equal(home.headers['x-content-type-options'], 'nosniff');
    // Whatever prefix the app chose for itself (SCRIPT_NAME ends in kinde.fcgi here), its home
    // link must lead back to the same page.
    const homeLink = links(home.body).find((h) => /^\/.*\/$|^\/$/.test(h) && h !== '/styles.css');
    assert.ok(homeLink, `no home link in ${links(home.body)}`);
    const again = await get(new URL(homeLink, srv.baseUrl).href);
    assert.equal(again.status, 200);
    assert.match(again.body, /Sign up/);
  }));

  test('/healthz is rewritten to the app', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
  }));

  test('an existing file is served as it is, not by the app', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/styles.css`);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/css/);
    assert.equal(r.headers['content-security-policy'], undefined);
  }));

  test('an unknown path is the app\'s 404', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/no-such-page`);
    assert.equal(r.status, 404);
    assert.match(r.body, /Not Found/);
  }));

  test('the Authorization header reaches the app from .htaccess too', withDiagnostics(() => srv, async () => {
    const r = await get(`${srv.baseUrl}/api/me`, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(r.status, 401);
    assert.match(JSON.parse(r.body).detail, /^Invalid token/);
  }));
});

describe('plain CGI (one request per process)', () => {
  let dir;
  let env;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kfcgi-cgi-'));
    const config = path.join(dir, 'kinde.conf');
    writeFileSync(config, dotenv({
      KINDE_ISSUER_URL: 'http://127.0.0.1:9',
      KINDE_CLIENT_ID: 'kinde-fcgi-test',
      KINDE_CLIENT_SECRET: 'kinde-fcgi-test-secret',
      KINDE_CALLBACK_URL: 'http://127.0.0.1/cgi-bin/kinde.cgi/callback',
      KINDE_SESSION_DIR: path.join(dir, 'sessions'),
      KINDE_TEMPLATE_DIR: path.join(projectRoot, 'templates'),
    }), { mode: 0o600 });
    env = { KINDE_CONFIG: config };
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  test('signed-out home page under /cgi-bin/kinde.cgi', async () => {
    const r = await runCgi({ path: '/', scriptName: '/cgi-bin/kinde.cgi', env });
    assertSignedOutHome(r, '/cgi-bin/kinde.cgi');
  });

  test('an unknown path is a 404 page', async () => {
    const r = await runCgi({ path: '/nope', scriptName: '/cgi-bin/kinde.cgi', env });
    assert.equal(r.status, 404, r.stderr);
    assert.match(r.body, /Not Found/);
  });

  test('/healthz answers ok', async () => {
    const r = await runCgi({ path: '/healthz', env });
    assert.equal(r.status, 200, r.stderr);
    assert.equal(r.body, 'ok');
  });
});
