#!/bin/bash
# haproxy.sh BUILD_DIR - lua/examples/haproxy.lua in a real HAProxy (make
# lua-test): Debian's haproxy, started here in a network namespace of its
# own with a configuration written here, loads the msys.audit module built
# for its Lua (5.3) and the example policy with a limit of 3 sessions per
# /24 on its SMTP frontend. Sessions come from build/tests/smtpclient, bound
# to addresses of two /24s; the backend greets each one with a line. Checks:
#  - three sessions from 127.0.1.0/24 are served (greeted by the backend),
#    the fourth is closed, a session from 127.0.2.0/24 is served, and once
#    one of the three has closed, a new one from 127.0.1.0/24 is served;
#  - at each step, the sessions `ss` sees on port 25 and the count of
#    `connaudit count` agree with what the clients saw;
#  - the same per /64 for IPv6 clients;
#  - with the auditor unloaded, the policy fails open and logs a warning.
# Needs root (the auditor, the namespace); skips without haproxy.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/ops/lib.sh
. "$ROOT/tests/ops/lib.sh"	# ok/not_ok/check_eq/summary and live.sh

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
BUILD=$(cd "$1" && pwd)
LIMIT=3
CLIENT=$BUILD/tests/smtpclient

if ! command -v haproxy > /dev/null; then
	skip "HAProxy: haproxy is not installed (Debian package haproxy; scripts/deps test)"
	summary
	exit
fi
need_root "HAProxy with the example policy"

# The Lua HAProxy links ("Built with Lua version : Lua 5.3.6"): 5.3.
HAPROXY_LUA=$(haproxy -vv | sed -n 's/^Built with Lua version : Lua \([0-9]*\.[0-9]*\).*/\1/p')
MODULE_DIR=$BUILD/lua/$HAPROXY_LUA
if [ ! -e "$MODULE_DIR/msys/audit.so" ]; then
	not_ok "haproxy links Lua ${HAPROXY_LUA:-?}, but $MODULE_DIR/msys/audit.so is not built"
	summary
	exit
fi

TMP=$(mktemp -d /tmp/connaudit-luaha.XXXXXX) || exit 1
live_init "connaudit-lua-$$" "$BUILD"
HAPROXY_PID=
declare -A CLIENTS	# NAME -> pid of each client still holding a session
cleanup() {
	local p

	for p in "${CLIENTS[@]}" $HAPROXY_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	live_cleanup
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

write_config() {
	cat > "$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    lua-prepend-path $MODULE_DIR/?.so cpath
    lua-load $ROOT/lua/examples/haproxy.lua
    lua-load $HERE/haproxy_backend.lua

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend smtp
    bind 127.0.0.1:25
    bind [$V6_SERVER]:25
    tcp-request content lua.connaudit_limit $LIMIT
    tcp-request content reject if { var(txn.connaudit_over) -m bool }
    default_backend mta

backend mta
    server mta 127.0.0.1:2525

listen mta_server
    bind 127.0.0.1:2525
    tcp-request content use-service lua.connaudit_test_mta
EOF
}

# start_haproxy: in the namespace, in the foreground (-db), reading the
# auditor's pins; returns once it listens on port 25.
start_haproxy() {
	local _

	# nsenter and env exec: $! is haproxy's pid (a backgrounded live_ns
	# would be a subshell's).
	nsenter --net=/run/netns/"$LIVE_NS" env CONNAUDIT_PIN_DIR="$LIVE_PIN_DIR" \
		CONNAUDIT_CONFIG=/dev/null haproxy -db -f "$TMP/haproxy.cfg" > "$TMP/haproxy.log" 2>&1 &
	HAPROXY_PID=$!
	for _ in $(seq 100); do
		[ -n "$(live_ns ss -Htln 'sport = :25')" ] && return 0
		kill -0 "$HAPROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	not_ok "haproxy listens on port 25 (its output follows)"
	sed 's/^/    /' "$TMP/haproxy.log"
	return 1
}

# session NAME SRC [DST]: a client session from SRC to DST (127.0.0.1)
# port 25, the frontend; sets
# ANSWER to "served" or "closed" once the client knows which. Not run in a
# $(...) subshell: the client ends when its parent does.
session() {
	local out=$TMP/$1.out

	nsenter --net=/run/netns/"$LIVE_NS" "$CLIENT" "$2" "${3:-127.0.0.1}" 25 > "$out" 2>&1 &
	CLIENTS[$1]=$!
	if live_wait_line "$!" "$out" '^served: 220 \|^closed$'; then
		ANSWER=$(sed 's/:.*//' "$out")
	else
		ANSWER="no answer: $(cat "$out")"
	fi
	case $ANSWER in
	served) return ;;
	closed) ;;	# the client has ended by itself
	*) kill "${CLIENTS[$1]}" 2>/dev/null ;;
	esac
	wait "${CLIENTS[$1]}" 2>/dev/null
	unset "CLIENTS[$1]"
}

# close_session NAME: the client leaves (SIGTERM: its socket closes with a FIN).
close_session() {
	kill "${CLIENTS[$1]}" && wait "${CLIENTS[$1]}" 2>/dev/null
	unset "CLIENTS[$1]"
}

# sessions NET: established sessions on port 25 from NET, as ss sees them
# (HAProxy's side of each client session).
sessions() {
	live_ns ss -Htn state established state close-wait "( sport = :25 ) and ( dst $1 )" | wc -l
}

# counted NET: the same, as connaudit counts them.
counted() {
	live_ns "$LIVE_BIN" count "$1" SMTP --pin-dir "$LIVE_PIN_DIR" --config /dev/null 2>&1
}

# check_sessions NET WANT: ss and connaudit both see WANT sessions from NET,
# waiting up to 5 s for sessions that are closing to leave.
check_sessions() {
	local _ got

	for _ in $(seq 100); do
		got=$(sessions "$1")
		[ "$got" = "$2" ] && break
		sleep 0.05
	done
	check_eq "ss: $2 sessions from $1" "$2" "$got"
	check_eq "connaudit count $1 SMTP: the same" "$2" "$(counted "$1")"
}

A=127.0.1.0/24
B=127.0.2.0/24
# IPv6: the policy's /64 (CIDR "/24,/64"); addresses on lo of the namespace.
V6_SERVER=fd00:ca::1
V6_A=(fd00:ca::11 fd00:ca::12 fd00:ca::13 fd00:ca::14)
V6_B=fd00:ca:0:1::11

scenario() {
	session a1 127.0.1.1
	check_eq "1st session from $A is served" served "$ANSWER"
	session a2 127.0.1.2
	check_eq "2nd session from $A is served" served "$ANSWER"
	session a3 127.0.1.3
	check_eq "3rd session from $A is served" served "$ANSWER"
	check_sessions "$A" 3
	session a4 127.0.1.4
	check_eq "4th session from $A is closed (limit $LIMIT)" closed "$ANSWER"
	check_has "HAProxy logs the rejection" "$TMP/haproxy.log" \
		"connaudit: 127.0.1.4: over $LIMIT SMTP sessions per /24,/64: rejected"
	check_sessions "$A" 3
	session b1 127.0.2.1
	check_eq "a session from $B is served" served "$ANSWER"
	check_sessions "$B" 1
	close_session a1
	check_sessions "$A" 2
	session a5 127.0.1.5
	check_eq "after one of the three closed, a new one from $A is served" served "$ANSWER"
	check_sessions "$A" 3
	session a6 127.0.1.6
	check_eq "... and the next one is closed again" closed "$ANSWER"
}

# The same limit per /64 for IPv6 clients.
scenario_v6() {
	local i

	for i in 0 1 2; do
		session "v6a$i" "${V6_A[$i]}" "$V6_SERVER"
		check_eq "IPv6: session $((i + 1)) from fd00:ca::/64 is served" served "$ANSWER"
	done
	check_sessions fd00:ca::/64 3
	session v6a3 "${V6_A[3]}" "$V6_SERVER"
	check_eq "IPv6: the 4th session from fd00:ca::/64 is closed" closed "$ANSWER"
	session v6b "$V6_B" "$V6_SERVER"
	check_eq "IPv6: a session from fd00:ca:0:1::/64 is served" served "$ANSWER"
	check_sessions fd00:ca::/64 3
}

# Fail open: with no auditor to ask, a session over the limit is served and
# a warning says why.
fail_open() {
	if ! live_unload; then
		not_ok "unload the auditor"
		return
	fi
	session a7 127.0.1.7
	check_eq "auditor unloaded: a 4th session from $A is served (fail open)" served "$ANSWER"
	check_has "... and HAProxy logs a warning saying so" "$TMP/haproxy.log" \
		"connaudit: cannot count SMTP sessions around 127.0.1.7"
	check_has "... that names the choice" "$TMP/haproxy.log" "accepted (fail open)"
}

write_config
if ! { live_netns_add "$V6_SERVER" "${V6_A[@]}" "$V6_B" && live_load; }; then
	not_ok "namespace $LIVE_NS and an auditor at $LIVE_PIN_DIR"
elif start_haproxy; then
	scenario
	scenario_v6
	fail_open
fi
summary
