#!/bin/bash
# run.sh BUILD_DIR - the tests of the Lua module msys.audit (make lua-test).
#
#  a. No auditor, no root needed: argument handling, configure, the C API
#     (test_args.lua, test_host.lua). Run as the caller and, when root and
#     user nobody exists, again as nobody to show root is not needed.
#  b. Root only: counts against the real auditor, loaded under a test-only
#     pin dir, in a private network namespace full of live connections
#     (test_live.lua, test_host.lua with CONNAUDIT_LIVE=1).
#
# Each Lua script runs under every Lua interpreter installed (lua5.1,
# luajit, lua5.3, lua5.4) with the module built for its C API, and
# test_host.lua in BUILD_DIR/tests/lua/host-VERSION for each version built.
#
# Prints every suite's "ok"/"not ok" lines, then the totals as the last line,
# "N passed, N failed"; exits 1 if anything failed.
set -u

usage() { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	usage
fi

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "$1" && pwd)
# shellcheck source=tests/lua/live.sh
. "$HERE/live.sh"
live_init "ca-luatest-$$" "$BUILD"

TMP=$(mktemp -d /tmp/ca-luatest.XXXXXX) || exit 1
chmod 755 "$TMP"	# readable by nobody in group a
cleanup() {
	live_cleanup
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASSED=0
FAILED=0

# Every interpreter installed, as INTERPRETER:VERSION of the module build
# it loads; an installed one whose build is missing is a failure (make
# builds one for each Lua whose headers are installed; scripts/deps installs
# them with the interpreters).
LUAS=()
MISSING_BUILDS=()
for l in lua5.1:5.1 luajit:5.1 lua5.3:5.3 lua5.4:5.4; do
	command -v "${l%%:*}" > /dev/null || continue
	if [ -e "$BUILD/lua/${l#*:}/msys/audit.so" ]; then
		LUAS+=("$l")
	else
		MISSING_BUILDS+=("${l%%:*} is installed, but $1/lua/${l#*:}/msys/audit.so is not built")
	fi
done
HOSTS=("$BUILD"/tests/lua/host-*)

# run_suite LABEL CMD...: run one test program, show its output and add its
# summary line to the totals. A program that dies without a summary, or
# whose exit status disagrees with it, counts as one more failure.
run_suite() {
	local label=$1 out="$TMP/suite.out" rc summary re='^([0-9]+) passed, ([0-9]+) failed$'

	shift
	echo "== $label"
	"$@" > "$out" 2>&1
	rc=$?
	cat "$out"
	summary=$(tail -n 1 "$out")
	if [[ $summary =~ $re ]]; then
		PASSED=$((PASSED + BASH_REMATCH[1]))
		FAILED=$((FAILED + BASH_REMATCH[2]))
		[ "$rc" -eq 0 ] || [ "${BASH_REMATCH[2]}" -ne 0 ] && return
	fi
	echo "not ok - $label exited with status $rc"
	FAILED=$((FAILED + 1))
}

# lua_env VERSION: LUA_ENV, the environment that gives the module of
# VERSION, the runner and the example policies, for any user.
lua_env() {
	LUA_ENV=(LUA_CPATH="$BUILD/lua/$1/?.so" LUA_PATH="$HERE/?.lua;$ROOT/lua/examples/?.lua")
}

# host_version HOST: the Lua version of BUILD/tests/lua/host-VERSION.
host_version() {
	echo "${1##*/host-}"
}

# Group a. The pin dir does not exist and the services file is empty, so no
# real auditor or host services.conf is ever read.
group_a() {
	local label=$1 l h

	shift
	: > "$TMP/services.conf"
	chmod 644 "$TMP/services.conf"
	local env=(CONNAUDIT_PIN_DIR="$TMP/no-auditor" CONNAUDIT_CONFIG="$TMP/services.conf")
	for l in "${LUAS[@]}"; do
		lua_env "${l#*:}"
		run_suite "arguments, ${l%%:*} ($label)" "$@" env "${LUA_ENV[@]}" "${env[@]}" \
			"${l%%:*}" "$HERE/test_args.lua"
	done
	for h in "${HOSTS[@]}"; do
		lua_env "$(host_version "$h")"
		run_suite "C API, Lua $(host_version "$h") ($label)" "$@" env "${LUA_ENV[@]}" \
			"${env[@]}" "$h" "$HERE/test_host.lua"
	done
}

# The connections test_live.lua counts: its cases pick peers from these.
# Port 25 is SMTP, 2025 Control; "[::]" listeners are dual-stack, so IPv4
# peers arrive as ::ffff:a.b.c.d; closewait= leaves the accepted side in
# CLOSE_WAIT.
LIVE_V6_ADDRS=(fd00:ca::1 fd00:ca::2 fd00:ca::3 fd00:ca:0:1::4)
LIVE_HOLD_SPECS=('listen=[::]:25' 'listen=[::]:2025'
	'conn=127.0.0.2>127.0.0.1:25*3'
	'conn=127.0.0.3>127.0.0.1:25' 'closewait=127.0.0.3>127.0.0.1:25'
	'conn=127.0.1.9>127.0.0.1:25*2'
	'conn=127.0.0.2>127.0.0.1:2025*2' 'conn=127.0.0.4>127.0.0.1:2025'
	'conn=fd00:ca::2>[fd00:ca::1]:25*2' 'conn=fd00:ca::3>[fd00:ca::1]:25'
	'conn=fd00:ca:0:1::4>[fd00:ca::1]:25')

# Rate monitors of the live auditor: the example policy's, one test_rates.lua
# counts exactly, and one of 1 s windows that it watches rotate.
LIVE_MONITORS="900,4 60,2 1,3"

group_b() {
	if ! { live_netns_add "${LIVE_V6_ADDRS[@]}" && live_load --monitors "$LIVE_MONITORS" &&
	       live_hold "$TMP/holdconns.out" "${LIVE_HOLD_SPECS[@]}"; }; then
		echo "not ok - live setup failed"
		FAILED=$((FAILED + 1))
		return
	fi
	local env=(CONNAUDIT_PIN_DIR="$LIVE_PIN_DIR" CONNAUDIT_CONFIG="$TMP/services.conf"
		   CONNAUDIT_BIN="$LIVE_BIN") l h
	# First: test_live.lua reloads the auditor, which starts the windows anew.
	for l in "${LUAS[@]}"; do
		lua_env "${l#*:}"
		run_suite "live rates, ${l%%:*}" live_ns env "${LUA_ENV[@]}" "${env[@]}" \
			"${l%%:*}" "$HERE/test_rates.lua"
	done
	for l in "${LUAS[@]}"; do
		lua_env "${l#*:}"
		run_suite "live counts, ${l%%:*}" live_ns env "${LUA_ENV[@]}" "${env[@]}" \
			"${l%%:*}" "$HERE/test_live.lua"
	done
	for h in "${HOSTS[@]}"; do
		lua_env "$(host_version "$h")"
		run_suite "C API (live), Lua $(host_version "$h")" live_ns env "${LUA_ENV[@]}" \
			"${env[@]}" CONNAUDIT_LIVE=1 "$h" "$HERE/test_host.lua"
	done
}

for m in "${MISSING_BUILDS[@]}"; do
	echo "not ok - $m (install its -dev package, then make)"
	FAILED=$((FAILED + 1))
done
if [ ! -e "${HOSTS[0]}" ]; then
	echo "not ok - no $1/tests/lua/host-VERSION is built (make lua-test builds them)"
	FAILED=$((FAILED + 1))
	HOSTS=()
fi

group_a "$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
	if id nobody > /dev/null 2>&1; then
		group_a nobody setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups
	else
		echo "== arguments as nobody: skipped, no user nobody"
	fi
	group_b
else
	echo "== live counts: skipped, they need root (to load the auditor)"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
