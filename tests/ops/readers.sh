#!/bin/bash
# readers.sh BUILD_DIR - non-root readers of an auditor loaded with --group:
# a member of the group can count (CLI, metrics, Lua module) but cannot
# change or remove anything; a user outside the group cannot even read.
# Creates a group and two users for the run and deletes them on exit.
set -u
. "$(dirname "$0")/lib.sh"
ops_init readers "$@"

GROUP=caops$$
MEMBER=caops$$m
OUTSIDER=caops$$o
MADE_USERS=()
MADE_GROUP=

suite_cleanup() {
	local u

	for u in "${MADE_USERS[@]}"; do
		userdel "$u" 2>/dev/null
	done
	[ -n "$MADE_GROUP" ] && groupdel "$GROUP" 2>/dev/null
	MADE_USERS=()
	MADE_GROUP=
}

# Users without a home or a group of their own; only MEMBER is in GROUP.
make_accounts() {
	local nogroup

	nogroup=$(id -g nobody) || return
	groupadd "$GROUP" || return
	MADE_GROUP=1
	useradd -M -N -g "$nogroup" -G "$GROUP" -s /usr/sbin/nologin "$MEMBER" || return
	MADE_USERS+=("$MEMBER")
	useradd -M -N -g "$nogroup" -s /usr/sbin/nologin "$OUTSIDER" || return
	MADE_USERS+=("$OUTSIDER")
}

# as USER CMD...: run CMD as USER (with USER's groups) inside the namespace.
as() {
	local user=$1

	shift
	live_ns setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$@"
}

count_as() {
	as "$1" "$BIN" count "$2" SMTP ${3:+--peer "$3"} --pin-dir "$LIVE_PIN_DIR" --config /dev/null
}

check_pin_modes() {
	check_eq "map pins: group $GROUP, mode 640" "$GROUP 640" \
		"$(stat -c '%G %a' "$LIVE_PIN_DIR/ca_peers")"
	check_eq "pin dir: group $GROUP, mode 750" "$GROUP 750" \
		"$(stat -c '%G %a' "$LIVE_PIN_DIR")"
	check_eq "link pin stays root 600" "root 600" \
		"$(stat -c '%G %a' "$LIVE_PIN_DIR/link_set_state")"
	check_eq "ca_table pin: group read-write (mapped; frozen, so nobody writes it)" \
		"$GROUP 660" "$(stat -c '%G %a' "$LIVE_PIN_DIR/ca_table")"
}

check_member_reads() {
	check_eq "member: count /0 SMTP" "$OPS_SMTP" "$(count_as "$MEMBER" /0)"
	check_eq "member: count /24 SMTP --peer 127.0.0.2" 3 "$(count_as "$MEMBER" /24 127.0.0.2)"
	as "$MEMBER" "$BIN" metrics --pin-dir "$LIVE_PIN_DIR" --config /dev/null > "$TMP/m.txt"
	check_eq "member: metrics exits 0" 0 $?
	check_has "member: metrics counts SMTP" "$TMP/m.txt" \
		"connaudit_inbound_sessions{service=\"SMTP\",port=\"25\"} $OPS_SMTP"
	if [ ! -e "$BUILD/lua/msys/audit.so" ]; then
		skip "member: Lua module: $BUILD/lua/msys/audit.so is not built"
		return
	fi
	check_eq "member: msys.audit.inbound_session_count('/0', 'SMTP')" "$OPS_SMTP" \
		"$(as "$MEMBER" env LUA_CPATH="$BUILD/lua/?.so" lua5.4 -e "
			local audit = require('msys.audit')
			audit.configure{pin_dir = '$LIVE_PIN_DIR', config = '/dev/null'}
			print(audit.inbound_session_count('/0', 'SMTP'))")"
}

check_outsider_refused() {
	count_as "$OUTSIDER" /0 > /dev/null 2> "$TMP/outsider.err"
	check_eq "outsider: count exits 1" 1 $?
	check_has "outsider: the error says permission denied" "$TMP/outsider.err" \
		"permission denied opening $LIVE_PIN_DIR"
	check_fails "outsider: bpftool map dump fails" \
		as "$OUTSIDER" bpftool map dump pinned "$LIVE_PIN_DIR/ca_peers" 2> /dev/null
}

# bpftool's "hex" bytes of a ca_peers key: struct ca_key, little-endian:
# netns (4), port (2), family (1), prefixlen (1), addr (16).
peer_key() {
	local netns=$1 port=$2 a b c d

	IFS=. read -r a b c d <<< "$3"
	printf '%02x %02x %02x %02x ' $((netns & 255)) $((netns >> 8 & 255)) \
		$((netns >> 16 & 255)) $((netns >> 24 & 255))
	printf '%02x %02x 02 20 %02x %02x %02x %02x' $((port & 255)) $((port >> 8)) "$a" "$b" "$c" "$d"
	printf ' 00%.0s' {1..12}
}

check_member_cannot_write() {
	local map=$LIVE_PIN_DIR/ca_peers netns key slot slot_key

	netns=$(stat -L -c %i /run/netns/"$LIVE_NS")
	read -ra key <<< "$(peer_key "$netns" 25 127.0.1.9)"
	# The key is right: root finds the one session from 127.0.1.9 under it.
	bpftool -j map lookup pinned "$map" key hex "${key[@]}" > "$TMP/lookup.json"
	slot=$(grep -o '"slot":[0-9]*' "$TMP/lookup.json" | cut -d: -f2)
	check "root: bpftool map lookup finds the 127.0.1.9 entry" [ -n "$slot" ]
	slot=${slot:-0}
	slot_key=($((slot & 255)) $((slot >> 8 & 255)) $((slot >> 16 & 255)) $((slot >> 24 & 255)))
	bpftool -j map lookup pinned "$LIVE_PIN_DIR/ca_table" key "${slot_key[@]}" > "$TMP/slot.json"
	check_has "... and its ca_table slot holds the one session" "$TMP/slot.json" '"count":1,'
	as "$MEMBER" bpftool map update pinned "$LIVE_PIN_DIR/ca_table" key "${slot_key[@]}" \
		value hex 64 00 00 00 02 00 00 00 $(printf '00 %.0s' {1..24}) > "$TMP/table.err" 2>&1
	check_eq "member: bpftool map update of ca_table fails" 255 $?
	check_has "... refused: the table is frozen" "$TMP/table.err" "Operation not permitted"
	as "$MEMBER" bpftool map update pinned "$map" key hex "${key[@]}" \
		value hex 64 00 00 00 00 00 00 00 > "$TMP/update.err" 2>&1
	check_eq "member: bpftool map update fails" 255 $?
	check_has "... refused for permission" "$TMP/update.err" "Permission denied"
	as "$MEMBER" bpftool map delete pinned "$map" key hex "${key[@]}" > "$TMP/delete.err" 2>&1
	check_eq "member: bpftool map delete fails" 255 $?
	check_has "... refused for permission" "$TMP/delete.err" "Permission denied"
	check_fails "member: removing a pin fails" as "$MEMBER" rm -f "$map" 2> /dev/null
	check_fails "member: connaudit unload fails" \
		as "$MEMBER" "$BIN" unload --pin-dir "$LIVE_PIN_DIR" --quiet 2> /dev/null
	check_eq "the entry is unchanged" 1 "$(count_as root 127.0.1.9)"
	check_eq "the total is unchanged" "$OPS_SMTP" "$(count_as "$MEMBER" /0)"
}

need_root "non-root readers"
check "create group $GROUP and users $MEMBER, $OUTSIDER" make_accounts || { summary; exit; }
ops_live --group "$GROUP" || { summary; exit; }
check_pin_modes
check_member_reads
check_outsider_refused
check_member_cannot_write
summary
