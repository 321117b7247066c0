#!/bin/bash
# bpftool.sh BUILD_DIR - the pins can be inspected with bpftool alone: map
# dumps show BTF field names, ca_peers says which ca_table slot holds each
# peer's count and the slot holds the count of the connections held, and
# the link pin leads to the attached program.
set -u
. "$(dirname "$0")/lib.sh"
ops_init bpftool "$@"

# entry_slot FILE PORT ADDR_BYTES: the ca_table slot of the ca_peers entry
# of our namespace for PORT and the address whose bytes (comma-separated,
# as bpftool prints them) start with ADDR_BYTES, from `bpftool -j map dump`.
entry_slot() {
	E_NETNS=$NETNS E_PORT=$2 E_ADDR=$3 lua5.4 -e '
		local text = io.read("a")
		local netns, port, addr = os.getenv("E_NETNS"), os.getenv("E_PORT"), os.getenv("E_ADDR")
		for key, slot in text:gmatch("\"formatted\":{\"key\":(%b{}),\"value\":{\"slot\":(%d+)") do
			if key:find("\"netns\":" .. netns .. ",", 1, true) and
			   key:find("\"port\":" .. port .. ",", 1, true) and
			   key:find("\"addr\":[" .. addr, 1, true) then
				print(slot)
			end
		end' < "$1"
}

# slot_count SLOT: the count bpftool shows in that slot of ca_table, whose
# key must be our namespace's.
slot_count() {
	local s=${1:-0}

	bpftool -j map lookup pinned "$LIVE_PIN_DIR/ca_table" key $((s & 255)) $((s >> 8 & 255)) \
		$((s >> 16 & 255)) $((s >> 24 & 255)) | grep "\"netns\":$NETNS," |
		grep -o '"count":[0-9]*' | head -n 1 | cut -d: -f2
}

peer_count() {
	slot_count "$(entry_slot "$TMP/peers.json" "$1" "$2")"
}

check_peers_dump() {
	local dump=$TMP/peers.txt field

	bpftool map dump pinned "$LIVE_PIN_DIR/ca_peers" > "$dump"
	check_eq "bpftool map dump pinned .../ca_peers exits 0" 0 $?
	for field in netns port family prefixlen addr slot version; do
		check_has "the dump names the field $field" "$dump" "\"$field\": "
	done
	check_has "the dump shows our namespace" "$dump" "\"netns\": $NETNS,"
	bpftool -j map dump pinned "$LIVE_PIN_DIR/ca_peers" > "$TMP/peers.json"
	bpftool map lookup pinned "$LIVE_PIN_DIR/ca_table" key 0 0 0 0 > "$TMP/slot.txt"
	for field in word count version key; do
		check_has "a ca_table slot names the field $field" "$TMP/slot.txt" "\"$field\": "
	done
	check_eq "127.0.0.2 -> port 25 (dual-stack, stored as IPv4)" 3 \
		"$(peer_count 25 127,0,0,2,0)"
	check_eq "127.0.1.9 -> port 25" 1 "$(peer_count 25 127,0,1,9,0)"
	check_eq "fd00:ca::2 -> port 25" 2 \
		"$(peer_count 25 253,0,0,202,0,0,0,0,0,0,0,0,0,0,0,2)"
	check_eq "127.0.0.3 -> port 2025" 2 "$(peer_count 2025 127,0,0,3,0)"
}

check_other_maps() {
	local p=$LIVE_PIN_DIR

	bpftool map dump pinned "$p/ca_prefixes" > "$TMP/prefixes.txt"
	check_has "ca_prefixes holds the configured /24s" "$TMP/prefixes.txt" '"prefixlen": 24,'
	check_has "ca_prefixes holds the per-port totals (family 0)" "$TMP/prefixes.txt" '"family": 0,'
	bpftool map dump pinned "$p/ca_health" > "$TMP/health.txt"
	check_has "ca_health names its fields" "$TMP/health.txt" '"incomplete": 0,'
	bpftool map dump pinned "$p/ca_config" > "$TMP/config.txt"
	check_has "ca_config shows the max_peers given at load" "$TMP/config.txt" '"max_peers": 4096,'
	bpftool map dump pinned "$p/ca_stats" > "$TMP/stats.txt"
	check_has "ca_stats dumps its counters per CPU" "$TMP/stats.txt" '"cpu": 0,'
	bpftool map dump pinned "$p/ca_marks" > "$TMP/marks.txt"
	check_has "ca_marks names the fields of a mark" "$TMP/marks.txt" '"counted": '
	# One mark per session held: 3 + 1 + 2 to port 25, 2 to port 2025.
	check_eq "ca_marks holds one entry per session of our namespace" 8 \
		"$(bpftool -j map dump pinned "$p/ca_marks" | grep -o "\"netns\":$NETNS," | wc -l)"
}

check_link_and_prog() {
	local prog

	bpftool link show pinned "$LIVE_PIN_DIR/link_set_state" > "$TMP/link.txt"
	check_has "bpftool link show: the tracepoint" "$TMP/link.txt" "tp 'inet_sock_set_state'"
	prog=$(grep -o 'prog [0-9]*' "$TMP/link.txt" | cut -d' ' -f2)
	bpftool prog show id "${prog:-0}" > "$TMP/prog.txt" 2>&1
	check_has "bpftool prog show id: on_set_state" "$TMP/prog.txt" "name on_set_state"
}

need_root "bpftool on a live auditor"
ops_live --max-peers 4096 || { summary; exit; }
NETNS=$(stat -L -c %i /run/netns/"$LIVE_NS")
check_peers_dump
check_other_maps
check_link_and_prog
summary
