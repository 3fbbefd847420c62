#!/usr/bin/env bash
# Installs what `make interop` needs besides scripts/deps.sh: glewlwyd and LemonLDAP::NG from Debian
# (apt-get, through sudo when not root). The packages' own system instances are never configured or
# started: glewlwyd's debconf question is answered "No configuration" beforehand (its default sets up
# PostgreSQL and fails), and package scripts run as in runlevel 1 so no service is started.
# tests/interop/ then sets up private instances under build/interop/. Idempotent and quick when
# everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  glewlwyd sqlite3
  liblemonldap-ng-portal-perl lemonldap-ng-fastcgi-server liblemonldap-ng-manager-perl
  # The portal will not start without the last three (checked with 2.16.1); the others are used by
  # the OpenID Connect issuer and the demo authentication.
  libcrypt-openssl-bignum-perl libcrypt-openssl-x509-perl libjson-perl libio-string-perl
  libgd-securityimage-perl libimage-magick-perl libstring-random-perl
  lighttpd jq openssl util-linux
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0

echo "interop-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_get() {
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get -o DPkg::Lock::Timeout=900 -q "$@"
}
# glewlwyd's postinst would configure a system database from this answer: none.
echo "glewlwyd glewlwyd/config_type select No configuration" | $sudo debconf-set-selections
apt_get update
# A glewlwyd whose postinst failed earlier (without the answer above) is finished first.
if dpkg-query -W -f='${Status}' glewlwyd 2>/dev/null | grep -q 'half-configured\|unpacked'; then
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 dpkg --configure -a
fi
apt_get install -y --no-install-recommends "${missing[@]}"
