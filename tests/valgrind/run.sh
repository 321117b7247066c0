#!/bin/bash
# run.sh BUILD_DIR - memcheck over the unit tests and the connaudit command
# (make valgrind). Any memcheck error or definite leak fails the run.
#
#  a. The unit tests (BUILD_DIR/tests/test_*).
#  b. Root only: status, dump, count, top, metrics and unload, each under
#     memcheck, against an auditor loaded under a test-only pin dir and a
#     private namespace of live connections (tests/lua/live.sh). The load
#     itself runs plainly: valgrind 3.19 does not know the newer bpf()
#     commands and misreads libbpf's probes, so it proves nothing there.
#
# Prints "ok"/"not ok" per run and last "N passed, N failed".
set -u

usage() { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	usage
fi
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$1" && pwd)
VALGRIND=(valgrind --quiet --error-exitcode=99 --leak-check=full
	  --errors-for-leak-kinds=definite --show-leak-kinds=definite)
passed=0
failed=0

# shellcheck source=tests/lua/live.sh
. "$HERE/../lua/live.sh"
live_init "ca-valgrind-$$" "$BUILD"
TMP=$(mktemp -d /tmp/ca-valgrind.XXXXXX) || exit 1
cleanup() {
	live_cleanup
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check NAME STATUSES CMD...: run CMD (already under memcheck), which must
# exit with one of STATUSES ("0", "0 3", ...); memcheck's findings exit 99,
# which no command here uses.
check() {
	local name=$1 statuses=" $2 " rc

	shift 2
	"$@" >"$TMP/out" 2>&1
	rc=$?
	if [ "$rc" -eq 99 ] || grep -q '^==[0-9]*==' "$TMP/out"; then
		failed=$((failed + 1))
		echo "not ok - $name (memcheck)"
		sed 's/^/#   /' "$TMP/out"
	elif [[ $statuses != *" $rc "* ]]; then
		failed=$((failed + 1))
		echo "not ok - $name (exit $rc)"
		sed 's/^/#   /' "$TMP/out"
	else
		passed=$((passed + 1))
		echo "ok - $name"
	fi
}

unit_tests() {
	local t

	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] && check "$(basename "$t")" 0 "${VALGRIND[@]}" "$t"
	done
}

# vg_cli STATUSES ARGS...: the command on the test pin dir under memcheck,
# in the namespace (exit 3: a count printed but incomplete; 1: an error
# asked for).
vg_cli() {
	local statuses=$1

	shift
	check "connaudit $*" "$statuses" live_ns "${VALGRIND[@]}" "$BUILD/connaudit" "$@" \
		--pin-dir "$LIVE_PIN_DIR"
}

cli_smoke() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "ok - connaudit under memcheck # SKIP needs root"
		return
	fi
	live_netns_add fd00:ca::1 fd00:ca::2 || { check "make namespace" 0 false; return; }
	live_hold "$TMP/hold" 'listen=[::]:25' 'conn=127.0.1.1>127.0.0.1:25*3' \
		'conn=fd00:ca::2>[fd00:ca::1]:25*2' 'closewait=127.0.2.1>127.0.0.1:25' ||
		{ check "hold connections" 0 false; return; }
	live_load || { check "load" 0 false; return; }
	vg_cli "0 3" status
	vg_cli 0 status --json
	vg_cli "0 3" dump
	vg_cli "0 3" dump --json --all-netns
	vg_cli "0 3" count /24 SMTP --peer 127.0.1.9
	vg_cli "0 3" count /0 SMTP
	vg_cli "0 3" count /25,/56 SMTP --peer fd00:ca::2	# not aggregated: a scan
	vg_cli 2 count 10.0.0.0/8 NoSuchService	# an error path (usage)
	vg_cli "0 3" top SMTP
	vg_cli "0 3" metrics
	vg_cli 0 unload --quiet
	LIVE_LOADED=
}

unit_tests
cli_smoke
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
