# syscalls.sh: syscalls per request in portshared and in its worker (strace -c over a fixed number of requests, and the daemon's steady state under wrk), with delegation on and off, and delegated keep-alive over TLS.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
KA_N=${KA_N:-20000}       # scenario (1)-style: requests on one keep-alive connection
CLOSE_N=${CLOSE_N:-2000}  # scenario (3)-style: one connection per request
STEADY_MIN=100000         # steady state: at least this many wrk requests under strace
TLS_SECONDS=${TLS_SECONDS:-10} # over TLS: wrk -c1 for this long, both processes traced
PORT=${BENCH_PORT_BASE:-18300}
PORT=$((PORT + 20))

for t in strace wrk taskset curl certtool; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "syscalls.sh: $t is missing (apt-get install -y strace wrk util-linux curl gnutls-bin)" >&2
		exit 1
	}
done
RUN=$(mktemp -d /tmp/portshare-syscalls.XXXXXX)
mkdir -p "$RUN/state"
. bench/prepare.sh
bench_prepare "$RUN"
bench_cert "$RUN"

DAEMON="" WORKER="" TRACERS=""
stop_pid() { # stop one process we started, by its PID
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	for p in $TRACERS; do kill -INT "$p" 2>/dev/null || true; done
	stop_pid "$WORKER"
	stop_pid "$DAEMON"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

wait_for() { # wait_for FILE PATTERN SECONDS
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le $(($3 * 20)) ] || { echo "syscalls.sh: no '$2' in $1 after $3 s" >&2; cat "$1" >&2; exit 1; }
		sleep 0.05
	done
}

taskset -c 0 "$RUN/bin/portshared" --socket "$RUN/c.sock" --state-dir "$RUN/state" \
	--config "$RUN/portshared.conf" > "$RUN/daemon.log" 2>&1 &
DAEMON=$!
wait_for "$RUN/daemon.log" "ready" 10

start_worker() { # start_worker DELEGATION(1|0|tls)
	if [ "$1" = tls ]; then
		"$RUN/bin/portsharectl" --socket "$RUN/c.sock" sslcert add --ipport "0.0.0.0:$((PORT + 1))" \
			--cert "$RUN/tls/cert.pem" --key "$RUN/tls/key.pem" > /dev/null
		taskset -c 0 "$RUN/bin/worker" --portshare "https://+:$((PORT + 1))/" \
			--socket "$RUN/c.sock" > "$RUN/worker.log" 2>&1 &
		WORKER=$!
		wait_for "$RUN/worker.log" "ready portshare" 10
		got=$(curl -s -o /dev/null --max-time 10 --cacert "$RUN/tls/cert.pem" -w '%{http_code} %{size_download}' \
			"https://127.0.0.1:$((PORT + 1))/13")
		[ "$got" = "200 13" ] || { echo "syscalls.sh: TLS check failed: got '$got'" >&2; exit 1; }
		return
	fi
	if [ "$1" = 0 ]; then
		PORTSHARE_DELEGATION=0 taskset -c 0 "$RUN/bin/worker" --portshare "http://+:$PORT/" \
			--socket "$RUN/c.sock" > "$RUN/worker.log" 2>&1 &
	else
		taskset -c 0 "$RUN/bin/worker" --portshare "http://+:$PORT/" \
			--socket "$RUN/c.sock" > "$RUN/worker.log" 2>&1 &
	fi
	WORKER=$!
	wait_for "$RUN/worker.log" "ready portshare" 10
	got=$(curl -s -o /dev/null --max-time 10 -w '%{http_code} %{size_download}' "http://127.0.0.1:$PORT/13")
	[ "$got" = "200 13" ] || { echo "syscalls.sh: check failed: got '$got'" >&2; exit 1; }
}

trace() { # trace PID OUT: strace -c attached to PID (all threads); sets TRACER
	strace -c -f -p "$1" -o "$2" 2> "$2.err" &
	TRACER=$!
	TRACERS="$TRACERS $TRACER"
	wait_for "$2.err" "attached" 10
}
untrace() { # untrace TRACER: detach, which writes the summary
	kill -INT "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	TRACERS=$(echo "$TRACERS" | sed "s/ $1\b//")
}
# strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall; then a "total" row
total_calls() { awk '$NF != "total" && $4 ~ /^[0-9]+$/ { s += $4 } END { print s + 0 }' "$1"; }
per() { awk -v a="${1:-0}" -v n="$2" -v f="$3" 'BEGIN { printf f, a / n }'; } # per CALLS N FORMAT
top_calls() { # top_calls FILE N: "name calls/request" for the 4 most frequent
	awk -v n="$2" '$NF != "total" && $4 ~ /^[0-9]+$/ { print $4, $NF }' "$1" | sort -rn | head -4 |
		awk -v n="$2" '{ printf "%s%s %.3g", sep, $2, $1 / n; sep = ", " }'
}

OUT="$RUN/syscalls.md"
{
	echo "## syscalls per request, $(date '+%Y-%m-%d %H:%M %Z'), $(nproc) vCPU, kernel $(uname -r), portshared built $(date -r "$BUILD_DIR/bin/portshared" '+%Y-%m-%d %H:%M')"
	echo
	echo "strace -c -f attached to each process; requests from bench/client.c (exact counts) or wrk (steady state); daemon and worker on CPU 0, client on CPU 1. Delegation off = the worker started with PORTSHARE_DELEGATION=0."
	echo
	echo "| delegation | load | requests | daemon calls/request | worker calls/request | daemon's most frequent (per request) | worker's most frequent (per request) |"
	echo "|---|---|---|---|---|---|---|"
} > "$OUT"

for deleg in 1 0; do
	label=on; [ "$deleg" = 1 ] || label=off
	start_worker "$deleg"
	# warm: the first connection and its handoff are not part of the count
	taskset -c 1 "$RUN/bin/client" --port "$PORT" --count 100 --expect 13 > /dev/null
	for kind in ka close; do
		if [ "$kind" = ka ]; then n=$KA_N; args=""; what="(1) $n keep-alive requests, 1 connection"
		else n=$CLOSE_N; args="--close"; what="(3) $n connections, Connection: close"; fi
		trace "$DAEMON" "$RUN/d-$label-$kind.txt"; td=$TRACER
		trace "$WORKER" "$RUN/w-$label-$kind.txt"; tw=$TRACER
		taskset -c 1 timeout 300 "$RUN/bin/client" --port "$PORT" --count "$n" --expect 13 $args > "$RUN/client-$label-$kind.log"
		untrace "$tw"; untrace "$td"
		dc=$(total_calls "$RUN/d-$label-$kind.txt"); wc=$(total_calls "$RUN/w-$label-$kind.txt")
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$what" "$n" \
			"$(per "$dc" "$n" %.4f)" "$(per "$wc" "$n" %.3f)" \
			"$(top_calls "$RUN/d-$label-$kind.txt" "$n")" "$(top_calls "$RUN/w-$label-$kind.txt" "$n")" >> "$OUT"
	done
	# steady state: the daemon alone under strace while wrk sends at least STEADY_MIN requests
	trace "$DAEMON" "$RUN/d-$label-steady.txt"; td=$TRACER
	total=0 runs=0
	while [ "$total" -lt "$STEADY_MIN" ] && [ "$runs" -lt 6 ]; do
		got=$(taskset -c 1 wrk -t1 -c50 -d10s "http://127.0.0.1:$PORT/13" | awk '/requests in/ { print $1 }')
		total=$((total + ${got:-0})); runs=$((runs + 1))
	done
	untrace "$td"
	dc=$(total_calls "$RUN/d-$label-steady.txt")
	printf '| %s | steady state: wrk -c50, %s run(s) of 10 s | %s | %s | (not traced) | %s | |\n' "$label" "$runs" "$total" \
		"$(per "$dc" "$total" %.5f)" "$(top_calls "$RUN/d-$label-steady.txt" "$total")" >> "$OUT"
	[ "$total" -ge "$STEADY_MIN" ] || echo "(steady state, delegation $label: only $total requests in $runs runs)" >> "$OUT"
	stop_pid "$WORKER"; WORKER=""
done

# delegated keep-alive over TLS: one connection (wrk -c1, so the request count is wrk's),
# the daemon and the worker traced; the handshake and handoff are counted too
start_worker tls
taskset -c 1 wrk -t1 -c1 -d1s "https://127.0.0.1:$((PORT + 1))/13" > /dev/null
trace "$DAEMON" "$RUN/d-tls-ka.txt"; td=$TRACER
trace "$WORKER" "$RUN/w-tls-ka.txt"; tw=$TRACER
n=$(taskset -c 1 wrk -t1 -c1 -d"${TLS_SECONDS}s" "https://127.0.0.1:$((PORT + 1))/13" | awk '/requests in/ { print $1 }')
untrace "$tw"; untrace "$td"
n=${n:-0}
[ "$n" -gt 0 ] || { echo "syscalls.sh: wrk over TLS made no request" >&2; exit 1; }
dc=$(total_calls "$RUN/d-tls-ka.txt"); wc=$(total_calls "$RUN/w-tls-ka.txt")
printf '| on | (t1) keep-alive over TLS 1.3, 1 connection, wrk %s s (its handshake included) | %s | %s | %s | %s | %s |\n' \
	"$TLS_SECONDS" "$n" "$(per "$dc" "$n" %.4f)" "$(per "$wc" "$n" %.3f)" \
	"$(top_calls "$RUN/d-tls-ka.txt" "$n")" "$(top_calls "$RUN/w-tls-ka.txt" "$n")" >> "$OUT"
stop_pid "$WORKER"; WORKER=""
echo >> "$OUT"
cat "$OUT"
echo "syscalls.sh: raw strace summaries in $RUN" >&2
