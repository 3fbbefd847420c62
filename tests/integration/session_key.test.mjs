// The session key apart from the session data, through build/kinde.fcgi: created 0600 beside the
// config file (KINDE_SESSION_KEY_FILE), never inside the session directory; a key where older versions
// kept it (<session dir>/.secret) is moved there with nobody signed out; a key file made beforehand (as
// a package does) is used and never rewritten; an unsafe one is refused; --check-config says which key
// is used and changes nothing; without a config file a key file or secret must be named; session
// timeouts of 0 or less are refused at start-up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binary } from '../lib/cgi.mjs';
import { startFakeIdp } from '../lib/fakeidp.mjs';
import { makeApp, signIn, withSession } from '../fakeidp/harness.mjs';

const CLIENT_ID = 'key-client-2c3d';
const CLIENT_SECRET = 'SECRET-key-never-shown-4e5f6a7b8c9d';

let fake;
const apps = [];
const dirs = [];

function newApp(config = {}) {
  const a = makeApp({ issuer: fake.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, config });
  apps.push(a);
  return a;
}

function tempDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kinde-key-'));
  dirs.push(d);
  return d;
}

before(async () => { fake = await startFakeIdp({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }); });
after(async () => {
  for (const a of apps) a.cleanup();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await fake.stop();
});

const modeOf = (f) => fs.statSync(f).mode & 0o777;

// `kinde.fcgi --check-config` with env (no inherited variables) in cwd -> {status, stdout}.
function checkConfig(env, { exe = binary, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, ['--check-config'], { env: { PATH: process.env.PATH, ...env }, cwd });
    let stdout = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout }));
  });
}

const lineOf = (out, what) => out.split('\n').find((l) => l.includes(what)) ?? '';

test('the first start creates session.key (0600) beside the config, and nothing in the session directory', async () => {
  const a = newApp();
  const key = path.join(a.dir, 'session.key');
  const { res, session } = await signIn(a);
  assert.equal(res.status, 303, res.body + res.stderr);
  assert.ok(fs.existsSync(key));
  assert.equal(modeOf(key), 0o600);
  assert.ok(fs.statSync(key).size >= 32);
  assert.ok(!fs.existsSync(path.join(a.sessionDir, '.secret')), 'no key inside the session directory');
  assert.ok(!fs.readdirSync(a.dir).some((n) => n.startsWith('.tmp-')), 'no temp file left');
  assert.match((await withSession(a, session)).body, /Ada Lovelace/);
});

test('a key where older versions kept it is moved, and sessions sealed under it still open', async () => {
  const a = newApp();
  const key = path.join(a.dir, 'session.key');
  const legacy = path.join(a.sessionDir, '.secret');
  const { session } = await signIn(a);
  // The layout an older version leaves: the key inside the session directory, no key file.
  fs.renameSync(key, legacy);
  const material = fs.readFileSync(legacy);
  const home = await withSession(a, session);
  assert.match(home.body, /Ada Lovelace/, 'still signed in after the upgrade');
  assert.ok(home.stderr.includes(`moved from ${legacy}`), home.stderr);
  assert.ok(!fs.existsSync(legacy), 'the old copy is gone');
  assert.deepEqual(fs.readFileSync(key), material);
  assert.equal(modeOf(key), 0o600);
  // And the next process finds it in its new place.
  const again = await withSession(a, session);
  assert.match(again.body, /Ada Lovelace/);
  assert.doesNotMatch(again.stderr, /moved from/);
});

test('a key file made beforehand (as a package does) is used and never rewritten', async () => {
  const a = newApp();
  const key = path.join(a.dir, 'session.key');
  const made = 'pK3v8QxM2nR7sT1wY5zA9bC4dE6fG0hJ2kL8mN3pQ5rS7tU1vW4xY6zA8bC0dE2f\n';
  fs.writeFileSync(key, made, { mode: 0o600 });
  const before0 = fs.statSync(key);
  const { res, session } = await signIn(a);
  assert.equal(res.status, 303, res.body + res.stderr);
  assert.match((await withSession(a, session)).body, /Ada Lovelace/);
  assert.equal(fs.readFileSync(key, 'utf8'), made);
  assert.equal(fs.statSync(key).mtimeMs, before0.mtimeMs);
  assert.equal(fs.statSync(key).ino, before0.ino);
  // The key decides: another key file, and the session no longer opens.
  fs.writeFileSync(key, made.replace('pK3', 'zZ9'), { mode: 0o600 });
  assert.doesNotMatch((await withSession(a, session)).body, /Ada Lovelace/);
});

test('a key file readable by others is refused with a clear message, in the log and in --check-config', async () => {
  const a = newApp();
  const key = path.join(a.dir, 'session.key');
  fs.writeFileSync(key, 'x'.repeat(48), { mode: 0o644 });
  fs.chmodSync(key, 0o644);
  const res = await a.run({ path: '/' });
  assert.equal(res.status, 500);
  assert.match(res.body, /check-config/);
  assert.ok(res.stderr.includes(`${key} is readable or writable by group or others`), res.stderr);
  const check = await checkConfig({ KINDE_CONFIG: a.configPath });
  assert.notEqual(check.status, 0);
  assert.match(lineOf(check.stdout, 'session key'), /^FAIL +session key: .*readable or writable by group or others.*chmod 600/);
  assert.equal(fs.readFileSync(key, 'utf8'), 'x'.repeat(48), 'left as it was');
});

test('--check-config names the key it would use and creates or moves nothing', async () => {
  const a = newApp();
  const key = path.join(a.dir, 'session.key');
  const legacy = path.join(a.sessionDir, '.secret');
  let check = await checkConfig({ KINDE_CONFIG: a.configPath });
  assert.match(lineOf(check.stdout, 'session key'), new RegExp(`^ok +session key ${key}: does not exist yet`), check.stdout);
  assert.ok(!fs.existsSync(key), 'not created by --check-config (it may run as another user)');

  fs.mkdirSync(a.sessionDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(legacy, 'L'.repeat(48), { mode: 0o600 });
  check = await checkConfig({ KINDE_CONFIG: a.configPath });
  assert.match(lineOf(check.stdout, 'session key'), /found at .*\.secret; the app moves it to .*session\.key when it next starts/);
  assert.ok(fs.existsSync(legacy) && !fs.existsSync(key), 'nothing moved');

  await a.run({ path: '/' });  // a start moves it
  check = await checkConfig({ KINDE_CONFIG: a.configPath });
  assert.equal(check.status, 0, check.stdout);
  assert.equal(lineOf(check.stdout, 'session key'), `ok    session key ${key}`);
  assert.doesNotMatch(check.stdout, /LLLL/, 'the key itself is never printed');

  const withSecret = await checkConfig({ KINDE_CONFIG: a.configPath, KINDE_SESSION_SECRET: 'S'.repeat(40) });
  assert.equal(lineOf(withSecret.stdout, 'session key'), 'ok    session key KINDE_SESSION_SECRET');
});

test('without a config file the key file or the secret must be named', async () => {
  // A copy of the binary with no etc/kinde.conf near it, run from an empty folder: environment only.
  const dir = tempDir();
  const exe = path.join(dir, 'bin', 'kinde.fcgi');
  fs.mkdirSync(path.dirname(exe));
  fs.copyFileSync(binary, exe);
  fs.chmodSync(exe, 0o755);
  const env = {
    KINDE_ISSUER_URL: fake.issuer, KINDE_CLIENT_ID: CLIENT_ID, KINDE_CLIENT_SECRET: CLIENT_SECRET,
    KINDE_CALLBACK_URL: 'http://127.0.0.1/callback', KINDE_SESSION_DIR: path.join(dir, 'sessions'),
    KINDE_TEMPLATE_DIR: path.join(path.dirname(binary), '..', 'templates'),
  };
  const bare = await checkConfig(env, { exe, cwd: dir });
  assert.match(bare.stdout, /^ok +config \(environment only\)$/m);
  assert.match(lineOf(bare.stdout, 'session key'), /^FAIL +session key: there is no config file.*KINDE_SESSION_KEY_FILE.*KINDE_SESSION_SECRET/);
  assert.notEqual(bare.status, 0);

  const keyFile = path.join(dir, 'keys', 'session.key');
  fs.mkdirSync(path.dirname(keyFile), { mode: 0o700 });
  const named = await checkConfig({ ...env, KINDE_SESSION_KEY_FILE: keyFile }, { exe, cwd: dir });
  assert.match(lineOf(named.stdout, 'session key'), /^ok /, named.stdout);
  const secret = await checkConfig({ ...env, KINDE_SESSION_SECRET: 'S'.repeat(40) }, { exe, cwd: dir });
  assert.equal(lineOf(secret.stdout, 'session key'), 'ok    session key KINDE_SESSION_SECRET');
  assert.ok(!fs.readdirSync(dir).includes('session.key'), 'never a key in the working directory');
});

test('session timeouts of 0 or less are refused at start-up with a clear message', async () => {
  for (const [key, value] of [['KINDE_SESSION_IDLE_TIMEOUT', '0'], ['KINDE_SESSION_MAX_AGE', '0'], ['KINDE_SESSION_MAX_AGE', '-60']]) {
    const a = newApp({ [key]: value });
    const check = await checkConfig({ KINDE_CONFIG: a.configPath });
    assert.notEqual(check.status, 0);
    assert.ok(check.stdout.includes(`${key} must be a whole number of seconds greater than 0, got '${value}'`), check.stdout);
    const res = await a.run({ path: '/' });
    assert.equal(res.status, 500);
    assert.ok(res.stderr.includes(`${key} must be a whole number of seconds greater than 0`), res.stderr);
  }
});
