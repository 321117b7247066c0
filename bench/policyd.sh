#!/bin/bash
# bench/policyd.sh BUILD_DIR - `connaudit policyd` under load: answers per
# second and the latency of one request over 1 connection and over 32
# (plus 8 stalled connections and a few broken requests, which must slow no
# one), with two rules and an auditor loaded in a namespace of its own.
# BENCH_QUICK=1 runs each for 0.3 s instead of 3 s. Needs root.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: [BENCH_QUICK=1] $0 BUILD_DIR" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
. "$SRC/tests/lua/live.sh"
[ "$(id -u)" -eq 0 ] || { echo "bench/policyd.sh: needs root" >&2; exit 1; }

SECONDS_EACH=3
[ "${BENCH_QUICK:-0}" = 1 ] && SECONDS_EACH=0.3
TMP=$(mktemp -d /tmp/connaudit-benchpd.XXXXXX)
PID=
cleanup() {
	[ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || :; }
	live_cleanup
	rm -rf "$TMP"
}
live_init "connaudit-benchpd-$$" "$BUILD"
trap cleanup EXIT
live_netns_add
live_load

printf 'SMTP /32,/128 1000\nSMTP /24,/64 1000\n' > "$TMP/rules"
nsenter --net=/run/netns/"$LIVE_NS" "$BUILD/connaudit" policyd --rules "$TMP/rules" \
	--pin-dir "$LIVE_PIN_DIR" --config /dev/null --listen "unix:$TMP/sock" 2> "$TMP/log" &
PID=$!
for _ in $(seq 100); do [ -S "$TMP/sock" ] && break; sleep 0.05; done

echo "connaudit policyd, 2 rules, $SECONDS_EACH s a run ($(nproc) CPUs):"
"$BUILD/bench/policyd" --conns 1 --seconds "$SECONDS_EACH" "unix:$TMP/sock"
"$BUILD/bench/policyd" --conns 32 --seconds "$SECONDS_EACH" --stall 8 --bad "unix:$TMP/sock"
if grep -q "counts are" "$TMP/log"; then
	echo "bench/policyd.sh: the server could not count:" >&2
	cat "$TMP/log" >&2
	exit 1
fi
