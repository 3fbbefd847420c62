// A throwaway redis-server for node tests: a child process on a free loopback port, no persistence
// (--save '' --appendonly no), in the foreground, its own temporary directory. Stopped by stop(),
// and at the latest when the test process exits (SIGKILL from an exit hook).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { freePort } from './servers.mjs';

const live = new Set();
let hookInstalled = false;

function installExitHook() {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', () => {
    for (const r of live) r.killNow();
  });
}

// The redis-server executable, or an Error saying how to get it (tests then fail, never skip).
function redisServerBinary() {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const bin = found.stdout.trim();
  if (found.status !== 0 || !bin) {
    throw new Error('redis-server is not installed (apt-get install redis-server): the Redis session tests need it');
  }
  return bin;
}

// redisCommand(port, args, {password}) -> the first reply line (e.g. "+PONG", "-NOAUTH ...", ":1").
// A minimal RESP client for probing and poking at the server from tests.
export function redisCommand(port, args, { password, timeoutMs = 2000 } = {}) {
  const encode = (parts) => `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(String(p))}\r\n${p}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    let skip = password ? 1 : 0;  // the AUTH reply
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`redis on ${port}: no answer`)); }, timeoutMs);
    sock.on('connect', () => {
      if (password) sock.write(encode(['AUTH', password]));
      sock.write(encode(args));
    });
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (skip > 0) { skip -= 1; continue; }
        clearTimeout(timer);
        sock.destroy();
        resolve(line);
        return;
      }
    });
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

// startRedis({password, port}) -> {port, url, password, stop(), restart(), log()}.
// url is redis://[:password@]127.0.0.1:port. Resolves once the server answers on its port.
export async function startRedis({ password, port } = {}) {
  installExitHook();
  const bin = redisServerBinary();
  const dir = mkdtempSync(path.join(tmpdir(), 'kfcgi-redis-'));
  const p = port ?? await freePort();
  let child = null;
  let exited = null;

  const launch = async () => {
    const args = ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', dir, '--logfile', path.join(dir, 'redis.log'), '--loglevel', 'warning'];
    if (password) args.push('--requirepass', password);
    child = spawn(bin, args, { stdio: 'ignore' });
    exited = new Promise((resolve) => child.once('exit', resolve));
    let gone = false;
    exited.then(() => { gone = true; });
    for (let i = 0; i < 300; i += 1) {
      if (gone) throw new Error(`redis-server exited at start on port ${p}:\n${handle.log()}`);
      try {
        const reply = await redisCommand(p, ['PING'], { timeoutMs: 500 });
        if (reply === '+PONG' || reply.startsWith('-NOAUTH')) return;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`redis-server did not answer on port ${p}:\n${handle.log()}`);
  };

  const handle = {
    port: p,
    password,
    url: `redis://${password ? `:${encodeURIComponent(password)}@` : ''}127.0.0.1:${p}`,
    log() {
      try { return readFileSync(path.join(dir, 'redis.log'), 'utf8'); } catch { return '(no log)'; }
    },
    // stop() -> resolves once the server has exited (data is gone: no persistence).
    async stop() {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      child = null;
    },
    // pause()/resume(): SIGSTOP/SIGCONT, a hung server (connections accepted, no answers).
    pause() { child?.kill('SIGSTOP'); },
    resume() { child?.kill('SIGCONT'); },
    // restart() -> a fresh, empty server on the same port.
    async restart() {
      await handle.stop();
      await launch();
    },
    // Removes everything; call from t.after / after().
    async dispose() {
      await handle.stop();
      live.delete(handle);
      rmSync(dir, { recursive: true, force: true });
    },
    killNow() {
      if (child && child.exitCode === null) {
        try { child.kill('SIGCONT'); child.kill('SIGKILL'); } catch { /* gone */ }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(handle);
  try {
    await launch();
  } catch (err) {
    await handle.dispose();
    throw err;
  }
  return handle;
}
