#!/usr/bin/env bash
# installed-conf.sh PREFIX: prints etc/kinde.conf.example as the configuration of an installed
# kinde-fcgi (templates under PREFIX, sessions in /var/lib/kinde-fcgi/sessions, the session key in
# /etc/kinde-fcgi/session.key), for /etc/kinde-fcgi/kinde.conf. make install writes it to
# share/doc/kinde-fcgi/examples/kinde.conf; the Debian package ships it as its conffile. Fails when the
# example no longer has a line it rewrites, rather than print a config with the wrong paths.
set -euo pipefail
prefix=${1:?usage: installed-conf.sh PREFIX}
example="$(dirname "$0")/../etc/kinde.conf.example"

cat <<HEAD
# kinde-fcgi configuration, /etc/kinde-fcgi/kinde.conf. Fill in the keys from your Kinde back-end
# app and the callback URL, then check it as the web server's user:
#
#     sudo -u www-data env KINDE_CONFIG=/etc/kinde-fcgi/kinde.conf $prefix/lib/kinde-fcgi/kinde.fcgi --check-config
#
# Apache (a2enconf kinde-fcgi) and the systemd unit kinde-fcgi.service point the app here. The file
# holds your client secret: keep it readable by the web server's group only (root:www-data, 0640).
# Format: dotenv, one KEY=value per line; \`export KEY=value\`, "double" and 'single' quotes and
# trailing " # comments" work. Environment variables override this file. See kinde.fcgi(8).

HEAD

body=$(sed -n '/^# --- Kinde app keys/,$p' "$example")
rewrite() {  # rewrite PATTERN REPLACEMENT: replace the one line matching PATTERN, or fail
  local count
  count=$(grep -c -- "$1" <<<"$body" || true)
  if [ "$count" != 1 ]; then
    echo "installed-conf.sh: expected one line matching '$1' in $example, found $count" >&2
    exit 1
  fi
  body=$(awk -v pat="$1" -v rep="$2" '$0 ~ pat { print rep; next } { print }' <<<"$body")
}
rewrite '^KINDE_CALLBACK_URL=' 'KINDE_CALLBACK_URL='
rewrite '^# KINDE_SESSION_DIR=' 'KINDE_SESSION_DIR=/var/lib/kinde-fcgi/sessions'
rewrite '^# KINDE_SESSION_SECRET=' "# KINDE_SESSION_SECRET=
# Without KINDE_SESSION_SECRET: the file holding the session key (owner www-data, mode 0600; the
# Debian package creates it on installation; an existing file is never rewritten).
KINDE_SESSION_KEY_FILE=/etc/kinde-fcgi/session.key"
rewrite '^# KINDE_TEMPLATE_DIR=' "KINDE_TEMPLATE_DIR=$prefix/share/kinde-fcgi/templates"
if [ -z "$body" ]; then
  echo "installed-conf.sh: no '# --- Kinde app keys' section in $example" >&2
  exit 1
fi
printf '%s\n' "$body"
