#!/usr/bin/env node
// The quick half of `make bench` (node tests/bench/callgrind_cases.mjs [BUILD_DIR], default
// build-bench; `make bench-callgrind`): the steady-state instructions per request of the signed-in
// cases only, counted the way `make bench` counts them (bench_driver under callgrind with
// --collect-atstart=no, 20 warm requests, 10 counted). Starts the local provider and one lighttpd
// only to sign in for real and to get a machine token; no wrk, so it takes well under a minute and
// can be run before and after each change. Profiles stay in BUILD_DIR/callgrind.<case> for
// `callgrind_annotate`. Prints one JSON object.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const build = path.resolve(root, process.argv[2] ?? 'build-bench');
process.env.KINDE_FCGI_BIN = path.join(build, 'kinde.fcgi');
const { freePort } = await import('../lib/servers.mjs');
const { startIdp } = await import('../lib/idp-process.mjs');
const { clientCredentialsToken } = await import('../lib/idp-client.mjs');
const { callgrindTotal, have, log, run, signInToApp, startBenchLighttpd } = await import('./common.mjs');

const USER = 'alice';
const USER_NAME = 'Alice Liddell';
const M2M = { id: 'kinde-fcgi-m2m', secret: 'kinde-fcgi-m2m-secret' };
const COUNT = 10;

async function main() {
  for (const tool of ['lighttpd', 'valgrind']) if (!have(tool)) throw new Error(`${tool} is not installed: run 'make deps'`);
  for (const bin of ['kinde.fcgi', 'hello.fcgi', 'bench_driver']) {
    if (!existsSync(path.join(build, bin))) throw new Error(`${build}/${bin} is missing: run 'make bench-callgrind'`);
  }
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const idp = await startIdp({
    IDP_REDIRECT_URIS: `${base}/callback`, IDP_POST_LOGOUT_REDIRECT_URIS: `${base}/`,
    IDP_M2M_CLIENT_ID: M2M.id, IDP_M2M_CLIENT_SECRET: M2M.secret, IDP_ACCESS_TTL: '86400', IDP_ID_TTL: '86400',
  });
  let server;
  try {
    const audience = `${idp.issuer}/api`;
    server = await startBenchLighttpd({
      buildDir: build, port, procs: 1,
      appEnv: { KINDE_ISSUER_URL: idp.issuer, KINDE_AUDIENCE: audience, KINDE_LOG_LEVEL: 'info' },
    });
    const appConfig = path.join(server.runDir, 'kinde.conf');
    const cookieValue = await signInToApp(base, USER, USER_NAME, 'callgrind');
    const bearer = await clientCredentialsToken(idp.issuer, M2M.id, M2M.secret, audience);
    const measure = async (name, args) => {
      const out = path.join(build, `callgrind.${name}`);
      await run('valgrind', ['--tool=callgrind', '--collect-atstart=no', `--callgrind-out-file=${out}`,
        path.join(build, 'bench_driver'), ...args, '--warm', '20', '--count', String(COUNT)],
      { env: { KINDE_CONFIG: appConfig } });
      return Math.round(callgrindTotal(out) / COUNT);
    };
    log('callgrind');
    const result = {
      home_signed_in: await measure('home', ['handle', '--cookie', cookieValue, '--path', '/', '--expect', USER_NAME]),
      items_session: await measure('items_session',
        ['handle', '--cookie', cookieValue, '--path', '/items/42', '--expect', '"item_id":42']),
      items_bearer: await measure('items', ['handle', '--bearer', bearer, '--path', '/items/42', '--expect', '"item_id":42']),
      healthz: await measure('healthz', ['handle', '--path', '/healthz', '--expect', 'ok']),
    };
    console.log(JSON.stringify(result));
  } finally {
    if (server) await server.stop();
    await idp.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
