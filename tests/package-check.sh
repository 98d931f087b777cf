# package-check.sh: the check function of tests/package-test.sh and package-test-systemd.sh
# (sourced by both; package-test.sh copies it into its root too).
# check WHAT CMD...: runs CMD; one line, "ok   WHAT" or "FAIL WHAT" followed by the end of
# the command's output.
check() {
	what=$1
	shift
	if res=$("$@" 2>&1); then
		echo "ok   $what"
	else
		echo "FAIL $what"
		printf '%s\n' "$res" | sed -e 's/^/       /' | tail -n 20
	fi
}
