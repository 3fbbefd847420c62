// Provider calls from long-lived FastCGI processes run in a forked child (src/http/forked_transport.hpp):
// after real sign-ins, refreshes and sign-outs through lighttpd, no app process has libcurl (or the
// TLS libraries it pulls in) mapped, and every one of those flows still works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { startSite } from '../lib/site.mjs';
import { request, signIn, signOut } from '../lib/idp-client.mjs';

const CLIENT_ID = 'forked-calls-client';
const CLIENT_SECRET = 'forked-calls-secret-9f8e7d6c5b4a';
const ACCESS_TTL = 61;  // the app refreshes 60 s before expiry: a request 1+ s after sign-in refreshes

let site;
let server;
let base;

before(async () => {
  site = await startSite({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, accessTtl: ACCESS_TTL, name: 'forked' });
  ({ server, base } = site);
});

after(async () => {
  await site?.stop();
});

// The shared objects mapped into process pid, by file name.
function mappedLibraries(pid) {
  const names = new Set();
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const file = line.split(/\s+/)[5];
    if (file && file.includes('.so')) names.add(path.basename(file));
  }
  return [...names];
}

test('FastCGI processes that signed users in, refreshed and signed out never load libcurl', async () => {
  const jars = [];
  for (const user of ['alice', 'bob', 'carol', 'dave']) {
    const done = await signIn(base, user);
    assert.equal(done.status, 200, done.body?.slice(0, 300));
    jars.push(done.jar);
  }
  // Past the refresh margin: the next request of each session refreshes its tokens at the provider,
  // from whichever process lighttpd picks.
  await new Promise((r) => setTimeout(r, 1500));
  const refreshedBefore = (server.errorLog().match(/tokens refreshed/g) ?? []).length;
  for (const jar of jars) {
    const me = await request(`${base}/api/me`, jar);
    assert.equal(me.status, 200, me.body);
  }
  const refreshed = (server.errorLog().match(/tokens refreshed/g) ?? []).length - refreshedBefore;
  assert.ok(refreshed >= jars.length, `every session refreshed (${refreshed} refreshes logged)`);
  await signOut(base, jars[0]);
  const after = await request(`${base}/api/me`, jars[0]);
  assert.equal(after.status, 401, 'signed out');

  const pids = server.appPids();
  assert.ok(pids.length >= 2, `app processes (2 for the app, 2 for the authorizer): ${pids.join(', ')}`);
  for (const pid of pids) {
    const libs = mappedLibraries(pid);
    assert.ok(libs.some((l) => l.startsWith('libc.so')), `maps of ${pid} were read: ${libs.join(', ')}`);
    const network = libs.filter((l) => /^lib(curl|ssl|gnutls|nghttp2|ssh2|ldap|gssapi|krb5|p11-kit|psl)/.test(l));
    assert.deepEqual(network, [], `process ${pid} has the HTTP client's libraries mapped`);
  }
});
