#!/bin/sh
# run.sh: replays one fuzz target's regressions, then fuzzes it for a while.
# usage: sh fuzz/run.sh BUILD_DIR TARGET SECONDS CORPUS_DIR
#   BUILD_DIR/fuzz/TARGET is the libFuzzer binary (make fuzz-build). Every file of
#   fuzz/regressions/TARGET/ runs once first; then the target fuzzes for SECONDS (0: runs
#   each input once, no fuzzing) with CORPUS_DIR as its working corpus (created; new inputs
#   go there) and, read only, fuzz/seeds/TARGET/ plus, for fuzz_head, the cases of
#   tests/corpus/smuggling.txt; with the tokens of fuzz/TARGET.dict when there is one.
#   A crash, leak, timeout or sanitizer report is saved to BUILD_DIR/crashes/TARGET/;
#   libFuzzer's output goes to BUILD_DIR/TARGET.log.
# Prints a last line "TARGET: N runs, N exec/s, Ns", or the log's end on a failure, and
# exits non-zero then. Run it from the top of the tree.
set -u
if [ $# -ne 4 ]; then
	echo "usage: sh fuzz/run.sh BUILD_DIR TARGET SECONDS CORPUS_DIR" >&2
	exit 2
fi
build=$1
target=$2
seconds=$3
corpus=$4
bin="$build/fuzz/$target"
crashes="$build/crashes/$target"
if [ ! -x "$bin" ]; then
	echo "$target: $bin is missing (run make fuzz-build)" >&2
	exit 2
fi
mkdir -p "$corpus" "$crashes"

# Regressions: a crasher found once stays a test forever.
set --
for f in fuzz/regressions/"$target"/*; do
	[ -f "$f" ] && set -- "$@" "$f"
done
if [ $# -gt 0 ]; then
	echo "$target: replaying $# regression input(s)"
	"$bin" -rss_limit_mb=2048 -timeout=10 "$@" || {
		echo "$target: a regression input fails again"
		exit 1
	}
fi

set -- "fuzz/seeds/$target"
if [ "$target" = fuzz_head ]; then
	smuggling="$build/seeds/smuggling"
	rm -rf "$smuggling"
	python3 fuzz/corpus_seeds.py "$smuggling" || exit 1
	[ -d "$smuggling" ] && set -- "$@" "$smuggling"
fi
# SECONDS 0: run every seed once, no fuzzing (libFuzzer reads 0 as "no time limit")
limit="-max_total_time=$seconds"
[ "$seconds" -eq 0 ] && limit="-runs=0"
dict=""
[ -f "fuzz/$target.dict" ] && dict="-dict=fuzz/$target.dict"
"$bin" "$limit" $dict -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$crashes/" "$corpus" "$@" >"$build/$target.log" 2>&1
rc=$?
stats=$(awk '/^stat::number_of_executed_units:/ { runs = $2 }
	/^stat::average_exec_per_sec:/ { eps = $2 }
	END { if (runs != "") printf "%s runs, %s exec/s", runs, eps }' "$build/$target.log")
if [ "$rc" -ne 0 ]; then
	tail -n 60 "$build/$target.log"
	echo "$target: FAILED (exit $rc; input saved in $crashes/, log $build/$target.log)"
	exit 1
fi
echo "$target: ${stats:-no stats}, ${seconds}s (log $build/$target.log)"
