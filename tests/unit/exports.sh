#!/usr/bin/env bash
# The shared library exports exactly the functions its public header
# declares: no internal helper leaks into the ABI.
# Usage: tests/unit/exports.sh LIBRARY.so HEADER
set -euo pipefail
lib=$1 header=$2
declared=$(grep -o '\bca_[a-z0-9_]*(' "$header" | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort -u)
if [ "$declared" != "$exported" ]; then
	echo "not ok - $lib exports differ from $header (< declared only, > exported only):"
	diff <(echo "$declared") <(echo "$exported") | grep '^[<>]'
	exit 1
fi
echo "ok - $lib exports the $(echo "$declared" | wc -l) functions of $header and nothing else"
