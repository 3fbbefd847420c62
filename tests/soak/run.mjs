// make soak: lighttpd with KFCGI_PROCS app processes and the local provider (tests/idp) with short
// access tokens, under SOAK_CLIENTS looping clients (sign in, protected routes, refreshes, sign
// out) for SOAK_SECONDS, while a random app process is SIGKILLed every few seconds and the
// provider is stopped and started once on the same port with the same key. Loopback only.
//
// Counted and required to be 0: sessions lost (a client's cookie reads signed out although it did
// not sign out and nothing explains it), 5xx answers or connection errors outside a kill or
// restart window, other unexpected statuses, unexplained sign-in failures, and torn session files
// (checked at the end by build/check_sessions with the store's own record code).
// Counted apart (expected): requests killed in flight (a 5xx/connection error within the window
// around a SIGKILL), answers during the provider restart, sign-ins retried because of either, and
// sessions ended because the provider forgot or revoked their refresh token: after its restart (it
// keeps grants in memory) or after a kill in the middle of a refresh (the rotated token was spent
// at the provider but never stored; oidc-provider then revokes the grant as a reuse).
//
// Usage: node tests/soak/run.mjs [build-dir]. Environment: SOAK_BIN (another kinde.fcgi), SOAK_SECONDS (180), SOAK_CLIENTS (16),
// SOAK_PROCS (4), SOAK_ACCESS_TTL (75: the app refreshes 60 s before expiry, so every 15 s),
// SOAK_KILL_MIN_MS / SOAK_KILL_MAX_MS (2000 / 5000). KINDE_SESSION_STORE=redis://host:port[/db] keeps the
// sessions in that Redis instead of files (under a fresh KINDE_REDIS_PREFIX, so other keys there are
// left alone; KINDE_SESSION_SECRET is generated for the run); the torn-record check then reads Redis.
// Exit status 0 only when every count is 0.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const build = path.resolve(root, process.argv[2] || 'build');
// servers.mjs copies the binary named here (read when cgi.mjs loads): set it before importing.
// SOAK_BIN runs another binary (e.g. build-asan/kinde.fcgi) with this build's check_sessions.
process.env.KINDE_FCGI_BIN = process.env.SOAK_BIN ? path.resolve(process.env.SOAK_BIN) : path.join(build, 'kinde.fcgi');
const { startLighttpd, freePort } = await import('../lib/servers.mjs');
const { startIdp } = await import('../lib/idp-process.mjs');
const { CookieJar, request, signIn, signOut } = await import('../lib/idp-client.mjs');
const { subFor } = await import('../idp/accounts.mjs');

const num = (name, dflt) => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number`);
  return v;
};
const SECONDS = num('SOAK_SECONDS', 180);
const CLIENTS = num('SOAK_CLIENTS', 16);
const PROCS = num('SOAK_PROCS', 4);
const ACCESS_TTL = num('SOAK_ACCESS_TTL', 75);
const KILL_MIN = num('SOAK_KILL_MIN_MS', 2000);
const KILL_MAX = num('SOAK_KILL_MAX_MS', 5000);
const REFRESH_MARGIN = 60;   // the app's (src/app/identity.cpp kRefreshMargin)
const KILL_WINDOW_BEFORE = 1000;  // a 5xx this soon after a kill (or a kill during the request) is "killed in flight"
const RESTART_GRACE = 2000;       // the restart window lasts this long after the provider is back
const SESSION_COOKIE = 'kinde_fcgi_session';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rand = (lo, hi) => lo + Math.random() * (hi - lo);
const pick = (a) => a[Math.floor(Math.random() * a.length)];

const counts = {
  requests: 0, signIns: 0, signOuts: 0, signInRetriesKill: 0, signInRetriesRestart: 0,
  signInFailuresUnexplained: 0, killedInFlight: 0, restartWindowErrors: 0, unexpected5xx: 0,
  unexpectedStatus: 0, sessionsLost: 0, endedByProviderRestart: 0, endedByKillMidRefresh: 0,
  kills: 0, refreshes: 0, refreshRefused: 0,
};
const problems = [];  // details of everything that makes the run fail (first 20 printed)
const note = (kind, detail) => { if (problems.length < 200) problems.push(`${kind}: ${detail}`); };

const killTimes = [];
let restart = null;  // {start, end} (end null while the provider is down)

function nearKill(t0, t1) {
  return killTimes.some((k) => k >= t0 - KILL_WINDOW_BEFORE && k <= t1 + 200);
}
function inRestart(t0, t1) {
  if (!restart) return false;
  const end = restart.end === null ? Infinity : restart.end + RESTART_GRACE;
  return t1 >= restart.start && t0 <= end;
}

// ---- setup ----

const work = mkdtempSync(path.join(tmpdir(), 'kfcgi-soak-'));
const keyFile = path.join(work, 'idp-key.json');
const appPort = await freePort();
const base = `http://127.0.0.1:${appPort}`;
const idpPort = await freePort();
const idpEnv = {
  IDP_PORT: String(idpPort),
  IDP_KEY_FILE: keyFile,
  IDP_ACCESS_TTL: String(ACCESS_TTL),
  IDP_REDIRECT_URIS: `${base}/callback`,
  IDP_POST_LOGOUT_REDIRECT_URIS: `${base}/`,
};
// The session store: files in the run directory (default), or the Redis named by KINDE_SESSION_STORE.
const REDIS_URL = /^redis:\/\//.test(process.env.KINDE_SESSION_STORE || '') ? process.env.KINDE_SESSION_STORE : null;
const storeEnv = REDIS_URL ? {
  KINDE_SESSION_STORE: REDIS_URL,
  KINDE_SESSION_SECRET: randomBytes(36).toString('base64'),
  KINDE_REDIS_PREFIX: `soak-${randomBytes(4).toString('hex')}:`,
} : {};
let idp = await startIdp(idpEnv);
let server;
try {
  server = await startLighttpd({
    port: appPort, procs: PROCS,
    // debug: the runner counts "tokens refreshed" lines to prove refreshes happened.
    appEnv: { KINDE_ISSUER_URL: idp.issuer, KINDE_LOG_LEVEL: 'debug', ...storeEnv },
  });
} catch (err) {
  await idp.stop();
  rmSync(work, { recursive: true, force: true });
  throw err;
}
const appExe = path.join(server.runDir, 'kinde.fcgi');
const sessionDir = path.join(server.runDir, 'sessions');

// Inodes of the responder sockets (kinde.sock-N; etc/lighttpd.conf may also run authorizer
// processes on kinde-authorizer.sock-N, which these routes never reach).
function responderSocketInodes() {
  const inodes = new Set();
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[7].startsWith(path.join(server.runDir, 'kinde.sock-'))) inodes.add(f[6]);
  }
  return inodes;
}

// The app processes serving the routes the clients call (all app processes if that cannot be told).
function responderPids() {
  const inodes = responderSocketInodes();
  const all = appPids();
  const responders = all.filter((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try { return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]); } catch { return false; }
      });
    } catch { return false; }
  });
  return responders.length > 0 ? responders : all;
}

function appPids() {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) === appExe) pids.push(Number(entry));
    } catch { /* gone */ }
  }
  return pids;
}

// A request that never ends must not keep the soak (or make) waiting: give up well after the end.
setTimeout(() => {
  console.log(`soak: still running ${SECONDS + 120} s after the start; a request hangs. RESULT: FAIL`);
  try { process.kill(idp.pid, 'SIGKILL'); } catch { /* gone */ }
  process.exit(1);  // servers.mjs's exit hook kills lighttpd and the app processes
}, (SECONDS + 120) * 1000).unref();

const started = Date.now();
const deadline = started + SECONDS * 1000;
const running = () => Date.now() < deadline;

// ---- faults ----

async function killer() {
  while (running()) {
    await sleep(rand(KILL_MIN, KILL_MAX));
    if (!running()) break;
    const pids = responderPids();
    if (pids.length === 0) continue;
    const pid = pick(pids);
    try {
      process.kill(pid, 'SIGKILL');
      killTimes.push(Date.now());
      counts.kills += 1;
    } catch { /* exited meanwhile */ }
  }
}

async function restarter() {
  await sleep(SECONDS * 1000 * 0.45);
  if (!running()) return;
  restart = { start: Date.now(), end: null };
  await idp.stop();
  await sleep(1500);  // down for a moment: refreshes and sign-ins meet a refused connection
  for (let attempt = 0; ; attempt += 1) {
    try {
      idp = await startIdp(idpEnv);
      break;
    } catch (err) {
      if (attempt >= 5) throw err;  // the port should be free again; give it a few tries
      await sleep(500);
    }
  }
  restart.end = Date.now();
}

// ---- clients ----

const sessionIds = new Set();

// One protected call with the jar; returns 'in', 'out' or 'fault' (counted here).
async function call(jar, route, sub) {
  const t0 = Date.now();
  let res;
  let body = '';
  try {
    res = await request(`${base}${route}`, jar, { headers: { accept: route === '/' ? 'text/html' : 'application/json' } });
    body = await res.text();
  } catch (err) {
    res = { status: 0, error: err };
  }
  const t1 = Date.now();
  counts.requests += 1;
  if (res.status === 0 || res.status >= 500) {
    const what = res.status === 0 ? `connection error (${res.error?.cause?.code ?? res.error?.message})` : `HTTP ${res.status}`;
    if (nearKill(t0, t1)) counts.killedInFlight += 1;
    else if (inRestart(t0, t1)) counts.restartWindowErrors += 1;
    else {
      counts.unexpected5xx += 1;
      note('unexpected 5xx', `${route} ${what} at +${((t0 - started) / 1000).toFixed(1)} s: ${body.slice(0, 200)}`);
    }
    return { state: 'fault', t0 };
  }
  if (route === '/') {
    if (res.status === 200 && body.includes('Sign out')) return { state: 'in', t0 };
    if (res.status === 200 && body.includes('Sign in')) return { state: 'out', t0 };
  } else if (route === '/api/me') {
    if (res.status === 200) {
      let me;
      try { me = JSON.parse(body); } catch { me = null; }
      const id = me?.id ?? me?.user?.id;
      if (id === sub) return { state: 'in', t0 };
      note('wrong user', `/api/me answered ${body.slice(0, 200)} for ${sub}`);
      counts.unexpectedStatus += 1;
      return { state: 'fault', t0 };
    }
    if (res.status === 401) return { state: 'out', t0 };
  } else {
    if (res.status === 200 && /"item_id":\s*7\b/.test(body)) return { state: 'in', t0 };
    if (res.status === 401) return { state: 'out', t0 };
  }
  counts.unexpectedStatus += 1;
  note('unexpected status', `${route} HTTP ${res.status}: ${body.slice(0, 200)}`);
  return { state: 'fault', t0 };
}

async function signInWithRetries(login) {
  for (let attempt = 0; running(); attempt += 1) {
    const jar = new CookieJar();
    const t0 = Date.now();
    let done;
    let failure;
    try {
      done = await signIn(base, login, { jar });
      if (!(done.status === 200 && done.body.includes('Sign out') && done.finalUrl === `${base}/`)) {
        failure = `ended at ${done.finalUrl} with ${done.status}: ${done.body.slice(0, 200).replace(/\s+/g, ' ')}`;
      }
    } catch (err) {
      failure = err.message.split('\n').slice(0, 3).join(' | ');
    }
    const t1 = Date.now();
    if (!failure) {
      counts.signIns += 1;
      counts.requests += done.hops.length;
      const sid = jar.cookiesByName(base)[SESSION_COOKIE];
      if (sid) sessionIds.add(sid);
      return { jar, since: t1 };
    }
    if (inRestart(t0, t1)) counts.signInRetriesRestart += 1;
    else if (nearKill(t0, t1)) counts.signInRetriesKill += 1;
    else {
      counts.signInFailuresUnexplained += 1;
      note('sign-in failed', `${login} at +${((t0 - started) / 1000).toFixed(1)} s: ${failure}`);
    }
    await sleep(rand(200, 800));
  }
  return null;
}

async function client(n) {
  const login = `soak-user-${n}`;
  const sub = subFor(login);
  const routes = ['/', '/api/me', '/items/7'];
  while (running()) {
    const session = await signInWithRetries(login);
    if (!session) break;
    const { jar, since } = session;
    // Keep the session 5-40 s: long enough for several refreshes (every ACCESS_TTL - 60 s).
    const until = Date.now() + rand(5000, 40000);
    let lastKilled = null;  // start of this session's latest request that a kill hit
    let ended = false;
    while (running() && Date.now() < until) {
      const r = await call(jar, pick(routes), sub);
      if (r.state === 'fault') {
        if (nearKill(r.t0, Date.now())) lastKilled = r.t0;
      } else if (r.state === 'out') {
        const restartedSince = restart && restart.start > since;
        const refreshDue = since + (ACCESS_TTL - REFRESH_MARGIN - 1) * 1000;
        if (restartedSince) counts.endedByProviderRestart += 1;
        else if (lastKilled !== null && lastKilled >= refreshDue) counts.endedByKillMidRefresh += 1;
        else {
          counts.sessionsLost += 1;
          note('session lost', `${login} signed in at +${((since - started) / 1000).toFixed(1)} s read signed out at +${((r.t0 - started) / 1000).toFixed(1)} s`);
        }
        ended = true;
        break;
      }
      await sleep(rand(0, 60));
    }
    if (ended || !running()) continue;
    const t0 = Date.now();
    try {
      const out = await signOut(base, jar);
      counts.requests += out.hops.length;
      if (out.status === 200 && out.body.includes('Sign in')) counts.signOuts += 1;
      else if (!nearKill(t0, Date.now()) && !inRestart(t0, Date.now())) {
        counts.unexpectedStatus += 1;
        note('sign-out', `${login} ended at ${out.finalUrl} with ${out.status}`);
      }
    } catch (err) {
      if (!nearKill(t0, Date.now()) && !inRestart(t0, Date.now())) {
        counts.unexpectedStatus += 1;
        note('sign-out', `${login}: ${err.message.split('\n')[0]}`);
      }
    }
  }
}

// ---- run ----

let checkResult = null;
let exitCode = 1;
try {
  const tasks = [killer(), restarter()];
  for (let i = 0; i < CLIENTS; i += 1) tasks.push(client(i));
  await Promise.all(tasks);
  const elapsed = (Date.now() - started) / 1000;
  const alive = responderPids().length;

  // Torn files: the store's own code over the directory and over every session id handed out.
  const checker = path.join(build, 'check_sessions');
  if (!existsSync(checker)) throw new Error(`${checker} missing: run make soak (it builds it)`);
  const chk = REDIS_URL
    ? spawnSync(checker, ['--redis', REDIS_URL, storeEnv.KINDE_REDIS_PREFIX], {
      input: [...sessionIds].join('\n'), encoding: 'utf8', env: { ...process.env, CHECK_SESSIONS_SECRET: storeEnv.KINDE_SESSION_SECRET } })
    : spawnSync(checker, [sessionDir, path.join(server.runDir, 'session.key')], { input: [...sessionIds].join('\n'), encoding: 'utf8' });
  try { checkResult = JSON.parse(chk.stdout.trim()); } catch { checkResult = null; }
  if (chk.status !== 0) note('session check', `exit ${chk.status}: ${chk.stderr.slice(0, 1000)}`);

  const log = server.errorLog();
  counts.refreshes = (log.match(/tokens refreshed for a session/g) || []).length;
  counts.refreshRefused = (log.match(/refresh refused by provider/g) || []).length;
  // A sanitizer build (SOAK_BIN=build-asan/kinde.fcgi) reports on stderr, which lighttpd keeps.
  const sanitizer = (log.match(/ERROR: (Address|Leak|Thread)Sanitizer|runtime error:/g) || []).length;
  if (sanitizer) note('sanitizer', log.slice(Math.max(0, log.search(/Sanitizer|runtime error:/) - 200)).slice(0, 1500));
  const torn = checkResult ? checkResult.torn_headers + checkResult.torn_sealed : NaN;

  const failures = [];
  if (counts.sessionsLost) failures.push('sessions lost');
  if (counts.unexpected5xx) failures.push('unexpected 5xx');
  if (counts.unexpectedStatus) failures.push('unexpected statuses');
  if (counts.signInFailuresUnexplained) failures.push('unexplained sign-in failures');
  // Every session counted as ended by the provider must show up as a refused refresh in the app's log.
  if (counts.endedByProviderRestart + counts.endedByKillMidRefresh > counts.refreshRefused) {
    failures.push('more sessions ended than refreshes the provider refused');
  }
  if (!(torn === 0)) failures.push('torn session files (or the check failed)');
  if (sanitizer) failures.push('sanitizer reports in the app log');
  if (counts.requests === 0 || counts.signIns === 0) failures.push('no traffic');
  if (SECONDS >= 30 && counts.kills === 0) failures.push('no app process was killed');
  if (SECONDS >= 60 && counts.refreshes === 0) failures.push('no token refresh happened');
  if (SECONDS >= 30 && alive === 0) failures.push('lighttpd did not respawn app processes');

  const row = (label, value) => `${label.padEnd(46)} ${value}`;
  const lines = [
    `== soak summary: ${elapsed.toFixed(0)} s, ${CLIENTS} clients, ${PROCS} app processes (lighttpd), access tokens ${ACCESS_TTL} s, sessions in ${REDIS_URL ? `Redis (prefix ${storeEnv.KINDE_REDIS_PREFIX})` : 'files'}`,
    row('requests (incl. sign-in/out hops)', `${counts.requests} (${(counts.requests / elapsed).toFixed(0)}/s)`),
    row('sign-ins / sign-outs', `${counts.signIns} / ${counts.signOuts}`),
    row('token refreshes (app log)', counts.refreshes),
    row('responder processes SIGKILLed / alive at end', `${counts.kills} / ${alive}`),
    row('provider restarts', restart ? `1 (down ${((restart.end - restart.start) / 1000).toFixed(1)} s)` : 0),
    row('killed in flight (5xx/conn. error near a kill)', counts.killedInFlight),
    row('errors in the provider restart window', counts.restartWindowErrors),
    row('sign-ins retried (kill / provider restart)', `${counts.signInRetriesKill} / ${counts.signInRetriesRestart}`),
    row('sessions ended: provider restart forgot grant', counts.endedByProviderRestart),
    row('sessions ended: kill mid-refresh (token spent)', counts.endedByKillMidRefresh),
    row('refreshes refused by provider (app log)', counts.refreshRefused),
    row(`session ${REDIS_URL ? 'records' : 'files'} / opened by id / temp files`, checkResult
      ? `${checkResult.records} / ${checkResult.ids_present} / ${checkResult.temp_files}` : '?'),
    row('SESSIONS LOST (must be 0)', counts.sessionsLost),
    row('UNEXPECTED 5xx (must be 0)', counts.unexpected5xx),
    row('UNEXPECTED STATUSES (must be 0)', counts.unexpectedStatus),
    row('UNEXPLAINED SIGN-IN FAILURES (must be 0)', counts.signInFailuresUnexplained),
    row('TORN SESSION FILES (must be 0)', Number.isNaN(torn) ? 'check failed' : torn),
    row('SANITIZER REPORTS IN THE APP LOG (must be 0)', sanitizer),
    failures.length ? `RESULT: FAIL (${failures.join(', ')})` : 'RESULT: PASS',
  ];
  if (problems.length) {
    console.log(`first problems (${problems.length}):`);
    for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
  }
  console.log(lines.join('\n'));
  exitCode = failures.length ? 1 : 0;
} finally {
  await server.stop();
  await idp.stop();
  rmSync(work, { recursive: true, force: true });
}
// Leak reports come when the app processes exit, i.e. during stop(): lighttpd's stderr still has them.
const late = server.output().match(/ERROR: (Address|Leak)Sanitizer[^\n]*/g) || [];
if (late.length) {
  console.log(`sanitizer reports at shutdown (${late.length}): ${late.slice(0, 3).join(' | ')}\nRESULT: FAIL`);
  exitCode = 1;
}
process.exit(exitCode);
