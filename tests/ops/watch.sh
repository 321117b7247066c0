#!/bin/bash
# watch.sh BUILD_DIR - `connaudit status --watch` and `top --watch` on a
# pseudo-terminal (script(1)): the screen is cleared and redrawn every
# interval, a change shows on a later screen, q and Ctrl-C end it with
# status 0, and the terminal is left as it was.
set -u
. "$(dirname "$0")/lib.sh"
ops_init watch "$@"

OUT=$TMP/screen

# on_tty KEYS DELAY CMD: run CMD (a shell command line) on a new pty, type
# KEYS (printf format) after DELAY seconds; its output into $OUT. Returns
# CMD's status (124 if it had to be killed).
on_tty() {
	(sleep "$2"; printf '%b' "$1") | timeout 20 script -qfec "$3" /dev/null 2>&1 | tr -d '\0' > "$OUT"
	return "${PIPESTATUS[1]}"
}

MORE_PID=
suite_cleanup() {
	[ -z "$MORE_PID" ] || { kill "$MORE_PID"; wait "$MORE_PID"; } 2>/dev/null
}

# more_connections: two sessions to ECStream (a built-in service, port
# 1825), which had none.
more_connections() {
	nsenter --net=/run/netns/"$LIVE_NS" "$LIVE_HOLDCONNS" 'listen=127.0.0.1:1825' \
		'conn=127.0.2.9>127.0.0.1:1825*2' > "$TMP/more.out" &
	MORE_PID=$!
	live_wait_line "$MORE_PID" "$TMP/more.out" '^ready$'
}

# How many times the screen was cleared.
redraws() {
	grep -o $'\033\\[H\033\\[2J' "$OUT" | wc -l
}

# screen N: the Nth screen drawn (1: the first; -1: the last).
screen() {
	awk -v RS=$'\033\\[H\033\\[2J' -v n="$1" '
		NR > 1 { s[++k] = $0 } END { i = n > 0 ? n : k + 1 + n; print s[i] }' "$OUT"
}

check_no_root_parts() {
	check_eq "--watch=0 is refused (usage, 2)" 2 \
		"$("$BIN" status --watch=0 2>/dev/null; echo $?)"
	check_has "... saying what it takes" <("$BIN" status --watch=x 2>&1) \
		"--watch takes seconds from 0.1 to 86400"
	on_tty q 1 "exec $BIN status --watch=0.2 --pin-dir /sys/fs/bpf/connaudit-ops-$$-none"
	check_eq "nothing loaded: it keeps redrawing the message until q (status 0)" 0 $?
	check_has "... which says not loaded" "$OUT" "connaudit is not loaded"
}

check_live() {
	local rc counts watcher

	on_tty q 1.5 "exec nsenter --net=/run/netns/$LIVE_NS $BIN status --watch=0.2 --pin-dir $LIVE_PIN_DIR"
	check_eq "status --watch=0.2 ends on q with status 0" 0 $?
	counts=$(redraws)
	# 8 at most; a busy machine draws fewer, an interval not applied 1.
	check "... having redrawn the screen every 0.2 s or so (3 or more in 1.5 s: $counts)" \
		test "$counts" -ge 3
	check_has "... showing the status" <(screen -1) "connaudit loaded at $LIVE_PIN_DIR"

	on_tty q 2.5 "exec nsenter --net=/run/netns/$LIVE_NS $BIN top ECStream --watch=0.2 --pin-dir $LIVE_PIN_DIR --config /dev/null" &
	watcher=$!
	sleep 0.6
	more_connections || not_ok "two sessions to ECStream while watching"
	wait "$watcher"
	rc=$?
	check_eq "top ECStream --watch=0.2 ends on q with status 0" 0 "$rc"
	check_has "... its first screen is top's" <(screen 1) "Every 0.2s: connaudit top"
	check_eq "... and shows no client of ECStream" "" "$(screen 1 | grep -o '127.0.2.0/24')"
	check_has "... and its last the two sessions that came meanwhile" <(screen -1) \
		"2 127.0.2.0/24"

	on_tty '\003' 1 "exec nsenter --net=/run/netns/$LIVE_NS $BIN top SMTP --watch=0.2 --pin-dir $LIVE_PIN_DIR --config /dev/null"
	check_eq "top --watch ends on Ctrl-C with status 0" 0 $?
	check_has "... showing the busiest prefixes" "$OUT" "127.0.0.0/24"

	on_tty q 0.8 "$BIN status --watch=0.2 --pin-dir $LIVE_PIN_DIR > /dev/null; stty -a"
	check_has "... and the terminal is canonical again afterwards" "$OUT" " icanon "
	check_has "... with echo on" "$OUT" " echo "
}

check_no_root_parts
need_root "watching a live auditor"
ops_live || { summary; exit; }
check_live
summary
