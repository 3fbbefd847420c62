// The manual page docs/kinde.fcgi.8 (installed by make install and the Debian package) against the
// sources: every configuration key the config loader reads (aliases included), every variable the
// authorizer reads or sets, and every option of the binary's own usage text must be on the page, and
// man(1) must render it without a warning.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { binary, projectRoot } from '../lib/cgi.mjs';

const page = path.join(projectRoot, 'docs/kinde.fcgi.8');
// The words of the page with roff's escaped hyphens turned back into hyphens.
const text = readFileSync(page, 'utf8').replace(/\\-/g, '-');
const words = new Set(text.split(/[^A-Za-z0-9_-]+/));

test('every configuration key and alias of src/config/config.cpp is on the page', () => {
  const source = readFileSync(path.join(projectRoot, 'src/config/config.cpp'), 'utf8');
  // get({"KEY", "ALIAS", ...}) and get({name}) loops over {"KEY", &field} pairs.
  const keys = new Set([...source.matchAll(/"((?:KINDE|SESSION|LOGOUT)_[A-Z0-9_]+)"/g)].map((m) => m[1]));
  assert.ok(keys.size >= 20, `found only ${[...keys]} in config.cpp`);
  const missing = [...keys].filter((k) => !words.has(k));
  assert.deepEqual(missing, [], `keys missing from ${page}`);
});

test('the authorizer\'s rule and result variables are on the page', () => {
  const source = readFileSync(path.join(projectRoot, 'src/app/authorizer.cpp'), 'utf8');
  const names = new Set([...source.matchAll(/"(KINDE_[A-Z_]+|REMOTE_USER)"/g)].map((m) => m[1]));
  assert.ok(names.has('KINDE_REQUIRE_PERMISSION') && names.has('KINDE_EMAIL'), [...names].join(' '));
  const missing = [...names].filter((k) => !words.has(k));
  assert.deepEqual(missing, [], `authorizer variables missing from ${page}`);
});

test('every option of kinde.fcgi --help is on the page', () => {
  const r = spawnSync(binary, ['--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  const options = new Set([...r.stdout.matchAll(/(?<![\w-])(--?[a-z][a-z-]*)/g)].map((m) => m[1]));
  assert.ok(options.has('--workers') && options.has('--gc-sessions'), [...options].join(' '));
  const missing = [...options].filter((o) => !words.has(o));
  assert.deepEqual(missing, [], `options missing from ${page}`);
});

test('man renders the page without a warning', () => {
  const r = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', '-Tutf8', '-Z', page],
    { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8', MANWIDTH: '80' } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'groff warnings');
});
