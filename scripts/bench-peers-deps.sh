#!/usr/bin/env bash
# Installs what `make bench-peers` needs on top of `make deps`: the peers, from Debian 12 only (no
# PyPI): Apache's mod_auth_openidc, Django and gunicorn, FastAPI and uvicorn, and itsdangerous for
# Starlette's SessionMiddleware. Idempotent and quick when everything is there.
# apt-get waits for the dpkg lock (other builds on a shared machine run apt-get too). Installing a
# Debian Apache module enables it in /etc/apache2 (the package's own postinst, as for mod_fcgid in
# scripts/deps.sh); the bench never reads that configuration nor starts the system's Apache: its
# servers run in the foreground from configs written into build-bench/.
set -euo pipefail

packages=(
  apache2 libapache2-mod-auth-openidc
  python3-django gunicorn
  python3-fastapi uvicorn python3-itsdangerous
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-peers: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # RUNLEVEL=1: package scripts must not start the system's Apache.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -q
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
fi
