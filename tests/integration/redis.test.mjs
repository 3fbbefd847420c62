// Two app instances sharing one Redis session store, as two machines behind a load balancer: two
// lighttpd servers, each with its own FastCGI processes and config (same KINDE_SESSION_SECRET,
// KINDE_SESSION_STORE=redis://...), and the local provider. A session made on one is used and
// ended on the other; a sign-in started on one finishes on the other; Redis stopped or hung gives
// clear 503s and service returns with it; a wrong Redis password is named at start-up.
// The cookie jar keeps cookies per host:port, so "the same site" is modelled by copying the app's
// cookies from one server's origin to the other's (what a load balancer in front of both gives).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { binary, projectRoot } from '../lib/cgi.mjs';
import { browse, CookieJar, parseForms, request, signIn, signOut } from '../lib/idp-client.mjs';
import { startIdp } from '../lib/idp-process.mjs';
import { redisCommand, startRedis } from '../lib/redis.mjs';
import { dotenv, freePort, startLighttpd } from '../lib/servers.mjs';

const SECRET = 'shared-session-secret-for-both-servers-0123456789';
const SESSION_COOKIE = 'kinde_fcgi_session';

// Copies every cookie the app set on one origin to the other (same site behind a balancer).
function mirrorCookies(jar, from, to) {
  for (const [name, value] of Object.entries(jar.cookiesByName(from))) jar.setCookie(to, `${name}=${value}; Path=/`);
}

async function get(url, jar) {
  const r = await request(url, jar);
  return { status: r.status, body: await r.text(), headers: r.headers };
}

function assertSignedIn(page, who) {
  assert.equal(page.status, 200, page.body.slice(0, 400));
  assert.match(page.body, /Sign out/);
  assert.match(page.body, who);
}

function assertSignedOut(page) {
  assert.equal(page.status, 200, page.body.slice(0, 400));
  assert.match(page.body, /Sign in/);
  assert.doesNotMatch(page.body, /Sign out/);
}

describe('two app servers sharing one Redis session store', () => {
  let redis;
  let idp;
  let a;
  let b;
  let dir;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kfcgi-redis-it-'));
    redis = await startRedis();
    const [pa, pb] = [await freePort(), await freePort()];
    const origins = [`http://127.0.0.1:${pa}`, `http://127.0.0.1:${pb}`];
    idp = await startIdp({
      IDP_REDIRECT_URIS: origins.map((o) => `${o}/callback`).join(','),
      IDP_POST_LOGOUT_REDIRECT_URIS: origins.map((o) => `${o}/`).join(','),
      IDP_KEY_FILE: path.join(dir, 'idp-key.json'),
    });
    const appEnv = {
      KINDE_ISSUER_URL: idp.issuer,
      KINDE_SESSION_STORE: redis.url,
      KINDE_SESSION_SECRET: SECRET,
      KINDE_LOG_LEVEL: 'info',
    };
    [a, b] = await Promise.all([startLighttpd({ port: pa, appEnv }), startLighttpd({ port: pb, appEnv })]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await idp?.stop();
    await redis?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('signed in through one server, the session works on the other; signed out on the first, it is gone on both', async () => {
    const s = await signIn(a.baseUrl, 'alice');
    assert.equal(s.status, 200, s.body.slice(0, 400));
    assert.ok(s.cookies[SESSION_COOKIE], 'server A set a session cookie');
    // Stored in Redis under a hash, not the cookie value.
    const keys = await redisCommand(redis.port, ['DBSIZE']);
    assert.notEqual(keys, ':0');
    assert.equal(await redisCommand(redis.port, ['EXISTS', `kinde:s:${s.cookies[SESSION_COOKIE]}`]), ':0');

    mirrorCookies(s.jar, a.baseUrl, b.baseUrl);
    assertSignedIn(await get(`${b.baseUrl}/`, s.jar), /Alice/);
    const me = await get(`${b.baseUrl}/api/me`, s.jar);
    assert.equal(me.status, 200, me.body);
    assert.equal(JSON.parse(me.body).user.given_name, 'Alice');

    await signOut(a.baseUrl, s.jar);
    // Keep B's copy of the old cookie: the session behind it must be gone from Redis.
    assertSignedOut(await get(`${b.baseUrl}/`, s.jar));
    const gone = await get(`${b.baseUrl}/api/me`, s.jar);
    assert.equal(gone.status, 401, gone.body);
  });

  test('a sign-in started on one server (GET /login) finishes on the other (callback)', async () => {
    const jar = new CookieJar();
    const start = await browse(`${a.baseUrl}/login`, jar);
    const form = parseForms(start.body).find((f) => f.inputs.some(([n]) => n === 'login'));
    assert.ok(form, `provider sign-in form expected at ${start.url}`);
    const fields = form.inputs.filter(([, , type]) => type !== 'submit' && type !== 'button')
      .map(([n, v]) => [n, n === 'login' ? 'bob' : n === 'password' ? 'pw' : v]);
    const toCallback = await browse(new URL(form.action || start.url, start.url).href, jar, {
      method: 'POST', form: fields, stopAt: (u) => u.startsWith(`${a.baseUrl}/callback`),
    });
    assert.ok(toCallback.stopped, `expected a redirect to A's callback, got ${toCallback.url}`);
    const callback = new URL(toCallback.url);
    assert.ok(callback.searchParams.get('state'));

    // Nothing of the sign-in is in Redis: it travels in its sealed cookie, which B opens with the
    // shared KINDE_SESSION_SECRET. The only key is the provider cache (discovery, fetched by /login).
    assert.equal(await redisCommand(redis.port, ['DBSIZE']), ':1', 'nothing but the provider cache before the callback');
    assert.equal(await redisCommand(redis.port, ['EXISTS', 'kinde:provider']), ':1');
    mirrorCookies(jar, a.baseUrl, b.baseUrl);
    const done = await browse(`${b.baseUrl}/callback${callback.search}`, jar);
    assertSignedIn(done, /bob/i);
    assert.ok(jar.cookiesByName(b.baseUrl)[SESSION_COOKIE]);
    assert.ok(!Object.keys(jar.cookiesByName(b.baseUrl)).some((n) => n.startsWith('kinde_fcgi_auth_')), 'B spent the sign-in cookie');
    // Replaying the callback on A, which still holds a copy of the sign-in cookie: the code is spent
    // at the provider, so no second session.
    const replay = await get(`${a.baseUrl}/callback${callback.search}`, jar);
    assert.equal(replay.status, 400, replay.body.slice(0, 300));
  });

  test('Redis hung, then stopped: clear 503s, no crash; the service returns with Redis', async () => {
    const s = await signIn(a.baseUrl, 'carol');
    mirrorCookies(s.jar, a.baseUrl, b.baseUrl);
    assertSignedIn(await get(`${b.baseUrl}/`, s.jar), /carol/i);

    // Hung: requests answer 503 after the command timeout instead of hanging.
    redis.pause();
    try {
      const hung = await get(`${b.baseUrl}/`, s.jar);
      assert.equal(hung.status, 503, hung.body.slice(0, 400));
      assert.match(hung.body, /session store is unavailable/i);
      assert.match(hung.body, /did not answer in time/);
    } finally {
      redis.resume();
    }
    // The same session is still there: nothing fell back to a weaker store, nothing was lost.
    assertSignedIn(await get(`${b.baseUrl}/`, s.jar), /carol/i);

    // Stopped: refused connections, 503 at once on both servers. Starting a sign-in needs no store
    // (a store that fails every call still serves /login); finishing one does, and says so.
    await redis.stop();
    for (const server of [a, b]) {
      const down = await get(`${server.baseUrl}/`, s.jar);
      assert.equal(down.status, 503, down.body.slice(0, 400));
      assert.match(down.body, /session store is unavailable/i);
      const tried = await signIn(server.baseUrl, 'dave');
      assert.match(tried.hops[0], /\/login/);
      assert.ok(tried.hops.some((h) => h.includes(idp.issuer)), `the sign-in reached the provider: ${tried.hops.join(' ')}`);
      assert.equal(tried.status, 503, `the callback needs the store: ${tried.finalUrl} ${tried.body.slice(0, 300)}`);
      assert.match(tried.body, /session store is unavailable/i);
      const health = await get(`${server.baseUrl}/healthz`, new CookieJar());
      assert.equal(health.status, 200);
    }

    // Back (empty: no persistence in this test server): the old cookie is just no session, and a
    // new sign-in works through the same, still running FastCGI processes.
    await redis.restart();
    assertSignedOut(await get(`${a.baseUrl}/`, s.jar));
    const again = await signIn(b.baseUrl, 'carol');
    assert.equal(again.status, 200, again.body.slice(0, 400));
    mirrorCookies(again.jar, b.baseUrl, a.baseUrl);
    assertSignedIn(await get(`${a.baseUrl}/`, again.jar), /carol/i);
    assert.match(a.errorLog() + b.errorLog(), /session store/);
  });
});

describe('a wrong Redis password', () => {
  let redis;
  let dir;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kfcgi-redis-pw-'));
    redis = await startRedis({ password: 'the-right-one' });
  });

  after(async () => {
    await redis?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const appEnv = (store) => ({
    KINDE_ISSUER_URL: 'http://127.0.0.1:9',
    KINDE_SESSION_STORE: store,
    KINDE_SESSION_SECRET: SECRET,
  });

  test('--check-config names the problem without printing the password', () => {
    const config = path.join(dir, 'kinde.conf');
    writeFileSync(config, dotenv({
      ...appEnv(`redis://:not-the-password@127.0.0.1:${redis.port}`),
      KINDE_CLIENT_ID: 'x',
      KINDE_CLIENT_SECRET: 'y',
      KINDE_CALLBACK_URL: 'http://127.0.0.1:8080/callback',
      KINDE_SESSION_DIR: path.join(dir, 'sessions'),
      KINDE_TEMPLATE_DIR: path.join(projectRoot, 'templates'),
    }), { mode: 0o600 });
    const r = spawnSync(binary, ['--check-config'], { env: { PATH: process.env.PATH, KINDE_CONFIG: config }, encoding: 'utf8', timeout: 20000 });
    assert.notEqual(r.status, 0);
    const line = r.stdout.split('\n').find((l) => l.includes('session store')) ?? '';
    assert.match(line, /^FAIL/, r.stdout);
    assert.match(line, /WRONGPASS/);
    assert.match(line, /redis:\/\/:\*\*\*@127\.0\.0\.1/);
    assert.doesNotMatch(r.stdout + r.stderr, /not-the-password/);

    writeFileSync(config, dotenv({
      ...appEnv(redis.url),
      KINDE_CLIENT_ID: 'x',
      KINDE_CLIENT_SECRET: 'y',
      KINDE_CALLBACK_URL: 'http://127.0.0.1:8080/callback',
      KINDE_SESSION_DIR: path.join(dir, 'sessions'),
      KINDE_TEMPLATE_DIR: path.join(projectRoot, 'templates'),
    }), { mode: 0o600 });
    const ok = spawnSync(binary, ['--check-config'], { env: { PATH: process.env.PATH, KINDE_CONFIG: config }, encoding: 'utf8', timeout: 20000 });
    assert.match(ok.stdout, /^ok +session store redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(Redis answers\)$/m, ok.stdout);
  });

  test('the running app logs the AUTH error and answers 500 pages, not a crash', async (t) => {
    const srv = await startLighttpd({ appEnv: appEnv(`redis://:not-the-password@127.0.0.1:${redis.port}`) });
    t.after(() => srv.stop());
    const page = await get(`${srv.baseUrl}/`, new CookieJar());
    assert.equal(page.status, 500, page.body.slice(0, 300));
    const log = srv.errorLog();
    assert.match(log, /WRONGPASS/, log);
    assert.doesNotMatch(log, /not-the-password/);
    // Still answering (the process did not die on it).
    const second = await get(`${srv.baseUrl}/`, new CookieJar());
    assert.equal(second.status, 500);
  });
});
