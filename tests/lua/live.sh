# shellcheck shell=bash
# live.sh - sourced by tests/lua/run.sh and scripts/lua-policy-demo: a
# private network namespace holding live loopback connections, counted by an
# auditor loaded under a pin dir of its own. Needs root. Hermetic: only
# 127.0.0.0/8 and fd00:ca::/48 addresses on lo of that namespace; the caller
# runs live_cleanup from an EXIT trap, so a failure leaves nothing behind.
#
# Enter the namespace with nsenter, not `ip netns exec`: the latter mounts a
# fresh /sys, which hides the pins under /sys/fs/bpf.

# live_init NAME BUILD_DIR: choose names; nothing is created yet.
live_init() {
	LIVE_NS=$1
	LIVE_PIN_DIR=/sys/fs/bpf/$1
	LIVE_BIN=$2/connaudit
	LIVE_CONNS=$2/tests/lua/conns
	LIVE_CONNS_PID=
	LIVE_NS_MADE=
	LIVE_LOADED=
}

# live_build_conns SOURCE_ROOT: compile tests/lua/conns (with the kernel
# tests' socket helpers) to $LIVE_CONNS.
live_build_conns() {
	mkdir -p "$(dirname "$LIVE_CONNS")" &&
	cc -Wall -Wextra -Werror -g -O2 -D_GNU_SOURCE -I"$1/tests/kernel" \
		"$1/tests/lua/conns.c" "$1/tests/kernel/netlib.c" -o "$LIVE_CONNS"
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

live_load() {
	LIVE_LOADED=1
	live_connaudit load --pin-dir "$LIVE_PIN_DIR" --quiet
}

live_unload() {
	live_connaudit unload --pin-dir "$LIVE_PIN_DIR" --quiet
}

# live_conns_start OUTFILE CONNS_ARGS...: start tests/lua/conns in the
# namespace (see conns.c for the arguments) and wait until it holds every
# connection.
live_conns_start() {
	local out=$1 _

	shift
	live_ns "$LIVE_CONNS" "$@" > "$out" &
	LIVE_CONNS_PID=$!
	for _ in $(seq 100); do
		grep -qx ready "$out" && return 0
		kill -0 "$LIVE_CONNS_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "live.sh: conns $* did not get ready" >&2
	return 1
}

# live_cleanup: undo what the above did (an unload may find the auditor
# already gone: tests unload and load it themselves). Safe to run twice, and
# under set -e: no step's failure stops the others.
live_cleanup() {
	if [ -n "${LIVE_CONNS_PID:-}" ]; then
		kill "$LIVE_CONNS_PID" 2>/dev/null || :
		wait "$LIVE_CONNS_PID" 2>/dev/null || :
		LIVE_CONNS_PID=
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
