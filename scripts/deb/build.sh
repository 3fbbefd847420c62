#!/usr/bin/env bash
# make deb: builds $BUILD/kinde-fcgi_<version>_<arch>.deb with Debian's own tools and no debhelper:
# `make install PREFIX=/usr DESTDIR=<stage>` lays out the files, this script moves the system files
# to their places (/etc, /lib/systemd/system), writes DEBIAN/ (control with Depends from
# dpkg-shlibdeps, conffiles, md5sums, the maintainer scripts of this folder) and runs
# `dpkg-deb --build` under fakeroot, so the package's files belong to root (kinde.conf to group
# www-data) whoever builds it. Then lintian, when it is installed, must report no error or warning
# but those in lintian-overrides (each with its reason).
#
# Environment: BUILD (default build), DEB_VERSION (default: the top entry of scripts/deb/changelog;
# another version gets a changelog entry of its own, e.g. for the upgrade in make deb-test).
# Prints the path of the package on its last line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
HERE=scripts/deb
BUILD=${BUILD:-build}

die() { echo "deb: $*" >&2; exit 1; }

# The tools: dpkg-deb is always there; dpkg-shlibdeps and dpkg-parsechangelog come with dpkg-dev.
need=()
for p in dpkg-dev fakeroot; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "deb: installing ${need[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${need[@]}"
fi

package=kinde-fcgi
arch=$(dpkg --print-architecture)
top_version=$(dpkg-parsechangelog -l "$HERE/changelog" -S Version)
version=${DEB_VERSION:-$top_version}
maintainer=$(dpkg-parsechangelog -l "$HERE/changelog" -S Maintainer)
# File dates in the package: the changelog's (reproducible builds); a rebuild under another version
# gets a changelog entry of its own, dated now.
if [ "$version" = "$top_version" ]; then
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$HERE/changelog" -S Timestamp)}
else
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date +%s)}
fi

stage="$ROOT/$BUILD/deb/${package}_${version}_${arch}"
rm -rf "$stage"
mkdir -p "$stage"
make --no-print-directory install PREFIX=/usr DESTDIR="$stage" BUILD="$BUILD" >/dev/null

doc="$stage/usr/share/doc/$package"
examples="$doc/examples"
# The system files where Debian looks for them (the units in /lib: Debian 12 has no merged-/usr
# rule for dpkg's file lists yet, and systemd reads both).
install -d "$stage/lib/systemd/system" "$stage/etc/apache2/conf-available" "$stage/etc/nginx/snippets" \
  "$stage/etc/cron.d" "$stage/etc/$package"
mv "$examples/systemd/kinde-fcgi.socket" "$examples/systemd/kinde-fcgi.service" "$stage/lib/systemd/system/"
mv "$examples/apache2/conf-available/kinde-fcgi.conf" "$stage/etc/apache2/conf-available/"
mv "$examples/nginx/snippets/"kinde-fcgi*.conf "$stage/etc/nginx/snippets/"
mv "$examples/cron.d/kinde-fcgi" "$stage/etc/cron.d/"
mv "$examples/kinde.conf" "$stage/etc/$package/kinde.conf"
left=$(find "$examples" -type f)
[ -z "$left" ] || die "make install wrote system files that this script does not place: $left"
rm -rf "$examples"

# Debian's documentation rules: copyright, a compressed changelog (with an entry for this version),
# compressed manual page, documents over 4 kB compressed.
install -m 0644 "$HERE/copyright" "$doc/copyright"
{
  if [ "$version" != "$top_version" ]; then
    printf '%s (%s) unstable; urgency=medium\n\n  * Rebuilt as %s (make deb DEB_VERSION=%s).\n\n -- %s  %s\n\n' \
      "$package" "$version" "$version" "$version" "$maintainer" "$(date -R -d "@$SOURCE_DATE_EPOCH")"
  fi
  cat "$HERE/changelog"
} | gzip -9n > "$doc/changelog.gz"
gzip -9n "$stage/usr/share/man/man8/kinde.fcgi.8"
find "$doc" -maxdepth 1 -type f ! -name copyright ! -name '*.gz' -size +4k -exec gzip -9n {} +
install -d "$stage/usr/share/lintian/overrides"
install -m 0644 "$HERE/lintian-overrides" "$stage/usr/share/lintian/overrides/$package"

# The program without its debugging symbols (as dh_strip does).
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$stage/usr/lib/$package/kinde.fcgi"

# Modes: directories 0755, files 0644, but the program and the configuration holding the secret.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
chmod 0755 "$stage/usr/lib/$package/kinde.fcgi"
chmod 0640 "$stage/etc/$package/kinde.conf"

# Depends: the shared libraries the program links (dpkg-shlibdeps reads debian/control of a source
# tree, so it runs in a scratch one), plus libcurl4 by hand: the program dlopen()s libcurl.so.4 on
# its first call to the provider, which dpkg-shlibdeps cannot see.
scratch="$ROOT/$BUILD/deb/shlibdeps"
rm -rf "$scratch"
mkdir -p "$scratch/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" > "$scratch/debian/control"
shlibs=$(cd "$scratch" && dpkg-shlibdeps -O -e"$stage/usr/lib/$package/kinde.fcgi" 2>&1 | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no libraries in the program"
rm -rf "$scratch"

install -d "$stage/DEBIAN"
installed_size=$(du -sk --apparent-size "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
  -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@SHLIBS@|$shlibs|" "$HERE/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') > "$stage/DEBIAN/conffiles"
for script in postinst prerm postrm; do install -m 0755 "$HERE/$script" "$stage/DEBIAN/$script"; done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

deb="$ROOT/$BUILD/${package}_${version}_${arch}.deb"
rm -f "$deb"
# One fakeroot session: the ownership set here is what dpkg-deb writes into the package.
fakeroot -- sh -c '
  chown -R root:root "$1"
  chgrp www-data "$1/etc/kinde-fcgi/kinde.conf"
  dpkg-deb --build -Zxz "$1" "$2" >/dev/null
' sh "$stage" "$deb"

echo "deb: built $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version), Depends: $(dpkg-deb -f "$deb" Depends)"
if command -v lintian >/dev/null 2>&1; then
  echo "deb: lintian"
  # Judged by its tags, not its exit status: as root lintian warns about root itself, which
  # --fail-on warning counts. Overridden tags print as O: with their reason.
  report=$(lintian --display-info --show-overrides "$deb" 2>&1 | grep -E '^[EWIXPO]: ' || true)
  printf '%s\n' "${report:-  (no tags)}" | sed 's/^\([A-Z]: \)/  \1/'
  if grep -qE '^[EW]: ' <<<"$report"; then
    die "lintian found errors or warnings without a stated reason (see above and scripts/deb/lintian-overrides)"
  fi
else
  echo "deb: lintian is not installed; make deb-test installs it and runs it"
fi
echo "$deb"
