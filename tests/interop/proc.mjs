// Foreground processes for the interop providers: each started in its own process group from files
// under build/interop/, its output kept (last 256 KiB) for the report, stopped by that group's id.

import { spawn } from 'node:child_process';

const live = new Set();
let hooked = false;

function hook() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => { for (const p of live) p.killNow(); });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      for (const p of live) p.killNow();
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    });
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// start(name, command, args, {env, cwd}) -> {pid, output(), exited(), stop()}: a process group led
// by the child (detached), so stop() reaches whatever it forks.
export function start(name, command, args, { env = process.env, cwd } = {}) {
  hook();
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const keep = (chunk) => {
    output += chunk;
    if (output.length > 256 * 1024) output = output.slice(-256 * 1024);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  child.once('error', (err) => keep(`spawn error: ${err.message}\n`));
  const done = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const group = (signal) => { try { process.kill(-child.pid, signal); } catch { /* empty group */ } };
  const handle = {
    name,
    pid: child.pid,
    output: () => output,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    killNow() { group('SIGKILL'); live.delete(handle); },
    async stop() {
      if (!live.has(handle)) return;
      live.delete(handle);
      if (!handle.exited()) {
        group('SIGTERM');
        const timer = setTimeout(() => group('SIGKILL'), 5000);
        await done;
        clearTimeout(timer);
      }
      group('SIGKILL');  // anything the leader left behind
    },
  };
  live.add(handle);
  return handle;
}

// waitHttp(url, proc, timeoutMs, {status}) -> resolves once url answers (with `status` when given);
// throws with the process output when it exits first or the time runs out.
export async function waitHttp(url, proc, timeoutMs = 30000, { status } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (proc?.exited()) throw new Error(`${proc.name} exited before answering ${url}:\n${proc.output().slice(-3000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (status === undefined || res.status === status) return;
      last = new Error(`status ${res.status}`);
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${last?.message})\n${proc?.output().slice(-3000) ?? ''}`);
}
