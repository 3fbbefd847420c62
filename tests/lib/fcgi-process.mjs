// kinde.fcgi as its own FastCGI server, the way nginx needs it (nginx spawns no FastCGI processes):
// started on a listening unix socket as systemd's kinde-fcgi.socket would (build/listen_exec: the
// socket at fd 3, LISTEN_FDS/LISTEN_PID) or by Debian's spawn-fcgi (the socket at fd 0), and
// asked with libfcgi's own client, cgi-fcgi. Every process runs in a process group of its own and
// is stopped by that id (at the latest when the test process exits).

import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

import { binary, projectRoot } from './cgi.mjs';

export const listenExec = process.env.KINDE_LISTEN_EXEC || path.join(projectRoot, 'build/listen_exec');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const groups = new Set();
let hooked = false;

function killGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch { /* the group is gone */ }
}

function track(pgid) {
  groups.add(pgid);
  if (hooked) return;
  hooked = true;
  process.on('exit', () => { for (const g of groups) killGroup(g, 'SIGKILL'); });
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    // A zombie (exited, not yet reaped by a parent that is not ours) counts as gone.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

// childrenOf(pid) -> the live process ids whose parent is pid (from /proc).
export function childrenOf(pid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === pid && state !== 'Z') out.push(Number(entry));
    } catch { /* gone */ }
  }
  return out.sort((a, b) => a - b);
}

// fdTarget(pid, fd) -> what /proc/<pid>/fd/<fd> points to ("socket:[123]"), or null when closed.
export function fdTarget(pid, fd) {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return null;
  }
}

// fcgiRequest(socket, {path, method, query, headers, env, scriptName}) -> {status, headers, body, stderr}
// through cgi-fcgi (libfcgi-bin), which sends its own environment as the request's parameters.
export function fcgiRequest(socket, { path: p = '/', method = 'GET', query = '', headers = {}, scriptName = '',
                                     env = {}, timeoutMs = 10000 } = {}) {
  const vars = {
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: '127.0.0.1', SERVER_PORT: '80',
    REMOTE_ADDR: '127.0.0.1', REQUEST_METHOD: method, SCRIPT_NAME: scriptName, PATH_INFO: p,
    QUERY_STRING: query, REQUEST_URI: scriptName + p + (query ? `?${query}` : ''), ...env,
  };
  for (const [k, v] of Object.entries(headers)) vars[`HTTP_${k.toUpperCase().replace(/-/g, '_')}`] = v;
  return new Promise((resolve, reject) => {
    execFile('cgi-fcgi', ['-bind', '-connect', socket], { env: vars, timeout: timeoutMs, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && !stdout) {
          reject(new Error(`cgi-fcgi -connect ${socket} failed: ${err.message} ${stderr}`));
          return;
        }
        const sep = stdout.indexOf('\r\n\r\n');
        const head = sep >= 0 ? stdout.slice(0, sep) : stdout;
        const res = { status: 200, headers: {}, body: sep >= 0 ? stdout.slice(sep + 4) : '', stderr };
        for (const line of head.split('\r\n')) {
          const i = line.indexOf(':');
          if (i < 0) continue;
          const name = line.slice(0, i).toLowerCase();
          const value = line.slice(i + 1).trim();
          if (name === 'status') res.status = parseInt(value, 10);
          else res.headers[name] = value;
        }
        resolve(res);
      });
  });
}

// Waits until /healthz answers 200 on socket, or the process exits, or timeoutMs passes.
async function waitHealthy(socket, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.exited()) throw new Error(`kinde.fcgi exited (${JSON.stringify(proc.exitStatus())}) before answering\n${proc.output()}`);
    if (existsSync(socket)) {
      try {
        const r = await fcgiRequest(socket, { path: '/healthz', timeoutMs: 2000 });
        if (r.status === 200 && r.body === 'ok') return;
        last = `status ${r.status}: ${r.body.slice(0, 200)}`;
      } catch (err) {
        last = err.message;
      }
    }
    await sleep(50);
  }
  throw new Error(`no healthy answer on ${socket} within ${timeoutMs} ms (${last})\n${proc.output()}`);
}

// launch(command, args, env) -> {pid, exited(), exitStatus(), wait(), output(), stop()}: in its own
// process group; stop() sends SIGTERM to the leader, then SIGKILL to the group after 8 s.
function launch(command, args, env) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  track(child.pid);
  let output = '';
  const keep = (c) => {
    output += c;
    if (output.length > 128 * 1024) output = output.slice(-128 * 1024);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  let status = null;
  const done = new Promise((resolve) => child.once('exit', (code, signal) => {
    status = { code, signal };
    resolve(status);
  }));
  child.once('error', (err) => keep(`spawn error: ${err.message}\n`));
  return {
    pid: child.pid,
    exited: () => status !== null,
    exitStatus: () => status,
    wait: () => done,
    output: () => output,
    async stop() {
      if (status === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), 8000);
        await done;
        clearTimeout(timer);
      }
      killGroup(child.pid, 'SIGKILL');
      groups.delete(child.pid);
      return status;
    },
  };
}

// startSocketActivated({socket, config, args, env, listenPid}) -> the launch handle, once /healthz
// answers on socket. The binary runs with the socket at fd 3 and LISTEN_FDS=1, LISTEN_PID = its pid
// (or listenPid), KINDE_CONFIG=config, as under systemd's kinde-fcgi.socket. wait: false returns at
// once (for a start that is meant to fail). mode: the socket's mode (octal text; listen_exec's
// default 0600), e.g. '0666' for a web server whose workers run as another user.
export async function startSocketActivated({ socket, config, args = [], env = {}, listenPid, wait = true,
                                             timeoutMs = 15000, mode }) {
  if (!existsSync(listenExec)) throw new Error(`${listenExec} is missing: make ${path.relative(projectRoot, listenExec)}`);
  const pre = listenPid === undefined ? [] : ['--listen-pid', String(listenPid)];
  if (mode !== undefined) pre.push('--mode', mode);
  const proc = launch(listenExec, [...pre, socket, '--', binary, ...args],
    { PATH: process.env.PATH, KINDE_CONFIG: config, ...env });
  if (wait) {
    try {
      await waitHealthy(socket, proc, timeoutMs);
    } catch (err) {
      await proc.stop();
      throw err;
    }
  }
  return proc;
}

// startSpawnFcgi({socket, config, args, children}) -> handle with pids() once /healthz answers.
// children undefined: `spawn-fcgi -n` (no fork: spawn-fcgi becomes kinde.fcgi, the handle's pid);
// children N: `spawn-fcgi -F N`, which forks N processes and exits (their pids from its output).
export async function startSpawnFcgi({ socket, config, args = [], children, timeoutMs = 15000 }) {
  const opts = ['-s', socket, '-M', '0600'];
  if (children === undefined) opts.unshift('-n');
  else opts.push('-F', String(children));
  const proc = launch('spawn-fcgi', [...opts, '--', binary, ...args], { PATH: process.env.PATH, KINDE_CONFIG: config });
  let forked = [];
  if (children !== undefined) {
    const { code } = await proc.wait();
    forked = [...proc.output().matchAll(/child spawned successfully: PID: (\d+)/g)].map((m) => Number(m[1]));
    for (const pid of forked) track(pid);  // each is its own session and group leader (setsid)
    if (code !== 0 || forked.length !== children) {
      for (const pid of forked) killGroup(pid, 'SIGKILL');
      throw new Error(`spawn-fcgi -F ${children} exited ${code}, started ${forked.length}:\n${proc.output()}`);
    }
  }
  const handle = {
    ...proc,
    pids: () => (children === undefined ? [proc.pid] : forked),
    async stop() {
      if (children === undefined) return proc.stop();
      for (const pid of forked) {
        try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      }
      const deadline = Date.now() + 8000;
      while (forked.some(alive) && Date.now() < deadline) await sleep(50);
      for (const pid of forked) killGroup(pid, 'SIGKILL');
      for (const pid of forked) groups.delete(pid);
      return null;
    },
  };
  const probe = { exited: () => children === undefined && proc.exited(), exitStatus: proc.exitStatus, output: proc.output };
  try {
    await waitHealthy(socket, probe, timeoutMs);
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}
