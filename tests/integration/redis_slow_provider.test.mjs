// Sessions on Redis with a slow provider (issue 16): two app servers (two lighttpd, each with its own
// FastCGI processes) share one redis-server on a free loopback port; the fault-injecting provider
// answers every call in 4 s. A signed-in session whose access token is due for a refresh gets two
// concurrent requests, one per server, 0.5 s apart:
// - both answer 200 and the user stays signed in;
// - the refresh token is spent exactly once (refresh grants counted at the provider);
// - with the provider failing (HTTP 500) during the refresh, the session is kept and a later request
//   refreshes it with the same, unspent refresh token.
// Also: every key the app writes starts with KINDE_REDIS_PREFIX.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { startFakeIdp } from '../lib/fakeidp.mjs';
import { browse, CookieJar, request } from '../lib/idp-client.mjs';
import { redisCommand, startRedis } from '../lib/redis.mjs';
import { freePort, startLighttpd } from '../lib/servers.mjs';

const CLIENT_ID = 'slow-provider-client';
const CLIENT_SECRET = 'SECRET-slow-provider-never-shown-7f3e';
const SECRET = 'shared-session-secret-for-the-slow-provider-test-0123';
const PREFIX = 'slowtest:';
const DELAY_MS = 4000;
const SHORT = 30;  // seconds: inside the app's 60 s refresh margin, so the next request refreshes

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function mirrorCookies(jar, from, to) {
  for (const [name, value] of Object.entries(jar.cookiesByName(from))) jar.setCookie(to, `${name}=${value}; Path=/`);
}

async function get(url, jar) {
  const started = Date.now();
  const r = await request(url, jar);
  return { status: r.status, body: await r.text(), ms: Date.now() - started };
}

function assertSignedIn(page, what) {
  assert.equal(page.status, 200, `${what}: ${page.body.slice(0, 400)}`);
  assert.match(page.body, /Ada Lovelace/, `${what}: signed-in view expected`);
  assert.match(page.body, /Sign out/, what);
}

// Keys matching a glob pattern, counted inside Redis.
async function countKeys(port, pattern) {
  const reply = await redisCommand(port, ['EVAL', "return #redis.call('KEYS', ARGV[1])", '0', pattern]);
  return Number(reply.slice(1));
}

describe('two servers on one Redis, a provider answering every call in 4 s', () => {
  let fake;
  let redis;
  let a;
  let b;
  let c;  // where users sign in: A and B never talk to the provider before the slow requests

  before(async () => {
    fake = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    redis = await startRedis();
    const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
    const appEnv = {
      KINDE_ISSUER_URL: fake.issuer,
      KINDE_CLIENT_ID: CLIENT_ID,
      KINDE_CLIENT_SECRET: CLIENT_SECRET,
      KINDE_SESSION_STORE: redis.url,
      KINDE_SESSION_SECRET: SECRET,
      KINDE_REDIS_PREFIX: PREFIX,
      KINDE_REFRESH_RETRY_SECONDS: '2',
      KINDE_LOG_LEVEL: 'info',
    };
    [a, b, c] = await Promise.all([startLighttpd({ port: pa, appEnv }), startLighttpd({ port: pb, appEnv }),
      startLighttpd({ port: pc, appEnv })]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await redis?.dispose();
    await fake?.stop();
  });

  // Signs in on C (fast provider, short-lived access tokens, also from the refresh the landing page may
  // make); the jar holds the cookie for A and B as well (one site behind a balancer).
  async function signIn() {
    fake.resetMode();
    fake.setMode({ expiresIn: SHORT, refreshExpiresIn: SHORT });
    const jar = new CookieJar();
    const page = await browse(`${c.baseUrl}/login`, jar);
    assertSignedIn(page, 'sign-in on C');
    mirrorCookies(jar, c.baseUrl, a.baseUrl);
    mirrorCookies(jar, c.baseUrl, b.baseUrl);
    return { jar, refreshToken: fake.issued.at(-1).refresh_token };
  }

  // One request to A, another to B half a second later; both wait for the slow provider.
  async function concurrentPair(jar) {
    const first = get(`${a.baseUrl}/`, jar);
    await sleep(500);
    const second = get(`${b.baseUrl}/`, jar);
    return Promise.all([first, second]);
  }

  test('two concurrent refreshes: both 200, the refresh token spent once, the user still signed in', async () => {
    const { jar, refreshToken } = await signIn();
    const before = fake.grantsOf('refresh_token').length;
    // The worst case: A's and B's processes have never fetched discovery or the JWKS, and the shared
    // provider cache is empty, so each needs discovery + JWKS + token: 12 s, more than the old 10 s lock.
    await redisCommand(redis.port, ['DEL', `${PREFIX}provider`]);
    fake.setMode({ delayMs: DELAY_MS, refreshExpiresIn: 3600 });
    const [ra, rb] = await concurrentPair(jar);
    fake.setMode({ delayMs: 0 });
    assertSignedIn(ra, 'first request (server A)');
    assertSignedIn(rb, 'second request (server B)');
    const grants = fake.grantsOf('refresh_token').slice(before);
    assert.equal(grants.length, 1, `refresh grants: ${grants.length}`);
    assert.equal(grants[0].refresh_token, refreshToken);
    assert.ok(ra.ms >= DELAY_MS, 'the first request waited for the provider');

    // Still signed in on both, with the rotated token stored: no further refresh now.
    assertSignedIn(await get(`${a.baseUrl}/`, jar), 'A afterwards');
    assertSignedIn(await get(`${b.baseUrl}/`, jar), 'B afterwards');
    assert.equal(fake.grantsOf('refresh_token').length - before, 1);

    // The refresh result is kept (sealed, named by a hash) for the grace period; every key has the prefix.
    const graceName = createHash('sha256').update(`kinde-fcgi refresh grace v1:${refreshToken}`).digest('hex');
    assert.equal(await redisCommand(redis.port, ['EXISTS', `${PREFIX}r:${graceName}`]), ':1', 'result kept under the spent token\'s hash');
    assert.equal(await countKeys(redis.port, `*${refreshToken}*`), 0, 'the token itself names no key');
    assert.equal(await countKeys(redis.port, `${PREFIX}provider`), 1, 'the provider cache is in Redis');
    const all = Number((await redisCommand(redis.port, ['DBSIZE'])).slice(1));
    assert.equal(await countKeys(redis.port, `${PREFIX}*`), all, 'every key starts with KINDE_REDIS_PREFIX');
  });

  test('the provider failing (500) during the refresh keeps the session for a retry', async () => {
    const { jar, refreshToken } = await signIn();
    const before = fake.grantsOf('refresh_token').length;
    fake.setMode({ delayMs: DELAY_MS, token: 'http_500' });
    const [ra, rb] = await concurrentPair(jar);
    assertSignedIn(ra, 'first request (server A)');
    assertSignedIn(rb, 'second request (server B)');
    // The second request found the failure recorded (retry_at) and did not ask again.
    assert.equal(fake.grantsOf('refresh_token').length - before, 1);

    // The provider is back: after KINDE_REFRESH_RETRY_SECONDS the same, unspent token refreshes.
    fake.setMode({ delayMs: 0, token: 'normal', refreshExpiresIn: 3600 });
    await sleep(2500);
    assertSignedIn(await get(`${b.baseUrl}/`, jar), 'retry on B');
    const grants = fake.grantsOf('refresh_token').slice(before);
    assert.equal(grants.length, 2);
    assert.equal(grants[1].refresh_token, refreshToken, 'the retry presents the same refresh token');
    assertSignedIn(await get(`${a.baseUrl}/`, jar), 'A afterwards');
    assert.equal(fake.grantsOf('refresh_token').length - before, 2, 'no refresh once the tokens are fresh');
  });
});
