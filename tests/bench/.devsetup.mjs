import path from 'node:path';
import { writeFileSync } from 'node:fs';
const build = path.resolve(process.argv[2]);
process.env.KINDE_FCGI_BIN = path.join(build, 'kinde.fcgi');
process.env.KFCGI_KEEP_RUN = '1';
const { freePort } = await import('../lib/servers.mjs');
const { startIdp } = await import('../lib/idp-process.mjs');
const { signInToApp, startBenchLighttpd } = await import('./common.mjs');
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const idp = await startIdp({ IDP_REDIRECT_URIS: `${base}/callback`, IDP_POST_LOGOUT_REDIRECT_URIS: `${base}/`, IDP_ACCESS_TTL: '86400', IDP_ID_TTL: '86400' });
const server = await startBenchLighttpd({ buildDir: build, port, procs: 1, appEnv: { KINDE_ISSUER_URL: idp.issuer, KINDE_AUDIENCE: `${idp.issuer}/api`, KINDE_LOG_LEVEL: 'info' } });
const cookie = `kinde_fcgi_session=${await signInToApp(base, 'alice', 'Alice Liddell')}`;
const env = { PATH: '/usr/bin:/bin', GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', SERVER_NAME: '127.0.0.1',
  SERVER_PORT: String(port), REMOTE_ADDR: '127.0.0.1', REQUEST_METHOD: 'GET', SCRIPT_NAME: '', PATH_INFO: '/',
  QUERY_STRING: '', REQUEST_URI: '/', HTTP_HOST: `127.0.0.1:${port}`, HTTP_COOKIE: cookie, KINDE_CONFIG: path.join(server.runDir, 'kinde.conf') };
writeFileSync('/tmp/i15/env-app', Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
writeFileSync('/tmp/i15/env-hello', 'PATH=/usr/bin:/bin\nGATEWAY_INTERFACE=CGI/1.1\nREQUEST_METHOD=GET\nPATH_INFO=/\n');
console.log(server.runDir);
await server.stop(); await idp.stop();
