// Debian's nginx in front of kinde.fcgi, configured by the shipped etc/nginx.conf.example and
// etc/nginx/snippets/ (only paths, ports and the TLS lines changed), with Debian's php-fpm for the
// PHP folders and a small HTTP app of the test's own behind proxy_pass. The app runs as under
// systemd's kinde-fcgi.socket (build/listen_exec). Everything runs in the foreground in one
// temporary directory, each process in its own process group, stopped by its id.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync,
  rmSync, writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { projectRoot } from './cgi.mjs';
import { startSocketActivated } from './fcgi-process.mjs';
import { dotenv, freePort, wwwData } from './servers.mjs';

export const NGINX_EXAMPLE = path.join(projectRoot, 'etc/nginx.conf.example');
const SNIPPETS = path.join(projectRoot, 'etc/nginx/snippets');
// The test's PHP script: prints $_SERVER as JSON.
export const SERVER_PHP = path.join(projectRoot, 'tests/data/php/server.php');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// php-fpm's binary (Debian names it after the PHP version).
export function phpFpmBinary() {
  const found = readdirSync('/usr/sbin').filter((f) => /^php-fpm\d+\.\d+$/.test(f)).sort();
  if (found.length === 0) throw new Error('php-fpm is not installed (make deps installs php-fpm)');
  return path.join('/usr/sbin', found[found.length - 1]);
}

// replaceAll(text, from, to, what) -> text with every `from` replaced by `to`; throws when
// `from` is not there, so a changed example fails the test instead of being tested half-rewritten.
export function replaceAll(text, from, to, what) {
  if (!text.includes(from)) throw new Error(`${what} no longer holds ${JSON.stringify(from)}`);
  return text.replaceAll(from, to);
}

// launch(command, args, {env, cwd}) -> {pid, output(), exited(), stop()} in a process group of its own.
function launch(command, args, { env = { PATH: process.env.PATH, LANG: 'C' } } = {}) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const keep = (c) => { out = (out + c).slice(-64 * 1024); };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  child.once('error', (err) => keep(`spawn error: ${err.message}\n`));
  let status = null;
  const done = new Promise((r) => child.once('exit', (code, signal) => { status = { code, signal }; r(status); }));
  const killGroup = (sig) => { try { process.kill(-child.pid, sig); } catch { /* gone */ } };
  const onExit = () => killGroup('SIGKILL');
  process.once('exit', onExit);
  return {
    pid: child.pid,
    output: () => out,
    exited: () => status !== null,
    async stop() {
      process.removeListener('exit', onExit);
      if (status === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => killGroup('SIGKILL'), 8000);
        await done;
        clearTimeout(timer);
      }
      killGroup('SIGKILL');
    },
  };
}

async function waitFor(what, proc, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.exited()) throw new Error(`${what} exited before it was ready:\n${proc.output()}`);
    try {
      if (await check()) return;
    } catch (err) {
      last = err.message;
    }
    await sleep(50);
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms (${last}):\n${proc.output()}`);
}

// The test's proxied app: answers every request with its request headers as JSON.
async function startEchoApp(port) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { stop: () => new Promise((r) => server.close(r)) };
}

// The site of etc/nginx.conf.example with the test's paths: one plain-http server on 127.0.0.1:port
// (the redirect server on redirectPort), docroot, the app's and php-fpm's sockets, the proxied app.
export function siteFromExample({ port, redirectPort, docroot, phpSocket, proxyPort }) {
  let site = readFileSync(NGINX_EXAMPLE, 'utf8');
  const what = 'etc/nginx.conf.example';
  site = replaceAll(site, '    listen 80;\n    listen [::]:80;\n', `    listen 127.0.0.1:${redirectPort};\n`, what);
  site = replaceAll(site, '    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n', `    listen 127.0.0.1:${port};\n`, what);
  site = replaceAll(site, '    ssl_certificate     /etc/letsencrypt/live/example.com/fullchain.pem;\n'
    + '    ssl_certificate_key /etc/letsencrypt/live/example.com/privkey.pem;\n', '', what);
  site = replaceAll(site, 'root /var/www/example.com;', `root ${docroot};`, what);
  site = replaceAll(site, 'unix:/run/php/php8.2-fpm.sock', `unix:${phpSocket}`, what);
  site = replaceAll(site, 'proxy_pass http://127.0.0.1:8080;', `proxy_pass http://127.0.0.1:${proxyPort};`, what);
  return site;
}

// Our snippets with the app's socket moved, beside Debian's own files the example includes.
function writeConfDir(conf, appSocket) {
  mkdirSync(path.join(conf, 'snippets'), { recursive: true });
  for (const f of readdirSync(SNIPPETS)) {
    const text = readFileSync(path.join(SNIPPETS, f), 'utf8');
    const moved = text.includes('fastcgi_pass')
      ? replaceAll(text, 'unix:/run/kinde-fcgi/kinde.sock', `unix:${appSocket}`, `etc/nginx/snippets/${f}`)
      : text;
    writeFileSync(path.join(conf, 'snippets', f), moved);
  }
  copyFileSync('/etc/nginx/snippets/fastcgi-php.conf', path.join(conf, 'snippets/fastcgi-php.conf'));
  for (const f of ['fastcgi_params', 'fastcgi.conf', 'proxy_params', 'mime.types']) {
    copyFileSync(path.join('/etc/nginx', f), path.join(conf, f));
  }
}

function writeFpmConfig(file, run, socket) {
  const user = wwwData() ? 'user = www-data\ngroup = www-data\n' : '';
  writeFileSync(file, `[global]
pid = ${run}/php-fpm.pid
error_log = ${run}/php-fpm.log
daemonize = no
[site]
listen = ${socket}
listen.mode = 0666
${user}pm = static
pm.max_children = 2
catch_workers_output = yes
decorate_workers_output = no
`);
}

function writeNginxConfig(file, run) {
  const user = wwwData() ? 'user www-data www-data;' : '';
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${run}/${t}_temp;`).join('\n');
  writeFileSync(file, `${user}
worker_processes 1;
pid ${run}/nginx.pid;
error_log ${run}/error.log info;
events { worker_connections 256; }
http {
  include mime.types;
  default_type application/octet-stream;
  access_log ${run}/access.log;
${temp}
  include site.conf;
}
`);
}

// A document root: the project's htdocs/ (its private/ and private/staff/ folders) with the test's
// PHP script in both folders and an unprotected copy at the root.
function makeDocroot(docroot) {
  cpSync(path.join(projectRoot, 'htdocs'), docroot, { recursive: true });
  for (const dir of ['private', 'private/staff', '.']) copyFileSync(SERVER_PHP, path.join(docroot, dir, 'server.php'));
}

// startNginxSite({issuer, appEnv}) -> {origin, appBase, stop(), logs()}: nginx on a free loopback
// port serving etc/nginx.conf.example's site, the app at /kinde/ signing in at `issuer`.
export async function startNginxSite({ issuer, port, appEnv = {} }) {
  const top = mkdtempSync(path.join(tmpdir(), 'kfcgi-nginx-'));
  chmodSync(top, 0o755);  // nginx's and php-fpm's workers (www-data under root) read the site
  const run = path.join(top, 'run');
  const conf = path.join(top, 'conf');
  const docroot = path.join(top, 'htdocs');
  for (const d of [run, conf, path.join(top, 'etc'), path.join(top, 'var/sessions')]) mkdirSync(d, { recursive: true, mode: 0o755 });
  chmodSync(path.join(top, 'var/sessions'), 0o700);
  makeDocroot(docroot);
  const appSocket = path.join(run, 'kinde.sock');
  const phpSocket = path.join(run, 'php.sock');
  const listenPort = port ?? await freePort();
  const proxyPort = await freePort();
  const origin = `http://127.0.0.1:${listenPort}`;

  const config = path.join(top, 'etc/kinde.conf');
  writeFileSync(config, dotenv({
    KINDE_ISSUER_URL: issuer,
    KINDE_CLIENT_ID: 'kinde-fcgi-test',
    KINDE_CLIENT_SECRET: 'kinde-fcgi-test-secret',
    KINDE_CALLBACK_URL: `${origin}/kinde/callback`,
    KINDE_SESSION_DIR: path.join(top, 'var/sessions'),
    KINDE_TEMPLATE_DIR: path.join(projectRoot, 'templates'),
    KINDE_LOG_LEVEL: 'debug',
    KINDE_COOKIE_PATH: '/',  // as etc/nginx.conf.example says: the cookie must reach /private/
    ...appEnv,
  }), { mode: 0o600 });
  writeFileSync(path.join(top, 'etc/session.key'), randomBytes(48), { mode: 0o600 });

  writeConfDir(conf, appSocket);
  writeFileSync(path.join(conf, 'site.conf'), siteFromExample({
    port: listenPort, redirectPort: await freePort(), docroot, phpSocket, proxyPort,
  }));
  writeNginxConfig(path.join(conf, 'nginx.conf'), run);
  writeFpmConfig(path.join(conf, 'php-fpm.conf'), run, phpSocket);

  const parts = [];
  const stop = async () => {
    for (const p of parts.reverse()) await p.stop();
    if (!process.env.KFCGI_KEEP_RUN) rmSync(top, { recursive: true, force: true });
  };
  const logs = () => {
    const read = (f) => { try { return readFileSync(f, 'utf8').slice(-4000); } catch { return ''; } };
    return [`--- nginx error.log\n${read(path.join(run, 'error.log'))}`, `--- php-fpm\n${read(path.join(run, 'php-fpm.log'))}`,
      `--- app\n${parts[0]?.output?.().slice(-3000) ?? ''}`].join('\n');
  };
  try {
    // The app as systemd starts it; nginx's workers (www-data) connect to its socket.
    parts.push(await startSocketActivated({ socket: appSocket, config, mode: '0666' }));
    const fpm = launch(phpFpmBinary(), ['-F', '-y', path.join(conf, 'php-fpm.conf'), '-p', run]);
    parts.push(fpm);
    await waitFor('php-fpm', fpm, () => existsSync(phpSocket));
    parts.push(await startEchoApp(proxyPort));
    const nginx = launch('nginx', ['-p', conf, '-c', path.join(conf, 'nginx.conf'), '-e', path.join(run, 'error.log'),
      '-g', 'daemon off;']);
    parts.push(nginx);
    await waitFor('nginx', nginx, async () => {
      const r = await fetch(`${origin}/kinde/healthz`, { signal: AbortSignal.timeout(1000) });
      return (await r.text()) === 'ok';
    });
  } catch (err) {
    const detail = logs();
    await stop();
    throw new Error(`${err.message}\n${detail}`);
  }
  return { origin, appBase: `${origin}/kinde`, docroot, stop, logs };
}
