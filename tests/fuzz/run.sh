#!/bin/sh
# run.sh FUZZER RUNS - run a libFuzzer binary for RUNS executions, starting
# from its kept corpus tests/fuzz/corpus/<name of FUZZER>/. New inputs and
# crash files go to a scratch directory, never into the tree; on a finding
# that directory is kept and named. Exits non-zero on any finding.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 FUZZER RUNS" >&2
	exit 2
fi
fuzzer=$1
runs=$2
name=$(basename "$fuzzer")
seeds=$(cd "$(dirname "$0")" && pwd)/corpus/$name
if [ ! -x "$fuzzer" ] || [ ! -d "$seeds" ]; then
	echo "$0: need an executable $fuzzer and a seed corpus $seeds" >&2
	exit 2
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
mkdir "$scratch/corpus"

# libFuzzer adds new inputs to the first corpus directory only: the scratch
# one goes first, so the kept seeds are read and never written.
status=0
"$fuzzer" -runs="$runs" -timeout=10 -artifact_prefix="$scratch/" \
	"$scratch/corpus" "$seeds" >"$scratch/log" 2>&1 || status=$?

summary=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 executions in \2 s/p' \
	"$scratch/log")
if [ "$status" -ne 0 ] || [ -z "$summary" ]; then
	tail -n 40 "$scratch/log" >&2
	echo "$name: FINDING (exit $status); the log and inputs are kept in $scratch" >&2
	exit 1
fi
echo "$name: $summary, no finding"
rm -rf "$scratch"
