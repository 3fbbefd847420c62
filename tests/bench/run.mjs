#!/usr/bin/env node
// The runner of `make bench` (node tests/bench/run.mjs [BUILD_DIR], default build-bench).
//
// Starts the local OpenID provider (tests/idp) and one lighttpd (tests/bench/lighttpd.conf) that
// serves the stylesheet, the bare FastCGI hello world (2 processes) and the app (2 processes), signs
// in through the real flow, gets a machine token by client_credentials, then measures:
//   - wrk on seven cases, each twice, interleaved; requests/s, p50, p99 and the ratio to case 2
//   - the signed-in home page as plain CGI against a C hello-world CGI (median of many runs)
//   - callgrind instruction counts of one signed-in home request and one RS256 token check
//   - p99 at BENCH_WIDE_CONNECTIONS (256) connections: the signed-in home and the hello world, twice each
//   - memory per process (tests/bench/memory_case.mjs): RSS, PSS and Private_Dirty of 8 app processes
//     that signed users in and refreshed, and their growth over BENCH_MEMORY_REQUESTS requests
//   - the signed-in page with 100,000 other sessions in the session directory
// It prints a table and writes BUILD_DIR/bench.json. Loopback only; every loop is bounded.
//
// Environment: BENCH_DURATION (s per wrk run, default 5), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
// BENCH_CGI_RUNS (200), BENCH_MEMORY_REQUESTS (in all, 200000), BENCH_MEMORY_PROCS (8),
// BENCH_WIDE_CONNECTIONS (256), BENCH_SESSIONS (100000),
// BENCH_CASES (comma list of case ids, e.g. home_signed_in: only those and the hello world),
// BENCH_SKIP (comma list of: redis, wide, cgi, callgrind, memory, sessions). redis: case 4 again with the
// sessions on Redis, a second app instance (tests/bench/redis_case.mjs).

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const build = path.resolve(root, process.argv[2] ?? 'build-bench');
// tests/lib/cgi.mjs reads the binary's path when it is imported: set it first.
process.env.KINDE_FCGI_BIN = path.join(build, 'kinde.fcgi');
const { freePort } = await import('../lib/servers.mjs');
const { startIdp } = await import('../lib/idp-process.mjs');
const { clientCredentialsToken } = await import('../lib/idp-client.mjs');
const {
  CONNECTIONS, DURATION, THREADS, callgrindTotal, check, finish, fmt, have, log, machine: describeMachine, mean,
  measureInterleaved, num, parseWrk, run, signInToApp, startBenchLighttpd, summarize, wrk,
} = await import('./common.mjs');

const CGI_RUNS = num('BENCH_CGI_RUNS', 200);
const MEMORY_REQUESTS = num('BENCH_MEMORY_REQUESTS', 200000);
const MEMORY_PROCS = num('BENCH_MEMORY_PROCS', 8);
const WIDE_CONNECTIONS = num('BENCH_WIDE_CONNECTIONS', 256);
const SESSIONS = num('BENCH_SESSIONS', 100000);
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean));
const PROCS = 2;
const USER = 'alice';
const USER_NAME = 'Alice Liddell';
const M2M = { id: 'kinde-fcgi-m2m', secret: 'kinde-fcgi-m2m-secret' };

const TARGETS = {
  home_signed_in: 0.70, items_session: 0.80, items_bearer: 0.70, p99_ms: 10, p99_wide_ms: 50,
  cgi_ratio: 3, private_dirty_kb: 1536, pss_kb: 4096, sessions_cost: 0.10,
};

// One whole plain-CGI request (signed-in home) under callgrind, start to exit: the total, the dynamic
// loader's start-up (_dl_start, inclusive) and the instructions spent inside libcrypto.so (OpenSSL's
// first use; null when OpenSSL is linked in). build/callgrind.cgi keeps the profile.
async function measureCgiStart(build, env) {
  const out = path.join(build, 'callgrind.cgi');
  const { stdout } = await run('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, path.join(build, 'kinde.fcgi')],
    { env });
  if (!stdout.includes('Status: 200')) throw new Error(`the CGI run under callgrind did not answer 200:\n${stdout.slice(0, 300)}`);
  const inclusive = (await run('callgrind_annotate', ['--inclusive=yes', '--threshold=100', out])).stdout;
  const self = (await run('callgrind_annotate', ['--threshold=100', out])).stdout;
  const count = (line) => Number(line.trim().split(/\s+/)[0].replace(/,/g, ''));
  const loader = inclusive.split('\n').find((l) => /rtld\.c:_dl_start \[/.test(l));
  const crypto = self.split('\n').filter((l) => /\[[^\]]*libcrypto\.so[^\]]*\]\s*$/.test(l));
  return {
    total: callgrindTotal(out), dynamic_loader: loader ? count(loader) : null,
    libcrypto: crypto.length ? crypto.reduce((a, l) => a + count(l), 0) : null,
  };
}

const pass = (ok) => (ok === null || ok === undefined ? 'n/a' : ok ? 'met' : 'NOT met');

async function main() {
  for (const tool of ['wrk', 'lighttpd']) {
    if (!have(tool)) throw new Error(`${tool} is not installed: run 'make deps'`);
  }
  for (const bin of ['kinde.fcgi', 'hello.fcgi', 'hello_cgi', 'cgi_time', 'bench_driver']) {
    if (!existsSync(path.join(build, bin))) throw new Error(`${build}/${bin} is missing: run 'make bench'`);
  }
  const result = { machine: describeMachine({ settings: { procs: PROCS } }), targets: TARGETS };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const idp = await startIdp({
    IDP_REDIRECT_URIS: `${base}/callback`, IDP_POST_LOGOUT_REDIRECT_URIS: `${base}/`,
    IDP_M2M_CLIENT_ID: M2M.id, IDP_M2M_CLIENT_SECRET: M2M.secret,
    // Longer than the bench: the app refreshes 60 s before expiry, which would add provider calls.
    IDP_ACCESS_TTL: '86400', IDP_ID_TTL: '86400',
  });
  let server;
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'kfcgi-bench-'));
  try {
    const audience = `${idp.issuer}/api`;
    server = await startBenchLighttpd({
      buildDir: build, port, procs: PROCS,
      appEnv: { KINDE_ISSUER_URL: idp.issuer, KINDE_AUDIENCE: audience, KINDE_LOG_LEVEL: 'info' },
    });
    const appConfig = path.join(server.runDir, 'kinde.conf');
    const sessionDir = path.join(server.runDir, 'sessions');
    log(`lighttpd on ${base}, provider ${idp.issuer}, run dir ${server.runDir}`);

    const cookieValue = await signInToApp(base, USER, USER_NAME);
    const cookie = `kinde_fcgi_session=${cookieValue}`;
    log('signed in; getting a machine token');
    const bearer = await clientCredentialsToken(idp.issuer, M2M.id, M2M.secret, audience);

    const cases = [
      { id: 'static', name: '1 static stylesheet', path: '/styles.css', expect: '{' },
      { id: 'hello', name: '2 FastCGI hello world', path: '/hello', expect: 'Hello, world!' },
      { id: 'home_signed_out', name: '3 home, signed out', path: '/', expect: 'Sign in' },
      { id: 'home_signed_in', name: '4 home, signed in', path: '/', headers: { Cookie: cookie }, expect: USER_NAME },
      { id: 'items_session', name: '5 /items/42, session', path: '/items/42', headers: { Cookie: cookie },
        expect: '{"item_id":42,"q":null}' },
      { id: 'items_bearer', name: '6 /items/42, bearer', path: '/items/42',
        headers: { Authorization: `Bearer ${bearer}` }, expect: '{"item_id":42,"q":null}' },
      { id: 'healthz', name: '7 /healthz', path: '/healthz', expect: 'ok' },
    ];
    // BENCH_CASES (comma list of case ids) measures only those, plus the hello world the ratios need.
    const only = (process.env.BENCH_CASES ?? '').split(',').filter(Boolean);
    const selected = only.length ? cases.filter((c) => c.id === 'hello' || only.includes(c.id)) : cases;
    for (const c of selected) await check(base, c);
    log('every case answers as expected');

    // ---- throughput: every case twice, interleaved ----
    const measured = await measureInterleaved(selected.map((c) => ({ ...c, base })));
    const table = {};
    for (const c of selected) table[c.id] = { name: c.name, path: c.path, ...measured[c.id] };
    const helloRps = table.hello.rps;
    for (const c of selected) table[c.id].ratio_to_hello = table[c.id].rps / helloRps;
    result.cases = table;
    if (!SKIP.has('wide')) {
      // p99 with many more connections than processes: lighttpd queues them on the 2 sockets.
      const wide = {};
      for (const c of [cases[3], cases[1]]) {
        const runs = [];
        for (let round = 1; round <= 2; round += 1) {
          log(`round ${round}: ${c.name}, ${WIDE_CONNECTIONS} connections`);
          runs.push(await wrk(base, c, { connections: WIDE_CONNECTIONS }));
        }
        wide[c.id] = { name: c.name, connections: WIDE_CONNECTIONS, ...summarize(runs) };
      }
      result.wide = wide;
    }
    if (!SKIP.has('redis')) {
      const { measureRedisCase } = await import('./redis_case.mjs');
      const r = await measureRedisCase({ buildDir: build, wrk, procs: PROCS, user: USER, userName: USER_NAME, log });
      result.redis = { name: '4r home, signed in (Redis)', path: '/', ...r, ratio_to_hello: r.rps / helloRps };
    }

    // ---- plain CGI: signed-in home as CGI against a C hello-world CGI ----
    const cgiEnv = {
      PATH: '/usr/bin:/bin', GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: '127.0.0.1',
      SERVER_PORT: String(port), REMOTE_ADDR: '127.0.0.1', REQUEST_METHOD: 'GET', SCRIPT_NAME: '', PATH_INFO: '/',
      QUERY_STRING: '', REQUEST_URI: '/', HTTP_HOST: `127.0.0.1:${port}`, HTTP_COOKIE: cookie,
      KINDE_CONFIG: appConfig,
    };
    if (!SKIP.has('cgi')) {
      log(`plain CGI, ${CGI_RUNS} runs each`);
      const cacheFile = path.join(sessionDir, '.provider-cache.json');
      const envApp = path.join(scratch, 'env-app');
      const envHello = path.join(scratch, 'env-hello');
      writeFileSync(envApp, Object.entries(cgiEnv).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
      writeFileSync(envHello, 'PATH=/usr/bin:/bin\nGATEWAY_INTERFACE=CGI/1.1\nREQUEST_METHOD=GET\nPATH_INFO=/\n');
      const { stdout } = await run(path.join(build, 'cgi_time'),
        [String(CGI_RUNS), scratch, envApp, path.join(build, 'kinde.fcgi'), envHello, path.join(build, 'hello_cgi')]);
      const [app, hello] = stdout.trim().split('\n').map((l) => JSON.parse(l));
      const appOut = readFileSync(path.join(scratch, 'out1.txt'), 'utf8');
      if (!appOut.includes(USER_NAME)) throw new Error(`the CGI run did not answer the signed-in page:\n${appOut.slice(0, 400)}`);
      if (app.failures || hello.failures) log(`warning: CGI failures: app ${app.failures}, hello ${hello.failures}`);
      result.cgi = { app, hello, ratio: app.median_us / hello.median_us, provider_cache_warm: existsSync(cacheFile) };
    }

    // ---- callgrind: instructions of one steady-state request / token check ----
    const driver = path.join(build, 'bench_driver');
    if (!SKIP.has('callgrind')) {
      if (!have('valgrind')) {
        log('valgrind is not installed (apt-get install valgrind): no instruction counts');
        result.callgrind = { skipped: 'valgrind not installed' };
      } else {
        log('callgrind');
        const count = 10;
        const measure = async (name, args) => {
          // Kept in the build dir: `callgrind_annotate build-bench/callgrind.home` shows where the cost is.
          const out = path.join(build, `callgrind.${name}`);
          await run('valgrind', ['--tool=callgrind', '--collect-atstart=no', `--callgrind-out-file=${out}`, driver,
            ...args, '--warm', '20', '--count', String(count)], { env: { KINDE_CONFIG: appConfig } });
          return Math.round(callgrindTotal(out) / count);
        };
        result.callgrind = {
          home_signed_in: await measure('home', ['handle', '--cookie', cookieValue, '--path', '/', '--expect', USER_NAME]),
          items_bearer: await measure('items', ['handle', '--bearer', bearer, '--path', '/items/42', '--expect', '"item_id":42']),
          rs256_token_check: await measure('verify', ['verify', bearer]),
          healthz: await measure('healthz', ['handle', '--path', '/healthz', '--expect', 'ok']),
          cgi_signed_in: await measureCgiStart(build, cgiEnv),
        };
      }
    }

    // ---- memory per process: 8 processes that signed users in and refreshed, then a long run ----
    if (!SKIP.has('memory')) {
      const { measureMemoryCase } = await import('./memory_case.mjs');
      result.memory = await measureMemoryCase({ buildDir: build, procs: MEMORY_PROCS, requests: MEMORY_REQUESTS,
        user: USER, userName: USER_NAME, log });
    }

    // ---- 100,000 other sessions on disk: signed-in rate against the near-empty directory ----
    if (!SKIP.has('sessions')) {
      log(`writing ${SESSIONS} sessions with the store's code`);
      const t0 = Date.now();
      await run(driver, ['fill', String(SESSIONS)], { env: { KINDE_CONFIG: appConfig }, timeoutMs: 900000 });
      const fillSeconds = (Date.now() - t0) / 1000;
      const full = [];
      const hello = [];
      for (let round = 1; round <= 2; round += 1) {
        log(`round ${round}: signed in with ${SESSIONS} sessions`);
        full.push(await wrk(base, cases[3]));
        hello.push(await wrk(base, cases[1]));
      }
      const fullRps = mean(full.map((r) => r.rps));
      const fullRatio = fullRps / mean(hello.map((r) => r.rps));
      // Measured against case 2 of the same rounds (machine noise cancels), and raw.
      result.sessions = {
        count: SESSIONS, fill_seconds: fillSeconds,
        signed_in_full: summarize(full), hello_same_rounds: summarize(hello),
        ratio_to_hello_full: fullRatio, ratio_to_hello_empty: table.home_signed_in.ratio_to_hello,
        cost: 1 - fullRatio / table.home_signed_in.ratio_to_hello,
        cost_raw: 1 - fullRps / table.home_signed_in.rps,
      };
    }

    finish(result.machine);
    result.verdict = verdict(result);
    writeFileSync(path.join(build, 'bench.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(render(result));
    console.log(`\nJSON: ${path.relative(root, path.join(build, 'bench.json'))}`);
  } finally {
    if (server) await server.stop();
    await idp.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function verdict(r) {
  const c = r.cases;
  const v = {
    home_signed_in_ratio: c.home_signed_in ? c.home_signed_in.ratio_to_hello >= TARGETS.home_signed_in : null,
    items_session_ratio: c.items_session ? c.items_session.ratio_to_hello >= TARGETS.items_session : null,
    items_bearer_ratio: c.items_bearer ? c.items_bearer.ratio_to_hello >= TARGETS.items_bearer : null,
    p99: ['home_signed_out', 'home_signed_in', 'items_session', 'items_bearer', 'healthz']
      .every((id) => !c[id] || c[id].p99_ms <= TARGETS.p99_ms),
    errors: Object.values(c).every((x) => x.errors === 0),
  };
  if (r.cgi) v.cgi_ratio = r.cgi.ratio <= TARGETS.cgi_ratio;
  if (r.wide) {
    v.p99_wide = r.wide.home_signed_in.p99_ms <= TARGETS.p99_wide_ms;
    v.errors_wide = Object.values(r.wide).every((x) => x.errors === 0);
  }
  if (r.memory) {
    v.private_dirty = r.memory.after_all.private_dirty_kb.max <= TARGETS.private_dirty_kb;
    v.pss = r.memory.after_all.pss_kb.max <= TARGETS.pss_kb;
    // "No growth": allow 64 kB for allocator page rounding between the two readings.
    v.no_growth = Object.values(r.memory.growth_kb).every((g) => g <= 64);
  }
  if (r.sessions) v.sessions_cost = r.sessions.cost <= TARGETS.sessions_cost;
  return v;
}

function render(r) {
  const m = r.machine;
  const lines = [];
  lines.push(`kinde-fcgi bench, ${m.date.slice(0, 16).replace('T', ' ')} UTC, ${m.cpus} cores (${m.cpu_model}), ` +
    `load ${m.load_at_start.join(' ')} -> ${m.load_at_end.join(' ')}`);
  lines.push(`${m.lighttpd}, ${PROCS} FastCGI processes each (unix sockets), ${m.wrk} -t${THREADS} -c${CONNECTIONS} ` +
    `-d${DURATION}s, each case twice, interleaved`);
  lines.push('');
  lines.push('| case | requests/s | p50 ms | p99 ms | ratio to 2 | target |');
  lines.push('|---|---:|---:|---:|---:|---|');
  const target = { home_signed_in: '>= 0.70', items_session: '>= 0.80', items_bearer: '>= 0.70' };
  for (const [id, c] of Object.entries(r.cases)) {
    lines.push(`| ${c.name} | ${fmt(c.rps)} | ${fmt(c.p50_ms, 2)} | ${fmt(c.p99_ms, 2)} | ${fmt(c.ratio_to_hello, 2)} | ${target[id] ?? ''} |`);
  }
  const rr = r.redis;
  if (rr) lines.push(`| ${rr.name} | ${fmt(rr.rps)} | ${fmt(rr.p50_ms, 2)} | ${fmt(rr.p99_ms, 2)} | ${fmt(rr.ratio_to_hello, 2)} | |`);
  lines.push('');
  if (r.cgi) {
    lines.push(`Plain CGI, signed-in home: median ${fmt(r.cgi.app.median_us / 1000, 2)} ms vs C hello-world CGI ` +
      `${fmt(r.cgi.hello.median_us / 1000, 2)} ms over ${r.cgi.app.runs} runs: ${fmt(r.cgi.ratio, 2)} x (target <= 3)`);
  }
  if (r.callgrind && !r.callgrind.skipped) {
    const k = r.callgrind;
    lines.push(`Instructions (callgrind, steady state): signed-in home ${k.home_signed_in.toLocaleString('en')}, ` +
      `/items/42 with bearer ${k.items_bearer.toLocaleString('en')}, RS256 token check alone ` +
      `${k.rs256_token_check.toLocaleString('en')}, /healthz ${k.healthz.toLocaleString('en')}`);
    const c = k.cgi_signed_in;
    const n = (x) => (x === null ? 'n/a (linked in)' : x.toLocaleString('en'));
    lines.push(`Instructions of one plain-CGI signed-in request, start to exit: ${c.total.toLocaleString('en')}, of which ` +
      `dynamic loader ${n(c.dynamic_loader)}, inside libcrypto ${n(c.libcrypto)}`);
  }
  if (r.wide) {
    for (const w of Object.values(r.wide)) {
      lines.push(`${w.name} at ${w.connections} connections: ${fmt(w.rps)} req/s, p50 ${fmt(w.p50_ms, 2)} ms, ` +
        `p99 ${fmt(w.p99_ms, 2)} ms, ${w.errors} errors (target p99 <= 50 ms)`);
    }
  }
  if (r.memory) lines.push('', ...renderMemory(r.memory));
  if (r.sessions) {
    const s = r.sessions;
    lines.push(`${s.count.toLocaleString('en')} other sessions on disk: signed-in ${fmt(s.signed_in_full.rps)} req/s, ` +
      `ratio to 2 ${fmt(s.ratio_to_hello_full, 2)} vs ${fmt(s.ratio_to_hello_empty, 2)} near-empty: cost ` +
      `${fmt(s.cost * 100, 1)} % (raw ${fmt(s.cost_raw * 100, 1)} %; target <= 10 %)`);
  }
  lines.push('');
  lines.push('Targets: ' + Object.entries(r.verdict).map(([k, v]) => `${k} ${pass(v)}`).join(', '));
  return lines.join('\n');
}

// The memory table: per reading, the worst and the mean over the processes, in MB.
function renderMemory(mm) {
  const mb = (kb) => fmt(kb / 1024, 2);
  const lines = [`Memory per app process, ${mm.procs} processes behind lighttpd after ${mm.sign_ins} real sign-ins and ` +
    `${mm.refreshed} refreshes at the provider (every process called it), from /proc/PID/smaps_rollup; max (mean), MB:`, '',
  '| after | requests | RSS | PSS | Private_Dirty |', '|---|---:|---:|---:|---:|'];
  for (const [label, x] of [['sign-ins and refreshes', mm.after_sign_in], ['a tenth of the run', mm.after_first],
    ['the whole run', mm.after_all]]) {
    lines.push(`| ${label} | ${x.requests} | ${mb(x.rss_kb.max)} (${mb(x.rss_kb.mean)}) | ${mb(x.pss_kb.max)} ` +
      `(${mb(x.pss_kb.mean)}) | ${mb(x.private_dirty_kb.max)} (${mb(x.private_dirty_kb.mean)}) |`);
  }
  const g = mm.growth_kb;
  lines.push('', `Growth from a tenth to the end of the run (largest of any process): RSS ${g.rss} kB, PSS ${g.pss} kB, ` +
    `Private_Dirty ${g.private_dirty} kB (targets: Private_Dirty <= 1.5 MB, PSS <= 4 MB, no growth)`);
  return lines;
}

main().catch((err) => {
  console.error(`bench: ${err.stack ?? err}`);
  process.exit(1);
});
