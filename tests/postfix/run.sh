#!/bin/bash
# run.sh BUILD_DIR - `connaudit policyd` behind a real Postfix: a private
# instance (config and queue in a temporary directory) whose smtpd listens on
# port 25 in a network namespace of its own and asks the policy server at
# connect time (smtpd_delay_reject = no). Sessions come from
# BUILD_DIR/tests/smtpsession on 127.0.1.x (one /24) and 127.0.2.x (another).
#
# Asserts the issue's scenario with `SMTP /24 3`: three sessions served, the
# fourth refused at connect with the rule's text, another /24 served, a slot
# freed by a QUIT served again; a bad rules file on SIGHUP keeps the old
# rules; with the auditor unloaded, on_error = dunno lets mail through and
# on_error = defer defers it, each logged once; after a new load, counts are
# exact again. The second half runs the server under systemd-socket-activate
# (LISTEN_FDS), as the .socket unit does; the last part under Postfix's own
# spawn(8), as a user of the readers' group (made for the run and deleted).
set -u
. "$(dirname "$0")/lib.sh"
pf_init postfix "$@"
need_root
for tool in postfix postconf systemd-socket-activate; do
	command -v $tool > /dev/null ||
		{ not_ok "$tool is not installed (scripts/deps test)"; summary; exit 1; }
done

HELD=()			# pids of `smtpsession ... hold`
READERS=capf$$		# the readers' group, and its member capf$$u
MADE_USER=
MADE_GROUP=

suite_cleanup() {
	local p

	for p in "${HELD[@]}"; do kill "$p" 2>/dev/null; done
	pf_cleanup
	[ -n "$MADE_USER" ] && userdel "${READERS}u" 2>/dev/null
	[ -n "$MADE_GROUP" ] && groupdel "$READERS" 2>/dev/null
}

# hold NAME SRC: a session from SRC kept open; its lines go to $TMP/NAME,
# its pid to PID_NAME.
hold() {
	local _

	# nsenter, not live_ns: $! must be the client (nsenter execs it).
	nsenter --net=/run/netns/"$LIVE_NS" "$CLIENT" "$2" 127.0.0.1 25 hold > "$TMP/$1" 2>&1 &
	HELD+=($!)
	eval "PID_$1=$!"
	for _ in $(seq 100); do
		grep -q '^held$' "$TMP/$1" && return 0
		kill -0 "$!" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

# session NAME SRC quit|mail: a session run to its end; its lines in
# $TMP/NAME.
session() {
	live_ns timeout 30 "$CLIENT" "$2" 127.0.0.1 25 "$3" > "$TMP/$1" 2>&1
}

served() {	# NAME: a held session got 220 and 250s
	check_has "$1: greeting 220" "$TMP/$1" 'greeting 220 ' &&
		check_has "$1: EHLO, MAIL, RCPT 250" "$TMP/$1" 'rcpt 250 2.1.5 Ok'
}

count_24() {	# PEER: SMTP sessions from PEER's /24, as connaudit counts them
	live_ns "$BIN" count /24 SMTP --peer "$1" --pin-dir "$LIVE_PIN_DIR" --config /dev/null
}

wait_count() {	# PEER WANT
	local _

	for _ in $(seq 100); do
		[ "$(count_24 "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

lines() {	# TEXT: how many lines of the policyd log hold TEXT
	grep -cF -- "$1" "$LOG"
}

# ---- setup -------------------------------------------------------------------

write_config
check "namespace, auditor at $LIVE_PIN_DIR" eval 'live_netns_add && live_load' || exit
check "postfix -c $PF start: master runs, smtpd listens on :25" start_postfix || exit
printf 'on_error = dunno\nSMTP /24 3   421 4.7.0 Too many connections from your network\n' \
	> "$RULES"
check "policyd --listen unix:$SOCKET --netns (counting in the namespace from outside)" \
	start_policyd "$BUILD/connaudit" "${policyd_args[@]}" --listen "unix:$SOCKET" \
	--netns /run/netns/"$LIVE_NS" || exit

# ---- SMTP /24 3 --------------------------------------------------------------

for i in 1 2 3; do
	hold a$i 127.0.1.$i
	served a$i
done
check_eq "connaudit counts the three sessions of 127.0.1.0/24" 3 "$(count_24 127.0.1.9)"
session a4 127.0.1.4 quit
check_has "the fourth from 127.0.1.0/24 gets the rule's 421 at connect" "$TMP/a4" \
	'greeting 421 4.7.0 <unknown[127.0.1.4]>: Client host rejected: Too many connections from your network'
check_eq "... and nothing more (smtpd hangs up)" 1 "$(wc -l < "$TMP/a4")"
check_eq "one log line for the rejection" 1 "$(lines 'reject 127.0.1.4 (CONNECT): rule')"
check_has "... with client, rule and count" "$LOG" \
	"reject 127.0.1.4 (CONNECT): rule $RULES:2 \"SMTP /24 3\": 4 sessions"
hold b1 127.0.2.1
served b1
kill "$PID_a1"
wait "$PID_a1"
check_eq "a1 quits: 221" "quit 221 2.0.0 Bye" "$(tail -1 "$TMP/a1")"
check "... and connaudit counts 2 in 127.0.1.0/24" wait_count 127.0.1.9 2
hold a5 127.0.1.5
served a5
check_eq "no other rejection" 1 "$(lines 'reject ')"

# ---- reload ------------------------------------------------------------------

cp "$RULES" "$RULES.good"
printf 'SMTP /24 three\n' > "$RULES"
kill -HUP "$POLICYD_PID"
check "SIGHUP with a bad rules file: refused, naming the line" \
	live_wait_line "$POLICYD_PID" "$LOG" \
	"reload failed, keeping the 1 rules loaded before: $RULES:1: "
session a6 127.0.1.6 quit
check_has "... the old rules still apply" "$TMP/a6" 'Client host rejected: Too many connections from your network'

# Broken clients beside Postfix: stalled half requests, garbage, an
# oversized request; their answers are checked by bench/policyd itself.
"$BUILD/bench/policyd" --conns 2 --seconds 2 --stall 8 --bad "unix:$SOCKET" \
	> "$TMP/bench.out" 2>&1 &
bench=$!
sleep 0.3
session b2 127.0.2.2 quit
check_has "with stalled and broken policy clients, Postfix is still answered" "$TMP/b2" \
	'quit 221 '
check "... and the broken ones got their answers" wait "$bench" ||
	cat "$TMP/bench.out"
check_has "... logged" "$LOG" "bad request, answered DUNNO and closed: no request end"

for p in "${HELD[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
HELD=()
stop_policyd
check_has "SIGTERM: policyd stops" "$LOG" "policyd: stopping"
check_fails "... and removes its socket" test -e "$SOCKET"

# ---- socket activation, the auditor gone -------------------------------------

cp "$RULES.good" "$RULES"
check "policyd under systemd-socket-activate (LISTEN_FDS)" \
	start_policyd systemd-socket-activate -l "$SOCKET" \
	"$BUILD/connaudit" "${policyd_args[@]}" || exit
chmod 666 "$SOCKET"	# what the .socket unit's SocketMode= does
check "unload the auditor" live_unload
session m1 127.0.1.1 mail
check_has "on_error = dunno, no auditor: the mail is accepted" "$TMP/m1" \
	'message 250 2.0.0 Ok: queued'
session m2 127.0.1.2 mail
check_has "... again" "$TMP/m2" 'message 250 2.0.0 Ok: queued'
check_eq "... logged once, not per request" 1 "$(lines 'counts are unavailable')"

printf 'on_error = defer\nSMTP /24 3\n' > "$RULES"
kill -HUP "$POLICYD_PID"
check "SIGHUP: on_error = defer" \
	live_wait_line "$POLICYD_PID" "$LOG" 'reloaded 1 rules .*(on_error = defer)'
session d1 127.0.1.1 mail
check_has "on_error = defer, no auditor: deferred at connect" "$TMP/d1" 'greeting 421 4.3.0 '
check_eq "... and nothing more" 1 "$(wc -l < "$TMP/d1")"

check "load the auditor again" live_load
session m3 127.0.1.1 mail
check_has "counts back: the mail is accepted" "$TMP/m3" 'message 250 2.0.0 Ok: queued'
check_eq "... logged once" 1 "$(lines 'counts are exact again')"
for i in 1 2 3; do hold c$i 127.0.1.$((10 + i)); done
session c4 127.0.1.14 quit
check_has "the default reply names the limit and the network" "$TMP/c4" \
	'greeting 421 4.7.0 <unknown[127.0.1.14]>: Client host rejected: Too many SMTP sessions from your network: more than 3 from 127.0.1.0/24'

# ---- a rate rule -------------------------------------------------------------

# Connections, not sessions: clients that connect and quit at once hold no
# session for long, and only a rate catches them. The count includes the
# asking connection, so the fifth in the windows is over a limit of 4.
reloaded() {	# N: wait until the log has more than N "reloaded" lines
	local _
	for _ in $(seq 100); do
		[ "$(lines 'reloaded ')" -gt "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
check "load the auditor with a monitor of 60 s windows" \
	eval 'live_unload && live_load --monitors "60,2"'
cp "$RULES" "$RULES.sessions"
printf 'SMTP rate 60,2:0-1 /24 4\n' > "$RULES"
before=$(lines 'reloaded ')
kill -HUP "$POLICYD_PID"
check "SIGHUP: a rate rule" reloaded "$before"
for i in 1 2 3 4; do session r$i 127.0.3.$i quit; done
check_has "four quick sessions from 127.0.3.0/24 are served" "$TMP/r4" 'quit 221 '
session r5 127.0.3.5 quit
check_has "the fifth connection in the windows gets the rate rule's 421" "$TMP/r5" \
	'Too many SMTP connections from your network: more than 4 from 127.0.3.0/24 in windows 0-1 of 60,2'
check "... logged with the connections counted" live_wait_line "$POLICYD_PID" "$LOG" \
	'rule .*"SMTP rate 60,2 /24 4": 5 connections'
session r6 127.0.4.1 quit
check_has "... a session from another /24 is served" "$TMP/r6" 'quit 221 '
cp "$RULES.sessions" "$RULES"

# ---- Postfix's spawn: one process per connection on stdin/stdout ------------

# spawn sets the user's primary group only (no supplementary groups): the
# readers' group must be the primary one.
make_reader() {
	groupadd "$READERS" && MADE_GROUP=1 &&
		useradd -M -N -g "$READERS" -s /usr/sbin/nologin \
		"${READERS}u" && MADE_USER=1
}

# The reader loads the pins it may read: load again with --group (the held
# sessions are counted at load).
spawn_setup() {
	make_reader && live_unload && live_load --group "$READERS" || return
	cat >> "$PF/master.cf" <<-EOF
	connaudit-spawn unix  -       n       n       -       0       spawn
	  user=${READERS}u argv=$BUILD/connaudit ${policyd_args[*]}
	EOF
	live_ns postconf -c "$PF" -e \
		'smtpd_client_restrictions = check_policy_service unix:private/connaudit-spawn' &&
		live_ns postfix -c "$PF" reload > /dev/null 2>&1 || return
	for _ in $(seq 100); do
		[ -S "$QUEUE/private/connaudit-spawn" ] && return 0
		sleep 0.05
	done
	return 1
}

stop_policyd
check "spawn: a reader's account, the auditor loaded for its group, master.cf" spawn_setup
session s1 127.0.1.20 quit
check_has "spawn: the fourth session from 127.0.1.0/24 gets 421 at connect" "$TMP/s1" \
	'greeting 421 4.7.0 <unknown[127.0.1.20]>: Client host rejected: Too many SMTP sessions from your network: more than 3 from 127.0.1.0/24'
session s2 127.0.2.5 quit
check_has "spawn: a session from another /24 is served" "$TMP/s2" 'quit 221 '

summary
