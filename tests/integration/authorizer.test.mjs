// kinde.fcgi as a FastCGI Authorizer through the real servers: lighttpd with etc/lighttpd.conf's
// protected folder, and Apache + mod_fcgid with apache-conf/protect-folder.conf and with only an
// .htaccess (apache-conf/htaccess-protect.example). Protected: a static file, a subfolder that needs
// write:items, a CGI script that prints its environment (tests/data/cgi/env.cgi), and a PHP script
// run by php-cgi that prints $_SERVER (tests/data/php/server.php; lighttpd: mod_cgi, Apache:
// mod_fcgid's FcgidWrapper, the lines protect-folder.conf has commented out).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, chownSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { binary, projectRoot } from '../lib/cgi.mjs';
import { signIn } from '../lib/idp-client.mjs';
import { startIdp } from '../lib/idp-process.mjs';
import { dotenv, freePort, startLighttpd } from '../lib/servers.mjs';

const ENV_CGI = path.join(projectRoot, 'tests/data/cgi/env.cgi');
const SERVER_PHP = path.join(projectRoot, 'tests/data/php/server.php');
const HTML = 'text/html,application/xhtml+xml,*/*;q=0.8';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A document root for a test server: htdocs/ (with private/ and private/staff/) plus the CGI script
// in private/ and, for Apache, members/ protected by the shipped .htaccess example.
function makeDocroot(dir, { members } = {}) {
  cpSync(path.join(projectRoot, 'htdocs'), dir, { recursive: true });
  copyFileSync(ENV_CGI, path.join(dir, 'private/env.cgi'));
  chmodSync(path.join(dir, 'private/env.cgi'), 0o755);
  for (const sub of ['private', 'private/staff']) copyFileSync(SERVER_PHP, path.join(dir, sub, 'server.php'));
  if (members) {
    mkdirSync(path.join(dir, 'members'));
    copyFileSync(path.join(dir, 'private/index.html'), path.join(dir, 'members/index.html'));
    copyFileSync(ENV_CGI, path.join(dir, 'members/env.cgi'));
    chmodSync(path.join(dir, 'members/env.cgi'), 0o755);
    writeFileSync(path.join(dir, 'members/.htaccess'), members);
  }
}

// lighttpd: the shipped etc/lighttpd.conf, with a private document root holding the CGI script and
// mod_cgi for it.
async function startLighttpdAuthorizer(port, appEnv) {
  const docroot = mkdtempSync(path.join(tmpdir(), 'kfcgi-authz-docroot-'));
  makeDocroot(docroot);
  const shipped = readFileSync(path.join(projectRoot, 'etc/lighttpd.conf'), 'utf8');
  const line = 'server.document-root = var.root + "/htdocs"';
  assert.ok(shipped.includes(line), 'etc/lighttpd.conf no longer sets the document root as expected');
  assert.ok(shipped.includes('"mod_staticfile"'));
  // mod_cgi before mod_staticfile, or the script would be sent as a file.
  const configText = `${shipped.replace(line, `server.document-root = "${docroot}"`)
    .replace('"mod_staticfile"', '"mod_cgi", "mod_staticfile"')}
$HTTP["url"] =~ "^/private/" { cgi.assign = ( ".cgi" => "", ".php" => "/usr/bin/php-cgi" ) }
`;
  const server = await startLighttpd({ appEnv, configText, procs: 1, port });
  const stop = server.stop.bind(server);
  server.stop = async () => { await stop(); rmSync(docroot, { recursive: true, force: true }); };
  return server;
}

// www-data's ids when running as root (Apache's children switch to it).
function wwwData() {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('www-data:'));
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

// Apache 2.4 + mod_fcgid from tests/apache/authorizer.conf.in: the app at /app, private/ protected
// by apache-conf/protect-folder.conf, members/ by apache-conf/htaccess-protect.example.
async function startApacheAuthorizer(port, appEnv) {
  const origin = `http://127.0.0.1:${port}`;
  const site = mkdtempSync(path.join(tmpdir(), 'kfcgi-authz-apache-'));
  chmodSync(site, 0o755);
  const run = path.join(site, 'run');
  for (const d of ['run', 'bin', 'etc', 'var', 'var/sessions']) mkdirSync(path.join(site, d), { mode: 0o755 });
  const user = wwwData();
  const own = (f) => { if (user) chownSync(f, user.uid, user.gid); };
  chmodSync(path.join(site, 'var/sessions'), 0o700);
  own(path.join(site, 'var/sessions'));
  cpSync(path.join(projectRoot, 'templates'), path.join(site, 'templates'), { recursive: true });
  const exe = path.join(site, 'bin/kinde.fcgi');
  copyFileSync(binary, exe);
  chmodSync(exe, 0o755);
  const config = path.join(site, 'etc/kinde.conf');
  writeFileSync(config, dotenv({
    KINDE_CLIENT_ID: 'kinde-fcgi-test',
    KINDE_CLIENT_SECRET: 'kinde-fcgi-test-secret',
    KINDE_CALLBACK_URL: `${origin}/app/callback`,
    KINDE_SESSION_DIR: path.join(site, 'var/sessions'),
    KINDE_TEMPLATE_DIR: path.join(site, 'templates'),
    KINDE_LOG_LEVEL: 'debug',
    // The app is at /app; its cookie must also reach /private/ and /members/.
    KINDE_COOKIE_PATH: '/',
    ...appEnv,
  }), { mode: 0o600 });
  own(config);
  // The session key, made beforehand as a package does (www-data may not write etc/).
  const key = path.join(site, 'etc/session.key');
  writeFileSync(key, randomBytes(48), { mode: 0o600 });
  own(key);

  const htaccess = readFileSync(path.join(projectRoot, 'apache-conf/htaccess-protect.example'), 'utf8')
    .replace('/home/you/public_html/kinde.fcgi', exe);
  makeDocroot(path.join(site, 'htdocs'), { members: htaccess });
  const protect = readFileSync(path.join(projectRoot, 'apache-conf/protect-folder.conf'), 'utf8')
    .replaceAll('/var/www/example.com/private', path.join(site, 'htdocs/private'))
    .replaceAll('ErrorDocument 401 /login', 'ErrorDocument 401 /app/login');
  const phpLines = '  # AddHandler fcgid-script .php\n  # FcgidWrapper /usr/bin/php-cgi .php\n';
  assert.ok(protect.includes(phpLines), 'apache-conf/protect-folder.conf no longer has the PHP lines to uncomment');
  const protectWithPhp = protect.replace(phpLines, phpLines.replaceAll('# ', ''));
  const modules = ['mpm_event', 'authz_core', 'alias', 'mime', 'env', 'setenvif', 'headers', 'rewrite', 'dir',
    'cgid', 'fcgid'].map((n) => `LoadModule ${n}_module /usr/lib/apache2/modules/mod_${n}.so`).join('\n');
  const values = { RUN: run, SITE: site, PORT: String(port), CONFIG: config, LOAD_MODULES: modules,
    USER_GROUP: user ? 'User www-data\nGroup www-data' : '', PROTECT_FOLDER: protectWithPhp };
  const template = readFileSync(path.join(projectRoot, 'tests/apache/authorizer.conf.in'), 'utf8');
  const confFile = path.join(run, 'apache2.conf');
  writeFileSync(confFile, template.replace(/\{\{([A-Z_]+)\}\}/g, (m, k) => {
    if (!(k in values)) throw new Error(`no value for ${m}`);
    return values[k];
  }));

  // Its own process group, stopped by that id only.
  const child = spawn('apache2', ['-f', confFile, '-DFOREGROUND'], {
    env: { PATH: process.env.PATH, LANG: 'C' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  let output = '';
  child.stdout.on('data', (c) => { output += c; });
  child.stderr.on('data', (c) => { output += c; });
  const exited = new Promise((r) => child.once('exit', r));
  const errorLog = () => {
    try { return `${readFileSync(path.join(run, 'error.log'), 'utf8')}\n${output}`; } catch { return output; }
  };
  const killGroup = (sig) => { try { process.kill(-child.pid, sig); } catch { /* gone */ } };
  const onExit = () => killGroup('SIGKILL');
  process.once('exit', onExit);
  const stop = async () => {
    process.removeListener('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), 8000);
      await exited;
      clearTimeout(timer);
    }
    killGroup('SIGKILL');
    if (!process.env.KFCGI_KEEP_RUN) rmSync(site, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      const r = await fetch(`${origin}/styles.css`, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`apache did not start: ${err.message}\n${errorLog()}`);
      }
      await sleep(50);
    }
  }
  return { origin, appBase: `${origin}/app`, stop, errorLog };
}

const ports = { lighttpd: await freePort(), apache: await freePort() };
let idp;
const servers = {};

before(async () => {
  // The provider must know the callback URLs before the servers start.
  const callbacks = [`http://127.0.0.1:${ports.lighttpd}/callback`, `http://127.0.0.1:${ports.apache}/app/callback`];
  idp = await startIdp({ IDP_REDIRECT_URIS: callbacks.join(',') });
  servers.lighttpd = await startLighttpdAuthorizer(ports.lighttpd, { KINDE_ISSUER_URL: idp.issuer });
  servers.lighttpd.origin = servers.lighttpd.baseUrl;
  servers.lighttpd.appBase = servers.lighttpd.baseUrl;
  servers.apache = await startApacheAuthorizer(ports.apache, { KINDE_ISSUER_URL: idp.issuer });
});

after(async () => {
  await servers.lighttpd?.stop();
  await servers.apache?.stop();
  await idp?.stop();
});


async function get(url, { jar, headers = {} } = {}) {
  const h = { ...headers };
  const cookie = jar?.headerFor(url);
  if (cookie) h.cookie = cookie;
  const res = await fetch(url, { headers: h, redirect: 'manual' });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body };
}

function variableHeaders(headers) {
  return [...headers.keys()].filter((k) => k.toLowerCase().startsWith('variable-'));
}

const sessions = new Map();  // `${server}/${login}` -> CookieJar
async function jarFor(name, login) {
  const key = `${name}/${login}`;
  if (!sessions.has(key)) {
    const s = servers[name];
    // A relative path: the app's /login under its prefix.
    const done = await signIn(s.appBase, login, { path: 'login' });
    assert.equal(done.status, 200, `sign-in as ${login} at ${s.appBase} ended with ${done.status}: ${done.hops.join('\n')}`);
    sessions.set(key, done.jar);
  }
  return sessions.get(key);
}

// Each protected folder: [server, folder].
const CASES = [
  ['lighttpd', 'private'],
  ['apache', 'private'],
  ['apache', 'members'],
];

for (const [name, folder] of CASES) {
  describe(`${name}: /${folder}/ protected`, () => {
    const url = (p) => `${servers[name].origin}/${folder}/${p}`;
    const loginUrl = (next) => `${servers[name].appBase}/login?next=${encodeURIComponent(next)}`;
    const diag = () => (servers[name].errorLog?.() ?? '').slice(-3000);

    test('a browser without a session is sent to sign in and back to the page', async () => {
      const r = await get(url('index.html?x=1'), { headers: { accept: HTML } });
      assert.equal(r.status, 302, diag());
      assert.equal(r.headers.get('location'), loginUrl(`/${folder}/index.html?x=1`));
      assert.doesNotMatch(r.body, /Members only/);
    });

    test('an API client without a session gets 401 JSON with WWW-Authenticate', async () => {
      for (const p of ['index.html', 'env.cgi']) {
        const r = await get(url(p), { headers: { accept: 'application/json' } });
        assert.equal(r.status, 401, `${p}: ${r.body}\n${diag()}`);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
        assert.deepEqual(JSON.parse(r.body), { detail: 'Not authenticated' });
      }
    });

    test('with a session: 200, and the script sees the user in its environment', async () => {
      const jar = await jarFor(name, 'plato');
      const page = await get(url('index.html'), { jar, headers: { accept: HTML } });
      assert.equal(page.status, 200, diag());
      assert.match(page.body, /Members only/);
      assert.match(page.headers.get('cache-control') ?? '', /no-store/);
      assert.deepEqual(variableHeaders(page.headers), [], 'the user\'s details stay out of the response headers');

      const r = await get(url('env.cgi'), { jar });
      assert.equal(r.status, 200, diag());
      assert.deepEqual(variableHeaders(r.headers), []);
      const env = JSON.parse(r.body);
      assert.match(env.KINDE_USER_ID, /^kp_[0-9a-f]{32}$/);
      assert.equal(env.REMOTE_USER, env.KINDE_USER_ID);
      assert.equal(env.KINDE_EMAIL, 'plato@example.com');
      assert.equal(env.KINDE_GIVEN_NAME, 'Plato');
      assert.equal(env.KINDE_PERMISSIONS, 'read:items');
      assert.equal(env.KINDE_ORG_CODE, 'org_123');
      assert.equal(env.KINDE_ORG_CODES, 'org_123');
    });

    test('forged headers named like our variables do not reach the script as ours', async () => {
      const jar = await jarFor(name, 'plato');
      const forged = {
        'Kinde-User-Id': 'kp_forged', 'Kinde-Permissions': 'write:items', 'Remote-User': 'admin',
        'Variable-KINDE_USER_ID': 'kp_forged', 'Variable-Remote-User': 'admin', 'Kinde-Require-Permission': '',
      };
      const r = await get(url('env.cgi'), { jar, headers: forged });
      assert.equal(r.status, 200, diag());
      const env = JSON.parse(r.body);
      assert.notEqual(env.KINDE_USER_ID, 'kp_forged');
      assert.equal(env.KINDE_PERMISSIONS, 'read:items');
      assert.notEqual(env.REMOTE_USER, 'admin');
      assert.equal(env.HTTP_KINDE_USER_ID, 'kp_forged', 'a client header only ever arrives as HTTP_*');
      // Without a session the same headers get nowhere.
      const anon = await get(url('env.cgi'), { headers: forged });
      assert.equal(anon.status, 401);
      assert.doesNotMatch(anon.body, /kp_forged/);
    });
  });
}

for (const name of ['lighttpd', 'apache']) {
  test(`${name}: a signed-in user without the subfolder's permission gets 403; one with it gets in`, async () => {
    const s = servers[name];
    const plato = await jarFor(name, 'plato');
    const denied = await get(`${s.origin}/private/staff/index.html`, { jar: plato, headers: { accept: HTML } });
    assert.equal(denied.status, 403, s.errorLog?.().slice(-3000));
    assert.match(denied.body, /write:items/);
    assert.match(denied.body, /plato@example\.com/);
    assert.doesNotMatch(denied.body, /Staff only/);
    const api = await get(`${s.origin}/private/staff/index.html`, { jar: plato, headers: { accept: 'application/json' } });
    assert.equal(api.status, 403);
    assert.match(JSON.parse(api.body).detail, /write:items/);

    const alice = await jarFor(name, 'alice');
    const ok = await get(`${s.origin}/private/staff/index.html`, { jar: alice, headers: { accept: HTML } });
    assert.equal(ok.status, 200);
    assert.match(ok.body, /Staff only/);
  });
}

for (const name of ['lighttpd', 'apache']) {
  describe(`${name}: PHP (php-cgi) in the protected folder`, () => {
    const url = (p) => `${servers[name].origin}/private/${p}`;
    const diag = () => (servers[name].errorLog?.() ?? '').slice(-3000);

    test('PHP reads the user from $_SERVER', async () => {
      const jar = await jarFor(name, 'plato');
      const r = await get(url('server.php'), { jar });
      assert.equal(r.status, 200, `${r.body.slice(0, 500)}\n${diag()}`);
      const { server } = JSON.parse(r.body);
      assert.match(server.KINDE_USER_ID, /^kp_[0-9a-f]{32}$/);
      assert.equal(server.REMOTE_USER, server.KINDE_USER_ID);
      assert.equal(server.KINDE_EMAIL, 'plato@example.com');
      assert.equal(server.KINDE_PERMISSIONS, 'read:items');
      assert.equal(server.KINDE_ORG_CODE, 'org_123');
      assert.equal(server.KINDE_ROLES, 'member');
      const page = await get(url('whoami.php'), { jar });
      assert.equal(page.status, 200, diag());
      assert.match(page.body, /Signed in as <b>plato@example\.com<\/b>, with the permissions: read:items/);
    });

    test('forged headers and query parameters cannot set the user\'s values', async () => {
      const jar = await jarFor(name, 'plato');
      const forged = { 'X-Kinde-Email': 'mallory@example.com', 'Kinde-Email': 'mallory@example.com',
        'Kinde-Permissions': 'write:items', 'Variable-KINDE_EMAIL': 'mallory@example.com', 'Remote-User': 'kp_admin' };
      const r = await get(url('server.php?KINDE_EMAIL=mallory%40example.com&KINDE_PERMISSIONS=write:items'),
        { jar, headers: forged });
      assert.equal(r.status, 200, diag());
      const { server, get: query } = JSON.parse(r.body);
      assert.equal(server.KINDE_EMAIL, 'plato@example.com');
      assert.equal(server.KINDE_PERMISSIONS, 'read:items');
      assert.equal(query.KINDE_EMAIL, 'mallory@example.com', 'a query parameter stays in $_GET');
      for (const [k, v] of Object.entries(server)) {
        if (k.startsWith('HTTP_') || k === 'QUERY_STRING' || k === 'REQUEST_URI') continue;
        assert.doesNotMatch(String(v), /mallory|kp_admin|write:items/, k);
      }
      const anon = await get(url('server.php'), { headers: forged });
      assert.equal(anon.status, 401);
      assert.doesNotMatch(anon.body, /mallory|"server"/);
    });

    test('no session: the sign-in redirect back to the script; a failed rule: the 403 page', async () => {
      const r = await get(url('server.php?x=1'), { headers: { accept: HTML } });
      assert.equal(r.status, 302, diag());
      assert.equal(r.headers.get('location'),
        `${servers[name].appBase}/login?next=${encodeURIComponent('/private/server.php?x=1')}`);
      const plato = await jarFor(name, 'plato');
      const denied = await get(url('staff/server.php'), { jar: plato, headers: { accept: HTML } });
      assert.equal(denied.status, 403, diag());
      assert.match(denied.body, /write:items/);
      assert.doesNotMatch(denied.body, /"server"/);
      const alice = await jarFor(name, 'alice');
      const ok = await get(url('staff/server.php'), { jar: alice });
      assert.equal(ok.status, 200, diag());
      assert.equal(JSON.parse(ok.body).server.KINDE_PERMISSIONS, 'read:items write:items');
    });
  });
}

test('the app itself is unchanged behind the protected-folder configs', async () => {
  for (const s of Object.values(servers)) {
    const health = await get(`${s.appBase}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok');
    const css = await get(`${s.origin}/styles.css`);
    assert.equal(css.status, 200);
  }
});

