// A private LemonLDAP::NG portal (Debian's 2.16) for `make interop`, as an OpenID provider: its own
// lemonldap-ng.ini and File configuration (the packaged lmConf-1.json, pointed at directories under
// build/interop/), llng-fastcgi-server in the foreground behind a private lighttpd on a loopback
// port, mapped as the packaged nginx config maps it. llng-fastcgi-server refuses to run as root: as root it is started with -u/-g (its own
// options) as www-data, which then owns the instance's directories; otherwise as the current user.
// The provider is told only what it must be: its portal URL and cookie domain, the OpenID Connect
// issuer switch and signing key, and our relying party (client id, secret, redirect and post-logout
// URIs, grant types, a short access-token lifetime for the refresh steps, RS256 for ID tokens
// because the manager's default for a new RP is HS512, which this app refuses by design, and no
// consent page, whose leftover breaks 2.16.1's first RP-initiated logout, see rpTold). Every other
// RP option is the manager's default for a new RP, read from the installed package.

import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { start, waitHttp } from './proc.mjs';

const PACKAGED_CONF = '/var/lib/lemonldap-ng/conf/lmConf-1.json';
const PORTAL_HTDOCS = '/usr/share/lemonldap-ng/portal/htdocs';
// Debian's shared JavaScript libraries (libjs-*), served at /javascript/ by the packaged portal configs.
const JAVASCRIPT_DIR = '/usr/share/javascript';
const RP = 'kindefcgi';

// The Demo backend's users: dwho / dwho is "Doctor Who", dwho@badwolf.org.
export const USER = { login: 'dwho', password: 'dwho', name: 'Doctor Who', email: 'dwho@badwolf.org' };

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
}

// The manager's defaults for a new relying party (options and exported claims), from the package.
function rpDefaults() {
  const perl = 'use JSON; use Lemonldap::NG::Manager::Build::Attributes; '
    + 'my $a = Lemonldap::NG::Manager::Build::Attributes::attributes(); my %d; '
    + 'for my $k (keys %$a) { next unless $k =~ /^oidcRPMetaData(Options|ExportedVars)/; '
    + '$d{$k} = $a->{$k}{default} if exists $a->{$k}{default}; } print encode_json(\\%d);';
  return JSON.parse(sh('perl', ['-e', perl]).toString());
}

// www-data's ids when we are root (the FastCGI server must not run as root), else null.
function serviceUser() {
  if (process.getuid() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('www-data:'));
  if (!line) throw new Error('running as root but there is no www-data user for llng-fastcgi-server');
  const [, , uid, gid] = line.split(':');
  return { name: 'www-data', uid: Number(uid), gid: Number(gid) };
}

function chownTree(dir, user) {
  chownSync(dir, user.uid, user.gid);
  for (const entry of readdirSync(dir)) {
    const p = path.join(dir, entry);
    if (statSync(p).isDirectory()) chownTree(p, user);
    else chownSync(p, user.uid, user.gid);
  }
}

function lighttpdConf({ port, run }) {
  return `# written by tests/interop/lemonldap.mjs: the LemonLDAP::NG portal at the site root, mapped as
# the packaged nginx config does (/javascript/ from ${JAVASCRIPT_DIR}, which the portal's pages load
# jQuery and Bootstrap from; every other path but the static files to /index.psgi/<path>, LLTYPE psgi)
server.modules = ( "mod_access", "mod_alias", "mod_rewrite", "mod_setenv", "mod_fastcgi", "mod_staticfile" )
server.document-root = "${PORTAL_HTDOCS}"
server.bind = "127.0.0.1"
server.port = ${port}
server.pid-file = "${run}/lighttpd.pid"
server.errorlog = "${run}/lighttpd-error.log"
server.upload-dirs = ( "${run}" )
mimetype.assign = ( ".css" => "text/css", ".js" => "text/javascript", ".png" => "image/png",
                    ".svg" => "image/svg+xml", ".ico" => "image/x-icon", ".jpg" => "image/jpeg",
                    ".woff" => "font/woff", ".woff2" => "font/woff2", ".ttf" => "font/ttf" )
alias.url = ( "/javascript/" => "${JAVASCRIPT_DIR}/" )
url.rewrite-if-not-file = ( "^/(?!javascript/)(.*)$" => "/index.psgi/$1" )
setenv.add-environment = ( "LLTYPE" => "psgi" )
fastcgi.server = ( ".psgi" => ((
  "socket" => "${run}/llng.sock",
  "check-local" => "disable",
)))
`;
}

// setUp({dir, port, app: {redirectUri, postLogoutUri}, client: {id, secret}, accessTokenSeconds,
// issuer}) -> provider handle. `issuer` unset keeps LemonLDAP's default (the portal URL, which ends
// in "/").
export async function setUp({ dir, port, app, client, accessTokenSeconds, issuer }) {
  rmSync(dir, { recursive: true, force: true });
  for (const d of ['conf', 'sessions/lock', 'psessions/lock', 'cache', 'notifications', 'captcha', 'run']) {
    mkdirSync(path.join(dir, d), { recursive: true });
  }
  const run = path.join(dir, 'run');
  const portal = `http://127.0.0.1:${port}/`;

  const key = path.join(dir, 'sign-key.pem');
  sh('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key]);
  const pub = sh('openssl', ['pkey', '-in', key, '-pubout']).toString();

  const conf = JSON.parse(readFileSync(PACKAGED_CONF, 'utf8'));
  const defaults = rpDefaults();
  const { oidcRPMetaDataExportedVars: exportedVars, ...optionDefaults } = defaults;
  const rpTold = {
    oidcRPMetaDataOptionsClientID: client.id,
    oidcRPMetaDataOptionsClientSecret: client.secret,
    oidcRPMetaDataOptionsRedirectUris: app.redirectUri,
    oidcRPMetaDataOptionsPostLogoutRedirectUris: app.postLogoutUri,
    oidcRPMetaDataOptionsIDTokenSignAlg: 'RS256',
    oidcRPMetaDataOptionsAccessTokenExpiration: accessTokenSeconds,
    oidcRPMetaDataOptionsRefreshToken: 1,
    oidcRPMetaDataOptionsAllowClientCredentialsGrant: 1,
    // A first-party app (as Kinde treats its own apps): no scope-consent page. Without this, 2.16.1
    // sends the first RP-initiated logout after a consent to the portal's login page instead of the
    // registered post_logout_redirect_uri: the consent form posts the portal's own `url`
    // (<portal>oauth2, Portal/Main/Display.pm AUTH_URL, templates/bootstrap/confirm.tpl), controlUrl
    // keeps it in the lemonldappdata cookie (Portal/Main/Process.pm lines 125 and 209), nothing
    // removes it once the browser is sent back to the app (Portal/Main/Run.pm lines 431-435 only when
    // it is the redirect target), and at logout deleteSession answers PE_REDIRECT to it (Process.pm
    // lines 329-332), which the end-session code returns before its post-logout redirect
    // (Portal/Issuer/OpenIDConnect.pm lines 1065-1078). See README, "Other providers".
    oidcRPMetaDataOptionsBypassConsent: 1,
  };
  const serviceTold = {
    portal,
    domain: '127.0.0.1',
    // Storage of this instance, not the system's.
    globalStorageOptions: { ...conf.globalStorageOptions, Directory: `${dir}/sessions`, LockDirectory: `${dir}/sessions/lock` },
    persistentStorageOptions: { ...conf.persistentStorageOptions, Directory: `${dir}/psessions`, LockDirectory: `${dir}/psessions/lock` },
    localSessionStorageOptions: { ...conf.localSessionStorageOptions, cache_root: `${dir}/cache` },
    notificationStorageOptions: { ...conf.notificationStorageOptions, dirName: `${dir}/notifications` },
    reloadUrls: {},
    // The packaged Register plugin needs e-mail modules Debian does not pull in.
    registerDB: 'Null',
    issuerDBOpenIDConnectActivation: 1,
    oidcServicePrivateKeySig: readFileSync(key, 'utf8'),
    oidcServicePublicKeySig: pub,
    oidcServiceKeyIdSig: 'interop-rs256',
    ...(issuer ? { oidcServiceMetaDataIssuer: issuer } : {}),
  };
  Object.assign(conf, serviceTold, {
    cfgNum: 1,
    oidcRPMetaDataOptions: { [RP]: { ...optionDefaults, ...rpTold } },
    oidcRPMetaDataExportedVars: { [RP]: exportedVars },
  });
  writeFileSync(path.join(dir, 'conf/lmConf-1.json'), JSON.stringify(conf, null, 1));
  const ini = path.join(dir, 'lemonldap-ng.ini');
  writeFileSync(ini, `; written by tests/interop/lemonldap.mjs
[all]
logLevel = ${process.env.INTEROP_LLNG_LOG_LEVEL || "info"}
checkTime = 1
[configuration]
type = File
dirName = ${dir}/conf
localStorage = Cache::FileCache
localStorageOptions = { 'namespace' => 'lemonldap-ng-config', 'default_expires_in' => 600, 'cache_root' => '${dir}/cache', 'cache_depth' => 3 }
[portal]
staticPrefix = /static
templateDir = ${PORTAL_HTDOCS.replace('/htdocs', '/templates')}
languages = en
[handler]
status = 0
`);
  const user = serviceUser();
  if (user) chownTree(dir, user);

  const env = {
    PATH: process.env.PATH,
    LANG: 'C',
    LLNG_DEFAULTCONFFILE: ini,
    LLNG_DEFAULTLOGGER: 'Lemonldap::NG::Common::Logger::Std',
  };
  const llngArgs = ['--foreground', '-n', '4', '-s', `${run}/llng.sock`, '-p', `${run}/llng.pid`];
  if (user) llngArgs.push('-u', user.name, '-g', user.name);
  const llng = start('llng-fastcgi-server', 'llng-fastcgi-server', llngArgs, { env, cwd: dir });
  const confFile = path.join(run, 'lighttpd.conf');
  writeFileSync(confFile, lighttpdConf({ port, run }));
  const web = start('lighttpd (LemonLDAP)', 'lighttpd', ['-D', '-f', confFile], { env: { PATH: process.env.PATH } });
  const stop = async () => { await web.stop(); await llng.stop(); };
  try {
    await waitHttp(`${portal}static/common/js/portal.js`, web);
    await waitHttp(`${portal}.well-known/openid-configuration`, llng, 60000, { status: 200 });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name: 'lemonldap',
    version: sh('dpkg-query', ['-W', '-f=${Version}', 'liblemonldap-ng-portal-perl']).toString(),
    issuer: issuer ?? portal,
    user: USER,
    proc: llng,
    web,
    settings: { service: { portal, domain: '127.0.0.1', issuer: issuer ?? '(default: the portal URL)' },
      rp: { ...rpTold, oidcRPMetaDataOptionsClientSecret: '***' } },
    stop,
  };
}
