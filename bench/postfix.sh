#!/bin/bash
# bench/postfix.sh BUILD_DIR - is the policy server ever Postfix's
# bottleneck? Postfix's own smtp-source opens SESSIONS sessions (20 at a
# time, one message each) against a private Postfix (tests/postfix/lib.sh)
# that asks `connaudit policyd` at connect, then against the same Postfix
# without the policy check; prints both wall times. BENCH_QUICK=1: 200
# sessions instead of 2000. Needs root.
set -u
. "$(dirname "$0")/../tests/postfix/lib.sh"
pf_init bench-postfix "$@"
need_root
suite_cleanup() { pf_cleanup; }

SESSIONS=2000
[ "${BENCH_QUICK:-0}" = 1 ] && SESSIONS=200

# smtp_source WHAT: one run, its wall time printed.
smtp_source() {
	local t0 t1

	t0=$(date +%s%N)
	live_ns timeout 300 smtp-source -s 20 -m "$SESSIONS" -f sender@client.test \
		-t someone@localhost 127.0.0.1:25 > "$TMP/smtp-source.out" 2>&1 ||
		{ cat "$TMP/smtp-source.out"; return 1; }
	t1=$(date +%s%N)
	echo "$1: $SESSIONS sessions in $(( (t1 - t0) / 1000000 )) ms"
}

write_config
printf 'SMTP /24,/64 100000\nSMTP /32,/128 100000\n' > "$RULES"
live_netns_add && live_load && start_postfix &&
	start_policyd "$BUILD/connaudit" "${policyd_args[@]}" --listen "unix:$SOCKET" ||
	{ not_ok "setup"; exit 1; }
check "smtp-source, each session checked by policyd" smtp_source "with policyd" || exit
check_eq "... and none rejected" 0 "$(grep -c 'reject ' "$LOG")"
# smtpd keeps its policy connections open: they show that it asked.
check "... asked through connections smtpd keeps open" \
	test "$(live_ns ss -xH state connected | grep -c "$SOCKET")" -gt 0
live_ns postconf -c "$PF" -e 'smtpd_client_restrictions =' &&
	live_ns postfix -c "$PF" reload > /dev/null 2>&1 && sleep 1
check "smtp-source, no policy check" smtp_source "without a policy check" || exit
summary
