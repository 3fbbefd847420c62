// What the bench runners share (tests/bench/run.mjs for `make bench`, tests/bench/peers.mjs for
// `make bench-peers`, tests/bench/redis_case.mjs): the wrk settings from the environment, running
// and parsing wrk, the per-case answer check, averaging the rounds, the machine description, and our
// own server: one lighttpd with the bare FastCGI hello world at /hello and the app everywhere else
// (tests/bench/lighttpd.conf), with a real sign-in at the local provider.
//
// Environment: BENCH_DURATION (s per wrk run, default 5), BENCH_CONNECTIONS (32), BENCH_THREADS (2).
//
// tests/lib/cgi.mjs (through servers.mjs) reads KINDE_FCGI_BIN when first imported: a runner sets it
// before importing this module.

import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { signIn } from '../lib/idp-client.mjs';
import { startLighttpd } from '../lib/servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
const STATUS_SCRIPT = path.join(here, 'wrk-status.lua');

// num(name, fallback) -> the positive number in environment variable name, or fallback when unset.
export function num(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
}

export const DURATION = num('BENCH_DURATION', 5);
export const CONNECTIONS = num('BENCH_CONNECTIONS', 32);
export const THREADS = num('BENCH_THREADS', 2);

export const log = (...a) => console.error('bench:', ...a);

// The instruction total of a callgrind output file (its `totals:` or `summary:` line).
export function callgrindTotal(file) {
  const text = readFileSync(file, 'utf8');
  const m = /^totals:\s+(\d+)/m.exec(text) ?? /^summary:\s+(\d+)/m.exec(text);
  if (!m) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

// have(cmd) -> whether cmd is on the PATH.
export function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// run(cmd, args, {env, timeoutMs}) -> {stdout, stderr}; rejects on a non-zero exit or the timeout.
export function run(cmd, args, { env = {}, timeoutMs = 600000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve({ stdout, stderr });
      });
  });
}

// "1.23ms" -> 1.23 (milliseconds)
function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`unexpected wrk latency ${text}`);
  const v = Number(m[1]);
  return { us: v / 1000, ms: v, s: v * 1000, m: v * 60000 }[m[2]];
}

// parseWrk(stdout of wrk --latency) -> {rps, p50_ms, p99_ms, requests, non2xx, socket_errors}.
// non2xx is wrk-status.lua's count (every status outside 2xx) when the output has it, else wrk's own
// (statuses >= 400 only).
export function parseWrk(out) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  const total = /(\d+) requests in/.exec(out);
  if (!rps || !p50 || !p99 || !total) throw new Error(`cannot read wrk output:\n${out}`);
  const counted = /^non-2xx responses: (\d+)$/m.exec(out);
  const non2xx = counted ?? /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(rps[1]), p50_ms: toMs(p50[1]), p99_ms: toMs(p99[1]), requests: Number(total[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socket_errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

// wrk(base, c, {duration, connections}) -> parseWrk of one run of case c ({id, path, headers}) against base, with
// wrk-status.lua counting every answer that is not 2xx.
export async function wrk(base, c, { duration = DURATION, connections = CONNECTIONS } = {}) {
  const args = [`-t${THREADS}`, `-c${connections}`, `-d${duration}s`, '--latency', '-s', STATUS_SCRIPT];
  for (const [k, v] of Object.entries(c.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(base + c.path);
  const { stdout } = await run('wrk', args, { timeoutMs: (duration + 30) * 1000 });
  const r = parseWrk(stdout);
  if (r.non2xx || r.socket_errors) log(`warning: ${c.id}: ${r.non2xx} non-2xx responses, ${r.socket_errors} socket errors`);
  return r;
}

// check(base, c) -> the body of one request of case c; throws unless it is a 200 (redirects are
// not followed) whose body contains c.expect.
export async function check(base, c) {
  const res = await fetch(base + c.path, { headers: c.headers ?? {}, redirect: 'manual',
    signal: AbortSignal.timeout(10000) });
  const body = await res.text();
  if (res.status !== 200 || !body.includes(c.expect)) {
    throw new Error(`case ${c.id} (${base}${c.path}) answered ${res.status} without "${c.expect}":\n${body.slice(0, 400)}`);
  }
  return body;
}

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

// summarize(runs) -> {rps, p50_ms (means), p99_ms (the worse run), errors (non-2xx + socket), runs}.
export function summarize(runs) {
  return {
    rps: mean(runs.map((r) => r.rps)),
    p50_ms: mean(runs.map((r) => r.p50_ms)),
    p99_ms: Math.max(...runs.map((r) => r.p99_ms)),  // the worse of the runs
    errors: runs.reduce((a, r) => a + r.non2xx + r.socket_errors, 0),
    runs,
  };
}

// measureInterleaved(cases, {rounds}) -> {id: summarize(runs)}: every case (with its own c.base)
// once per round, in order, so slow drifts of the machine spread over all cases alike.
export async function measureInterleaved(cases, { rounds = 2 } = {}) {
  const runs = Object.fromEntries(cases.map((c) => [c.id, []]));
  for (let round = 1; round <= rounds; round += 1) {
    for (const c of cases) {
      log(`round ${round}: ${c.name}`);
      runs[c.id].push(await wrk(c.base, c));
    }
  }
  return Object.fromEntries(cases.map((c) => [c.id, summarize(runs[c.id])]));
}

const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

// machine(extra) -> date, host, CPUs, kernel, memory, load average now, lighttpd and wrk versions and
// the wrk settings, plus extra. finish(m) adds the load average at the end.
export function machine(extra = {}) {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(), host: os.hostname(), cpus: cpus.length, cpu_model: cpus[0]?.model ?? '?',
    kernel: `${os.type()} ${os.release()}`, memory_gb: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    load_at_start: loadavg(),
    lighttpd: spawnSync('lighttpd', ['-v'], { encoding: 'utf8' }).stdout.trim().split('\n')[0],
    wrk: 'wrk ' + (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split(' ')[1] ?? '?'),
    ...extra,
    settings: { duration_s: DURATION, connections: CONNECTIONS, threads: THREADS, ...extra.settings },
  };
}

export function finish(m) {
  m.load_at_end = loadavg();
  return m;
}

export const fmt = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

// startBenchLighttpd({buildDir, port, procs, appEnv}) -> startLighttpd's handle for
// tests/bench/lighttpd.conf: BUILD_DIR/hello.fcgi at /hello, the app at every other URL but the
// static files, each as `procs` FastCGI processes.
export function startBenchLighttpd({ buildDir, port, procs = 2, appEnv }) {
  const configText = readFileSync(path.join(here, 'lighttpd.conf'), 'utf8')
    .replaceAll('@HELLO_BIN@', path.join(buildDir, 'hello.fcgi'));
  return startLighttpd({ port, procs, configText, appEnv });
}

// signInToApp(base, user, userName, label) -> the app's session cookie value after a real sign-in
// at the local provider as `user`; throws unless the flow ends on the signed-in page (userName).
export async function signInToApp(base, user, userName, label = 'bench') {
  const signed = await signIn(base, user);
  if (signed.status !== 200 || !signed.body.includes(userName)) {
    throw new Error(`${label}: sign-in did not end on the signed-in page (${signed.status} at ${signed.finalUrl})`);
  }
  const value = signed.cookies.kinde_fcgi_session;
  if (!value) throw new Error(`${label}: no session cookie after sign-in: ${signed.cookieHeader}`);
  return value;
}
