#!/bin/sh
# Builds the Debian packages (debian/) from the work tree into build-deb/: a copy of the
# tracked and new files goes to build-deb/portshare-VERSION/, where dpkg-buildpackage -b
# -us -uc runs, so its artifacts (.deb, .buildinfo, .changes) land in build-deb/ and
# nothing is written beside the repository. Then lintian checks them; any error fails.
# usage: sh scripts/deb.sh [OUT_DIR]   (default build-deb)
# PORTSHARE_DEB_VERSION=V builds version V instead (a changelog entry added in the copy
# only): the package test's upgrade.
set -e
cd "$(dirname "$0")/.."
out=${1:-build-deb}
version=${PORTSHARE_DEB_VERSION:-$(dpkg-parsechangelog -S Version)}
src="$out/portshare-$version"
rm -rf "$src"
mkdir -p "$src"
rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
# the work tree as it is, without build directories or other ignored files
git ls-files -z -c -o --exclude-standard | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\n" "$f"; done' sh |
	tar -cf - -T - | tar -xf - -C "$src"
if [ -n "${PORTSHARE_DEB_VERSION:-}" ]; then
	{
		printf 'portshare (%s) unstable; urgency=medium\n\n  * Test build.\n\n' "$version"
		printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -S Maintainer)" "$(date -R)"
		cat debian/changelog
	} >"$src/debian/changelog"
fi
(cd "$src" && dpkg-buildpackage -b -us -uc)
rm -rf "$src"
ls -1 "$out"/*.deb
changes=$(ls "$out"/portshare_"$version"_*.changes)
echo "lintian $changes:"
lintian --fail-on error --info "$changes"
echo "lintian: no errors"
