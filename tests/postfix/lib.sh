# shellcheck shell=bash
# lib.sh - sourced by tests/postfix/run.sh and bench/postfix.sh: a private
# Postfix instance (config_directory and queue_directory in the run's
# temporary directory) whose smtpd listens on port 25 of the run's network
# namespace and asks `connaudit policyd` at connect time, on
# unix:private/connaudit-policyd. Builds on tests/ops/lib.sh (ops_init, the
# live namespace and auditor, ok/not_ok).

PF_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$PF_HERE/../ops/lib.sh"

# pf_init NAME BUILD_DIR: ops_init, then the names below.
pf_init() {
	ops_init "$@"
	CLIENT=$BUILD/tests/smtpsession
	PF=$TMP/postfix		# config_directory
	QUEUE=$TMP/queue
	SOCKET=$QUEUE/private/connaudit-policyd
	RULES=$TMP/rules
	LOG=$TMP/policyd.log
	POLICYD_PID=
	policyd_args=(policyd --rules "$RULES" --pin-dir "$LIVE_PIN_DIR" --config /dev/null)
}

# pf_cleanup: for the suite's cleanup; prints the logs when a check failed.
pf_cleanup() {
	stop_policyd
	[ -f "$PF/main.cf" ] && live_ns postfix -c "$PF" stop > /dev/null 2>&1
	if [ "$FAILED" -ne 0 ]; then
		echo "--- policyd log"; cat "$LOG" 2>/dev/null
		echo "--- maillog"; tail -40 "$TMP/maillog" 2>/dev/null
	fi
}

stop_policyd() {
	[ -n "$POLICYD_PID" ] || return 0
	kill "$POLICYD_PID" 2>/dev/null
	wait "$POLICYD_PID" 2>/dev/null
	POLICYD_PID=
}

write_config() {
	mkdir -p "$PF" "$QUEUE" "$TMP/data"
	chown postfix "$TMP/data"
	cat > "$PF/main.cf" <<-EOF
	compatibility_level = 3.6
	queue_directory = $QUEUE
	data_directory = $TMP/data
	maillog_file = $TMP/maillog
	maillog_file_prefixes = $TMP
	inet_interfaces = 127.0.0.1
	inet_protocols = ipv4
	myhostname = mx.connaudit.test
	mydestination = localhost
	mynetworks = 127.0.0.0/8
	local_recipient_maps =
	alias_maps =
	alias_database =
	local_transport = discard:
	default_transport = discard:
	smtputf8_enable = no
	biff = no
	smtpd_client_connection_count_limit = 0
	smtpd_client_connection_rate_limit = 0
	smtpd_delay_reject = no
	smtpd_client_restrictions = check_policy_service unix:private/connaudit-policyd
	EOF
	cat > "$PF/master.cf" <<-EOF
	smtp      inet  n       -       n       -       -       smtpd
	pickup    unix  n       -       n       60      1       pickup
	cleanup   unix  n       -       n       -       0       cleanup
	qmgr      unix  n       -       n       300     1       qmgr
	rewrite   unix  -       -       n       -       -       trivial-rewrite
	bounce    unix  -       -       n       -       0       bounce
	defer     unix  -       -       n       -       0       bounce
	trace     unix  -       -       n       -       0       bounce
	verify    unix  -       -       n       -       1       verify
	flush     unix  n       -       n       1000?   0       flush
	proxymap  unix  -       -       n       -       -       proxymap
	showq     unix  n       -       n       -       -       showq
	error     unix  -       -       n       -       -       error
	retry     unix  -       -       n       -       -       error
	discard   unix  -       -       n       -       -       discard
	anvil     unix  -       -       n       -       1       anvil
	scache    unix  -       -       n       -       1       scache
	postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
}

# Postfix reports fatal errors only to its log (or a terminal): on failure
# suite_cleanup prints the maillog.
start_postfix() {
	local _

	{ live_ns postfix -c "$PF" check && live_ns postfix -c "$PF" start &&
		live_ns postfix -c "$PF" status; } > "$TMP/postfix.out" 2>&1 ||
		{ cat "$TMP/postfix.out"; return 1; }
	for _ in $(seq 100); do
		live_ns ss -Hltn 'sport = :25' | grep -q . && [ -d "$QUEUE/private" ] && return 0
		sleep 0.1
	done
	echo "smtpd does not listen on port 25"
	return 1
}

# start_policyd CMD...: the server in the namespace (or, with CMD
# --netns ..., where the test runs), logging to $LOG (kept over restarts);
# waits until its socket is there.
start_policyd() {
	local _ ns=(nsenter --net=/run/netns/"$LIVE_NS")

	[[ " $* " == *" --netns "* ]] && ns=()
	echo "--- $*" >> "$LOG"
	"${ns[@]}" "$@" 2>> "$LOG" &
	POLICYD_PID=$!
	for _ in $(seq 100); do
		[ -S "$SOCKET" ] && return 0
		kill -0 "$POLICYD_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$LOG"
	return 1
}
