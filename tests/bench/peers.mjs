#!/usr/bin/env node
// The runner of `make bench-peers` (node tests/bench/peers.mjs [BUILD_DIR], default build-bench):
// kinde-fcgi side by side with what a site would run instead, in one run, as ratios to a bare libfcgi
// hello world measured in the same run.
//
// It starts the local OpenID provider (tests/idp) and, on loopback ports, in the foreground, each in
// its own process group:
//   - one lighttpd (tests/bench/lighttpd.conf): the bare FastCGI hello world at /hello (the base of
//     the ratios) and kinde-fcgi everywhere else, 2 FastCGI processes each; signed in for real;
//   - Apache mpm_event + mod_auth_openidc (tests/bench/peers/openidc.conf.in) twice, with
//     OIDCCacheType file and shm (its default), protecting a static copy of kinde-fcgi's signed-in
//     page; each signed in for real (a code flow through mod_auth_openidc, its session cookie);
//   - Django + gunicorn (2 sync workers, file sessions; tests/bench/peers/django_site) with the Kinde
//     Django starter's signed-in page, and FastAPI + uvicorn (2 workers,
//     tests/bench/peers/serve_fastapi.py) with the FastAPI tutorial's /items/{item_id} behind the
//     Kinde FastAPI starter's session dependency. The Kinde Python SDK is not in Debian: the runner
//     signs in for real at the provider itself (codeFlowTokens) and a setup request stores the
//     tokens and the user's details in each app's session, as the starters' callbacks would.
// Every case is checked before and after the runs (200, the user's email in the page or the JSON
// of /items/42, and not the same answer without the session cookie), measured with
// `wrk -t2 -c32 -d5s` twice, interleaved, with every answer that is not 2xx counted as an error
// (tests/bench/wrk-status.lua). It prints one table and writes BUILD_DIR/peers.json. Every temporary
// file lives in BUILD_DIR/peers-XXXXXX/, removed at the end; every server is stopped by its process
// group, also when something fails.
//
// Environment: as tests/bench/common.mjs (BENCH_DURATION, BENCH_CONNECTIONS, BENCH_THREADS).
// Needs the peers installed: scripts/bench-peers-deps.sh (make bench-peers runs it).

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const build = path.resolve(root, process.argv[2] ?? 'build-bench');
// tests/lib/cgi.mjs reads the binary's path when it is imported: set it first.
process.env.KINDE_FCGI_BIN = path.join(build, 'kinde.fcgi');
// Every temporary directory of the run (the servers' run directories included: they are made with
// os.tmpdir()) under BUILD_DIR, removed at the end. World-readable: Apache's children run as www-data.
mkdirSync(build, { recursive: true });
const scratch = mkdtempSync(path.join(build, 'peers-'));
chmodSync(scratch, 0o755);
process.env.TMPDIR = scratch;
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

const { apacheModules, fillTemplate, freePort, startForeground, wwwData } = await import('../lib/servers.mjs');
const { startIdp } = await import('../lib/idp-process.mjs');
const { codeFlowTokens, signIn } = await import('../lib/idp-client.mjs');
const {
  CONNECTIONS, DURATION, THREADS, check, finish, fmt, have, log, machine, measureInterleaved, signInToApp,
  startBenchLighttpd,
} = await import('./common.mjs');

const PEERS_DIR = path.join(here, 'peers');
const PYTHON = '/usr/bin/python3';  // Debian's, whatever else is first on the PATH
const PYTHON_ENV = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: PEERS_DIR };
const PROCS = 2;
const USER = 'alice';
const USER_NAME = 'Alice Liddell';
const EMAIL = 'alice@example.com';
const CLIENT = { id: 'kinde-fcgi-test', secret: 'kinde-fcgi-test-secret' };  // the provider's web client
const ITEMS_JSON = '{"item_id":42,"q":null}';
const PAGE = '/home.html';  // the static copy of our signed-in page behind mod_auth_openidc

// Debian package versions, for the table and the JSON.
function versions() {
  const names = ['apache2-bin', 'libapache2-mod-auth-openidc', 'python3-django', 'gunicorn', 'python3-fastapi',
    'python3-starlette', 'python3-uvicorn'];
  const out = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Version}\n', ...names], { encoding: 'utf8' }).stdout;
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ')).map(([p, v]) => [p, v]));
}

// Upstream version from a Debian one: "3:3.2.25-0+deb12u7" -> "3.2.25".
const upstream = (v) => (v ?? '?').replace(/^\d+:/, '').replace(/-[^-]*$/, '').replace(/\+.*$/, '');

function preflight() {
  for (const tool of ['wrk', 'lighttpd', 'apache2']) {
    if (!have(tool)) throw new Error(`${tool} is not installed: run 'make deps'`);
  }
  for (const bin of ['kinde.fcgi', 'hello.fcgi']) {
    if (!existsSync(path.join(build, bin))) throw new Error(`${build}/${bin} is missing: run 'make bench-peers'`);
  }
  const missing = [];
  if (!existsSync('/usr/lib/apache2/modules/mod_auth_openidc.so')) missing.push('libapache2-mod-auth-openidc');
  if (!existsSync('/usr/bin/gunicorn')) missing.push('gunicorn');
  const py = spawnSync(PYTHON, ['-c', 'import django, fastapi, uvicorn, itsdangerous'], { encoding: 'utf8' });
  if (py.status !== 0) missing.push(`python3-django python3-fastapi uvicorn python3-itsdangerous (${py.stderr.trim().split('\n').pop()})`);
  if (missing.length) throw new Error(`missing: ${missing.join(', ')}: run scripts/bench-peers-deps.sh`);
}

// startOpenidcApache({cacheType, port, issuer}) -> a startForeground handle plus htdocs: Apache with
// tests/bench/peers/openidc.conf.in, its site in a fresh directory under the run's scratch dir.
async function startOpenidcApache({ cacheType, port, issuer }) {
  const site = mkdtempSync(path.join(os.tmpdir(), `openidc-${cacheType}-`));
  chmodSync(site, 0o755);
  const run = path.join(site, 'run');
  const htdocs = path.join(site, 'htdocs');
  mkdirSync(run, { mode: 0o755 });
  mkdirSync(htdocs, { mode: 0o755 });
  const user = wwwData();
  // The file cache must be writable by the children (www-data when we are root).
  const cache = path.join(run, 'oidc-cache');
  mkdirSync(cache, { mode: 0o700 });
  if (user) chownSync(cache, user.uid, user.gid);
  const conf = path.join(run, 'apache2.conf');
  writeFileSync(conf, fillTemplate(readFileSync(path.join(PEERS_DIR, 'openidc.conf.in'), 'utf8'), {
    RUN: run, SITE: site, PORT: String(port), ISSUER: issuer, CLIENT_ID: CLIENT.id, CLIENT_SECRET: CLIENT.secret,
    PASSPHRASE: randomBytes(24).toString('base64url'), CACHE_TYPE: cacheType,
    LOAD_MODULES: apacheModules(['mpm_event', 'authn_core', 'authz_core', 'authz_user', 'mime', 'auth_openidc']),
    USER_GROUP: user ? 'User www-data\nGroup www-data' : '',
  }), { mode: 0o600 });
  const server = await startForeground({
    name: `apache2 (mod_auth_openidc, ${cacheType} cache)`, command: 'apache2', args: ['-f', conf, '-DFOREGROUND'],
    env: { PATH: process.env.PATH, LANG: 'C' }, port, probeUrl: `http://127.0.0.1:${port}${PAGE}`,
    logFiles: [path.join(run, 'error.log')], removeDir: site,
  });
  return Object.assign(server, { htdocs });
}

// startDjango(port) -> gunicorn, 2 sync workers, tests/bench/peers/django_site with file sessions.
async function startDjango(port) {
  const sessions = mkdtempSync(path.join(os.tmpdir(), 'django-sessions-'));
  return startForeground({
    name: 'gunicorn (Django)', command: '/usr/bin/gunicorn',
    args: ['--workers', String(PROCS), '--worker-class', 'sync', '--bind', `127.0.0.1:${port}`, '--chdir', PEERS_DIR,
      'django_site.wsgi:application'],
    env: { ...PYTHON_ENV, DJANGO_SETTINGS_MODULE: 'django_site.settings', PEER_SESSION_DIR: sessions,
      PEER_SECRET: randomBytes(32).toString('base64url') },
    port, probeUrl: `http://127.0.0.1:${port}/`, removeDir: sessions,
  });
}

// startFastapi(port) -> uvicorn, 2 workers, with TCP_NODELAY (tests/bench/peers/serve_fastapi.py).
function startFastapi(port) {
  return startForeground({
    name: 'uvicorn (FastAPI)', command: PYTHON, args: [path.join(PEERS_DIR, 'serve_fastapi.py'), String(port), String(PROCS)],
    env: { ...PYTHON_ENV, PEER_SECRET: randomBytes(32).toString('base64url') },
    port, probeUrl: `http://127.0.0.1:${port}/items/42`,
  });
}

// signInAtOpenidc(base) -> "mod_auth_openidc_session=..." after a real sign-in through the module,
// as a browser's navigation (the module answers 401 to requests that do not look like one).
async function signInAtOpenidc(base, label) {
  const signed = await signIn(base, USER, { path: PAGE, navigate: true });
  if (signed.status !== 200 || !signed.body.includes(EMAIL)) {
    throw new Error(`${label}: sign-in did not end on the protected page (${signed.status} at ${signed.finalUrl})`);
  }
  const value = signed.cookies.mod_auth_openidc_session;
  if (!value) throw new Error(`${label}: no mod_auth_openidc_session cookie after sign-in: ${signed.cookieHeader}`);
  return `mod_auth_openidc_session=${value}`;
}

// setupSession(base, cookieName, tokens) -> "name=value": POSTs a token endpoint answer to the app's
// /setup, which stores it in the session as the Kinde starter's callback would.
async function setupSession(base, cookieName, tokens, label) {
  const res = await fetch(`${base}/setup`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(tokens),
    redirect: 'manual', signal: AbortSignal.timeout(10000),
  });
  const body = await res.text();
  if (res.status !== 200 || !body.includes(EMAIL)) throw new Error(`${label}: setup answered ${res.status}: ${body.slice(0, 300)}`);
  const cookie = res.headers.getSetCookie().map((h) => h.split(';')[0]).find((p) => p.startsWith(`${cookieName}=`));
  if (!cookie) throw new Error(`${label}: setup set no ${cookieName} cookie`);
  return cookie;
}

// verify(c): the case answers what it claims (check(): 200 and c.expect in the body), and for a
// protected case, the same request without its cookie does not.
async function verify(c) {
  await check(c.base, c);
  if (!c.headers?.Cookie) return;
  const res = await fetch(c.base + c.path, { redirect: 'manual', signal: AbortSignal.timeout(10000) });
  const body = await res.text();
  if (res.status === 200 && body.includes(c.expect)) {
    throw new Error(`case ${c.id} answers the same without its session cookie: it measures no sign-in`);
  }
}

async function main() {
  preflight();
  const v = versions();
  const result = { machine: machine({ settings: { procs: PROCS }, packages: v }) };
  const [ours, apFile, apShm, django, fastapi] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const url = (port) => `http://127.0.0.1:${port}`;
  // Where the provider sends the runner's own code flows (caught, never requested).
  const pythonCallback = `${url(django)}/callback`;
  const idp = await startIdp({
    IDP_REDIRECT_URIS: [`${url(ours)}/callback`, `${url(apFile)}/redirect_uri`, `${url(apShm)}/redirect_uri`,
      pythonCallback].join(','),
    IDP_POST_LOGOUT_REDIRECT_URIS: `${url(ours)}/`,
    // Longer than the run: no token refresh (and so no provider call) while measuring.
    IDP_ACCESS_TTL: '86400', IDP_ID_TTL: '86400',
  });
  const servers = [];
  try {
    log(`starting lighttpd, 2 x Apache, gunicorn and uvicorn under ${path.relative(root, scratch)}/`);
    // All at once; every one that started is stopped at the end, also when another failed to.
    const starts = await Promise.allSettled([
      startBenchLighttpd({
        buildDir: build, port: ours, procs: PROCS,
        appEnv: { KINDE_ISSUER_URL: idp.issuer, KINDE_AUDIENCE: `${idp.issuer}/api`, KINDE_LOG_LEVEL: 'info' },
      }),
      startOpenidcApache({ cacheType: 'file', port: apFile, issuer: idp.issuer }),
      startOpenidcApache({ cacheType: 'shm', port: apShm, issuer: idp.issuer }),
      startDjango(django),
      startFastapi(fastapi),
    ]);
    for (const s of starts) if (s.status === 'fulfilled') servers.push(s.value);
    const failed = starts.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [lighttpd, openidcFile, openidcShm] = servers;

    // kinde-fcgi: a real sign-in, then its signed-in page, saved as the static page mod_auth_openidc guards.
    const ourCookie = `kinde_fcgi_session=${await signInToApp(lighttpd.baseUrl, USER, USER_NAME, 'kinde-fcgi')}`;
    const home = { id: 'kinde_home', base: lighttpd.baseUrl, path: '/', headers: { Cookie: ourCookie }, expect: EMAIL };
    const page = await check(home.base, home);
    for (const s of [openidcFile, openidcShm]) writeFileSync(path.join(s.htdocs, PAGE.slice(1)), page, { mode: 0o644 });
    const fileCookie = await signInAtOpenidc(url(apFile), 'mod_auth_openidc (file)');
    const shmCookie = await signInAtOpenidc(url(apShm), 'mod_auth_openidc (shm)');
    // The Python peers: the runner's own code flow (real tokens), stored by a setup request.
    const flow = () => codeFlowTokens(idp.issuer, {
      clientId: CLIENT.id, clientSecret: CLIENT.secret, redirectUri: pythonCallback, login: USER,
    });
    const djangoCookie = await setupSession(url(django), 'sessionid', await flow(), 'Django');
    const fastapiCookie = await setupSession(url(fastapi), 'session', await flow(), 'FastAPI');
    log('signed in everywhere');

    const apache = `Apache ${upstream(v['apache2-bin'])} mpm_event + mod_auth_openidc ${upstream(v['libapache2-mod-auth-openidc'])}`;
    const cases = [
      { id: 'hello', name: 'FastCGI hello world (libfcgi, lighttpd): the base', base: lighttpd.baseUrl, path: '/hello',
        expect: 'Hello, world!' },
      { ...home, name: 'kinde-fcgi, signed-in home (lighttpd, 2 processes)', sign_in: 'real' },
      { id: 'kinde_items', name: 'kinde-fcgi, /items/42 with a session (lighttpd)', base: lighttpd.baseUrl,
        path: '/items/42', headers: { Cookie: ourCookie }, expect: ITEMS_JSON, sign_in: 'real' },
      { id: 'openidc_file', name: `${apache}, static copy of the page, file cache`, base: url(apFile), path: PAGE,
        headers: { Cookie: fileCookie }, expect: EMAIL, sign_in: 'real', peer_of: 'kinde_home' },
      { id: 'openidc_shm', name: `${apache}, static copy of the page, shm cache (default)`, base: url(apShm),
        path: PAGE, headers: { Cookie: shmCookie }, expect: EMAIL, sign_in: 'real', peer_of: 'kinde_home' },
      { id: 'django', name: `Django ${upstream(v['python3-django'])} + gunicorn ${upstream(v.gunicorn)} (2 sync workers), `
        + 'file sessions, the starter\'s page; session stored by a setup request', base: url(django), path: '/',
        headers: { Cookie: djangoCookie }, expect: EMAIL, sign_in: 'setup request', peer_of: 'kinde_home' },
      { id: 'fastapi', name: `FastAPI ${upstream(v['python3-fastapi'])} + uvicorn ${upstream(v['python3-uvicorn'])} `
        + '(2 workers, TCP_NODELAY fixed), /items/42, session cookie; session stored by a setup request',
        base: url(fastapi), path: '/items/42', headers: { Cookie: fastapiCookie }, expect: ITEMS_JSON,
        sign_in: 'setup request', peer_of: 'kinde_items' },
    ];
    for (const c of cases) await verify(c);
    log('every case answers as expected, and the protected ones not without their cookie');

    const measured = await measureInterleaved(cases);
    for (const c of cases) await verify(c);  // still signed in everywhere after the runs
    const helloRps = measured.hello.rps;
    const table = {};
    for (const c of cases) {
      table[c.id] = {
        name: c.name, url_path: c.path, sign_in: c.sign_in ?? null,
        cookie_bytes: c.headers?.Cookie?.length ?? 0, ...measured[c.id],
        ratio_to_hello: measured[c.id].rps / helloRps,
      };
    }
    // kinde-fcgi's multiple of each peer: the signed-in home against each page, /items/42 against
    // FastAPI's, and the signed-in home against FastAPI's as well.
    const multiples = {};
    for (const c of cases.filter((x) => x.peer_of)) {
      multiples[c.id] = { ours: c.peer_of, multiple: measured[c.peer_of].rps / measured[c.id].rps };
    }
    multiples.fastapi_vs_home = { ours: 'kinde_home', multiple: measured.kinde_home.rps / measured.fastapi.rps };
    result.cases = table;
    result.kinde_fcgi_multiple = multiples;
    finish(result.machine);
    writeFileSync(path.join(build, 'peers.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(render(result));
    console.log(`\nJSON: ${path.relative(root, path.join(build, 'peers.json'))}`);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await idp.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function render(r) {
  const m = r.machine;
  const c = r.cases;
  const k = r.kinde_fcgi_multiple;
  const lines = [];
  lines.push(`kinde-fcgi bench-peers, ${m.date.slice(0, 16).replace('T', ' ')} UTC, ${m.cpus} cores (${m.cpu_model}), ` +
    `load ${m.load_at_start.join(' ')} -> ${m.load_at_end.join(' ')}`);
  lines.push(`${m.wrk} -t${THREADS} -c${CONNECTIONS} -d${DURATION}s, each case twice, interleaved; errors = non-2xx + socket errors`);
  lines.push('');
  lines.push('| case | requests/s | p50 ms | p99 ms | errors | ratio to hello | kinde-fcgi is |');
  lines.push('|---|---:|---:|---:|---:|---:|---|');
  for (const [id, x] of Object.entries(c)) {
    const mult = k[id] ? `${fmt(k[id].multiple, 1)} x this (${k[id].ours === 'kinde_home' ? 'signed-in home' : '/items/42'})` : '';
    lines.push(`| ${x.name} | ${fmt(x.rps)} | ${fmt(x.p50_ms, 2)} | ${fmt(x.p99_ms, 2)} | ${x.errors} | ` +
      `${fmt(x.ratio_to_hello, 2)} | ${mult} |`);
  }
  lines.push('');
  lines.push(`kinde-fcgi's signed-in home is ${fmt(k.openidc_file.multiple, 1)} x mod_auth_openidc file, ` +
    `${fmt(k.openidc_shm.multiple, 1)} x mod_auth_openidc shm, ${fmt(k.django.multiple, 1)} x Django ` +
    `and ${fmt(k.fastapi_vs_home.multiple, 1)} x FastAPI's /items/42; kinde-fcgi's /items/42 is ` +
    `${fmt(k.fastapi.multiple, 1)} x FastAPI's.`);
  return lines.join('\n');
}

main().catch((err) => {
  console.error(`bench-peers: ${err.stack ?? err}`);
  process.exit(1);
});
