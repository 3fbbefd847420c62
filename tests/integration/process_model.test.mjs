// kinde.fcgi as its own FastCGI server (what nginx needs; nginx spawns no FastCGI processes), without
// systemd: the socket at fd 3 with LISTEN_FDS/LISTEN_PID as kinde-fcgi.socket passes it
// (build/listen_exec), and the socket at fd 0 from Debian's spawn-fcgi. Requests arrive through
// libfcgi's client cgi-fcgi and through lighttpd proxying to the socket; a real sign-in runs against
// the local provider. Also: the --workers supervisor (a killed worker is replaced, SIGTERM stops
// all), and sockets that are not ours or not sockets.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { binary, projectRoot } from '../lib/cgi.mjs';
import {
  alive, childrenOf, fcgiRequest, fdTarget, startSocketActivated, startSpawnFcgi,
} from '../lib/fcgi-process.mjs';
import { signIn } from '../lib/idp-client.mjs';
import { startIdp } from '../lib/idp-process.mjs';
import { dotenv, freePort, startLighttpd } from '../lib/servers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// lighttpd at the site root, every URL but the stylesheet to an already running FastCGI socket
// (no bin-path: lighttpd starts nothing).
function proxyConfig(socket) {
  return `server.modules = ( "mod_fastcgi", "mod_staticfile" )
server.document-root = env.KFCGI_ROOT + "/htdocs"
server.bind          = "127.0.0.1"
server.port          = env.KFCGI_PORT
server.pid-file      = env.KFCGI_RUN + "/lighttpd.pid"
server.errorlog      = env.KFCGI_RUN + "/lighttpd-error.log"
mimetype.assign      = ( ".css" => "text/css; charset=utf-8" )
$HTTP["url"] !~ "^/styles\\.css$" {
  fastcgi.server = ( "/" => ((
    "socket"              => "${socket}",
    "check-local"         => "disable",
    "fix-root-scriptname" => "enable",
  )))
}
`;
}

async function waitFor(what, fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function withOutput(proc, fn) {
  return async () => {
    try {
      await fn();
    } catch (err) {
      err.message += `\n--- kinde.fcgi output ---\n${proc().output().slice(-4000)}`;
      throw err;
    }
  };
}

const dir = mkdtempSync(path.join(tmpdir(), 'kfcgi-process-'));
const port = await freePort();
const origin = `http://127.0.0.1:${port}`;
const config = path.join(dir, 'kinde.conf');
let idp;

before(async () => {
  idp = await startIdp({ IDP_REDIRECT_URIS: `${origin}/callback`, IDP_POST_LOGOUT_REDIRECT_URIS: `${origin}/` });
  writeFileSync(config, dotenv({
    KINDE_ISSUER_URL: idp.issuer,
    KINDE_CLIENT_ID: 'kinde-fcgi-test',
    KINDE_CLIENT_SECRET: 'kinde-fcgi-test-secret',
    KINDE_CALLBACK_URL: `${origin}/callback`,
    KINDE_SESSION_DIR: path.join(dir, 'sessions'),
    KINDE_TEMPLATE_DIR: path.join(projectRoot, 'templates'),
    KINDE_LOG_LEVEL: 'info',
  }), { mode: 0o600 });
});

after(async () => {
  await idp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('systemd socket activation (socket at fd 3, LISTEN_FDS=1, LISTEN_PID), --workers 2', () => {
  const socket = path.join(dir, 'activated.sock');
  let app;
  let web;

  before(async () => {
    app = await startSocketActivated({ socket, config, args: ['--workers', '2'] });
    web = await startLighttpd({ configText: proxyConfig(socket), port });
  });
  after(async () => {
    await web?.stop();
    await app?.stop();
  });

  test('libfcgi\'s own client (cgi-fcgi) gets /healthz and the home page from the inherited socket',
    withOutput(() => app, async () => {
      const health = await fcgiRequest(socket, { path: '/healthz' });
      assert.equal(health.status, 200);
      assert.equal(health.body, 'ok');
      const home = await fcgiRequest(socket, { path: '/' });
      assert.equal(home.status, 200);
      assert.match(home.headers['content-type'], /^text\/html/);
      assert.match(home.body, /Sign in/);
    }));

  test('one supervisor, two workers, each accepting on the socket systemd passed, moved to fd 0',
    withOutput(() => app, async () => {
      const workers = await waitFor('two workers', () => {
        const c = childrenOf(app.pid);
        return c.length === 2 ? c : null;
      });
      const sock = fdTarget(app.pid, 0);
      assert.match(sock ?? '', /^socket:\[\d+\]$/, 'the supervisor holds the socket at fd 0');
      for (const w of workers) {
        assert.equal(fdTarget(w, 0), sock, `worker ${w} accepts on the same socket at fd 0`);
        // fd 3 was closed after the move (the number may since hold some other file, not the socket).
        assert.notEqual(fdTarget(w, 3), sock, `worker ${w} still holds the socket at fd 3 too`);
      }
      const env = (pid) => spawnSync('cat', [`/proc/${pid}/environ`], { encoding: 'utf8' }).stdout;
      assert.match(env(app.pid), /LISTEN_FDS=1/, 'the supervisor was started with LISTEN_FDS');
    }));

  test('a browser signs in through lighttpd; the session works on every later request, whichever worker takes it',
    withOutput(() => app, async () => {
      const done = await signIn(origin, 'alice');
      assert.equal(done.status, 200, done.hops.join('\n'));
      assert.match(done.body, /Sign out/);
      const cookie = done.cookieHeader;
      assert.match(cookie, /kinde_fcgi_session=/);
      const answers = await Promise.all(Array.from({ length: 16 }, () =>
        fetch(`${origin}/api/me`, { headers: { cookie } }).then(async (r) => ({ status: r.status, body: await r.json() }))));
      for (const a of answers) {
        assert.equal(a.status, 200);
        assert.equal(a.body.user.email, 'alice@example.com');
      }
      const anonymous = await fetch(`${origin}/api/me`);
      assert.equal(anonymous.status, 401);
    }));

  test('a worker that dies is replaced and the socket keeps answering', withOutput(() => app, async () => {
    const before2 = await waitFor('two workers', () => {
      const c = childrenOf(app.pid);
      return c.length === 2 ? c : null;
    });
    process.kill(before2[0], 'SIGKILL');
    const after2 = await waitFor('a replacement worker', () => {
      const c = childrenOf(app.pid);
      return c.length === 2 && !c.includes(before2[0]) ? c : null;
    }, 8000);
    assert.ok(after2.includes(before2[1]), 'the other worker kept running');
    assert.match(app.output(), /worker \d+ was killed by signal Killed; starting another/);
    for (let i = 0; i < 4; i += 1) {
      const r = await fcgiRequest(socket, { path: '/healthz' });
      assert.equal(r.status, 200);
    }
  }));

  test('SIGTERM to the supervisor stops every worker; it exits 0', withOutput(() => app, async () => {
    const workers = childrenOf(app.pid);
    assert.equal(workers.length, 2);
    process.kill(app.pid, 'SIGTERM');
    const status = await app.wait();
    assert.deepEqual(status, { code: 0, signal: null });
    await waitFor('workers to exit', () => workers.every((w) => !alive(w)));
  }));
});

describe('sockets that are not for us', () => {
  test('LISTEN_PID naming another process: the socket is left alone (--workers then has none)', async () => {
    const socket = path.join(dir, 'other.sock');
    const app = await startSocketActivated({ socket, config, args: ['--workers', '2'], listenPid: 1, wait: false });
    const status = await Promise.race([app.wait(), sleep(10000).then(() => 'still running')]);
    await app.stop();
    assert.deepEqual(status, { code: 2, signal: null }, app.output());
    assert.match(app.output(), /--workers needs a listening socket on fd 0/);
  });

  test('LISTEN_FDS for a descriptor that is not a socket: a clear error, exit 1', () => {
    // sh keeps its pid across exec, so $$ is the binary's pid; fd 3 is a plain file.
    const r = spawnSync('sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "${binary}" 3<"${config}"`],
      { env: { PATH: process.env.PATH, KINDE_CONFIG: config }, encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /fd 3\) is not a listening stream socket/);
  });

  test('--workers without a number, or with a check mode, is refused', () => {
    for (const args of [['--workers'], ['--workers', '0'], ['--workers', 'x'], ['--workers', '2', '--check-config']]) {
      const r = spawnSync(binary, args, { env: { PATH: process.env.PATH, KINDE_CONFIG: config }, encoding: 'utf8',
        timeout: 10000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});

describe('spawn-fcgi (socket at fd 0)', () => {
  test('spawn-fcgi -n with --workers 2: answers through lighttpd and cgi-fcgi; SIGTERM ends all', async () => {
    const socket = path.join(dir, 'spawn-n.sock');
    const app = await startSpawnFcgi({ socket, config, args: ['--workers', '2'] });
    let web;
    try {
      const workers = await waitFor('two workers', () => {
        const c = childrenOf(app.pid);
        return c.length === 2 ? c : null;
      });
      web = await startLighttpd({ configText: proxyConfig(socket), port });
      const home = await fetch(`${origin}/`);
      assert.equal(home.status, 200);
      assert.match(await home.text(), /Sign in/);
      const login = await fetch(`${origin}/login`, { redirect: 'manual' });
      assert.equal(login.status, 302);
      assert.ok(login.headers.get('location').startsWith(`${idp.issuer}/`), login.headers.get('location'));
      const health = await fcgiRequest(socket, { path: '/healthz' });
      assert.equal(health.body, 'ok');
      await web.stop();
      web = undefined;
      process.kill(app.pid, 'SIGTERM');
      assert.deepEqual(await app.wait(), { code: 0, signal: null });
      await waitFor('workers to exit', () => workers.every((w) => !alive(w)));
    } finally {
      await web?.stop();
      await app.stop();
    }
  });

  test('spawn-fcgi -F 2 (two forked processes, no supervisor): both serve, SIGTERM ends each', async () => {
    const socket = path.join(dir, 'spawn-f.sock');
    const app = await startSpawnFcgi({ socket, config, children: 2 });
    try {
      const pids = app.pids();
      assert.equal(pids.length, 2);
      for (const pid of pids) assert.match(fdTarget(pid, 0) ?? '', /^socket:/, `process ${pid} has the socket at fd 0`);
      const answers = await Promise.all(Array.from({ length: 6 }, () => fcgiRequest(socket, { path: '/healthz' })));
      for (const a of answers) assert.equal(a.body, 'ok');
      const home = await fcgiRequest(socket, { path: '/' });
      assert.match(home.body, /Sign in/);
      for (const pid of pids) process.kill(pid, 'SIGTERM');
      await waitFor('both processes to exit', () => pids.every((p) => !alive(p)));
    } finally {
      await app.stop();
    }
  });
});
