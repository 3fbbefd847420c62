// Memory per app process, for `make bench` (tests/bench/run.mjs), measured the way it matters when
// many processes run: RSS, PSS and Private_Dirty from /proc/PID/smaps_rollup. A lighttpd instance of
// its own with PROCS (8) app processes and its own local provider; users sign in for real until every
// process has called the provider (see calledProvider), then every session's access token is marked
// as expiring (bench_driver expire, the store's own code) and each session is requested once,
// so processes refresh at the provider for real. Then a long run of wrk-mix.lua (signed-in pages,
// bearer token, signed-out page) shows growth: readings after the sign-ins, after a tenth of the
// requests and at the end (BENCH_SMAPS=FILE: the first process's /proc/PID/smaps). Everything it
// starts is stopped before it returns.
//
// tests/lib/cgi.mjs reads KINDE_FCGI_BIN when first imported: import this module after setting it.

import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { clientCredentialsToken } from '../lib/idp-client.mjs';
import { startIdp } from '../lib/idp-process.mjs';
import { freePort } from '../lib/servers.mjs';
import { CONNECTIONS, THREADS, check, parseWrk, run, signInToApp, startBenchLighttpd } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const M2M = { id: 'kinde-fcgi-m2m', secret: 'kinde-fcgi-m2m-secret' };

// Process ids whose executable is exactly exe.
export function pidsOf(exe) {
  const pids = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readlinkSync(`/proc/${e}/exe`) === exe) pids.push(Number(e));
    } catch { /* gone or not ours */ }
  }
  return pids.sort((a, b) => a - b);
}

// smaps(pid) -> {rss_kb, pss_kb, private_dirty_kb} from /proc/PID/smaps_rollup.
export function smaps(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/smaps_rollup`);
    return Number(m[1]);
  };
  return { rss_kb: field('Rss'), pss_kb: field('Pss'), private_dirty_kb: field('Private_Dirty') };
}

// Whether process pid has called the provider. A FastCGI process makes each call in a child it
// forks and reaps (src/http/forked_transport.hpp), which leaves the children's page faults in its
// own /proc/PID/stat (cminflt, field 11) and nothing else; a process that calls libcurl itself
// has it mapped.
function calledProvider(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');  // fields from 3 (state) on
  const cminflt = Number(fields[11 - 3]);
  return cminflt > 0 || readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libcurl');
}

// One reading of every process, with the worst and the mean of each figure.
function reading(pids, requests) {
  const per = pids.map((pid) => ({ pid, ...smaps(pid) }));
  const stat = (k) => ({ max: Math.max(...per.map((p) => p[k])), mean: Math.round(per.reduce((a, p) => a + p[k], 0) / per.length) });
  return { requests, per_process: per, rss_kb: stat('rss_kb'), pss_kb: stat('pss_kb'), private_dirty_kb: stat('private_dirty_kb') };
}

// Sign-ins, PROCS at a time, until every process has called the provider (at most `rounds` batches).
async function signInEverywhere({ base, pids, user, userName, rounds = 6 }) {
  const cookies = [];
  for (let round = 0; round < rounds && !pids.every(calledProvider); round += 1) {
    const batch = await Promise.all(pids.map((_, i) => signInToApp(base, user, userName, `memory case sign-in ${round}.${i}`)));
    cookies.push(...batch);
  }
  const idle = pids.filter((pid) => !calledProvider(pid));
  if (idle.length) throw new Error(`memory case: processes ${idle.join(', ')} never called the provider after ${cookies.length} sign-ins`);
  return cookies;
}

// measureMemoryCase({buildDir, procs, requests, user, userName, log}) -> {procs, after_sign_in,
// after_first, after_all, growth_kb, refreshed}.
export async function measureMemoryCase({ buildDir, procs = 8, requests = 200000, user = 'alice',
                                          userName = 'Alice Liddell', log = () => {} }) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let idp;
  let server;
  try {
    idp = await startIdp({
      IDP_REDIRECT_URIS: `${base}/callback`, IDP_POST_LOGOUT_REDIRECT_URIS: `${base}/`,
      IDP_M2M_CLIENT_ID: M2M.id, IDP_M2M_CLIENT_SECRET: M2M.secret, IDP_ACCESS_TTL: '86400', IDP_ID_TTL: '86400',
    });
    const audience = `${idp.issuer}/api`;
    server = await startBenchLighttpd({
      buildDir, port, procs, appEnv: { KINDE_ISSUER_URL: idp.issuer, KINDE_AUDIENCE: audience, KINDE_LOG_LEVEL: 'info' },
    });
    const appExe = path.join(server.runDir, 'kinde.fcgi');
    await check(base, { id: 'memory_warm', path: '/healthz', expect: 'ok' });
    // lighttpd starts the processes one after another: wait for all (at most 30 s).
    let pids = pidsOf(appExe);
    for (let i = 0; i < 300 && pids.length < procs; i += 1) {
      await new Promise((r) => setTimeout(r, 100));
      pids = pidsOf(appExe);
    }
    if (pids.length !== procs) throw new Error(`memory case: expected ${procs} app processes, found ${pids.length}`);
    log(`memory case: lighttpd on ${base} with ${procs} processes, provider ${idp.issuer}`);

    const cookies = await signInEverywhere({ base, pids, user, userName });
    log(`memory case: ${cookies.length} sign-ins; every process has called the provider; refreshing each session`);
    const driver = path.join(buildDir, 'bench_driver');
    await run(driver, ['expire', ...cookies], { env: { KINDE_CONFIG: path.join(server.runDir, 'kinde.conf') } });
    for (let i = 0; i < cookies.length; i += procs) {
      await Promise.all(cookies.slice(i, i + procs).map((v) =>
        check(base, { id: 'memory_refresh', path: '/', headers: { Cookie: `kinde_fcgi_session=${v}` }, expect: userName })));
    }
    const bearer = await clientCredentialsToken(idp.issuer, M2M.id, M2M.secret, audience);
    const afterSignIn = reading(pids, 0);

    // wrk stops by time only: short runs of wrk-mix.lua until `goal` requests in all.
    let done = 0;
    const until = async (goal) => {
      for (let i = 0; i < 1000 && done < goal; i += 1) {
        const { stdout } = await run('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, '-d2s', '--latency',
          '-s', path.join(here, 'wrk-mix.lua'), base], {
          env: { BENCH_COOKIE: `kinde_fcgi_session=${cookies[0]}`, BENCH_BEARER: bearer }, timeoutMs: 60000,
        });
        const r = parseWrk(stdout);
        if (r.non2xx || r.socket_errors) throw new Error(`memory case: ${r.non2xx} non-2xx, ${r.socket_errors} socket errors`);
        done += r.requests;
      }
      log(`memory case: ${done} requests`);
    };
    await until(Math.round(requests / 10));
    const afterFirst = reading(pids, done);
    await until(requests);
    const afterAll = reading(pids, done);
    // BENCH_SMAPS=FILE keeps the first process's whole /proc/PID/smaps, to see which mappings cost.
    if (process.env.BENCH_SMAPS) writeFileSync(process.env.BENCH_SMAPS, readFileSync(`/proc/${pids[0]}/smaps`));
    if (pidsOf(appExe).join() !== pids.join()) throw new Error('memory case: an app process was restarted');
    const growth = (k) => Math.max(...afterAll.per_process.map((p, i) => p[k] - afterFirst.per_process[i][k]));
    return {
      procs, sign_ins: cookies.length, refreshed: cookies.length,
      after_sign_in: afterSignIn, after_first: afterFirst, after_all: afterAll,
      growth_kb: { rss: growth('rss_kb'), pss: growth('pss_kb'), private_dirty: growth('private_dirty_kb') },
    };
  } finally {
    if (server) await server.stop();
    if (idp) await idp.stop();
  }
}
