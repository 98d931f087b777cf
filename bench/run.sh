# run.sh: the portshare benchmark suite: direct vs portshare vs nginx vs HAProxy on loopback (sh bench/run.sh [--quick|--full] [--scenarios 1,2,...]).
set -eu

MODE=quick
SCEN=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) MODE=quick ;;
	--full) MODE=full ;;
	--scenarios) SCEN="$2"; shift ;;
	*) echo "usage: sh bench/run.sh [--quick|--full] [--scenarios 1,2,3,4a,4b,5,6,1u,p1,p3,p4b]" >&2; exit 2 ;;
	esac
	shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# ---- tools: wrk, nginx, haproxy, curl from Debian, never started as services
missing=""
for t in wrk:wrk nginx:nginx-light haproxy:haproxy curl:curl taskset:util-linux python3:python3; do
	command -v "${t%%:*}" >/dev/null 2>&1 || missing="$missing ${t#*:}"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "run.sh: missing:$missing; as root: apt-get install -y$missing" >&2
		exit 1
	fi
	echo "run.sh: installing$missing (services kept from starting by policy-rc.d)" >&2
	saved=""
	if [ -e /usr/sbin/policy-rc.d ]; then
		saved=$(mktemp /tmp/policy-rc.d.XXXXXX)
		cp -p /usr/sbin/policy-rc.d "$saved"
	fi
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; } || rc=$?
	if [ -n "$saved" ]; then mv "$saved" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
	[ "$rc" = 0 ] || { echo "run.sh: apt-get failed ($rc)" >&2; exit 1; }
fi
for t in wrk nginx haproxy curl taskset python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "run.sh: $t still missing" >&2; exit 1; }
done

# ---- portshare itself, snapshotted with the bench programs built against it
RUN=$(mktemp -d /tmp/portshare-bench.XXXXXX)
mkdir -p "$RUN/nginx-tmp"
. bench/prepare.sh
bench_prepare "$RUN"
BUILT=$(date -r "$BUILD_DIR/bin/portshared" '+%Y-%m-%d %H:%M')

# file descriptors: 10,000 idle connections and more (the hard limit may not be raisable here)
ulimit -n "$(ulimit -H -n)" 2>/dev/null || true
NOFILE=$(ulimit -n)
PORT_BASE=${BENCH_PORT_BASE:-18300}
sed -e "s|@RUN@|$RUN|g" -e "s|@PORT@|$((PORT_BASE + 3))|g" -e "s|@UPSTREAM@|$((PORT_BASE + 1))|g" \
	-e "s|@NOFILE@|$NOFILE|g" bench/nginx.conf.in > "$RUN/nginx.conf"
sed -e "s|@PORT@|$((PORT_BASE + 4))|g" -e "s|@UPSTREAM@|$((PORT_BASE + 1))|g" bench/haproxy.cfg.in > "$RUN/haproxy.cfg"
nginx -t -q -p "$RUN" -c "$RUN/nginx.conf" -e "$RUN/nginx-error.log"
haproxy -c -q -f "$RUN/haproxy.cfg"

VERSIONS="$(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}'), $(nginx -v 2>&1 | sed 's|.*nginx/|nginx |'), $(haproxy -v | head -1 | awk '{print "HAProxy " $3}')"
echo "run.sh: $MODE run in $RUN (ports $((PORT_BASE + 1))-$((PORT_BASE + 9)))" >&2

# the driver starts and stops every server by PID; stop it (and so them) if we are stopped
DRIVER=""
cleanup() {
	if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
		kill -TERM "$DRIVER" 2>/dev/null || true
		wait "$DRIVER" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
python3 bench/driver.py --mode "$MODE" --run "$RUN" --port-base "$PORT_BASE" --nofile "$NOFILE" \
	--versions "$VERSIONS" --built "$BUILT" ${SCEN:+--scenarios "$SCEN"} &
DRIVER=$!
rc=0
wait "$DRIVER" || rc=$?
DRIVER=""
exit "$rc"
