#!/usr/bin/env bash
# make deb-test: the Debian package on this very system. NEEDS ROOT AND CHANGES THE SYSTEM: it
# installs, upgrades, removes and purges kinde-fcgi with dpkg/apt, enables its Apache snippet and
# starts the system's Apache (Debian's /etc/apache2 configuration, on a free loopback port instead
# of ports.conf; no systemd here, so apache2 -k start) and stops it at the end.
#
#  1. builds the package and a rebuild with a higher version (scripts/deb/build.sh: lintian must
#     report no error or warning without a stated reason);
#  2. installs it with apt; checks files, owners, modes, the session key, the units
#     (systemd-analyze verify) and that postinst may run again without changing anything;
#  3. configures it for the local test provider (tests/idp) as an administrator would, enables
#     the snippet, starts Apache, signs in through it, runs the cron job, and serves the same session
#     from the installed systemd units' command line on a socket passed like systemd's;
#  4. upgrades to the rebuild: the configuration, the key and every session stay, the same cookie
#     still works on the new program;
#  5. removes it (configuration, key and sessions kept; the snippet disabled) and purges it
#     (nothing left behind).
# Prints one PASS/FAIL line per check and a summary; the list is also kept in build/deb-test.txt.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
PKG=kinde-fcgi
BIN=/usr/lib/$PKG/kinde.fcgi
CONF=/etc/$PKG/kinde.conf
KEY=/etc/$PKG/session.key
# The nginx snippets: the app, and the pieces for auth_request.
NGINX_SNIPPETS="/etc/nginx/snippets/$PKG.conf /etc/nginx/snippets/$PKG-auth.conf /etc/nginx/snippets/$PKG-protect.conf
  /etc/nginx/snippets/$PKG-php.conf /etc/nginx/snippets/$PKG-proxy.conf"
SESSIONS=/var/lib/$PKG/sessions

die() { echo "deb-test: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root: it installs and removes a package and starts the system's Apache"
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'ok \(installed\|config-files\)'; then
  die "$PKG is already on this system; purge it first (apt-get purge $PKG) if it may go"
fi
set +u; . /etc/apache2/envvars; set -u
if [ -s "$APACHE_PID_FILE" ] && kill -0 "$(cat "$APACHE_PID_FILE")" 2>/dev/null; then
  die "the system's Apache is running (pid $(cat "$APACHE_PID_FILE")); the test starts and stops it itself"
fi

# What this test needs beyond make deps: lintian, and util-linux's setpriv (essential anyway).
need=()
for p in lintian apache2 libapache2-mod-fcgid libfcgi-bin curl; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "deb-test: installing ${need[*]}"
  env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get -o DPkg::Lock::Timeout=900 install -y -q \
    --no-install-recommends "${need[@]}" || die "could not install ${need[*]}"
fi

TMP=$(mktemp -d /tmp/kfcgi-deb-test.XXXXXX)
chmod 0755 "$TMP"
RESULTS="$ROOT/$BUILD/deb-test.txt"
: > "$RESULTS"
pass=0
fail=0
# check NAME COMMAND...: runs the command quietly (output kept in $TMP/last.log), records PASS/FAIL.
check() {
  local name=$1
  shift
  if "$@" > "$TMP/last.log" 2>&1; then
    pass=$((pass + 1))
    echo "PASS  $name" | tee -a "$RESULTS"
  else
    fail=$((fail + 1))
    echo "FAIL  $name" | tee -a "$RESULTS"
    sed 's/^/      | /' "$TMP/last.log" | tail -n 15
  fi
}
# stat_is PATH OWNER:GROUP MODE
stat_is() { [ "$(stat -c '%U:%G %a' "$1")" = "$2 $3" ] || { stat -c '%n is %U:%G %a' "$1"; return 1; }; }
absent() { for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then echo "still there: $p"; return 1; fi; done; }
present() { for p in "$@"; do [ -e "$p" ] || { echo "missing: $p"; return 1; }; done; }
# Every path on this system whose name mentions kinde, but our own checkout and temporary files.
kinde_paths() {
  # Not man-db's cache of formatted pages (/var/cache/man, man-db's own to expire), nor logs.
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /work -o -path /tmp -o -path "$ROOT" \
    -o -path /var/cache/apt -o -path /var/cache/man -o -path /var/lib/dpkg -o -path /var/log -o -path /root \) -prune \
    -o -iname '*kinde*' -print 2>/dev/null | sort
}

APACHE_PID=""
IDP_PID=""
APP_PID=""
PORT=""
apache() { apache2 -d /etc/apache2 -f "$TMP/apache2.conf" "$@"; }
cleanup() {
  [ -n "$APP_PID" ] && kill -TERM "$APP_PID" 2>/dev/null
  if [ -n "$APACHE_PID" ]; then
    apache -k stop 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$APACHE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$APACHE_PID" 2>/dev/null
  fi
  [ -n "$IDP_PID" ] && kill -TERM "$IDP_PID" 2>/dev/null
  rm -rf /run/kinde-fcgi-test
  [ -n "${KFCGI_KEEP_RUN:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

# FastCGI request through cgi-fcgi as www-data: fcgi SOCKET PATH [COOKIE]
fcgi() {
  runuser -u www-data -- env -i REQUEST_METHOD=GET SCRIPT_NAME=/kinde PATH_INFO="$2" QUERY_STRING= \
    REQUEST_URI="/kinde$2" SERVER_NAME=127.0.0.1 SERVER_PORT="$PORT" SERVER_PROTOCOL=HTTP/1.1 \
    GATEWAY_INTERFACE=CGI/1.1 REMOTE_ADDR=127.0.0.1 HTTP_COOKIE="${3:-}" cgi-fcgi -bind -connect "$1"
}
# A signed-in call through Apache: me COOKIE -> prints the /api/me body, fails unless 200 for alice.
me() {
  local body
  body=$(curl -sS -w '\n%{http_code}' -H "Cookie: $1" "$BASE/api/me") || return 1
  echo "$body"
  [ "$(tail -n 1 <<<"$body")" = 200 ] && grep -q '"email":"alice@example.com"' <<<"$body"
}
graceful() {  # what the maintainer scripts' reload does on a system whose invoke-rc.d may act
  apache -k graceful && sleep 1 && curl -sf "$BASE/healthz" >/dev/null
}

echo "== 1. build"
paths_before=$(kinde_paths)
v1=$(dpkg-parsechangelog -l scripts/deb/changelog -S Version)
v2="$v1+rebuild1"
check "make deb: package $v1 built, lintian: no error or warning without a stated reason" \
  env BUILD="$BUILD" bash scripts/deb/build.sh
cat "$TMP/last.log" | grep -E '^  [EWIO]: ' | tee "$TMP/lintian.txt"
check "make deb DEB_VERSION=$v2: the rebuild for the upgrade, lintian clean too" \
  env BUILD="$BUILD" DEB_VERSION="$v2" bash scripts/deb/build.sh
arch=$(dpkg --print-architecture)
DEB1="$ROOT/$BUILD/${PKG}_${v1}_${arch}.deb"
DEB2="$ROOT/$BUILD/${PKG}_${v2}_${arch}.deb"
[ -f "$DEB1" ] && [ -f "$DEB2" ] || { echo "FAIL  packages missing"; exit 1; }

echo "== 2. install $v1"
apt_install() {
  env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get -o DPkg::Lock::Timeout=900 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install -y -q --no-install-recommends "$1"
}
check "apt-get install ./$(basename "$DEB1")" apt_install "$DEB1"
check "the program: $BIN (root, 0755), stripped, runs" \
  sh -c "[ \"\$(stat -c '%U %a' $BIN)\" = 'root 755' ] && file $BIN | grep -q stripped && $BIN --help"
check "$CONF: conffile, root:www-data 0640" \
  sh -c "dpkg-query -W -f='\${Conffiles}\n' $PKG | grep -q ' $CONF ' && [ \"\$(stat -c '%U:%G %a' $CONF)\" = 'root:www-data 640' ]"
check "$KEY: www-data 0600, 64 base64 characters of 48 random bytes" \
  sh -c "[ \"\$(stat -c '%U:%G %a' $KEY)\" = 'www-data:www-data 600' ] && [ \"\$(base64 -d $KEY | wc -c)\" = 48 ]"
check "$SESSIONS: www-data 0700" stat_is "$SESSIONS" www-data:www-data 700
check "templates and static files under /usr/share/$PKG" \
  present "/usr/share/$PKG/templates/index.mustache" "/usr/share/$PKG/htdocs/styles.css"
check "Apache snippet, nginx snippet, cron.d entry and units installed" \
  present /etc/apache2/conf-available/$PKG.conf $NGINX_SNIPPETS /etc/cron.d/$PKG \
    /lib/systemd/system/$PKG.socket /lib/systemd/system/$PKG.service
check "systemd-analyze verify accepts the units" \
  sh -c "systemd-analyze verify /lib/systemd/system/$PKG.socket /lib/systemd/system/$PKG.service 2>&1 | tee /dev/stderr | grep -v 'Failed to .* bus\|/run/systemd\|not booted' | grep -q . && exit 1 || exit 0"
check "man 8 kinde.fcgi" sh -c "man -w 8 kinde.fcgi | grep -q /usr/share/man/man8/kinde.fcgi.8.gz"
check "the Apache snippet is not enabled on installation" sh -c "! a2query -q -c $PKG"
key_sum=$(sha256sum "$KEY")
check "postinst run again: exit 0, key and directories unchanged (idempotent)" \
  sh -c "/var/lib/dpkg/info/$PKG.postinst configure $v1 && [ \"\$(sha256sum $KEY)\" = '$key_sum' ] && \
    [ \"\$(stat -c '%U:%G %a' $SESSIONS $KEY)\" = 'www-data:www-data 700
www-data:www-data 600' ]"

echo "== 3. configure, Apache, sign in"
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
BASE="http://127.0.0.1:$PORT/kinde"
CLIENT_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
IDP_PORT=0 IDP_CLIENT_ID=kinde-fcgi-deb IDP_CLIENT_SECRET="$CLIENT_SECRET" IDP_REDIRECT_URIS="$BASE/callback" \
  IDP_POST_LOGOUT_REDIRECT_URIS="$BASE/" IDP_KEY_FILE="$TMP/idp-key.json" \
  node tests/idp/server.mjs > "$TMP/idp.out" 2> "$TMP/idp.log" &
IDP_PID=$!
for _ in $(seq 1 200); do grep -q '"ready":true' "$TMP/idp.out" 2>/dev/null && break; sleep 0.1; done
ISSUER=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$TMP/idp.out")
[ -n "$ISSUER" ] || { cat "$TMP/idp.log"; die "the test provider did not start"; }
# As an administrator edits it: the keys from the provider, the callback under /kinde.
configure() {
  sed -i -e "s|^KINDE_ISSUER_URL=.*|KINDE_ISSUER_URL=$ISSUER|" -e "s|^KINDE_CLIENT_ID=.*|KINDE_CLIENT_ID=kinde-fcgi-deb|" \
    -e "s|^KINDE_CLIENT_SECRET=.*|KINDE_CLIENT_SECRET=$CLIENT_SECRET|" -e "s|^KINDE_CALLBACK_URL=.*|KINDE_CALLBACK_URL=$BASE/callback|" "$CONF"
  grep -q "^KINDE_CALLBACK_URL=$BASE/callback" "$CONF"
}
check "kinde.conf edited for the test provider ($ISSUER)" configure
check "kinde.fcgi --check-config as www-data: ok" \
  runuser -u www-data -- env KINDE_CONFIG="$CONF" "$BIN" --check-config
check "a2enconf $PKG (mod_fcgid enabled by its package)" sh -c "a2query -q -m fcgid && a2enconf -q $PKG"

# Debian's apache2.conf, but Listen on our port instead of ports.conf, and a site on it.
sed "s|^Include ports.conf|Listen 127.0.0.1:$PORT|" /etc/apache2/apache2.conf > "$TMP/apache2.conf"
cat >> "$TMP/apache2.conf" <<EOF
<VirtualHost 127.0.0.1:$PORT>
  ServerName 127.0.0.1
  DocumentRoot /var/www/html
</VirtualHost>
EOF
mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
rm -f /var/lib/apache2/fcgid/sock/* 2>/dev/null  # stale sockets of an earlier run break mod_fcgid
start_apache() {
  apache -k start || return 1
  for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done
  APACHE_PID=$(cat "$APACHE_PID_FILE")
  [ "$(curl -sS "$BASE/healthz")" = ok ]
}
check "the system's Apache starts with the snippet enabled, /kinde/healthz answers" start_apache
check "GET /kinde/: the signed-out page, its links under /kinde, no-store" \
  sh -c "curl -sS -D - '$BASE/' | tee /dev/stderr | grep -q 'href=\"&#x2F;kinde&#x2F;login\"\|href=\"/kinde/login\"' && curl -sSI '$BASE/' | grep -qi '^cache-control: no-store'"
signin() { node scripts/deb/signin.mjs "$BASE" alice > "$TMP/signin.json" && cat "$TMP/signin.json" && grep -q '"signedIn":true' "$TMP/signin.json"; }
check "sign in as alice through Apache (local provider's form)" signin
COOKIE=$(sed -n 's/.*"cookie":"\([^"]*\)".*/\1/p' "$TMP/signin.json")
check "/kinde/api/me with the session cookie: alice" me "$COOKIE"
check "the session is a file in $SESSIONS owned by www-data" \
  sh -c "find $SESSIONS -mindepth 2 -type f -user www-data | grep -q ."
# users_of PATTERN: the users of the processes whose command line starts with PATTERN (printed);
# fails when there is none. Other kinde.fcgi processes on the machine (other tests) do not count.
users_of() {
  local pids
  pids=$(pgrep -d, -f "^$1") || { echo "no process matches ^$1"; return 1; }
  ps -o user=,pid=,args= -p "$pids"
  ps -o user= -p "$pids" | sort -u > "$TMP/users"
}
fcgid_as_www_data() { users_of "$BIN" && [ "$(cat "$TMP/users")" = www-data ]; }
check "the app's processes under mod_fcgid run as www-data" fcgid_as_www_data
cron_job() {
  local line
  line=$(grep -E '^[0-9*]' /etc/cron.d/$PKG | head -n 1)
  [ "$(awk '{print $6}' <<<"$line")" = www-data ] || return 1
  runuser -u www-data -- env KINDE_CONFIG="$CONF" sh -c "$(cut -f3- <<<"$line")"
}
cron_then_me() { cron_job && me "$COOKIE"; }
check "the cron.d job runs as www-data (exit 0), and the live session survives it" cron_then_me
# kinde-fcgi.service's own command line, user and environment, on a socket passed as systemd would
# (ListenStream, SocketUser, SocketMode of kinde-fcgi.socket).
socket_activated() {
  local exec user sock mode owner
  exec=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/$PKG.service | sed 's/\${WORKERS}/2/')
  user=$(sed -n 's/^User=//p' /lib/systemd/system/$PKG.service)
  sock=$(sed -n 's/^ListenStream=//p' /lib/systemd/system/$PKG.socket)
  mode=$(sed -n 's/^SocketMode=//p' /lib/systemd/system/$PKG.socket)
  owner=$(sed -n 's/^SocketUser=//p' /lib/systemd/system/$PKG.socket)
  [ "$sock" = /run/kinde-fcgi/kinde.sock ] && [ "$user" = www-data ] && [ "$owner" = www-data ] || return 1
  sock=/run/kinde-fcgi-test/kinde.sock  # not the real path: a system with systemd may own that one
  mkdir -p /run/kinde-fcgi-test
  # listen_exec, setpriv and env each exec the next: kinde.fcgi keeps the pid named in LISTEN_PID.
  "$ROOT/$BUILD/listen_exec" --mode "$mode" --owner "$(id -u "$owner"):$(id -g "$owner")" "$sock" -- \
    setpriv --reuid="$user" --regid="$user" --init-groups --inh-caps=-all \
    env KINDE_CONFIG="$(sed -n 's/^Environment=KINDE_CONFIG=//p' /lib/systemd/system/$PKG.service)" $exec \
    > "$TMP/service.log" 2>&1 &
  APP_PID=$!
  for _ in $(seq 1 100); do fcgi "$sock" /healthz 2>/dev/null | grep -q '^ok' && break; sleep 0.1; done
  local served=0 status=1
  fcgi "$sock" /api/me "$COOKIE" | tee /dev/stderr | grep -q '"email":"alice@example.com"' && served=1
  # The supervisor and both workers, all as www-data.
  users_of "$BIN --workers" >&2 && [ "$(cat "$TMP/users")" = www-data ] &&
    [ "$(pgrep -c -f "^$BIN --workers")" = 3 ] || served=0
  kill -TERM "$APP_PID"
  wait "$APP_PID"
  status=$?
  APP_PID=""
  rm -rf /run/kinde-fcgi-test
  cat "$TMP/service.log"
  [ "$served" = 1 ] && [ "$status" -eq 0 ]
}
check "kinde-fcgi.service's command as www-data on a systemd-style socket serves the same session; SIGTERM exits 0" \
  socket_activated
check "systemctl enable $PKG.socket (as an administrator would)" \
  sh -c "systemctl enable $PKG.socket && [ -L /etc/systemd/system/sockets.target.wants/$PKG.socket ]"

echo "== 4. upgrade to $v2 while signed in"
conf_sum=$(sha256sum "$CONF")
sessions_before=$(find "$SESSIONS" -mindepth 2 -type f | sort)
check "apt-get install ./$(basename "$DEB2") (upgrade)" apt_install "$DEB2"
check "version is now $v2" sh -c "[ \"\$(dpkg-query -W -f='\${Version}' $PKG)\" = '$v2' ]"
check "kinde.conf kept as edited, root:www-data 0640" \
  sh -c "[ \"\$(sha256sum $CONF)\" = '$conf_sum' ] && [ \"\$(stat -c '%U:%G %a' $CONF)\" = 'root:www-data 640' ]"
check "session key kept (same bytes, www-data 0600)" \
  sh -c "[ \"\$(sha256sum $KEY)\" = '$key_sum' ] && [ \"\$(stat -c '%U:%G %a' $KEY)\" = 'www-data:www-data 600' ]"
check "every session file kept" sh -c "[ \"\$(find $SESSIONS -mindepth 2 -type f | sort)\" = '$sessions_before' ]"
check "the snippet is still enabled, the socket still enabled" \
  sh -c "a2query -q -c $PKG && [ -L /etc/systemd/system/sockets.target.wants/$PKG.socket ]"
# The maintainer scripts reload Apache through invoke-rc.d, which this machine's policy-rc.d may
# forbid (containers): the test reloads it the same way (graceful), so the new program serves.
check "Apache reloaded (graceful): mod_fcgid starts the new program" graceful
check "the same cookie still works after the upgrade: signed in as alice" me "$COOKIE"
check "the app processes run the upgraded program (no deleted binary left running)" \
  sh -c "pids=\$(pgrep -f '^$BIN'); [ -n \"\$pids\" ] && for p in \$pids; do readlink /proc/\$p/exe; done | tee /dev/stderr | grep -vq deleted && ! for p in \$pids; do readlink /proc/\$p/exe; done | grep -q deleted"

echo "== 5. remove and purge"
check "apt-get remove $PKG" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 remove -y -q "$PKG"
check "state is config-files" sh -c "dpkg-query -W -f='\${Status}' $PKG | grep -q 'deinstall ok config-files'"
check "the program, templates and units are gone" absent "$BIN" "/usr/share/$PKG" /lib/systemd/system/$PKG.socket
check "remove keeps kinde.conf (as edited), the key and the sessions" \
  sh -c "[ \"\$(sha256sum $CONF)\" = '$conf_sum' ] && [ \"\$(sha256sum $KEY)\" = '$key_sum' ] && \
    [ \"\$(find $SESSIONS -mindepth 2 -type f | sort)\" = '$sessions_before' ]"
check "remove keeps the other conffiles (Apache and nginx snippets, cron.d)" \
  present /etc/apache2/conf-available/$PKG.conf $NGINX_SNIPPETS /etc/cron.d/$PKG
check "remove disabled the Apache snippet (a2query: disabled by maintainer script)" \
  sh -c "a2query -q -c $PKG; [ \$? -eq 33 ] && [ ! -e /etc/apache2/conf-enabled/$PKG.conf ]"
check "after a graceful reload Apache no longer serves /kinde/" \
  sh -c "apache2 -d /etc/apache2 -f $TMP/apache2.conf -k graceful && sleep 1 && [ \"\$(curl -s -o /dev/null -w '%{http_code}' $BASE/healthz)\" = 404 ]"
check "apt-get purge $PKG" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 purge -y -q "$PKG"
check "purge: no trace in dpkg" sh -c "! dpkg-query -W -f='\${Status}' $PKG 2>/dev/null | grep -q ."
check "purge deletes the sessions, the key and the configuration" absent "$SESSIONS" /var/lib/$PKG "$KEY" "$CONF" /etc/$PKG
check "purge deletes the snippets, the cron entry and the socket's enablement" \
  absent /etc/apache2/conf-available/$PKG.conf /etc/apache2/conf-enabled/$PKG.conf $NGINX_SNIPPETS \
    /etc/cron.d/$PKG /etc/systemd/system/sockets.target.wants/$PKG.socket /etc/systemd/system/$PKG.socket \
    /var/lib/apache2/conf/enabled_by_admin/$PKG /var/lib/apache2/conf/disabled_by_maint/$PKG \
    /var/lib/systemd/deb-systemd-helper-enabled/$PKG.socket.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/$PKG.socket
no_leftovers() { diff <(printf '%s\n' "$paths_before") <(kinde_paths); }
check "no file left behind (every path named *kinde* is as before the install)" no_leftovers

echo
echo "deb-test: $pass passed, $fail failed" | tee -a "$RESULTS"
[ "$fail" -eq 0 ]
