#!/bin/bash
# systemd.sh BUILD_DIR - the installed units: `systemd-analyze verify`
# accepts them (it needs no running systemd), and their commands, run as
# systemd would run them with the example /etc/default/connaudit, load,
# reload and unload the auditor and write the textfile metrics atomically.
set -u
. "$(dirname "$0")/lib.sh"
ops_init systemd "$@"

PREFIX=$TMP/usr
UNITS=$PREFIX/lib/systemd/system
ENV_FILE=$TMP/etc/default/connaudit
TEXTFILE=$TMP/textfile/node_exporter/connaudit.prom

# Installed with PREFIX (not DESTDIR) so that ExecStart names a real file.
install_units() {
	make --no-print-directory -C "$OPS_ROOT" OUTPUT="$BUILD" PREFIX="$PREFIX" \
		SYSCONFDIR="$TMP/etc" LDCONFIG=: install > "$TMP/install.log" 2>&1 ||
		{ cat "$TMP/install.log"; return 1; }
}

# verify UNIT_FILE...: systemd-analyze verify, and silent (it only warns
# about unknown keys); with the installed man page, so that
# Documentation=man:connaudit(8) is checked too. Its words: $TMP/verify.out.
verify() {
	local man=yes

	command -v man > /dev/null || man=no	# a minimal system: man-db is optional
	MANPATH=$PREFIX/share/man systemd-analyze verify --man=$man "$@" > "$TMP/verify.out" 2>&1 &&
		[ ! -s "$TMP/verify.out" ]
}

check_verify() {
	check "systemd-analyze verify: connaudit.service, connaudit-metrics.{service,timer}, connaudit-policyd.{socket,service}, connaudit-cluster.service" \
		verify "$UNITS/connaudit.service" "$UNITS/connaudit-metrics.service" \
		"$UNITS/connaudit-metrics.timer" "$UNITS/connaudit-policyd.socket" \
		"$UNITS/connaudit-policyd.service" "$UNITS/connaudit-cluster.service" ||
		sed 's/^/    /' "$TMP/verify.out"
	sed 's/^RemainAfterExit=yes/RemainAfterExit=yes\nRemainAfterExist=yes/' \
		"$UNITS/connaudit.service" > "$TMP/typo.service"
	check_fails "... and it does catch a misspelt key" verify "$TMP/typo.service"
}

# exec_line UNIT KEY: the command line of KEY= in UNIT, with systemd's own
# escapes undone ($$ -> $, %% -> %); its $VARS are left for sh to expand,
# which splits them on whitespace as systemd does for $VAR.
exec_line() {
	sed -n "s/^$2=//p" "$UNITS/$1" | sed 's/\$\$/$/g; s/%%/%/g'
}

# run_unit UNIT KEY: run that command with the unit's environment: its
# Environment= lines, then the EnvironmentFile, inside the test namespace.
run_unit() {
	local cmd

	cmd=$(exec_line "$1" "$2")
	(
		set -a
		eval "$(sed -n 's/^Environment=//p' "$UNITS/$1")"
		. "$ENV_FILE"
		set +a
		live_ns sh -c "$cmd"
	)
}

# The example /etc/default/connaudit, set for this test's pin dir and file.
write_env_file() {
	cat >> "$ENV_FILE" <<EOF
CONNAUDIT_PIN_DIR=$LIVE_PIN_DIR
CONNAUDIT_CONFIG=/dev/null
CONNAUDIT_ARGS="--max-peers 4096 --prefixes 24,64"
CONNAUDIT_METRICS_ARGS="--prefix 24"
CONNAUDIT_TEXTFILE=$TEXTFILE
EOF
}

smtp_in_textfile() {
	lua5.4 "$OPS_HERE/check_metrics.lua" --series "$TEXTFILE" |
		awk '$1 == "connaudit_inbound_sessions{port=\"25\",service=\"SMTP\"}" { print $2 }'
}

check_commands() {
	LIVE_LOADED=1	# from here on, cleanup unloads
	check "ExecStart of connaudit.service loads" run_unit connaudit.service ExecStart
	check_has "... with CONNAUDIT_ARGS from the environment file" \
		<(live_ns "$BIN" status --json --pin-dir "$LIVE_PIN_DIR") '"ipv4": [24], "ipv6": [64]'
	check "ExecStart of connaudit-metrics.service writes the textfile" \
		run_unit connaudit-metrics.service ExecStart
	check_eq "... which counts the sessions (seeded at load)" "$OPS_SMTP" "$(smtp_in_textfile)"
	check_has "... with CONNAUDIT_METRICS_ARGS" "$TEXTFILE" "connaudit_top_prefix_sessions"
	check_eq "... and leaves no temporary file" "connaudit.prom" "$(ls "$(dirname "$TEXTFILE")")"
	check "ExecReload of connaudit.service replaces the programs" \
		run_unit connaudit.service ExecReload
	check_eq "... and keeps the counts" "$OPS_SMTP" "$(ops_count /0 SMTP)"
	check "ExecStop of connaudit.service unloads" run_unit connaudit.service ExecStop
	check_fails "... so the pin dir is gone" test -e "$LIVE_PIN_DIR"
	check_fails "connaudit-metrics.service fails while nothing is loaded" \
		run_unit connaudit-metrics.service ExecStart 2> /dev/null
	check_eq "... and the textfile says connaudit_up 0" "connaudit_up 0" \
		"$(lua5.4 "$OPS_HERE/check_metrics.lua" --series "$TEXTFILE")"
}

if ! command -v systemd-analyze > /dev/null; then
	skip "systemd units: systemd-analyze is not installed (Debian package systemd)"
	summary
	exit
fi
check "install the units under a temporary PREFIX" install_units || { summary; exit; }
check_verify
need_root "the units' commands against a live auditor"
write_env_file
ops_live --no-load || { summary; exit; }
check_commands
summary
