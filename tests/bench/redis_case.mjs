// The signed-in home page with sessions on Redis, for `make bench` (tests/bench/run.mjs): a throwaway
// redis-server, a second lighttpd app instance with KINDE_SESSION_STORE=redis://127.0.0.1:PORT and
// its own local provider (so the runner's provider need not know this instance's callback URL), a
// real sign-in, then wrk on / with the session cookie exactly as the runner measures case 4.
// Everything it starts is stopped before it returns, also when something fails.
//
// tests/lib/cgi.mjs reads KINDE_FCGI_BIN when first imported: import this module after setting it.

import { randomBytes } from 'node:crypto';

import { startIdp } from '../lib/idp-process.mjs';
import { redisCommand, startRedis } from '../lib/redis.mjs';
import { freePort } from '../lib/servers.mjs';
import { check, signInToApp, startBenchLighttpd, summarize } from './common.mjs';

// measureRedisCase({buildDir, wrk, procs, rounds, user, userName, log}) -> {rps, p50_ms, p99_ms,
// errors, runs, store}. wrk(base, c) is the runner's wrk helper (one run of case c against base,
// parsed); rps/p50 are means over the rounds, p99 the worse one, as the runner's summarize().
export async function measureRedisCase({ buildDir, wrk, procs = 2, rounds = 2, user = 'alice',
                                         userName = 'Alice Liddell', log = () => {} }) {
  if (typeof wrk !== 'function') throw new Error('measureRedisCase needs the runner\'s wrk(base, case)');
  // The app's port first: the provider must list its callback and post-logout URLs.
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let idp;
  let redis;
  let server;
  try {
    idp = await startIdp({
      IDP_REDIRECT_URIS: `${base}/callback`, IDP_POST_LOGOUT_REDIRECT_URIS: `${base}/`,
      // As the runner: no token refresh (and so no provider call) during the measurement.
      IDP_ACCESS_TTL: '86400', IDP_ID_TTL: '86400',
    });
    redis = await startRedis();
    server = await startBenchLighttpd({
      buildDir, port, procs,
      appEnv: {
        KINDE_ISSUER_URL: idp.issuer, KINDE_AUDIENCE: `${idp.issuer}/api`, KINDE_LOG_LEVEL: 'info',
        KINDE_SESSION_STORE: redis.url,
        // A fresh secret per run: the sessions live only as long as this redis-server.
        KINDE_SESSION_SECRET: randomBytes(36).toString('base64'),
      },
    });
    log(`redis case: lighttpd on ${base}, ${redis.url}, provider ${idp.issuer}`);

    const cookieValue = await signInToApp(base, user, userName, 'redis case');
    const c = { id: 'home_signed_in_redis', path: '/', headers: { Cookie: `kinde_fcgi_session=${cookieValue}` } };

    // The session must really be in Redis, not silently in the file store.
    const keys = await redisCommand(redis.port, ['DBSIZE']);
    if (!/^:[1-9]\d*$/.test(keys)) throw new Error(`redis case: no keys in Redis after sign-in (DBSIZE ${keys})`);
    await check(base, { ...c, expect: userName });

    const runs = [];
    for (let round = 1; round <= rounds; round += 1) {
      log(`round ${round}: home, signed in (Redis)`);
      runs.push(await wrk(base, c));
    }
    return { store: 'redis', ...summarize(runs) };
  } finally {
    if (server) await server.stop();
    if (redis) await redis.dispose();
    if (idp) await idp.stop();
  }
}
