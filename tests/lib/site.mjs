// A whole site for integration tests: the local provider (tests/idp) and lighttpd serving the app,
// registered with each other (redirect and post-logout URIs on the site's port).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startIdp } from './idp-process.mjs';
import { freePort, startLighttpd } from './servers.mjs';

// startSite({clientId, clientSecret, accessTtl, logLevel, procs, name}) -> {idp, server, base, stop()}.
// The provider's signing key lives in a temporary directory that stop() removes with everything else.
export async function startSite({ clientId, clientSecret, accessTtl, logLevel = 'debug', procs = 2, name = 'site' }) {
  const work = mkdtempSync(path.join(tmpdir(), `kfcgi-${name}-`));
  const site = { base: undefined, idp: undefined, server: undefined };
  site.stop = async () => {
    await site.server?.stop();
    await site.idp?.stop();
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    site.base = `http://127.0.0.1:${port}`;
    site.idp = await startIdp({
      IDP_KEY_FILE: path.join(work, 'key.json'), IDP_CLIENT_ID: clientId, IDP_CLIENT_SECRET: clientSecret,
      IDP_ACCESS_TTL: String(accessTtl), IDP_REDIRECT_URIS: `${site.base}/callback`,
      IDP_POST_LOGOUT_REDIRECT_URIS: `${site.base}/`,
    });
    site.server = await startLighttpd({
      port, procs,
      appEnv: { KINDE_ISSUER_URL: site.idp.issuer, KINDE_CLIENT_ID: clientId, KINDE_CLIENT_SECRET: clientSecret, KINDE_LOG_LEVEL: logLevel },
    });
    return site;
  } catch (err) {
    await site.stop();
    throw err;
  }
}
