# instructions.sh: instructions per request over TLS (callgrind), the direct worker with GnuTLS against portshare's daemon and worker, for figures that do not drift with the machine's load (sh bench/instructions.sh).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SECONDS_PER_CASE=${SECONDS_PER_CASE:-8} # wrk -c1 runs this long under callgrind for each case
PORT=${BENCH_PORT_BASE:-18300}
PORT=$((PORT + 22))

for t in valgrind callgrind_control wrk taskset curl certtool; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "instructions.sh: $t is missing (apt-get install -y valgrind wrk util-linux curl gnutls-bin)" >&2
		exit 1
	}
done
RUN=$(mktemp -d /tmp/portshare-instructions.XXXXXX)
. bench/prepare.sh
bench_prepare "$RUN"
bench_cert "$RUN"

DAEMON="" WORKER=""
stop_pid() { # stop one process we started, by its PID
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	stop_pid "$WORKER"
	stop_pid "$DAEMON"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

wait_for() { # wait_for FILE PATTERN SECONDS
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le $(($3 * 10)) ] || { echo "instructions.sh: no '$2' in $1 after $3 s" >&2; cat "$1" >&2; exit 1; }
		sleep 0.1
	done
}

CG="valgrind --tool=callgrind"
start() { # start SYSTEM: the processes under callgrind, on CPU 0
	rm -f "$RUN/worker.log" "$RUN/daemon.log" # no "ready" left from the last case
	if [ "$1" = direct-tls ]; then
		taskset -c 0 $CG --callgrind-out-file="$RUN/cg.worker.%p" "$RUN/bin/worker" --direct "$PORT" \
			--tls-cert "$RUN/tls/cert.pem" --tls-key "$RUN/tls/key.pem" > "$RUN/worker.log" 2>&1 &
		WORKER=$!
	else
		rm -rf "$RUN/state" "$RUN/c.sock"
		mkdir "$RUN/state"
		# valgrind cannot load the seccomp filter on every thread: the daemon runs without it
		taskset -c 0 $CG --callgrind-out-file="$RUN/cg.daemon.%p" "$RUN/bin/portshared" --socket "$RUN/c.sock" \
			--state-dir "$RUN/state" --config "$RUN/portshared.conf" --no-seccomp > "$RUN/daemon.log" 2>&1 &
		DAEMON=$!
		wait_for "$RUN/daemon.log" "ready" 60
		"$RUN/bin/portsharectl" --socket "$RUN/c.sock" sslcert add --ipport "0.0.0.0:$PORT" \
			--cert "$RUN/tls/cert.pem" --key "$RUN/tls/key.pem" > /dev/null
		taskset -c 0 $CG --callgrind-out-file="$RUN/cg.worker.%p" "$RUN/bin/worker" --portshare "https://+:$PORT/" \
			--socket "$RUN/c.sock" > "$RUN/worker.log" 2>&1 &
		WORKER=$!
	fi
	wait_for "$RUN/worker.log" "ready" 60
}

dumped() { # dumped NAME PID: the instructions of the dump callgrind_control -d asked for
	i=0
	while [ ! -s "$RUN/cg.$1.$2.1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	awk '/^summary:/ { print $2 }' "$RUN/cg.$1.$2.1"
}

OUT="$RUN/instructions.md"
{
	echo "## instructions per request over TLS 1.3, $(date '+%Y-%m-%d %H:%M %Z'), portshared built $(date -r build/bin/portshared '+%Y-%m-%d %H:%M')"
	echo
	echo "callgrind (Ir) over ${SECONDS_PER_CASE} s of \`wrk -t1 -c1\` per case, counted from callgrind_control -z to -d after a warm-up; ECDSA P-256 certificate, TLS_AES_128_GCM_SHA256, X25519. direct-tls = \`worker --direct\` with GnuTLS; portshare-tls = portshared (handshake) + \`worker --portshare https://+:PORT/\` (records)."
	echo
	echo "| case | requests (direct-tls / portshare-tls) | direct-tls Ir/req | portshare-tls worker Ir/req | daemon Ir/req | portshare-tls total | portshare / direct |"
	echo "|---|---|---|---|---|---|---|"
} > "$OUT"

for case in "ka /13" "ka /1m" "close /13"; do
	kind=${case% *} path=${case#* }
	header="Accept: */*"
	[ "$kind" = close ] && header="Connection: close"
	line=""
	for system in direct-tls portshare-tls; do
		start "$system"
		url="https://127.0.0.1:$PORT$path"
		got=$(curl -s -o /dev/null --max-time 30 --cacert "$RUN/tls/cert.pem" -w '%{http_code}' -H "$header" "$url")
		[ "$got" = 200 ] || { echo "instructions.sh: $system $path: got '$got'" >&2; exit 1; }
		taskset -c 1 wrk -t1 -c1 -d2s -H "$header" "$url" > /dev/null
		callgrind_control -z "$WORKER" > /dev/null 2>&1
		[ -z "$DAEMON" ] || callgrind_control -z "$DAEMON" > /dev/null 2>&1
		n=$(taskset -c 1 wrk -t1 -c1 -d"${SECONDS_PER_CASE}s" -H "$header" "$url" | awk '/requests in/ { print $1 }')
		callgrind_control -d "$WORKER" > /dev/null 2>&1
		[ -z "$DAEMON" ] || callgrind_control -d "$DAEMON" > /dev/null 2>&1
		w=$(dumped worker "$WORKER") d=0
		[ -z "$DAEMON" ] || d=$(dumped daemon "$DAEMON")
		[ "${n:-0}" -gt 0 ] || { echo "instructions.sh: $system $path: wrk made no request" >&2; exit 1; }
		line="$line $n $w $d"
		stop_pid "$WORKER"; WORKER=""
		stop_pid "$DAEMON"; DAEMON=""
	done
	echo "$line" | awk -v c="$kind $path" '{
		dn = $1; dw = $2 / $1; pn = $4; pw = $5 / $4; pd = $6 / $4
		printf "| %s | %d / %d | %.0f | %.0f | %.0f | %.0f | %.2fx |\n", c, dn, pn, dw, pw, pd, pw + pd, (pw + pd) / dw
	}' >> "$OUT"
done
echo >> "$OUT"
cat "$OUT"
echo "instructions.sh: callgrind files in $RUN (callgrind_annotate --inclusive=yes FILE)" >&2
