// Real web servers in front of build/kinde.fcgi for integration and browser tests: lighttpd with
// mod_fastcgi (etc/lighttpd.conf, the app at the site root) and Apache 2.4 with mod_fcgid (the app
// under a prefix, or shared-hosting style with only an .htaccess). Each server runs in the
// foreground on a free loopback port, in its own temporary run directory, and is stopped by its
// process id: by stop(), by a test's t.after, or at the latest when the test process exits.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync,
  readdirSync, readlinkSync, rmSync, writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { binary, projectRoot } from './cgi.mjs';

const APACHE_MODULES = '/usr/lib/apache2/modules';
const LIGHTTPD_CONF = path.join(projectRoot, 'etc/lighttpd.conf');
const TEMPLATE_DIR = path.join(projectRoot, 'templates');
const HTDOCS_DIR = path.join(projectRoot, 'htdocs');
const APACHE_TEMPLATES = path.join(projectRoot, 'tests/apache');
export const HTACCESS_EXAMPLE = path.join(projectRoot, 'apache-conf/htaccess.example');

// Servers still running, so an exit hook can stop them when a test forgets (or throws first).
const live = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL the server and its app processes, remove the dir.
  process.on('exit', () => {
    for (const s of live) s.killNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      for (const s of live) s.killNow();
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    });
  }
}

// freePort() -> a TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// dotenv(env) -> the text of a kinde.conf holding env's keys (values double-quoted and escaped).
export function dotenv(env) {
  const lines = ['# written by tests/lib/servers.mjs'];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v === null) continue;
    lines.push(`${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  }
  return `${lines.join('\n')}\n`;
}

// The app's settings for a server at baseUrl: test-friendly defaults, then the caller's appEnv
// (an object, or a function of baseUrl returning one).
function appSettings(baseUrl, appEnv, defaults) {
  const extra = typeof appEnv === 'function' ? appEnv(baseUrl) : appEnv;
  return {
    // The serving tests need no provider: discovery happens only at sign-in.
    KINDE_ISSUER_URL: 'http://127.0.0.1:9',
    KINDE_CLIENT_ID: 'kinde-fcgi-test',
    KINDE_CLIENT_SECRET: 'kinde-fcgi-test-secret',
    KINDE_CALLBACK_URL: `${baseUrl}/callback`,
    KINDE_LOG_LEVEL: 'debug',
    ...defaults,
    ...extra,
  };
}

// www-data's uid/gid when we are root (Apache's children switch to it), else null.
export function wwwData() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('www-data:'));
  if (!line) throw new Error('running as root but /etc/passwd has no www-data user for Apache');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

// Process ids whose executable is exactly `exe` (the app processes a server started from our
// private copy of the binary), found through /proc.
function pidsOfExecutable(exe) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) === exe) pids.push(Number(entry));
    } catch { /* gone, or not ours to read */ }
  }
  return pids;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Sends signal to every process of the group led by pid (a server we spawned detached).
function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch { /* the group is empty */ }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits until something answers HTTP at url, the child exits, or timeoutMs passes.
async function waitForHttp(url, child, timeoutMs, describe) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (code ${child.exitCode}, signal ${child.signalCode}) before answering\n${describe()}`);
    }
    try {
      // Any answer will do, a redirect included (not followed: a sign-in redirect leads elsewhere).
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return;
    } catch (err) {
      lastError = err;
    }
    await sleep(50);
  }
  throw new Error(`server did not answer ${url} within ${timeoutMs} ms (${lastError?.message})\n${describe()}`);
}

// Starts `command args` in the foreground and returns the common server handle.
async function launch({ name, command, args, env, runDir, appExe, port, baseUrl, logFiles, probeUrl,
                        timeoutMs, removeDir }) {
  installExitHook();
  // Its own process group (pgid = its pid), so the server, its workers and the app processes can
  // be stopped together by that one id, even those a dying parent left behind.
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const keep = (chunk) => {
    output += chunk;
    if (output.length > 256 * 1024) output = output.slice(-256 * 1024);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.once('error', (err) => keep(`spawn error: ${err.message}\n`));

  const errorLog = () => {
    let text = '';
    for (const f of logFiles) {
      if (existsSync(f)) text += `--- ${path.basename(f)} ---\n${readFileSync(f, 'utf8')}`;
    }
    if (output) text += `--- ${name} stdout/stderr ---\n${output}`;
    return text;
  };

  let stopped = false;
  const handle = {
    name, port, baseUrl, runDir, pid: child.pid,
    errorLog,
    output: () => output,
    // The app processes now running from our private copy of the binary.
    appPids: () => (appExe ? pidsOfExecutable(appExe) : []),
    // Synchronous last resort for the exit hook: the whole process group at once.
    killNow() {
      signalGroup(child.pid, 'SIGKILL');
      for (const pid of appExe ? pidsOfExecutable(appExe) : []) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
      }
      live.delete(handle);
      if (removeDir) rmSync(removeDir, { recursive: true, force: true });
    },
    // stop() -> resolves when the server and the app processes it started have exited (SIGTERM,
    // SIGKILL after 5 s) and the run directory is removed (kept when KFCGI_KEEP_RUN is set).
    async stop() {
      if (stopped) return;
      stopped = true;
      // A graceful stop first (the server stops its workers and FastCGI processes), then SIGKILL
      // for whatever is left in the group.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
      }
      signalGroup(child.pid, 'SIGKILL');
      // App processes outside the group (should a server put them elsewhere), by pid.
      const deadline = Date.now() + 3000;
      let pids = appExe ? pidsOfExecutable(appExe) : [];
      while (pids.length > 0 && Date.now() < deadline) {
        for (const pid of pids) {
          try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
        }
        await sleep(50);
        pids = pids.filter(alive);
      }
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      live.delete(handle);
      if (removeDir && !process.env.KFCGI_KEEP_RUN) rmSync(removeDir, { recursive: true, force: true });
    },
  };
  live.add(handle);
  try {
    await waitForHttp(probeUrl, child, timeoutMs, errorLog);
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}

// startForeground({name, command, args, env, port, probeUrl, logFiles, removeDir, timeoutMs}) -> the
// same handle as startLighttpd's, for any other server (Apache with a config of the caller's, gunicorn,
// uvicorn): `command args` in the foreground in its own process group, ready once probeUrl answers
// (any status), stopped by stop() (SIGTERM, then SIGKILL for the whole group) or by the exit hook.
// removeDir (optional) is removed after the stop.
export async function startForeground({ name, command, args, env, port, probeUrl, logFiles = [], removeDir,
                                        timeoutMs = 20000 }) {
  return launch({
    name, command, args, env, runDir: removeDir, appExe: null, port, baseUrl: `http://127.0.0.1:${port}`,
    logFiles, probeUrl, timeoutMs, removeDir,
  });
}

// startLighttpd({appEnv, procs, configText, port, timeoutMs}) -> {baseUrl, port, runDir, pid,
// stop(), errorLog()}. lighttpd -D with etc/lighttpd.conf (or configText, which sees the same
// KFCGI_* environment); the app at the site root with a kinde.conf written into the run directory
// from appEnv (object or baseUrl => object). Sessions live in the run directory.
export async function startLighttpd({ appEnv = {}, procs = 2, configText, port, timeoutMs = 15000 } = {}) {
  const p = port ?? await freePort();
  const baseUrl = `http://127.0.0.1:${p}`;
  const runDir = mkdtempSync(path.join(tmpdir(), 'kfcgi-lighttpd-'));
  try {
    return await launchLighttpd({ appEnv, procs, configText, p, baseUrl, runDir, timeoutMs });
  } catch (err) {
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
}

async function launchLighttpd({ appEnv, procs, configText, p, baseUrl, runDir, timeoutMs }) {
  // A private copy of the binary: a rebuild during the run cannot swap it, and its processes are
  // found by executable path when stopping.
  const appExe = path.join(runDir, 'kinde.fcgi');
  copyFileSync(binary, appExe);
  chmodSync(appExe, 0o755);
  const config = path.join(runDir, 'kinde.conf');
  writeFileSync(config, dotenv(appSettings(baseUrl, appEnv, {
    KINDE_SESSION_DIR: path.join(runDir, 'sessions'),
    KINDE_TEMPLATE_DIR: TEMPLATE_DIR,
  })), { mode: 0o600 });
  let confFile = LIGHTTPD_CONF;
  if (configText !== undefined) {
    confFile = path.join(runDir, 'lighttpd.conf');
    writeFileSync(confFile, configText);
  }
  const env = {
    PATH: process.env.PATH,
    KFCGI_ROOT: projectRoot,
    KFCGI_PORT: String(p),
    KFCGI_RUN: runDir,
    KFCGI_BIN: appExe,
    KFCGI_CONFIG: config,
    KFCGI_PROCS: String(procs),
  };
  return launch({
    name: 'lighttpd', command: 'lighttpd', args: ['-D', '-f', confFile], env, runDir, appExe, port: p, baseUrl,
    logFiles: [path.join(runDir, 'lighttpd-error.log')], probeUrl: `${baseUrl}/styles.css`, timeoutMs,
    removeDir: runDir,
  });
}

// fillTemplate(text, values) -> text with every {{KEY}} replaced by values.KEY (throws on a missing key).
export function fillTemplate(template, values) {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (m, key) => {
    if (!(key in values)) throw new Error(`Apache template needs a value for ${m}`);
    return values[key];
  });
}

// apacheModules(['mpm_event', ...]) -> the LoadModule lines for Debian's module directory.
export function apacheModules(names) {
  return names.map((n) => `LoadModule ${n}_module ${APACHE_MODULES}/mod_${n}.so`).join('\n');
}

// startApache({prefix, appEnv, procs, htaccess, port, timeoutMs}) -> {baseUrl, port, runDir, pid,
// stop(), errorLog()}. Apache 2.4 + mod_fcgid in the foreground (apache2 -f conf -DFOREGROUND).
// Default: the app at `prefix` (Alias to the binary, SetHandler fcgid-script, CGIPassAuth On,
// FcgidInitialEnv KINDE_CONFIG), htdocs/ as the DocumentRoot; baseUrl ends in the prefix.
// prefix '' puts the app at the site root (AliasMatch of every path but the static files).
// With htaccess (the text of an .htaccess, e.g. apache-conf/htaccess.example): shared-hosting
// style, the binary, styles.css and that .htaccess in the document root, the configuration in
// <site>/etc/kinde.conf found by the app itself; baseUrl is the site root.
// As root, the children run as www-data: the site (binary, templates, htdocs, config) is a copy
// in a temporary directory www-data can read, with a session directory www-data owns.
export async function startApache({ prefix = '/app', appEnv = {}, procs = 2, htaccess, port,
                                    timeoutMs = 20000, logLevel = 'info' } = {}) {
  if (prefix !== '' && !/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(prefix)) {
    throw new Error(`bad prefix ${prefix}: '' or /segment[/segment...]`);
  }
  const p = port ?? await freePort();
  const origin = `http://127.0.0.1:${p}`;
  const baseUrl = htaccess === undefined ? origin + prefix : origin;
  const site = mkdtempSync(path.join(tmpdir(), 'kfcgi-apache-'));
  try {
    return await launchApache({ prefix, appEnv, procs, htaccess, p, origin, baseUrl, site, timeoutMs, logLevel });
  } catch (err) {
    rmSync(site, { recursive: true, force: true });
    throw err;
  }
}

async function launchApache({ prefix, appEnv, procs, htaccess, p, origin, baseUrl, site, timeoutMs, logLevel }) {
  chmodSync(site, 0o755);
  const run = path.join(site, 'run');
  mkdirSync(run, { mode: 0o755 });
  const user = wwwData();
  const own = (f) => { if (user) chownSync(f, user.uid, user.gid); };

  // The config holds the client secret: readable by the app's user only.
  mkdirSync(path.join(site, 'etc'), { mode: 0o755 });
  const config = path.join(site, 'etc/kinde.conf');
  cpSync(TEMPLATE_DIR, path.join(site, 'templates'), { recursive: true });
  // The session directory must belong to the app's user (the app refuses anything else).
  const sessions = path.join(site, 'var/sessions');
  mkdirSync(sessions, { recursive: true, mode: 0o700 });
  chmodSync(path.join(site, 'var'), 0o755);
  own(sessions);

  let appExe;
  let template;
  const values = { RUN: run, SITE: site, PORT: String(p), PROCS: String(procs), PREFIX: prefix,
    CONFIG: config, LOG_LEVEL: `${logLevel} fcgid:${logLevel}` };
  if (htaccess === undefined) {
    cpSync(HTDOCS_DIR, path.join(site, 'htdocs'), { recursive: true });
    mkdirSync(path.join(site, 'bin'), { mode: 0o755 });
    appExe = path.join(site, 'bin/kinde.fcgi');
    template = readFileSync(path.join(APACHE_TEMPLATES, 'alias.conf.in'), 'utf8');
    const exe = path.join(site, 'bin/kinde.fcgi');
    values.APP_MAPPING = prefix === ''
      ? `AliasMatch "^/(?!styles\\.css$|favicon\\.ico$|static/)(.*)$" "${exe}/$1"`
      : `Alias "${prefix}" "${exe}"`;
    writeFileSync(config, dotenv(appSettings(baseUrl, appEnv, {
      KINDE_SESSION_DIR: sessions,
      KINDE_TEMPLATE_DIR: path.join(site, 'templates'),
    })), { mode: 0o600 });
  } else {
    const pub = path.join(site, 'public');
    cpSync(HTDOCS_DIR, pub, { recursive: true });
    chmodSync(pub, 0o755);
    writeFileSync(path.join(pub, '.htaccess'), htaccess, { mode: 0o644 });
    appExe = path.join(pub, 'kinde.fcgi');
    template = readFileSync(path.join(APACHE_TEMPLATES, 'htaccess.conf.in'), 'utf8');
    // As a site owner would write it: paths relative to etc/ (the defaults would do as well).
    writeFileSync(config, dotenv(appSettings(baseUrl, appEnv, {
      KINDE_SESSION_DIR: '../var/sessions',
      KINDE_TEMPLATE_DIR: '../templates',
    })), { mode: 0o600 });
  }
  own(config);
  // The session key, made beforehand as the Debian package does (etc/ is not writable by www-data):
  // owned by the app's user, 0600. The app uses it as it is.
  const key = path.join(site, 'etc/session.key');
  writeFileSync(key, randomBytes(48), { mode: 0o600 });
  own(key);
  copyFileSync(binary, appExe);
  chmodSync(appExe, 0o755);

  values.LOAD_MODULES = apacheModules(['mpm_event', 'authz_core', 'alias', 'mime', 'env', 'rewrite', 'fcgid']);
  values.USER_GROUP = user ? 'User www-data\nGroup www-data' : '';
  const confFile = path.join(run, 'apache2.conf');
  writeFileSync(confFile, fillTemplate(template, values));

  return launch({
    name: 'apache2', command: 'apache2', args: ['-f', confFile, '-DFOREGROUND'],
    env: { PATH: process.env.PATH, LANG: 'C' }, runDir: run, appExe, port: p, baseUrl,
    logFiles: [path.join(run, 'error.log'), path.join(run, 'access.log')],
    probeUrl: `${origin}/styles.css`, timeoutMs, removeDir: site,
  });
}
