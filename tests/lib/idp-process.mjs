// Start and stop the local stand-in for Kinde (tests/idp/server.mjs) as a
// child process, for tests, benchmarks and `make run` helpers.

import { spawn } from 'node:child_process';
import { freemem, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER = join(dirname(fileURLToPath(import.meta.url)), '..', 'idp', 'server.mjs');
const STDERR_KEEP = 64 * 1024;

// startIdp(env, {timeoutMs}) -> {issuer, port, pid, stderr(), stop()}.
// env is merged over process.env (IDP_PORT defaults to 0 = a free port).
// Rejects when the ready line does not come within timeoutMs (default 60 s: a loaded 2-core machine has needed more than 20 s)
// or the process exits first; the error includes the process's stderr and the machine's load.
// A start that stalls (no ready line in time; once seen in CI on a fresh clone, the process stuck
// after loading oidc-provider) is retried once with a new process, and the stall is reported on
// stderr; a process that exits or prints something unexpected is not retried.
export async function startIdp(env = {}, options = {}) {
  try {
    return await startIdpOnce(env, options);
  } catch (err) {
    if (!err.stalled) throw err;
    console.error(`startIdp: first attempt stalled, retrying once:\n${err.message}`);
    return startIdpOnce(env, options);
  }
}

function machineState() {
  const [one, five] = loadavg();
  return `load average ${one.toFixed(2)} ${five.toFixed(2)}, free memory ${Math.round(freemem() / 1048576)} MiB`;
}

function startIdpOnce(env, { timeoutMs = 60000 } = {}) {
  const started = Date.now();
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, IDP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (stderr.length > STDERR_KEEP) stderr = stderr.slice(-STDERR_KEEP);
    if (process.env.IDP_VERBOSE) process.stderr.write(chunk);
  });

  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  // stop() -> resolves once the process has exited (SIGTERM, then SIGKILL
  // after 5 s). Safe to call twice.
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };

  return new Promise((resolve, reject) => {
    let stdout = '';
    let settled = false;
    const fail = (message, stalled = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const err = new Error(`${message} (after ${Date.now() - started} ms; ${machineState()})\n--- idp stderr ---\n${stderr}`);
      err.stalled = stalled;
      stop().finally(() => reject(err));
    };
    const timer = setTimeout(() => fail(`idp did not report ready within ${timeoutMs} ms`, true), timeoutMs);

    child.once('error', (err) => fail(`cannot start idp: ${err.message}`));
    exited.then(({ code, signal }) => fail(`idp exited before ready (code ${code}, signal ${signal})`));

    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      if (settled) return;
      stdout += chunk;
      const nl = stdout.indexOf('\n');
      if (nl === -1) return;
      let ready;
      try {
        ready = JSON.parse(stdout.slice(0, nl));
      } catch {
        fail(`idp printed an unexpected first line: ${stdout.slice(0, nl)}`);
        return;
      }
      if (ready.ready !== true || typeof ready.issuer !== 'string') {
        fail(`idp printed an unexpected first line: ${stdout.slice(0, nl)}`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve({
        issuer: ready.issuer,
        port: ready.port,
        pid: child.pid,
        stderr: () => stderr,
        stop,
      });
    });
  });
}
