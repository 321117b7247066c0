#!/bin/bash
# metrics.sh BUILD_DIR - `connaudit metrics`, printed and served over HTTP,
# checked by a strict parser of the exposition format (check_metrics.lua),
# by promtool when it is installed, and against the connections held.
set -u
. "$(dirname "$0")/lib.sh"
ops_init metrics "$@"

CHECK=(lua5.4 "$OPS_HERE/check_metrics.lua")
PORT=9477
SERVER_PID=

suite_cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	SERVER_PID=
}

# The checker must reject what the format forbids; else its "ok" means nothing.
checker_rejects() {
	local bad=(
		'# TYPE x gauge\nx 1'					# no HELP
		'# HELP x h\nx 1\n'					# no TYPE
		'# HELP x h\n# TYPE x gauge\nx{a="1} 1\n'		# unterminated value
		'# HELP x h\n# TYPE x gauge\nx{a="\\q"} 1\n'		# bad escape
		'# HELP x h\n# TYPE x gauge\nx{1a="v"} 1\n'		# bad label name
		'# HELP x h\n# TYPE x gauge\nx{a="v",a="w"} 1\n'	# label twice
		'# HELP x h\n# TYPE x gauge\nx one\n'			# bad value
		'# HELP x h\n# TYPE x gauge\nx 1\nx 2\n'			# series twice
		'# HELP x h\n# TYPE x gauge\n# HELP y h\n# TYPE y gauge\nx 1\ny 1\nx{a="b"} 1\n'
		'# HELP x h\n# TYPE x counter\nx 1\n'			# counter without _total
		'# HELP x_total h\n# TYPE x_total counter\nx_total -1\n'
		'# HELP x h\n# TYPE x gauge\n# TYPE x gauge\nx 1\n'
		'# HELP x h\n# TYPE x gauge\nx 1\n# TYPE x gauge\n'
		'# HELP x h\n# TYPE x gauges\nx 1\n'
		'# HELP 1x h\n# TYPE 1x gauge\n1x 1\n'
	)
	local good='# HELP x h\n# TYPE x gauge\nx{a="q\\"\\\\\\n",b="2"} 1.5e3\nx 1 1700000000000\n'
	local t i=0 rc=0

	printf "$good" > "$TMP/good.txt"
	"${CHECK[@]}" "$TMP/good.txt" || { echo "    rejected valid text"; rc=1; }
	for t in "${bad[@]}"; do
		i=$((i + 1))
		printf "$t" > "$TMP/bad$i.txt"
		if "${CHECK[@]}" "$TMP/bad$i.txt" 2>/dev/null; then
			echo "    accepted bad text $i: $t"
			rc=1
		fi
	done
	return $rc
}

# The canonical series of a metrics text, or nothing if it is invalid.
series_of() {
	"${CHECK[@]}" --series "$1"
}

metrics() {
	live_ns "$BIN" metrics --pin-dir "$LIVE_PIN_DIR" --config "$TMP/services.conf" "$@"
}

# A value from a series file: series_value FILE 'name{labels}'.
series_value() {
	awk -v k="$2" '$1 == k { print $2 }' "$1"
}

check_printed() {
	local out=$TMP/printed.txt s=$TMP/printed.series

	metrics --prefix 24,64 -n 2 > "$out"
	check_eq "metrics exits 0" 0 $?
	series_of "$out" > "$s"
	check_eq "the printed text passes the strict checker" 0 $?
	check_eq "connaudit_up" 1 "$(series_value "$s" connaudit_up)"
	check_eq "SMTP port 25 sessions" "$OPS_SMTP" \
		"$(series_value "$s" 'connaudit_inbound_sessions{port="25",service="SMTP"}')"
	check_eq "Control port 2025 sessions" "$OPS_CONTROL" \
		"$(series_value "$s" 'connaudit_inbound_sessions{port="2025",service="Control"}')"
	check_eq "ECStream port 1825 sessions" 0 \
		"$(series_value "$s" 'connaudit_inbound_sessions{port="1825",service="ECStream"}')"
	# Mail has both ports: one series each, not their sum.
	check_eq "Mail port 25, from services.conf" "$OPS_SMTP" \
		"$(series_value "$s" 'connaudit_inbound_sessions{port="25",service="Mail"}')"
	check_eq "Mail port 2025, from services.conf" "$OPS_CONTROL" \
		"$(series_value "$s" 'connaudit_inbound_sessions{port="2025",service="Mail"}')"
	check_eq "the sessions agree with connaudit count" "$(ops_count /0 SMTP)" \
		"$(series_value "$s" 'connaudit_inbound_sessions{port="25",service="SMTP"}')"
	check_eq "busiest SMTP prefix" 3 \
		"$(series_value "$s" 'connaudit_top_prefix_sessions{prefix="127.0.0.0/24",service="SMTP"}')"
	check_eq "second SMTP prefix (IPv6 /64)" 2 \
		"$(series_value "$s" 'connaudit_top_prefix_sessions{prefix="fd00:ca::/64",service="SMTP"}')"
	check_eq "-n 2 leaves out the third prefix" "" \
		"$(series_value "$s" 'connaudit_top_prefix_sessions{prefix="127.0.1.0/24",service="SMTP"}')"
	check_eq "connections admitted to port 25 (made after the load)" "$OPS_SMTP" \
		"$(series_value "$s" 'connaudit_connections_total{port="25",service="SMTP"}')"
	check_eq "connections admitted to port 2025" "$OPS_CONTROL" \
		"$(series_value "$s" 'connaudit_connections_total{port="2025",service="Control"}')"
	check_eq "no connection to port 1825" 0 \
		"$(series_value "$s" 'connaudit_connections_total{port="1825",service="ECStream"}')"
	check_eq "ca_admits never full" 0 \
		"$(series_value "$s" 'connaudit_map_full_total{map="ca_admits"}')"
	check_eq "counts exact" 1 "$(series_value "$s" connaudit_counts_exact)"
	check_eq "ca_peers capacity (--max-peers)" 4096 \
		"$(series_value "$s" 'connaudit_map_capacity{map="ca_peers"}')"
	check "admitted counter covers the sessions" \
		[ "$(series_value "$s" 'connaudit_events_total{kind="admitted"}')" -ge $((OPS_SMTP + OPS_CONTROL)) ]
	check "ca_peers holds at least our 4 peers" \
		[ "$(series_value "$s" 'connaudit_map_entries{map="ca_peers"}')" -ge 4 ]
	check_replace_keeps_connections
	if command -v promtool > /dev/null; then
		check "promtool check metrics" promtool check metrics < "$out"
	else
		skip "promtool check metrics: promtool not installed (Debian package prometheus)"
	fi
	metrics > "$TMP/plain.txt"
	check_fails "without --prefix there are no prefix series" \
		grep -q connaudit_top_prefix "$TMP/plain.txt"
}

# A replace keeps the counters, the new programs add to them, and sessions
# that close take nothing off (a counter, unlike the sessions gauge).
check_replace_keeps_connections() {
	local held=$LIVE_HOLDCONNS_PID r=$TMP/replaced.series

	live_load --replace --max-peers 4096
	check "one connection to port 1825 after the replace, held then closed" \
		live_hold "$TMP/hold1825.out" 'listen=127.0.0.1:1825' 'conn=127.0.0.4>127.0.0.1:1825'
	kill "$LIVE_HOLDCONNS_PID" && wait "$LIVE_HOLDCONNS_PID" 2>/dev/null
	LIVE_HOLDCONNS_PID=$held
	metrics > "$TMP/replaced.txt"
	series_of "$TMP/replaced.txt" > "$r"
	check_eq "... port 1825 has 1 connection" 1 \
		"$(series_value "$r" 'connaudit_connections_total{port="1825",service="ECStream"}')"
	check_eq "... and no session" 0 \
		"$(series_value "$r" 'connaudit_inbound_sessions{port="1825",service="ECStream"}')"
	check_eq "... and port 25 kept its $OPS_SMTP across the replace" "$OPS_SMTP" \
		"$(series_value "$r" 'connaudit_connections_total{port="25",service="SMTP"}')"
}

check_errors() {
	local none=/sys/fs/bpf/connaudit-ops-$$-none out=$TMP/down.txt

	"$BIN" metrics --pin-dir "$none" --config /dev/null > "$out" 2> "$TMP/down.err"
	check_eq "metrics exits 1 when not loaded" 1 $?
	check_eq "... and says only connaudit_up 0" "connaudit_up 0" "$(series_of "$out")"
	check_has "... and why, on stderr" "$TMP/down.err" "not loaded"
	"$BIN" metrics --config /dev/null --prefix /0 > /dev/null 2>&1
	check_eq "--prefix /0 is a usage error" 2 $?
	"$BIN" metrics --config /dev/null --listen 127.0.0.1 > /dev/null 2>&1
	check_eq "--listen without a port is a usage error" 2 $?
	"$BIN" metrics --config /dev/null --listen '::1:80' > /dev/null 2>&1
	check_eq "--listen with unbracketed IPv6 is a usage error" 2 $?
}

# http HOST PORT REQUEST OUT: send REQUEST from inside the namespace, with
# bash's /dev/tcp (no curl needed), and save the whole answer.
http() {
	live_ns timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "$3" >&3 && cat <&3' \
		_ "$1" "$2" "$3" > "$4" 2>/dev/null
}

# The body of a saved HTTP answer.
http_body() {
	sed '1,/^\r$/d' "$1"
}

# start_server ADDR:PORT: serve in the namespace; wait until it listens.
# nsenter execs the command, so SERVER_PID is the server's own pid.
start_server() {
	nsenter --net=/run/netns/"$LIVE_NS" "$BIN" metrics --pin-dir "$LIVE_PIN_DIR" \
		--config "$TMP/services.conf" --listen "$1" 2> "$TMP/server.err" &
	SERVER_PID=$!
	live_wait_line "$SERVER_PID" "$TMP/server.err" serving && return 0
	cat "$TMP/server.err"
	return 1
}

# stop_server SIGNAL: ok when the server exits 0 after SIGNAL.
stop_server() {
	kill -"$1" "$SERVER_PID"
	wait "$SERVER_PID"
	check_eq "the server stops cleanly on $1" 0 $?
	check_has "... and says so" "$TMP/server.err" "stopped by SIG$1"
	SERVER_PID=
}

check_served() {
	local a=$TMP/answer

	check "metrics --listen 127.0.0.1:$PORT starts" start_server "127.0.0.1:$PORT" || return
	check_fails "no warning for a loopback address" grep -q warning "$TMP/server.err"
	http 127.0.0.1 $PORT 'GET /metrics HTTP/1.0\r\n\r\n' "$a"
	check_eq "GET /metrics answers 200" "HTTP/1.1 200 OK" "$(head -n 1 "$a" | tr -d '\r')"
	check_has "... as text/plain; version=0.0.4" "$a" \
		"Content-Type: text/plain; version=0.0.4; charset=utf-8"
	http_body "$a" > "$TMP/served.txt"
	series_of "$TMP/served.txt" > "$TMP/served.series"
	check_eq "... and the body passes the strict checker" 0 $?
	check_eq "... with the SMTP sessions" "$OPS_SMTP" \
		"$(series_value "$TMP/served.series" 'connaudit_inbound_sessions{port="25",service="SMTP"}')"
	http 127.0.0.1 $PORT 'GET /other HTTP/1.0\r\n\r\n' "$a"
	check_eq "GET /other answers 404" "HTTP/1.1 404 Not Found" "$(head -n 1 "$a" | tr -d '\r')"
	http 127.0.0.1 $PORT 'POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n' "$a"
	check_eq "POST answers 405" "HTTP/1.1 405 Method Not Allowed" "$(head -n 1 "$a" | tr -d '\r')"

	# Every scrape reads the pins afresh: it follows an unload and a load.
	live_unload
	http 127.0.0.1 $PORT 'GET /metrics HTTP/1.0\r\n\r\n' "$a"
	check_eq "after unload the scrape says connaudit_up 0" "connaudit_up 0" \
		"$(http_body "$a" > "$TMP/s.txt"; series_of "$TMP/s.txt")"
	live_load --max-peers 4096
	http 127.0.0.1 $PORT 'GET /metrics HTTP/1.0\r\n\r\n' "$a"
	http_body "$a" > "$TMP/s.txt"
	check_eq "after a new load it counts the held sessions again" "$OPS_SMTP" \
		"$(series_of "$TMP/s.txt" | awk '$1 == "connaudit_inbound_sessions{port=\"25\",service=\"SMTP\"}" { print $2 }')"
	check_eq "... but not as connections: seeded sessions were made before it" 0 \
		"$(series_of "$TMP/s.txt" | awk '$1 == "connaudit_connections_total{port=\"25\",service=\"SMTP\"}" { print $2 }')"
	stop_server TERM
	check_fails "the port is closed after the stop" http 127.0.0.1 $PORT 'GET /metrics HTTP/1.0\r\n\r\n' "$a"

	check "metrics --listen [::1]:$PORT starts" start_server "[::1]:$PORT" || return
	http ::1 $PORT 'GET /metrics HTTP/1.0\r\n\r\n' "$a"
	check_eq "GET over IPv6 answers 200" "HTTP/1.1 200 OK" "$(head -n 1 "$a" | tr -d '\r')"
	stop_server INT

	# 0.0.0.0 inside the private namespace reaches nothing outside it.
	check "metrics --listen 0.0.0.0:$PORT starts" start_server "0.0.0.0:$PORT" || return
	check_has "... with a warning: not loopback" "$TMP/server.err" "not a loopback address"
	stop_server TERM
}

check "the checker accepts valid text and rejects 15 kinds of invalid text" checker_rejects
need_root "metrics against a live auditor"
printf 'Mail 25 2025\n' > "$TMP/services.conf"
check_errors
ops_live --max-peers 4096 || { summary; exit; }
check_printed
check_served
summary
