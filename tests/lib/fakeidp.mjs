// Start and stop the fault-injecting fake provider (tests/fakeidp/server.mjs) inside the test process.
import { FakeIdp } from '../fakeidp/server.mjs';

// startFakeIdp({clientId, clientSecret, user, port}) -> the running FakeIdp: {issuer, port, setMode(obj),
// resetMode(), rotateKey(), grants, authorizations, requests, issued, grantsOf(type), countRequests(path),
// stop()}. port 0 (default) picks a free port. See tests/fakeidp/server.mjs for the modes.
export async function startFakeIdp({ port = 0, ...options } = {}) {
  const fake = new FakeIdp(options);
  await fake.start(port);
  return fake;
}
