#!/bin/sh
# run.sh: runs portshare's unit tests (cmocka) and integration stories for each build dir; the last line is the total.
# usage: sh tests/run.sh [--unit-only] BUILD_DIR...
#   For each BUILD_DIR: every unit binary BUILD_DIR/tests/test_* (each cmocka test case counts once),
#   then every story tests/integration/NN-*.py and NNN-*.py in its own process (each story counts once), with
#   PORTSHARE_BUILD=BUILD_DIR (absolute). A story whose first line says PORTSHARE_DEFAULTS=1
#   runs a second time with PORTSHARE_DEFAULTS=1: in the default configuration (no listen
#   line: wildcard listeners), inside a network namespace of its own (harness.py).
#   A dir whose name contains "asan" runs with the sanitizer
#   options below, and any sanitizer report fails the test that produced it.
#   A dir whose name contains "fuzz" holds libFuzzer targets (make fuzz-build) instead: each
#   BUILD_DIR/fuzz/fuzz_* replays fuzz/regressions/ and then fuzzes for PORTSHARE_FUZZ_SECONDS
#   (default 60) under the same sanitizer options (fuzz/run.sh); each target counts once.
# Exit status: 0 when nothing failed.

unit_only=0
if [ "$1" = "--unit-only" ]; then
	unit_only=1
	shift
fi
if [ $# -eq 0 ]; then
	echo "usage: sh tests/run.sh [--unit-only] BUILD_DIR..." >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/portshare-run.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
# stories import harness.py: leave no __pycache__ in the source tree
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
sanitizer_marks='AddressSanitizer|LeakSanitizer|runtime error:'
fuzz_seconds=${PORTSHARE_FUZZ_SECONDS:-60}

now() {
	date +%s.%N
}

elapsed() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'
}

show_output() {
	sed -e 's/^/    /' "$1" | tail -n 200
}

# One cmocka binary: adds its PASSED/FAILED counts; a crash or a non-zero exit without a
# FAILED count counts as one failure.
run_unit() {
	bin=$1
	label=$2
	out="$work/unit.out"
	start=$(now)
	timeout 120 "$bin" >"$out" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\.$/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s), listed below:$/\1/p' "$out" |
		awk '{ s += $1 } END { print s + 0 }')
	why=""
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		why=", exit status $rc"
		[ "$rc" -eq 124 ] && why=", timed out after 120s"
	fi
	if [ "$sanitize" -eq 1 ] && grep -Eq "$sanitizer_marks" "$out"; then
		f=$((f + 1))
		why="$why, sanitizer report"
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		f=1
		why=", no test case ran"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -eq 0 ]; then
		echo "ok   $label: $p passed ($(elapsed "$start"))"
	else
		echo "FAIL $label: $p passed, $f failed$why ($(elapsed "$start"))"
		show_output "$out"
	fi
}

# One story: ok if it exits 0 (the harness itself fails a story on sanitizer reports).
# A third argument of 1 runs it in the default configuration.
run_story() {
	story=$1
	label=$2
	defaults=${3:-0}
	out="$work/story.out"
	start=$(now)
	PORTSHARE_DEFAULTS=$defaults PORTSHARE_BUILD="$build" timeout 120 python3 "$story" >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$sanitize" -eq 1 ] && grep -Eq "$sanitizer_marks" "$out"; then
		rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok   $label ($(elapsed "$start"))"
	else
		failed=$((failed + 1))
		why=""
		[ "$rc" -eq 124 ] && why=", timed out after 120s"
		echo "FAIL $label (exit $rc$why, $(elapsed "$start"))"
		show_output "$out"
	fi
}

# One fuzz target: ok if fuzz/run.sh exits 0 (no crash, leak, timeout) and printed no
# sanitizer report. Its working corpus is temporary; a crasher is kept in the build dir.
run_fuzz() {
	bin=$1
	label=$2
	out="$work/fuzz.out"
	start=$(now)
	target=$(basename "$bin")
	(cd "$here/.." && timeout $((fuzz_seconds + 300)) sh fuzz/run.sh "$build" "$target" "$fuzz_seconds" \
		"$work/corpus-$target") >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && grep -Eq "$sanitizer_marks" "$out"; then
		rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok   $label: $(sed -n "s/^$target: \([0-9]* runs, [0-9]* exec\/s\).*/\1/p" "$out" | tail -n 1) ($(elapsed "$start"))"
	else
		failed=$((failed + 1))
		echo "FAIL $label (exit $rc, $(elapsed "$start"))"
		show_output "$out"
	fi
}

for dir in "$@"; do
	name=$(basename "$dir")
	if [ ! -d "$dir" ]; then
		echo "FAIL $name: build dir $dir does not exist (run make first)"
		failed=$((failed + 1))
		continue
	fi
	build=$(cd "$dir" && pwd)
	sanitize=0
	case "$name" in
	*asan* | *fuzz*)
		sanitize=1
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
		export ASAN_OPTIONS UBSAN_OPTIONS
		;;
	*)
		unset ASAN_OPTIONS UBSAN_OPTIONS
		;;
	esac

	case "$name" in
	*fuzz*)
		found=0
		for bin in "$build"/fuzz/fuzz_*; do
			[ -f "$bin" ] && [ -x "$bin" ] || continue
			found=1
			run_fuzz "$bin" "$name/$(basename "$bin")"
		done
		if [ "$found" -eq 0 ]; then
			echo "FAIL $name: no fuzz target in $dir/fuzz (run make fuzz-build)"
			failed=$((failed + 1))
		fi
		continue
		;;
	esac

	for bin in "$build"/tests/test_*; do
		[ -f "$bin" ] && [ -x "$bin" ] || continue
		run_unit "$bin" "$name/$(basename "$bin")"
	done

	[ "$unit_only" -eq 1 ] && continue
	for story in "$here"/integration/[0-9][0-9]-*.py "$here"/integration/[0-9][0-9][0-9]-*.py; do
		[ -f "$story" ] || continue
		run_story "$story" "$name/$(basename "$story" .py)"
		if head -n 1 "$story" | grep -q 'PORTSHARE_DEFAULTS=1'; then
			run_story "$story" "$name/defaults/$(basename "$story" .py)" 1
		fi
	done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
