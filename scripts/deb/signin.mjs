#!/usr/bin/env node
// For make deb-test: signs in at the app under BASE as LOGIN with the local provider's form (the
// scripted client of tests/lib/idp-client.mjs) and prints one JSON line:
//   {"status": <final page status>, "signedIn": <the page shows Sign out>, "cookie": "<Cookie header>"}
import { signIn } from '../../tests/lib/idp-client.mjs';

const [base, login] = process.argv.slice(2);
if (!base || !login) {
  console.error('usage: signin.mjs BASE_URL LOGIN');
  process.exit(2);
}
const done = await signIn(base, login, { path: 'login' });
console.log(JSON.stringify({ status: done.status, signedIn: /Sign out/.test(done.body), cookie: done.cookieHeader }));
