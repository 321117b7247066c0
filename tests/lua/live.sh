# shellcheck shell=bash
# live.sh - sourced by tests/lua/run.sh, tests/ops/lib.sh and
# scripts/lua-policy-demo: a private network namespace holding live loopback
# connections, counted by an auditor loaded under a pin dir of its own. Needs
# root. Hermetic: only 127.0.0.0/8 and fd00:ca::/48 addresses on lo of that
# namespace; the caller runs live_cleanup from an EXIT trap, so a failure
# leaves nothing behind.
#
# Enter the namespace with nsenter, not `ip netns exec`: the latter mounts a
# fresh /sys, which hides the pins under /sys/fs/bpf.

# live_init NAME BUILD_DIR: choose names; nothing is created yet. The
# connections come from BUILD_DIR/tests/holdconns (make builds it for
# lua-test, ops-test and the demos).
live_init() {
	LIVE_NS=$1
	LIVE_PIN_DIR=/sys/fs/bpf/$1
	LIVE_BIN=$2/connaudit
	LIVE_HOLDCONNS=$2/tests/holdconns
	LIVE_HOLDCONNS_PID=
	LIVE_NS_MADE=
	LIVE_LOADED=
}

# live_ns CMD...: run CMD inside the namespace.
live_ns() {
	nsenter --net=/run/netns/"$LIVE_NS" "$@"
}

# live_netns_add ADDR...: the namespace, lo up, each IPv6 ADDR on lo as a
# /128 (nodad: usable at once).
live_netns_add() {
	local a

	ip netns add "$LIVE_NS" || return
	LIVE_NS_MADE=1
	ip -n "$LIVE_NS" link set lo up || return
	for a in "$@"; do
		ip -n "$LIVE_NS" addr add "$a/128" dev lo nodad || return
	done
}

# The message of a load or unload refused because another one holds the
# lock on the pin dirs' parent: other suites load auditors of their own.
LIVE_BUSY="another connaudit load or unload is running"

# live_connaudit ARGS...: the CLI, retried for up to 10 s while busy.
live_connaudit() {
	local _ out

	for _ in $(seq 100); do
		out=$("$LIVE_BIN" "$@" 2>&1) && return 0
		[[ $out == *"$LIVE_BUSY"* ]] || break
		sleep 0.1
	done
	echo "$out" >&2
	return 1
}

# live_load [LOAD_ARGS...]: load the auditor at $LIVE_PIN_DIR.
# shellcheck disable=SC2120 # the arguments are optional
live_load() {
	LIVE_LOADED=1
	live_connaudit load --pin-dir "$LIVE_PIN_DIR" --quiet "$@"
}

live_unload() {
	live_connaudit unload --pin-dir "$LIVE_PIN_DIR" --quiet
}

# live_wait_line PID FILE REGEX: wait up to 5 s until FILE, written by
# process PID, has a line matching REGEX; fail early if PID is gone.
live_wait_line() {
	local _

	for _ in $(seq 100); do
		grep -q -- "$3" "$2" && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	grep -q -- "$3" "$2"	# PID may have written the line just before it ended
}

# live_hold OUTFILE SPEC...: start holdconns in the namespace (see
# tests/kernel/holdconns.c for the specs) and wait until it holds every
# connection. nsenter execs holdconns, so LIVE_HOLDCONNS_PID is its pid.
live_hold() {
	local out=$1

	shift
	nsenter --net=/run/netns/"$LIVE_NS" "$LIVE_HOLDCONNS" "$@" > "$out" &
	LIVE_HOLDCONNS_PID=$!
	live_wait_line "$LIVE_HOLDCONNS_PID" "$out" '^ready$' && return 0
	echo "live.sh: holdconns $* did not get ready:" >&2
	sed 's/^/    /' "$out" >&2
	return 1
}

# live_cleanup: undo what the above did (an unload may find the auditor
# already gone: tests unload and load it themselves). Safe to run twice, and
# under set -e: no step's failure stops the others.
live_cleanup() {
	if [ -n "${LIVE_HOLDCONNS_PID:-}" ]; then
		kill "$LIVE_HOLDCONNS_PID" 2>/dev/null || :
		wait "$LIVE_HOLDCONNS_PID" 2>/dev/null || :
		LIVE_HOLDCONNS_PID=
	fi
	if [ -n "${LIVE_LOADED:-}" ]; then
		live_unload 2>/dev/null || :
		rmdir "$LIVE_PIN_DIR" 2>/dev/null || :
		LIVE_LOADED=
	fi
	if [ -n "${LIVE_NS_MADE:-}" ]; then
		ip netns del "$LIVE_NS" || :
		LIVE_NS_MADE=
	fi
}
