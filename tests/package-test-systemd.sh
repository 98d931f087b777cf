#!/bin/sh
# package-test-systemd.sh: the package under systemd as PID 1 (called by package-test.sh):
# boots the cached Debian 12 root with systemd-nspawn -b (its own network namespace, only a
# loopback) with port 80 held by a socket unit, installs the packages of VERSION there with
# apt and checks that the unit starts all the same (Type=notify), that an app is served on
# port 80 once it is free, that a package upgrade to NEXT reloads the daemon (postinst:
# systemctl reload, the binary upgrade) with a new main PID under a connect loop that loses
# nothing, that systemctl reload and kill -s HUP do what the docs say, that a reload that
# fails leaves the running daemon serving, that a killed main process is restarted, and
# that the unit stops cleanly. Prints ok/FAIL lines.
# usage: sh tests/package-test-systemd.sh OUT_DIR VERSION NEXT
set -u
out=$1
version=$2
next=$3
arch=$(dpkg --print-architecture)
cache="$out/root-cache/bookworm.tar"

box=$(mktemp -d "$out/boot.XXXXXX") || exit 2
nsp=
finish() {
	if [ -n "$nsp" ] && kill -0 "$nsp" 2>/dev/null; then
		kill -TERM "$nsp" # the container powers off
		i=0
		while kill -0 "$nsp" 2>/dev/null && [ $i -lt 300 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -0 "$nsp" 2>/dev/null && kill -KILL "$nsp"
	fi
	rm -rf "$box"
}
trap finish EXIT
tar -xf "$cache" -C "$box" || exit 2
mkdir -p "$box/root/debs/old" "$box/root/debs/new"
for deb in portshare libportshare1; do
	cp "$out/${deb}_${version}_$arch.deb" "$box/root/debs/old/"
	cp "$out/upgrade/${deb}_${next}_$arch.deb" "$box/root/debs/new/"
done

. "$(dirname "$0")/package-check.sh"
nspawn() {
	systemd-nspawn -q -D "$box" --register=no --keep-unit --private-network "$@"
}
in_box() {
	[ -n "$leader" ] || return 1
	nsenter -t "$leader" -a "$@"
}
main_pid() {
	in_box systemctl show -P MainPID portshared.service
}

# port 80 busy from boot on: a socket unit of the container's systemd holds it (its service
# would run only for a connection)
cat >"$box/etc/systemd/system/port80.socket" <<'EOF'
[Socket]
ListenStream=80
EOF
cat >"$box/etc/systemd/system/port80.service" <<'EOF'
[Service]
ExecStart=/bin/true
EOF
mkdir -p "$box/etc/systemd/system/sockets.target.wants"
ln -s ../port80.socket "$box/etc/systemd/system/sockets.target.wants/port80.socket"
systemd-nspawn -D "$box" --register=no --keep-unit --private-network -b </dev/null \
	>"$out/boot-console.log" 2>&1 &
nsp=$!
# The container's PID 1: the process named systemd among systemd-nspawn's children or
# grandchildren (an nspawn helper may stand between), in a mount namespace other than ours:
# in_box must never run a command on this machine itself. It answers once its manager's
# socket is up.
container_init() {
	for c in $(cat /proc/"$nsp"/task/*/children 2>/dev/null); do
		for g in "$c" $(cat /proc/"$c"/task/*/children 2>/dev/null); do
			if [ "$(cat "/proc/$g/comm" 2>/dev/null)" = systemd ] &&
				[ "$(readlink "/proc/$g/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ]; then
				echo "$g"
				return
			fi
		done
	done
}
leader=
state=
i=0
while [ $i -lt 300 ]; do
	i=$((i + 1))
	sleep 0.1
	leader=$(container_init)
	[ -n "$leader" ] || continue
	state=$(in_box timeout 60 systemctl is-system-running --wait 2>&1)
	case $state in
	running | degraded) break ;;
	esac
done
case $state in
running | degraded) ;;
*)
	echo "FAIL systemd-nspawn -b: no container whose systemd is running (last answer: '$state')"
	tail -n 20 "$out/boot-console.log" | sed -e 's/^/       /'
	exit 1
	;;
esac
echo "     systemd-nspawn -b: the container's systemd says '$state'"

check "port 80 is busy (port80.socket)" in_box systemctl is-active port80.socket
check "apt install of $version succeeds while port 80 is busy" in_box sh -c 'cd /root/debs/old && DEBIAN_FRONTEND=noninteractive apt-get install -y ./portshare_*.deb ./libportshare1_*.deb'
check "its postinst started portshared.service (Type=notify: READY=1 came; it binds nothing yet)" in_box systemctl is-active portshared.service
check "portsharectl who 80 names what holds port 80" sh -c "nsenter -t $leader -a portsharectl who 80 | grep -q systemd"
in_box systemctl stop port80.socket
first=$(main_pid)
check "its main process (pid $first) runs as portshare" test "$(in_box ps -o user= -p "$first")" = portshare
in_box systemd-run -q --unit=app portshare-hello --url http://+:80/ --text sd
served() {
	in_box curl -sS "http://127.0.0.1$1" | grep -q "^sd pid="
}
wait_served() {
	j=0
	until served "$1"; do
		j=$((j + 1))
		[ $j -gt 50 ] && return 1
		sleep 0.1
	done
}
check "an app run as a service registers http://+:80/ and is served" wait_served /a
in_box systemd-run -q --unit=loop sh -c \
	'while :; do echo "$(date +%s.%N) $(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1/loop)"; done >/root/codes'
sleep 1

check "dpkg -i $next: its postinst reloads the running unit (the binary upgrade)" in_box dpkg -i /root/debs/new/portshare_${next}_$arch.deb /root/debs/new/libportshare1_${next}_$arch.deb
second=$(main_pid)
check "systemd took the new daemon's MAINPID= (main pid $first -> $second)" test -n "$second" -a "$second" != "$first" -a "$second" != 0
check "the unit is active, never restarted" test "$(in_box systemctl is-active portshared.service) $(in_box systemctl show -P NRestarts portshared.service)" = "active 0"
check "the new main process runs as portshare" test "$(in_box ps -o user= -p "$second")" = portshare
check "the app re-attached and is served" wait_served /b

check "systemctl reload portshared (the binary upgrade by hand)" in_box systemctl reload portshared.service
third=$(main_pid)
check "a new main pid again ($second -> $third), the unit active" sh -c "[ -n '$third' ] && [ '$third' != '$second' ] && nsenter -t $leader -a systemctl is-active portshared.service"
check "served after the reload" wait_served /c

check "systemctl kill -s HUP --kill-whom=main portshared" in_box systemctl kill -s HUP --kill-whom=main portshared.service
sleep 0.5
check "the config is re-read by the same main process ($third)" sh -c "[ \"\$(nsenter -t $leader -a systemctl show -P MainPID portshared.service)\" = '$third' ] && nsenter -t $leader -a journalctl -u portshared.service -o cat | grep -q '^portshared: reloaded '"

# a reload whose new daemon cannot start (a bad config line): systemctl reload fails, the
# running daemon stays the main process and serves on
in_box cp /etc/portshare/portshare.conf /root/portshare.conf.good
in_box sh -c 'echo "NoSuchSetting 1" >>/etc/portshare/portshare.conf'
check "systemctl reload with a bad config line fails" sh -c "! nsenter -t $leader -a systemctl reload portshared.service"
check "the unit stays active with the same main pid ($third)" test "$(in_box systemctl is-active portshared.service) $(main_pid)" = "active $third"
check "and serves on" wait_served /e
in_box cp /root/portshare.conf.good /etc/portshare/portshare.conf

in_box systemctl stop loop.service
total=$(in_box cat /root/codes | wc -l)
bad=$(in_box cat /root/codes | grep -vc ' 200$')
in_box cat /root/codes | awk '{ n[$2]++ } END { for (c in n) printf "     HTTP status %s: %d\n", c, n[c] }'
in_box cat /root/codes | grep -v ' 200$' | head -n 5 | sed -e 's/^/     not 200: /'
check "connect loop across both upgrades: $total requests, $bad not answered 200" test "$bad" -eq 0 -a "$total" -gt 0
refused=$(in_box journalctl -o cat | grep -i 'portshared.service' | grep -iE 'refus|not belong' || true)
check "systemd refused no notification and no main PID" test -z "$refused"

# the main process since the reload was not systemd's child when it named itself (systemd
# warns so); once its parent, the reload command, exited it is PID 1's: its death is seen
in_box kill -KILL "$third"
sleep 0.5
check "a SIGKILLed main process is noticed: Restart=on-failure starts a new one" sh -c "j=0; until [ \"\$(nsenter -t $leader -a systemctl show -P NRestarts portshared.service)\" = 1 ] && nsenter -t $leader -a systemctl is-active -q portshared.service; do j=\$((j + 1)); [ \$j -gt 100 ] && exit 1; sleep 0.1; done"
check "served again (the app re-registered)" wait_served /d

# portshare-apps under systemd: its stop drains the proxy in front of an HTTP app before
# the app is stopped (KillMode=mixed: systemd signals the supervisor alone), so a request
# in flight gets its answer. The app: a backend built here that answers after 2 s.
cat >"$box/root/slow.c" <<'EOF2'
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0)
		return 1;
	for (;;) {
		int c = accept(l, NULL, NULL);
		char buf[4096];
		if (c < 0 || read(c, buf, sizeof(buf)) <= 0) {
			close(c);
			continue;
		}
		if (strstr(buf, "GET /slow"))
			sleep(2);
		const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow\n";
		write(c, r, strlen(r));
		close(c);
	}
}
EOF2
check "a slow HTTP backend builds in the box" in_box gcc -o /root/slow /root/slow.c
check "systemctl start portshare-apps" in_box systemctl start portshare-apps.service
check "portsharectl app add slow (an HTTP app on {port})" sh -c "j=0; until nsenter -t $leader -a portsharectl app add slow --url http://+:80/slow/ --allow-root -- /root/slow {port}; do j=\$((j + 1)); [ \$j -gt 50 ] && exit 1; sleep 0.1; done"
check "its first request starts it" sh -c "nsenter -t $leader -a curl -sS http://127.0.0.1/slow/first | grep -q '^slow'"
in_box systemd-run -q --unit=inflight sh -c 'curl -sS -m 20 http://127.0.0.1/slow/slow >/root/inflight 2>&1; echo "exit $?" >>/root/inflight'
sleep 0.5
t0=$(date +%s.%N)
check "systemctl stop portshare-apps with a request in flight" in_box systemctl stop portshare-apps.service
t1=$(date +%s.%N)
sleep 2
check "the request in flight got the app's answer" sh -c "nsenter -t $leader -a cat /root/inflight | tr '\\n' ' ' | grep -q '^slow exit 0'"
echo "     (the stop took $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s; the request's output: $(in_box cat /root/inflight | tr '\n' ' '))"
check "portshare-apps stopped cleanly (result success)" test "$(in_box systemctl show -P Result portshare-apps.service)" = success
in_box journalctl -u portshare-apps.service -o cat | grep -E 'stopping|slow:' | sed -e 's/^/       /'

in_box systemctl stop app.service
in_box systemctl stop portshared.service
check "systemctl stop portshared: inactive, result success" test "$(in_box systemctl show -P ActiveState portshared.service) $(in_box systemctl show -P Result portshared.service)" = "inactive success"
echo "     journal of portshared.service:"
in_box journalctl -u portshared.service -o short-unix --no-hostname | sed -e "s/^/       /"
true
