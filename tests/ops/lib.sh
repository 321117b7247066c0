# lib.sh - sourced by the tests/ops suites: result lines and a live auditor.
#
# Each suite runs as `SUITE.sh BUILD_DIR`, prints "ok - ...", "not ok - ..."
# and "skip - ..." lines and ends with "N passed, N failed, N skipped"; it
# exits 1 when anything failed. The live parts reuse tests/lua/live.sh: a
# private network namespace entered with nsenter (not `ip netns exec`, which
# hides /sys/fs/bpf), loopback addresses only, an auditor under a test-only
# pin dir, and cleanup from an EXIT trap even when a check fails.

OPS_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OPS_ROOT=$(cd "$OPS_HERE/../.." && pwd)
. "$OPS_ROOT/tests/lua/live.sh"

PASSED=0
FAILED=0
SKIPPED=0

ok() { echo "ok - $*"; PASSED=$((PASSED + 1)); }
not_ok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
skip() { echo "skip - $*"; SKIPPED=$((SKIPPED + 1)); }

# Every check_* prints its line and returns non-zero when it failed, so
# that a failed setup step can end the suite early: check ... || exit.

# check DESCRIPTION CMD...: ok when CMD succeeds.
check() {
	local what=$1

	shift
	if "$@"; then ok "$what"; else not_ok "$what"; return 1; fi
}

# check_fails DESCRIPTION CMD...: ok when CMD fails.
check_fails() {
	local what=$1

	shift
	if "$@"; then not_ok "$what (it succeeded)"; return 1; else ok "$what"; fi
}

# check_eq DESCRIPTION WANT GOT
check_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1: want '$2', got '$3'"
		return 1
	fi
}

# check_has DESCRIPTION FILE PATTERN: ok when FILE holds the fixed string
# PATTERN.
check_has() {
	local text

	text=$(cat "$2")	# once: FILE may be a pipe, <(...)
	if grep -qF -- "$3" <<< "$text"; then
		ok "$1"
	else
		not_ok "$1: no '$3' in:"
		sed 's/^/    /' <<< "$text"
		return 1
	fi
}

summary() {
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" -eq 0 ]
}

# ops_init SUITE BUILD_DIR: BUILD, BIN, TMP (removed on exit) and the live
# names (namespace and pin dir connaudit-ops-PID-SUITE). Runs ops_cleanup,
# then the suite's own cleanup function if it defines one, on exit.
ops_init() {
	[ $# -eq 2 ] && [ -d "$2" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
	BUILD=$(cd "$2" && pwd)
	BIN=$BUILD/connaudit
	TMP=$(mktemp -d "/tmp/connaudit-ops-$1.XXXXXX") || exit 1
	chmod 755 "$TMP"	# the readers test runs commands as other users
	live_init "connaudit-ops-$$-$1" "$BUILD"
	trap ops_cleanup EXIT
	trap 'exit 130' INT TERM
}

ops_cleanup() {
	declare -F suite_cleanup > /dev/null && suite_cleanup
	live_cleanup
	rm -rf "$TMP"
}

# need_root WHAT: end the suite with a skip when not root.
need_root() {
	[ "$(id -u)" -eq 0 ] && return 0
	skip "$1: needs root"
	summary
	exit
}

# The connections every live suite holds, and what they add up to. Port 25
# is SMTP and 2025 Control; "[::]" is dual-stack, so IPv4 peers of port 25
# arrive as ::ffff:a.b.c.d and are counted as IPv4.
OPS_V6_ADDRS=(fd00:ca::1 fd00:ca::2)
OPS_HOLD_SPECS=('listen=[::]:25' 'listen=127.0.0.1:2025'
	'conn=127.0.0.2>127.0.0.1:25*3' 'conn=127.0.1.9>127.0.0.1:25'
	'conn=fd00:ca::2>[fd00:ca::1]:25*2' 'conn=127.0.0.3>127.0.0.1:2025*2')
OPS_SMTP=6
OPS_CONTROL=2

# ops_live [--no-load | LOAD_ARGS...]: the namespace, the auditor (loaded
# with LOAD_ARGS, before the connections: they are admitted live, not
# seeded) and the connections above. Returns non-zero, with a "not ok"
# line, when any of it fails.
ops_live() {
	live_netns_add "${OPS_V6_ADDRS[@]}" &&
	{ [ "${1:-}" = --no-load ] || live_load "$@"; } &&
	live_hold "$TMP/holdconns.out" "${OPS_HOLD_SPECS[@]}" && return 0
	not_ok "live setup: namespace $LIVE_NS, auditor at $LIVE_PIN_DIR, connections"
	return 1
}

# ops_count CIDR SERVICE: the count as root, inside the namespace.
ops_count() {
	live_ns "$BIN" count "$1" "$2" --pin-dir "$LIVE_PIN_DIR" --config /dev/null
}

# lua_interpreters VERSION: the interpreters installed for Lua VERSION
# (5.1: lua5.1 and LuaJIT).
lua_interpreters() {
	local l

	case $1 in
	5.1) l="lua5.1 luajit" ;;
	*) l=lua$1 ;;
	esac
	for l in $l; do command -v "$l" > /dev/null && echo "$l"; done
}

# lua_unloaded CPATH [LUA]: require msys.audit through CPATH (a LUA_CPATH)
# in interpreter LUA (lua5.4) and ask for a count with no auditor there;
# prints "nil not loaded" when the module loads and answers as it should.
lua_unloaded() {
	LUA_CPATH=$1 "${2:-lua5.4}" -e "
		local audit = require('msys.audit')
		audit.configure{pin_dir = '/sys/fs/bpf/connaudit-ops-$$-none', config = '/dev/null'}
		local n, msg = audit.inbound_session_count('/0', 'SMTP')
		print(n, msg and msg:match('not loaded'))" 2>&1 | tr '\t' ' '
}
