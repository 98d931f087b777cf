# accesslog.sh: what the access log and the metrics cost (bench/accesslog.py): AccessLog off and on side by side (nginx's access_log off and on for reference), the daemon's syscalls per request with both on, the worker's instructions per request (sh bench/accesslog.sh [--rounds N] [--seconds S]).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for t in wrk nginx strace valgrind callgrind_control taskset; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "accesslog.sh: $t is missing (apt-get install -y wrk nginx-light strace valgrind util-linux)" >&2
		exit 1
	}
done
RUN=$(mktemp -d /tmp/portshare-accesslog.XXXXXX)
. bench/prepare.sh
bench_prepare "$RUN"
echo "accesslog.sh: run in $RUN, portshared built $(date -r "$BUILD_DIR/bin/portshared" '+%Y-%m-%d %H:%M')" >&2
exec python3 bench/accesslog.py --run "$RUN" --port-base "${BENCH_PORT_BASE:-18400}" "$@"
