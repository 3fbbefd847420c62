#!/usr/bin/env bash
# Installs what is missing on a fresh Debian 12 machine: Debian packages (apt-get, through sudo when
# not root) and the npm packages of tests/ (npm ci from the committed lock file). Idempotent and quick
# when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config
  libfcgi-dev libcgicc-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libmstch-dev
  libboost-test-dev libhiredis-dev
  lighttpd apache2 libapache2-mod-fcgid redis-server
  spawn-fcgi libfcgi-bin
  nginx php-cgi php-fpm
  chromium wrk valgrind curl ca-certificates procps psmisc
)
need_node=0
command -v node >/dev/null 2>&1 || need_node=1
command -v npm >/dev/null 2>&1 || need_node=1
[ "$need_node" = 1 ] && packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Package scripts must not start system-wide web servers or Redis: tests start their own.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -q
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages for the test provider, the browser tests and Swagger UI.
if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
  echo "deps: npm ci in tests/"
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi

# Swagger UI for /docs: the files of the npm package swagger-ui-dist, copied into htdocs/docs/ (served
# statically; git-ignored there). Copies, not links: web servers and `make install` take them as files.
swagger=tests/node_modules/swagger-ui-dist
for pair in swagger-ui-bundle.js:swagger-ui-bundle.js swagger-ui.css:swagger-ui.css \
            LICENSE:swagger-ui-LICENSE NOTICE:swagger-ui-NOTICE; do
  from="$swagger/${pair%%:*}"; to="htdocs/docs/${pair##*:}"
  if [ ! -f "$from" ]; then echo "deps: $from missing (npm ci failed?)" >&2; exit 1; fi
  if [ ! -f "$to" ] || [ "$from" -nt "$to" ]; then cp "$from" "$to"; fi
done
