#!/bin/bash
# run.sh BUILD_DIR - the operations tests (make ops-test): install and
# uninstall, the rockspec, the systemd units, metrics, non-root readers,
# bpftool, bash completion, --watch, the health log and the Debian packages. Root runs them all; others get the parts that need no root.
#
# Prints every suite's lines, then, last, "N passed, N failed, N skipped";
# exits 1 if anything failed, including a suite that died without its
# summary or that left a pin dir, namespace or test user behind.
set -u

usage() { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
[ $# -eq 1 ] && [ -d "$1" ] || usage

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$1" && pwd)
SUITES=(install rockspec systemd metrics readers bpftool completion watch journal deb)
OUT=$(mktemp /tmp/connaudit-ops-run.XXXXXX) || exit 1
trap 'rm -f "$OUT"' EXIT

PASSED=0
FAILED=0
SKIPPED=0

# run_suite NAME: run tests/ops/NAME.sh, show its lines, add its summary to
# the totals. No summary, or an exit status that disagrees with it, is one
# more failure.
run_suite() {
	local rc re='^([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$'

	echo "== $1"
	"$HERE/$1.sh" "$BUILD" > "$OUT" 2>&1
	rc=$?
	cat "$OUT"
	if [[ $(tail -n 1 "$OUT") =~ $re ]]; then
		PASSED=$((PASSED + BASH_REMATCH[1]))
		FAILED=$((FAILED + BASH_REMATCH[2]))
		SKIPPED=$((SKIPPED + BASH_REMATCH[3]))
		[ "$rc" -eq 0 ] || [ "${BASH_REMATCH[2]}" -ne 0 ] && return
	fi
	echo "not ok - suite $1 exited with status $rc"
	FAILED=$((FAILED + 1))
}

# What the suites create and must remove: pin dirs, namespaces, users.
traces() {
	ls -d /sys/fs/bpf/connaudit-ops-* 2>/dev/null
	ip netns list 2>/dev/null | grep -o '^connaudit-ops-[^ ]*'
	grep -o '^caops[0-9]*[mo]\?:' /etc/passwd /etc/group 2>/dev/null
}

before=$(traces)
for s in "${SUITES[@]}"; do
	run_suite "$s"
done
left=$(comm -13 <(sort <<< "$before") <(traces | sort))
if [ -n "$left" ]; then
	echo "not ok - the suites left behind:"
	sed 's/^/    /' <<< "$left"
	FAILED=$((FAILED + 1))
else
	echo "ok - no pin dir, namespace or test user left behind"
	PASSED=$((PASSED + 1))
fi

echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
