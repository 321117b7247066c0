#!/bin/bash
# journal.sh BUILD_DIR - a degraded auditor is reported once, not once per
# check: `connaudit metrics`, run as connaudit-metrics.service runs it (a
# new process each time, its state in a file), against an auditor whose
# ca_peers is too small for the connections it sees, then with those
# connections closed. Also: the journal's priority prefix when stderr is the
# journal, $RUNTIME_DIRECTORY as the state's home, and no state file at all.
#
# The auditor counts every namespace, and other suites may run beside this
# one: its services file moves every built-in service to ports of this
# run's own, so that only this suite's sessions fill (and empty) ca_peers.
set -u
. "$(dirname "$0")/lib.sh"
ops_init journal "$@"

STATE=$TMP/run/health
ERR=$TMP/metrics.err
CONF=$TMP/services.conf
PORT=$((20000 + $$ % 9000 * 4))
# Four peers and room for two.
HOLD_SPECS=("listen=[::]:$PORT" "conn=127.0.0.2>127.0.0.1:$PORT*3" "conn=127.0.1.9>127.0.0.1:$PORT"
	"conn=fd00:ca::2>[fd00:ca::1]:$PORT*2" "conn=127.0.0.3>127.0.0.1:$PORT*2")

# metrics_run [ENV...]: one run of the timer's command, stderr into $ERR;
# CONNAUDIT_HEALTH_STATE=$STATE unless ENV says otherwise.
metrics_run() {
	env CONNAUDIT_HEALTH_STATE="$STATE" "$@" nsenter --net=/run/netns/"$LIVE_NS" \
		"$BIN" metrics --pin-dir "$LIVE_PIN_DIR" --config "$CONF" > /dev/null 2> "$ERR"
}

# The lines about health a run wrote.
health_lines() {
	grep -c 'counts' "$ERR"
}

exact() {
	grep -q '"exact": true' <(live_ns "$BIN" status --json --pin-dir "$LIVE_PIN_DIR")
}

# wait_exact: the held connections closed, until the health is exact again
# (the sessions that were never counted take a few seconds to close).
wait_exact() {
	local _

	kill "$LIVE_HOLDCONNS_PID" && wait "$LIVE_HOLDCONNS_PID" 2>/dev/null
	LIVE_HOLDCONNS_PID=
	for _ in $(seq 300); do
		exact && return 0
		sleep 0.05
	done
	return 1
}

hold() {
	live_hold "$TMP/holdconns.out" "${HOLD_SPECS[@]}"
}

check_transitions() {
	check "metrics exits 0 with counts incomplete" metrics_run
	check_has "... and says once that they may be low: ca_peers ran full" "$ERR" \
		"connaudit: $LIVE_PIN_DIR: counts may be low: "
	check_has "... naming the map and what to do" "$ERR" "ca_peers ran full"
	check_eq "... in one line" 1 "$(health_lines)"
	check_has "... and keeps the state in the file" "$STATE" "connaudit-health 1"
	metrics_run
	check_eq "the next run, still degraded: no line" 0 "$(health_lines)"
	metrics_run
	check_eq "... nor the one after" 0 "$(health_lines)"
	check "the connections close: the health is exact again" wait_exact || return
	metrics_run
	check_has "the next run says the counts are exact again" "$ERR" \
		"connaudit: $LIVE_PIN_DIR: counts are exact again"
	check_eq "... in one line" 1 "$(health_lines)"
	metrics_run
	check_eq "the run after that: no line" 0 "$(health_lines)"
}

# stderr is the journal when JOURNAL_STREAM names it (device:inode).
check_journal_prefix() {
	local stream

	hold || { not_ok "hold the connections again"; return 1; }
	: > "$ERR"
	stream=$(stat -c '%d:%i' "$ERR")
	metrics_run JOURNAL_STREAM="$stream"
	check_eq "to the journal, degraded is a warning: <4>" "<4>connaudit: $LIVE_PIN_DIR" \
		"$(cut -d: -f1-2 "$ERR")"
	wait_exact
	metrics_run JOURNAL_STREAM="$stream"
	check_eq "... and exact again a notice: <5>" \
		"<5>connaudit: $LIVE_PIN_DIR: counts are exact again" "$(cat "$ERR")"
	metrics_run JOURNAL_STREAM=1:2
	check_eq "no prefix when JOURNAL_STREAM names another file" 0 "$(grep -c '^<' "$ERR")"
}

check_state_homes() {
	local rt=$TMP/runtime

	mkdir "$rt"
	hold || { not_ok "hold the connections again"; return 1; }
	metrics_run CONNAUDIT_HEALTH_STATE= RUNTIME_DIRECTORY="$rt"
	check_eq "\$RUNTIME_DIRECTORY/health keeps the state (as under systemd)" 1 "$(health_lines)"
	metrics_run CONNAUDIT_HEALTH_STATE= RUNTIME_DIRECTORY="$rt"
	check_eq "... so the next run is silent" 0 "$(health_lines)"
	check_has "... in $rt/health" "$rt/health" "$LIVE_PIN_DIR"
	metrics_run CONNAUDIT_HEALTH_STATE= RUNTIME_DIRECTORY=
	metrics_run CONNAUDIT_HEALTH_STATE= RUNTIME_DIRECTORY=
	check_eq "without a state file every degraded run says so" 1 "$(health_lines)"
	metrics_run CONNAUDIT_HEALTH_STATE="$TMP/no/such/dir/health"
	check_has "an unwritable state file is a warning naming the variable" "$ERR" \
		"cannot keep the health state in $TMP/no/such/dir/health"
}

need_root "the health log against a live auditor"
mkdir -p "$(dirname "$STATE")"
printf 'SMTP %d\nControl %d\nECStream %d\nECCluster %d\n' \
	"$PORT" $((PORT + 1)) $((PORT + 2)) $((PORT + 3)) > "$CONF"
if ! live_netns_add "${OPS_V6_ADDRS[@]}" || ! live_load --max-peers 2 --config "$CONF" || ! hold; then
	not_ok "live setup: namespace $LIVE_NS, auditor at $LIVE_PIN_DIR, connections"
	summary
	exit
fi
check_fails "ca_peers too small for the connections: the health is not exact" exact
check_transitions
check_journal_prefix
check_state_homes
summary
