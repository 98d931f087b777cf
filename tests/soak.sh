#!/bin/sh
# soak.sh: portshare's soak test: a bounded run of load, killed apps, reloads and an upgrade (loopback only).
#
# usage: sh tests/soak.sh [--minutes N] [--keep]
#   --minutes N  total time (default 10; decimals allowed; 2 is a quick run)
#   --keep       keep the temp dir (logs, counts) and print where it is
#
# Not part of `make test`. It builds what it needs (make all), starts its own portshared
# (temp socket, state dir and config, --threads 2) and three apps on one port:
# portshare-hello at /a/ and /b/, portshare-upload-echo at /up/. Then three identical
# phases, a third of the time each. During each phase:
#   - build/tests/loadclient (tests/soak/loadclient.c) runs keep-alive, close and
#     pipelined connections to all three apps (GETs, POSTs with bodies, some chunked) and
#     counts every request as answered (by status class), closed cleanly (a reused
#     keep-alive connection closed before any byte of the answer, or requests behind a
#     "Connection: close" answer) or lost (reset, timeout, truncated, wrong body);
#   - wrk (tests/soak/wrk.lua) loads the three apps at the same time;
#   - every few seconds one app is killed (SIGKILL, by its PID) and restarted, or the
#     config is rewritten with a changed limit and the daemon reloaded (SIGHUP);
#   - phase 1 only: the daemon is upgraded once (portshared --upgrade, same --socket,
#     --state-dir and --config); the new PID is tracked from then on, and the old daemon
#     must exit 0 by itself. A portshared without --upgrade fails the soak at that step.
# Afterwards it checks, and prints in a summary table: no request lost; no connection
# refused; every error the clients saw (statuses by code, resets, closes) matched by the
# daemon's error-log lines of the same kind; the daemon's fd count back to its start value
# after each phase (load stopped, connections drained); VmRSS growth from the end of
# phase 2 to the end of phase 3 at most 512 KiB; every reload applied.
# Everything it starts is tracked by PID and stopped on exit; the temp dir is removed.
# Exit status: 0 only if every check holds.

set -u

MINUTES=10
KEEP=0
EVENT_EVERY=3     # seconds between two events (an app killed, or a reload)
SETTLE=5          # seconds of each phase not under load: start, drain, measure
LC_CONNS=16       # loadclient's concurrent connections
WRK_THREADS=2
WRK_CONNS=16
DRAIN_WAIT=20     # seconds the daemon's fds may take to come back after a phase
OLD_EXIT_WAIT=30  # seconds the old daemon may take to finish after the upgrade
RSS_GROWTH_MAX=512

usage() {
	echo "usage: sh tests/soak.sh [--minutes N] [--keep]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--minutes) [ $# -ge 2 ] || usage; MINUTES=$2; shift ;;
	--keep) KEEP=1 ;;
	*) usage ;;
	esac
	shift
done
TOTAL=$(awk -v m="$MINUTES" 'BEGIN { if (m + 0 <= 0) exit 1; printf "%d", m * 60 }') || usage
PHASE=$((TOTAL / 3))
LOAD=$((PHASE - SETTLE))
[ "$LOAD" -ge 8 ] || { echo "soak.sh: --minutes $MINUTES leaves no time for load" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
BUILD=${PORTSHARE_BUILD:-build}
BIN=$ROOT/$BUILD/bin

say() {
	printf 'soak: %s\n' "$*"
}

# ---------------------------------------------------------------- processes

# Every process the soak starts has its PID in one of these; cleanup stops them.
DAEMON=""
OLD_DAEMON=""
PID_a=""
PID_b=""
PID_up=""
LC_PID=""
WRK_PID=""
RUN=""

# alive PID: the process exists and is not a zombie
alive() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

# stop PID: SIGTERM, up to 5 s, then SIGKILL; reaps it
stop() {
	local tries=0
	alive "$1" || { wait "$1" 2>/dev/null; return 0; }
	kill -TERM "$1" 2>/dev/null
	while alive "$1" && [ $tries -lt 50 ]; do
		sleep 0.1
		tries=$((tries + 1))
	done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

cleanup() {
	local p
	for p in "$LC_PID" "$WRK_PID" "$PID_a" "$PID_b" "$PID_up"; do
		[ -n "$p" ] && stop "$p"
	done
	for p in "$DAEMON" "$OLD_DAEMON"; do
		[ -n "$p" ] && stop "$p"
	done
	if [ -n "$RUN" ]; then
		if [ "$KEEP" = 1 ]; then
			say "kept $RUN"
		else
			rm -rf "$RUN"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail_now() {
	local f
	say "FAIL: $*"
	for f in "$RUN"/daemon-*.log; do
		[ -f "$f" ] || continue
		say "last lines of $(basename "$f"):"
		tail -n 15 "$f" | sed 's/^/    /'
	done
	exit 1
}

# wait_line FILE REGEX SECONDS PID: until FILE has a line matching REGEX; false if PID
# exits first or time runs out
wait_line() {
	local tries=0
	while [ $tries -lt $(($3 * 10)) ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		alive "$4" || { grep -q "$2" "$1" 2>/dev/null; return; }
		sleep 0.1
		tries=$((tries + 1))
	done
	return 1
}

# wait_exit PID SECONDS: reaps PID once it exits; false if it is still running after SECONDS
wait_exit() {
	local tries=0
	while alive "$1" && [ $tries -lt $(($2 * 10)) ]; do
		sleep 0.1
		tries=$((tries + 1))
	done
	alive "$1" && return 1
	return 0
}

# event TEXT: a line in events.log (kept with --keep), with the time
event() {
	echo "$(date +%T) $*" >> "$RUN/events.log"
}

sleep_until() {
	local left
	left=$(($1 - $(date +%s)))
	[ "$left" -gt 0 ] && sleep "$left"
	return 0
}

fd_count() {
	ls "/proc/$1/fd" 2>/dev/null | wc -l
}

rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# ---------------------------------------------------------------- daemon and apps

HEADER_WAIT=60
write_config() {
	{
		echo "# portshare soak config: rewritten with a changed HeaderWait before each reload"
		echo "listen 127.0.0.1"
		echo "ShutdownGrace 5"
		echo "HeaderWait $HEADER_WAIT"
	} > "$CONF.tmp" && mv "$CONF.tmp" "$CONF"
}

# start_daemon N [--upgrade]: portshared logging to daemon-N.log; waits for "ready"
start_daemon() {
	local log
	log="$RUN/daemon-$1.log"
	shift
	"$BIN/portshared" "$@" --socket "$SOCK" --state-dir "$RUN/state" --config "$CONF" --threads 2 \
		</dev/null >/dev/null 2>>"$log" &
	DAEMON=$!
	wait_line "$log" 'portshared: ready' 15 "$DAEMON" ||
		fail_now "portshared $* (pid $DAEMON) did not get ready within 15 s"
}

# start_app a|b|up: the app of that name, waiting for its ready line
start_app() {
	local name=$1 pid
	case "$name" in
	a) set -- "$BIN/portshare-hello" --url "http://+:$PORT/a/" --queue soak-a --text soak-A ;;
	b) set -- "$BIN/portshare-hello" --url "http://+:$PORT/b/" --queue soak-b --text soak-B ;;
	up) set -- "$BIN/portshare-upload-echo" --url "http://+:$PORT/up/" --queue soak-up ;;
	esac
	"$@" --socket "$SOCK" </dev/null >"$RUN/app-$name.out" 2>>"$RUN/app-$name.err" &
	pid=$!
	eval "PID_$name=$pid"
	wait_line "$RUN/app-$name.out" 'ready queue=' 10 "$pid" ||
		fail_now "app $name (pid $pid) did not get ready: $(tail -n 3 "$RUN/app-$name.err")"
}

KILLS=0
APP_TURN=0
kill_and_restart_app() {
	local name pid
	case $((APP_TURN % 3)) in
	0) name=a ;;
	1) name=b ;;
	*) name=up ;;
	esac
	APP_TURN=$((APP_TURN + 1))
	pid=$(eval echo "\$PID_$name")
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	KILLS=$((KILLS + 1))
	start_app "$name"
	event "killed app $name (pid $pid), restarted as pid $(eval echo "\$PID_$name")"
}

RELOADS=0
reload_daemon() {
	HEADER_WAIT=$((HEADER_WAIT == 60 ? 61 : 60))
	write_config
	kill -HUP "$DAEMON"
	RELOADS=$((RELOADS + 1))
	event "reload: HeaderWait $HEADER_WAIT, SIGHUP to pid $DAEMON"
}

UPGRADED=""
upgrade_daemon() {
	if ! "$BIN/portshared" --help 2>&1 | grep -q -- '--upgrade'; then
		fail_now "phase 1: cannot upgrade the daemon: '$BUILD/bin/portshared --help' does not" \
			"mention --upgrade, so this build cannot take over a running daemon (DESIGN §10);" \
			"the soak needs it"
	fi
	OLD_DAEMON=$DAEMON
	start_daemon 2 --upgrade
	UPGRADED=$DAEMON
	event "upgrade: pid $DAEMON took over from pid $OLD_DAEMON"
	say "phase 1: upgraded: new portshared pid $DAEMON took over from pid $OLD_DAEMON"
}

OLD_RC=""
# reap_old_daemon: once the old daemon has exited by itself, keeps its exit status
reap_old_daemon() {
	[ -n "$OLD_DAEMON" ] || return 0
	alive "$OLD_DAEMON" && return 0
	wait "$OLD_DAEMON"
	OLD_RC=$?
	say "phase 1: the old portshared (pid $OLD_DAEMON) exited with status $OLD_RC"
	OLD_DAEMON=""
}

# ---------------------------------------------------------------- one phase

# log_marks: "file lines" for every daemon log, where the next phase's lines begin
log_marks() {
	local f
	for f in "$RUN"/daemon-*.log; do
		echo "$f $(wc -l < "$f")"
	done
}

# phase_log N MARKS: the daemon log lines written since MARKS
phase_log() {
	local f from
	for f in "$RUN"/daemon-*.log; do
		from=$(echo "$2" | awk -v f="$f" '$1 == f { print $2 }')
		tail -n +$((${from:-0} + 1)) "$f"
	done
}

run_phase() {
	local n=$1 marks kills0=$KILLS reloads0=$RELOADS t0 ticks upgrade_tick tick tries fd_end rss
	marks=$(log_marks)
	say "phase $n: $LOAD s of load (loadclient and wrk), an app killed or a reload every $EVENT_EVERY s$(
		[ "$n" = 1 ] && echo ', one upgrade')"
	"$ROOT/$BUILD/tests/loadclient" --port "$PORT" --seconds "$LOAD" --conns "$LC_CONNS" \
		--hello /a/ soak-A --hello /b/ soak-B --echo /up/ \
		</dev/null >"$RUN/phase$n.lc" 2>"$RUN/phase$n.lc.err" &
	LC_PID=$!
	wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${LOAD}s" --timeout 10s -s "$ROOT/tests/soak/wrk.lua" \
		"http://127.0.0.1:$PORT/" </dev/null >"$RUN/phase$n.wrk" 2>&1 &
	WRK_PID=$!

	t0=$(date +%s)
	ticks=$(((LOAD - 4) / EVENT_EVERY))
	[ "$ticks" -ge 2 ] || ticks=2
	upgrade_tick=$(((ticks + 1) / 2))
	tick=1
	while [ $tick -le $ticks ]; do
		sleep_until $((t0 + tick * EVENT_EVERY))
		[ "$(date +%s)" -lt $((t0 + LOAD - 2)) ] || break # events ran late: the load is ending
		alive "$DAEMON" || fail_now "phase $n: portshared (pid $DAEMON) died"
		if [ $((tick % 2)) = 1 ]; then
			kill_and_restart_app
		else
			reload_daemon
		fi
		[ "$n" = 1 ] && [ $tick = $upgrade_tick ] && upgrade_daemon
		reap_old_daemon
		tick=$((tick + 1))
	done

	wait_exit "$LC_PID" $((LOAD + 60)) || fail_now "phase $n: loadclient did not finish"
	wait "$LC_PID"
	LC_PID=""
	wait_exit "$WRK_PID" $((LOAD + 30)) || fail_now "phase $n: wrk did not finish"
	wait "$WRK_PID"
	WRK_PID=""
	if [ -n "$OLD_DAEMON" ]; then
		wait_exit "$OLD_DAEMON" "$OLD_EXIT_WAIT" || say "phase $n: the old portshared (pid $OLD_DAEMON)" \
			"is still running $OLD_EXIT_WAIT s after the load ended"
		reap_old_daemon
	fi
	alive "$DAEMON" || fail_now "phase $n: portshared (pid $DAEMON) died"

	# the load has stopped: connections drain (lingering close, idle returns)
	tries=0
	while [ "$(fd_count "$DAEMON")" != "$FD_START" ] && [ $tries -lt $((DRAIN_WAIT * 5)) ]; do
		sleep 0.2
		tries=$((tries + 1))
	done
	fd_end=$(fd_count "$DAEMON")
	rss=$(rss_kib "$DAEMON")
	phase_log "$n" "$marks" > "$RUN/phase$n.log"
	echo "phase=$n pid=$DAEMON fds=$fd_end rss=$rss kills=$((KILLS - kills0))" \
		"reloads=$((RELOADS - reloads0))" > "$RUN/phase$n.meta"
	say "phase $n: done; portshared pid $DAEMON: $fd_end fds (start $FD_START), VmRSS $rss KiB"
	sed 's/^/    /' "$RUN/phase$n.lc"
	grep '^wrk requests=' "$RUN/phase$n.wrk" | sed 's/^/    /'
}

# explain_losses N: phase N's lost requests (the first few), each with the daemon's
# error-log lines for that client address
explain_losses() {
	local line addr
	grep '^loadclient: lost' "$RUN/phase$1.lc.err" | head -n 8 | while read -r line; do
		echo "    $line"
		addr=$(echo "$line" | sed -n 's/.* from \([0-9.]*:[0-9]*\) .*/\1/p')
		[ -n "$addr" ] || continue
		grep " error-log $addr " "$RUN/phase$1.log" | sed 's/^/      daemon: /'
	done
}

# ---------------------------------------------------------------- checks

# account N: matches the errors the clients saw in phase N against the daemon's
# error-log lines of that phase, kind by kind; prints one line per kind and, last,
# "unaccounted=N". A client-side error no daemon line explains is unaccounted. Statuses
# count per answer; resets and broken closes per connection, as the daemon logs them.
account() {
	awk -v lcline="$(grep '^loadclient ' "$RUN/phase$1.lc")" \
		-v wrkline="$(grep '^wrk requests=' "$RUN/phase$1.wrk")" '
	function kv(line, arr,    parts, n, i, p) {
		n = split(line, parts, " ")
		for (i = 2; i <= n; i++)
			if ((p = index(parts[i], "=")) > 0)
				arr[substr(parts[i], 1, p - 1)] = substr(parts[i], p + 1) + 0
	}
	function report(kind, lc, wrk, daemon,    miss) {
		if (lc + wrk + daemon == 0)
			return
		miss = lc + wrk - daemon
		if (miss < 0)
			miss = 0
		unaccounted += miss
		printf "    %-22s clients %6d (loadclient %d, wrk %d)  daemon error-log %6d%s\n", kind,
		       lc + wrk, lc, wrk, daemon, miss ? sprintf("  UNACCOUNTED %d", miss) : ""
	}
	BEGIN { kv(lcline, L); kv(wrkline, W) }
	/ error-log / {
		if ($5 != "-")
			D["status " $5]++
		else if ($0 ~ /Timer_IdleConnection|HTTP\/2 preface|HTTP\/0\.9/)
			closes++
		else
			aborts++
	}
	END {
		for (k in L) if (k ~ /^status_/) S["status " substr(k, 8)] = 1
		for (k in W) if (k ~ /^status_/) S["status " substr(k, 8)] = 1
		for (k in D) S[k] = 1
		for (k in S) {
			code = substr(k, 8)
			report(k, L["status_" code], W["status_" code], D[k])
		}
		# resets and unexpected closes; wrk cannot tell them apart (both are read
		# errors), so it gets the daemon lines the loadclient did not use
		lc_reset = L["reset_conns"]
		lc_close = L["broken_closes"]
		report("connection reset", lc_reset, 0, aborts)
		report("connection closed", lc_close, 0, closes)
		left = (aborts > lc_reset ? aborts - lc_reset : 0) + (closes > lc_close ? closes - lc_close : 0)
		report("wrk read/write error", 0, W["read"] + W["write"], left)
		report("timeout", L["lost_timeout"], W["timeout"], 0)
		report("connect failed", L["connect_failed"], W["connect"], 0)
		report("wrong response", L["lost_badbody"] + L["bad_extra"], 0, 0)
		print "unaccounted=" unaccounted + 0
	}' "$RUN/phase$1.log"
}

# field FILE KEY: the value of KEY=VALUE in the one-line FILE (0 if absent)
field() {
	local v
	v=$(tr ' ' '\n' < "$1" | sed -n "s/^$2=//p" | head -n 1)
	echo "${v:-0}"
}

CHECKS_FAILED=0
check() {
	if [ "$1" = 0 ]; then
		printf '  ok    %s\n' "$2"
	else
		printf '  FAIL  %s\n' "$2"
		CHECKS_FAILED=$((CHECKS_FAILED + 1))
	fi
}

# ---------------------------------------------------------------- main

command -v wrk >/dev/null 2>&1 || { echo "soak.sh: wrk is missing: sh scripts/deps.sh (as root) installs it" >&2; exit 2; }
command -v python3 >/dev/null 2>&1 || { echo "soak.sh: python3 is missing: sh scripts/deps.sh" >&2; exit 2; }
say "building ($BUILD)"
make --no-print-directory -s all BUILD="$BUILD" >/dev/null || { echo "soak.sh: make all failed" >&2; exit 2; }

RUN=$(mktemp -d "${TMPDIR:-/tmp}/portshare-soak.XXXXXX") || exit 2
mkdir "$RUN/state"
SOCK=$RUN/control.sock
CONF=$RUN/portshared.conf
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_config
ulimit -n "$(ulimit -H -n)" 2>/dev/null

STARTED=$(date +%s)
say "$MINUTES minutes: 3 phases of $PHASE s ($LOAD s of load each), port $PORT, temp dir $RUN"
start_daemon 1
for a in a b up; do
	start_app "$a"
done
sleep 0.5
FD_START=$(fd_count "$DAEMON")
RSS_START=$(rss_kib "$DAEMON")
say "portshared pid $DAEMON ready with 3 apps: $FD_START fds, VmRSS $RSS_START KiB"

for n in 1 2 3; do
	run_phase "$n"
done

# ---- summary
say "summary (--minutes $MINUTES; $LOAD s of load per phase)"
printf '%-5s | %-45s | %-26s | %-15s | %-10s | %s\n' "" "loadclient" "wrk" "events" "daemon fds" "VmRSS"
printf '%-5s | %8s %8s %6s %6s %6s %6s | %9s %7s %8s | %5s %7s %1s | %4s %5s | %s\n' phase sent answered \
	4xx 5xx closed lost requests sockerr non-2xx kills reloads U start end KiB
for n in 1 2 3; do
	lc=$RUN/phase$n.lc
	grep '^wrk requests=' "$RUN/phase$n.wrk" > "$RUN/phase$n.wrkline"
	w=$RUN/phase$n.wrkline
	m=$RUN/phase$n.meta
	sockerr=$(($(field "$w" connect) + $(field "$w" read) + $(field "$w" write) + $(field "$w" timeout)))
	printf '%-5s | %8s %8s %6s %6s %6s %6s | %9s %7s %8s | %5s %7s %1s | %4s %5s | %s\n' "$n" \
		"$(field "$lc" sent)" "$(field "$lc" answered)" "$(field "$lc" 4xx)" "$(field "$lc" 5xx)" \
		"$(field "$lc" closed)" "$(field "$lc" lost)" "$(field "$w" requests)" "$sockerr" \
		"$(field "$w" non2xx)" "$(field "$m" kills)" "$(field "$m" reloads)" \
		"$([ "$n" = 1 ] && [ -n "$UPGRADED" ] && echo 1 || echo -)" "$FD_START" "$(field "$m" fds)" \
		"$(field "$m" rss)"
done
echo "(U: daemon upgraded in that phase; closed: closed cleanly, HTTP lets the client retry)"

say "errors the clients saw, matched against the daemon's error-log lines, per phase:"
for n in 1 2 3; do
	echo "  phase $n:"
	account "$n" > "$RUN/phase$n.account"
	grep -v '^unaccounted=' "$RUN/phase$n.account"
	explain_losses "$n"
	lc=$RUN/phase$n.lc
	echo "    not errors: closed cleanly $(field "$lc" closed_idle) (reused connection closed while idle)" \
		"+ $(field "$lc" closed_after_close) (behind a Connection: close answer);" \
		"idle connections closed by the server $(field "$lc" idle_closes)"
done

say "checks:"
for n in 1 2 3; do
	lc=$RUN/phase$n.lc
	sent=$(field "$lc" sent)
	sum=$(($(field "$lc" answered) + $(field "$lc" closed) + $(field "$lc" lost)))
	check "$([ "$sent" -gt 0 ] && [ "$(field "$RUN/phase$n.wrkline" requests)" -gt 0 ]; echo $?)" \
		"phase $n: load ran (loadclient sent $sent, wrk $(field "$RUN/phase$n.wrkline" requests) requests)"
	check "$([ "$sum" = "$sent" ]; echo $?)" "phase $n: every request counted once (answered + closed + lost = $sum of $sent sent)"
	check "$([ "$(field "$lc" lost)" = 0 ]; echo $?)" "phase $n: loadclient lost $(field "$lc" lost) requests"
	refused=$(($(field "$lc" connect_failed) + $(field "$RUN/phase$n.wrkline" connect)))
	check "$([ "$refused" = 0 ]; echo $?)" "phase $n: $refused connections refused or failed"
	un=$(field "$RUN/phase$n.account" unaccounted)
	check "$([ "$un" = 0 ]; echo $?)" "phase $n: $un client-side errors not accounted for by a daemon error-log line"
	fds=$(field "$RUN/phase$n.meta" fds)
	check "$([ "$fds" = "$FD_START" ]; echo $?)" "phase $n: daemon fds after the phase $fds, at start $FD_START"
	applied=$(grep -c 'portshared: reloaded' "$RUN/phase$n.log")
	refusedr=$(grep -c 'reload refused' "$RUN/phase$n.log")
	want=$(field "$RUN/phase$n.meta" reloads)
	check "$([ "$applied" = "$want" ] && [ "$refusedr" = 0 ]; echo $?)" \
		"phase $n: reloads applied $applied of $want sent ($refusedr refused)"
done
check "$([ -n "$UPGRADED" ]; echo $?)" "phase 1: daemon upgraded (new pid ${UPGRADED:-none})"
check "$([ "$OLD_RC" = 0 ]; echo $?)" "phase 1: the old daemon exited by itself with status ${OLD_RC:-(still running)}"
rss2=$(field "$RUN/phase2.meta" rss)
rss3=$(field "$RUN/phase3.meta" rss)
check "$([ $((rss3 - rss2)) -le "$RSS_GROWTH_MAX" ]; echo $?)" \
	"VmRSS from the end of phase 2 to the end of phase 3: $rss2 -> $rss3 KiB ($((rss3 - rss2)) KiB, at most $RSS_GROWTH_MAX)"

ELAPSED=$(($(date +%s) - STARTED))
if [ "$CHECKS_FAILED" = 0 ]; then
	say "PASS ($ELAPSED s)"
	exit 0
fi
say "FAIL ($CHECKS_FAILED checks, $ELAPSED s)"
exit 1
