#!/bin/sh
# Installs the Debian packages portshare needs to build and test, when they are missing.
# As root it runs apt-get update then apt-get install; otherwise it prints the exact line to run.
# usage: sh scripts/deps.sh [package]   (package: also what make deb and make package-test need)
set -e
pkgs="build-essential pkg-config node-llhttp libseccomp-dev libcmocka-dev libgnutls28-dev gnutls-bin clang libclang-rt-dev groff-base curl python3 iproute2 strace procps wrk testssl.sh chromium gunicorn python3-flask python3-websockets nginx-light prometheus goaccess logrotate"
if [ "$1" = package ]; then
	pkgs="$pkgs debhelper dpkg-dev lintian mmdebstrap systemd-container"
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "portshare: missing Debian packages:$missing" >&2
	echo "run as root: apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "portshare: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# no service a package brings (prometheus, gunicorn) starts: the tests run their own
saved=""
if [ -e /usr/sbin/policy-rc.d ]; then
	saved=$(mktemp /tmp/policy-rc.d.XXXXXX)
	cp -p /usr/sbin/policy-rc.d "$saved"
fi
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
rc=0
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; } || rc=$?
if [ -n "$saved" ]; then mv "$saved" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
exit $rc
