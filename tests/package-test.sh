#!/bin/sh
# package-test.sh: the Debian packages in a throwaway Debian 12 root (make package-test; not
# part of make test). Installs the packages of DEB_DIR (make deb) there with apt, checks the
# unit (systemd-analyze verify), the portshare user, the state directory, the conffile; runs
# the daemon as the unit would (user portshare, CAP_NET_BIND_SERVICE as an ambient
# capability) with an app on port 80 and serves a request; installs a newer build of the
# packages and runs the unit's ExecReload= line (the binary upgrade) under a connect loop:
# no request may fail; then removes and purges the packages and checks what is left.
# systemd is not PID 1 in that root, so systemctl is not used there: the unit's own lines
# are run. Then tests/package-test-systemd.sh boots the same root with systemd-nspawn -b
# and does it all again with systemctl, systemd as PID 1.
# Every command in the root runs in private mount, pid and network namespaces (only a
# loopback; nothing binds outside it, nothing is left mounted).
# The base root (mmdebstrap, minbase + systemd, adduser, curl, procps, iproute2, man-db, and
# gcc, pkg-config, libgnutls28-dev to build an app against libportshare-dev) is cached as
# DEB_DIR/root-cache/bookworm.tar, from the apt sources of this machine.
# usage: sh tests/package-test.sh [DEB_DIR]   (default build-deb)
# The last line is "N passed, N failed"; exit status 0 when nothing failed.
set -u
cd "$(dirname "$0")/.."
out=$(cd "${1:-build-deb}" && pwd) || exit 2
version=$(dpkg-parsechangelog -S Version)
next="$version+upgrade1"
arch=$(dpkg --print-architecture)
cache="$out/root-cache/bookworm.tar"

if [ "$(id -u)" -ne 0 ]; then
	echo "package-test: needs root (chroot, namespaces)" >&2
	exit 2
fi
for deb in portshare libportshare1 libportshare-dev; do
	if [ ! -f "$out/${deb}_${version}_$arch.deb" ]; then
		echo "package-test: $out/${deb}_${version}_$arch.deb is missing; run make deb" >&2
		exit 2
	fi
done

if [ ! -f "$cache" ]; then
	echo "package-test: creating the base root $cache (once)"
	mkdir -p "$out/root-cache"
	sources=$(ls /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1)
	mmdebstrap --quiet --variant=minbase --include=systemd,adduser,curl,procps,iproute2,man-db,gcc,libc6-dev,pkg-config,libgnutls28-dev \
		bookworm \
		"$out/root-cache/partial.tar" ${sources:+"$sources"} </dev/null || exit 2
	mv "$out/root-cache/partial.tar" "$cache"
fi

echo "package-test: building $next for the upgrade"
PORTSHARE_DEB_VERSION="$next" sh scripts/deb.sh "$out/upgrade" >"$out/upgrade.log" 2>&1 || {
	tail -n 30 "$out/upgrade.log"
	exit 2
}

root=$(mktemp -d "$out/root.XXXXXX") || exit 2
cleanup() {
	if grep -q " $root" /proc/self/mountinfo; then
		echo "package-test: something is still mounted under $root; left in place" >&2
		return
	fi
	rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
tar -xf "$cache" -C "$root" || exit 2
mkdir -p "$root/tmp/debs/old" "$root/tmp/debs/new"
cp examples/hello.c examples/serve.h "$root/tmp/"
for deb in portshare libportshare1 libportshare-dev; do
	cp "$out/${deb}_${version}_$arch.deb" "$root/tmp/debs/old/"
	cp "$out/upgrade/${deb}_${next}_$arch.deb" "$root/tmp/debs/new/"
done

# in the root: check (tests/package-check.sh), and helpers to run the unit's lines
{
	cat tests/package-check.sh
	cat <<'EOF'
# the unit's own command lines, as systemd would run them: user portshare, the one ambient
# capability, /run/portshare made (RuntimeDirectory=)
as_unit() {
	install -d -o portshare -g portshare -m 0755 /run/portshare
	setpriv --reuid=portshare --regid=portshare --init-groups --inh-caps=+net_bind_service \
		--ambient-caps=+net_bind_service "$@"
}
unit_line() {
	sed -n "s/^$1=//p" /lib/systemd/system/portshared.service
}
wait_log() { # FILE PATTERN: up to 10 s
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && return 1
		sleep 0.1
	done
}
EOF
} >"$root/tmp/check.sh"

# in_root <<EOF: runs the script on standard input with sh in the root, in new mount, pid
# and network namespaces
in_root() {
	{
		echo ". /tmp/check.sh"
		cat
	} >"$root/tmp/phase.sh"
	unshare --mount --pid --net --fork --kill-child sh -c '
		ip link set lo up &&
		mount -t proc proc "$1/proc" &&
		mount --rbind /dev "$1/dev" &&
		mount -t tmpfs tmpfs "$1/run" &&
		chroot "$1" sh /tmp/phase.sh' sh "$root"
}

log="$out/package-test.log"
{
	echo "== install $version"
	in_root <<'PHASE'
check "apt install ./portshare_*.deb ./libportshare1_*.deb ./libportshare-dev_*.deb (as README says)" sh -c "cd /tmp/debs/old && DEBIAN_FRONTEND=noninteractive apt-get install -y ./portshare_*.deb ./libportshare1_*.deb ./libportshare-dev_*.deb"
check "the portshare system user exists (nologin, home /var/lib/portshare)" sh -c "getent passwd portshare | grep -q \":/var/lib/portshare:/usr/sbin/nologin\$\""
check "and its group" getent group portshare
check "/var/lib/portshare belongs to portshare, mode 700" sh -c "[ \"\$(stat -c %U:%G:%a /var/lib/portshare)\" = portshare:portshare:700 ]"
check "/etc/portshare/portshare.conf is a registered conffile" sh -c "dpkg-query -W -f='\${Conffiles}' portshare | grep -q \"^ /etc/portshare/portshare.conf \""
check "systemd-analyze verify portshared.service" sh -c "out=\$(systemd-analyze verify /lib/systemd/system/portshared.service 2>&1); echo \"\$out\"; [ -z \"\$out\" ]"
check "the unit is enabled (multi-user.target.wants)" test -L /etc/systemd/system/multi-user.target.wants/portshared.service
pc=$(ls /usr/lib/*/pkgconfig/portshare.pc)
check "portshare.pc ($pc) names its multiarch libdir" grep -q "^libdir=${pc%/pkgconfig/portshare.pc}$" "$pc"
check "man pages: portshared(8) portsharectl(8) portshare.conf(5) libportshare(3) portshare-hello(1)" sh -c "ls /usr/share/man/man8/portshared.8.gz /usr/share/man/man8/portsharectl.8.gz /usr/share/man/man5/portshare.conf.5.gz /usr/share/man/man3/libportshare.3.gz /usr/share/man/man1/portshare-hello.1.gz"
check "examples/hello.c builds with pkg-config --cflags --libs portshare alone" sh -c "cc -std=c17 -D_GNU_SOURCE -o /tmp/hello-built /tmp/hello.c \$(pkg-config --cflags --libs portshare)"
check "man portsharectl renders" sh -c "man portsharectl | grep -q portsharectl"
echo "     systemd-analyze security --offline=true:"
systemd-analyze security --offline=true /lib/systemd/system/portshared.service 2>&1 | tail -n 1 | sed -e "s/^/       /"
PHASE

	echo "== serve, then upgrade the packages to $next and reload (the binary upgrade) under a connect loop"
	in_root <<'PHASE'
check "portshared --check-sandbox switches to portshare and refuses execve" sh -c "portshared --check-sandbox | grep -q \"user portshare\""
start=$(unit_line ExecStart)
as_unit $start 2>/tmp/d1.log &
check "ExecStart= as user portshare: ready" wait_log /tmp/d1.log "portshared: ready"
portshare-hello --url http://+:80/ --text pkg >/tmp/app.out 2>&1 &
check "an app registers http://+:80/ (the daemon binds port 80 by its capability)" wait_log /tmp/app.out "ready queue="
check "a request on port 80 is served by the app" sh -c "curl -sS http://127.0.0.1/x | grep -q \"^pkg pid=\""
/tmp/hello-built --url http://+:80/built/ --text built >/tmp/built.out 2>&1 &
check "the app built against libportshare-dev registers http://+:80/built/" wait_log /tmp/built.out "ready queue="
check "and serves its requests" sh -c "curl -sS http://127.0.0.1/built/x | grep -q \"^built pid=\""
old=$(portsharectl status | sed -n "s/^portshared pid \([0-9]*\),.*/\1/p")
check "portsharectl status names the daemon (pid $old), which runs as portshare" test "$(ps -o user= -p "$old")" = portshare
(while [ ! -e /tmp/stop ]; do curl -s -o /dev/null -w "%{http_code}\n" http://127.0.0.1/loop; done >/tmp/codes) &
sleep 1
check "dpkg -i the newer packages (the running daemon is left alone)" dpkg -i /tmp/debs/new/portshare_*.deb /tmp/debs/new/libportshare1_*.deb /tmp/debs/new/libportshare-dev_*.deb
check "the daemon of the old package still serves" sh -c "curl -sS http://127.0.0.1/y | grep -q \"^pkg pid=\""
reload=$(unit_line ExecReload)
as_unit $reload 2>/tmp/d2.log
check "ExecReload= (portshared --upgrade --detach) exits 0 (status $?)" test $? -eq 0
sleep 2
touch /tmp/stop
sleep 0.5
new=$(portsharectl status | sed -n "s/^portshared pid \([0-9]*\),.*/\1/p")
check "a new daemon (pid $new) replaced the old one (pid $old)" sh -c "[ -n \"$new\" ] && [ \"$new\" != \"$old\" ]"
check "the old daemon has exited" sh -c "! kill -0 $old 2>/dev/null || grep -q \"^State:.*Z\" /proc/$old/status"
check "the app re-attached: the new daemon serves it" sh -c "curl -sS http://127.0.0.1/z | grep -q \"^pkg pid=\""
total=$(wc -l </tmp/codes)
bad=$(grep -vc "^200$" /tmp/codes)
check "connect loop across the upgrade: $total requests, $bad not answered 200" test "$bad" -eq 0 -a "$total" -gt 0
check "dpkg: portshare $(dpkg-query -W -f="\${Version}" portshare) installed" sh -c "dpkg-query -W -f='\${Version}' portshare | grep -q upgrade1"
PHASE

	echo "== remove, then purge"
	in_root <<'PHASE'
check "dpkg -r portshare libportshare-dev libportshare1" dpkg -r portshare libportshare-dev libportshare1
check "remove: the programs and the unit are gone" sh -c "! ls /usr/sbin/portshared /usr/bin/portsharectl /lib/systemd/system/portshared.service /usr/lib/*/libportshare.so.1 2>/dev/null"
check "remove: the conffile stays" test -f /etc/portshare/portshare.conf
check "remove: the user stays" getent passwd portshare
check "remove: /var/lib/portshare stays" test -d /var/lib/portshare
check "dpkg -P portshare libportshare-dev libportshare1" dpkg -P portshare libportshare-dev libportshare1
check "purge: /etc/portshare is gone" test ! -e /etc/portshare
check "purge: /var/lib/portshare is gone" test ! -e /var/lib/portshare
check "purge: the user and the group are gone" sh -c "! getent passwd portshare && ! getent group portshare"
check "purge: the unit is no longer enabled" test ! -e /etc/systemd/system/multi-user.target.wants/portshared.service
# (man-db's cache holds the pages "man portsharectl" showed above: its own, not the package's)
left=$(find / -xdev -name "*portshare*" -not -path "/tmp/*" -not -path "/var/cache/man/*" 2>/dev/null)
check "purge: nothing named portshare is left (but in /tmp and man-db's cache)" test -z "$left"
[ -n "$left" ] && echo "$left" | sed -e "s/^/       /"
true
PHASE

	echo "== under systemd as PID 1 (systemd-nspawn -b): install while port 80 is busy, package upgrade = reload, reload, HUP, stop"
	if command -v systemd-nspawn >/dev/null; then
		sh tests/package-test-systemd.sh "$out" "$version" "$next"
	else
		echo "FAIL systemd-nspawn is missing (make deps-package installs systemd-container)"
	fi
} 2>&1 | tee "$log"

passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^FAIL ' "$log")
echo "(output kept in $log)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
