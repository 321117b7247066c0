#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - connaudit's benchmarks (see bench/README.md).
#
#   1. query cost vs held connections (C library, Lua module, sock_diag, ss)
#   2. hot-path cost: loopback connection churn with nothing / connaudit
#      (whole host, cgroup-scoped) / nftables ct count, round-robin
#   3. BPF map memory per tracked peer and per aggregate entry
#
# Prints one table; writes RESULTS.md and results.png to bench/, or, with
# BENCH_QUICK=1 (a smoke run of seconds), to BUILD_DIR/bench/ only.
# Needs root and `make all`. Everything it creates is named after its pid
# and removed on exit: network namespace, cgroup, pin dir, nft table.
set -euo pipefail

usage() { echo "usage: [BENCH_QUICK=1] $0 BUILD_DIR" >&2; exit 2; }
[ $# -eq 1 ] || usage

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
QUICK=${BENCH_QUICK:-0}
COMMAND="${BENCH_QUICK:+BENCH_QUICK=$BENCH_QUICK }$0 $*"
OUT=$BUILD/bench
RAW=$OUT/raw.txt	# every measurement, as lines for bench/report.awk
TOOL=$BUILD/connaudit

TAG=connaudit-bench-$$
NS=$TAG
NS_PATH=/run/netns/$NS
# The pin dir sits in a directory of its own: load and unload lock the pin
# dir's parent and fail at once if another one holds it (other tests).
PIN_PARENT=/sys/fs/bpf/$TAG
PIN=$PIN_PARENT/ca
NFT_TABLE=connaudit_bench
CHURN_CONFIGS=(bare default cgroup ct floor1 floor2 fullmap)

if [ "$QUICK" = 1 ]; then
	LEVELS=200,1000,2000 QUERY_ROUNDS=2 BATCH_MS=5
	CHURN_ROUNDS=1 CHURN_MS=400 FULLMAP_PEERS=512
	RESULTS_DIR=$OUT
else
	# 200k: issue 18's scale goal; query.c sizes the maps for it.
	LEVELS=1000,10000,50000,200000 QUERY_ROUNDS=7 BATCH_MS=40
	CHURN_ROUNDS=9 CHURN_MS=3000 FULLMAP_PEERS=8192
	RESULTS_DIR=$SRC/bench
fi
# One churn worker per CPU, at least two: one would leave a CPU idle.
WORKERS=$(nproc); [ "$WORKERS" -ge 2 ] || WORKERS=2
CHURN_SOURCES=8

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }
# connaudit load/unload, quiet unless they fail.
tool() {
	local out
	out=$("$TOOL" "$@" 2>&1) || { say "connaudit $1 failed: $out"; return 1; }
}

# ---- preflight -------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "needs root (namespaces, BPF, nftables)"
for f in "$TOOL" "$BUILD/libconnaudit.a" "$BUILD/bench/floor"; do
	[ -e "$f" ] || die "$f is missing: run 'make all' first"
done
for c in cc pkg-config ip nsenter ss nft bpftool gnuplot sysctl mountpoint; do
	command -v "$c" >/dev/null || die "'$c' is missing: run 'scripts/deps bench'"
done
CG_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CG_ROOT" ] || die "no cgroup2 mount in /proc/mounts (needed for --cgroup mode)"
CG=$CG_ROOT/$TAG

# ---- clean-up ----------------------------------------------------------------

BG_PID=
FLOOR_PID=
STATS_SAVED=$(sysctl -n kernel.bpf_stats_enabled)

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e	# clean up everything, whatever fails
	if [ -n "$BG_PID" ]; then kill -- "$BG_PID" 2>/dev/null || true; wait "$BG_PID" 2>/dev/null || true; fi
	if [ -n "$FLOOR_PID" ]; then kill "$FLOOR_PID" 2>/dev/null; wait "$FLOOR_PID" 2>/dev/null; fi
	sysctl -qw kernel.bpf_stats_enabled="$STATS_SAVED" || true
	[ -e "$PIN" ] && "$TOOL" unload --pin-dir "$PIN" >/dev/null 2>&1
	[ -d "$PIN_PARENT" ] && rmdir "$PIN_PARENT"
	if [ -e "$NS_PATH" ]; then
		nsenter --net="$NS_PATH" nft delete table inet "$NFT_TABLE" 2>/dev/null
		ip netns del "$NS" || true
	fi
	# A cgroup is busy until its last process is reaped: retry briefly.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -d "$CG" ] || break
		rmdir "$CG" 2>/dev/null || sleep 0.2
	done
	[ -d "$CG" ] && say "could not remove $CG"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run a command in the background and wait, so that INT/TERM reach the
# trap at once instead of after the command.
run_waited() {
	"$@" &
	BG_PID=$!
	wait "$BG_PID"
	local rc=$?
	BG_PID=
	return $rc
}

# ---- build -----------------------------------------------------------------------

CFLAGS=(-O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I"$SRC/include" -I"$SRC/tests/kernel"
	-I"$SRC/bench")
NETLIB=$SRC/tests/kernel/netlib.c

build() {
	mkdir -p "$OUT"
	say "building the benchmark programs in $OUT"
	# shellcheck disable=SC2046  # pkg-config output is a list of flags
	cc "${CFLAGS[@]}" $(pkg-config --cflags libbpf lua5.4) \
		"$SRC"/bench/{query,query_methods,holders}.c "$NETLIB" "$BUILD/libconnaudit.a" \
		$(pkg-config --libs libbpf lua5.4) -o "$OUT/query"
	cc "${CFLAGS[@]}" "$SRC/bench/churn.c" "$NETLIB" -o "$OUT/churn"
}

# ---- sandbox ---------------------------------------------------------------------

in_ns() { nsenter --net="$NS_PATH" "$@"; }

sandbox() {
	# As `connaudit load` would, so that the pin dir's parent can be made.
	mountpoint -q /sys/fs/bpf || mount -t bpf -o mode=0700 bpf /sys/fs/bpf
	mkdir "$PIN_PARENT"
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	mkdir "$CG"
}

# ---- 1. query cost -----------------------------------------------------------------

bench_query() {
	say "query cost at N = $LEVELS held connections ($QUERY_ROUNDS rounds)"
	run_waited in_ns "$OUT/query" --pin-dir "$PIN" --lua-dir "$BUILD/lua" \
		--levels "$LEVELS" --rounds "$QUERY_ROUNDS" --batch-ms "$BATCH_MS" >>"$RAW"
}

# ---- 2. churn ---------------------------------------------------------------------------

# The nft rule counts every new connection to the port but never rejects.
nft_ruleset() {
	cat <<EOF
table inet $NFT_TABLE {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 25 ct state new ct count over 1000000 reject
	}
}
EOF
}

# floor1/floor2: one or two empty programs on inet_sock_set_state
# (bench/floor.bpf.c), the least any auditor on that tracepoint can cost;
# connaudit attaches two (the second catches the runs the kernel skips).
floor_start() {
	local fifo=$OUT/floor.fifo line
	rm -f "$fifo" && mkfifo "$fifo"
	"$BUILD/bench/floor" "$1" >"$fifo" &
	FLOOR_PID=$!
	read -r line <"$fifo"
	rm -f "$fifo"
	[ "$line" = attached ] || die "bench/floor $1 did not attach"
}

floor_stop() {
	kill "$FLOOR_PID" && wait "$FLOOR_PID"
	FLOOR_PID=
}

churn_setup() {
	case $1 in
	bare) ;;
	floor1) floor_start 1 ;;
	floor2) floor_start 2 ;;
	default) tool load --pin-dir "$PIN" --quiet ;;
	cgroup) tool load --pin-dir "$PIN" --quiet --cgroup "$CG" ;;
	# The worst case of reclaim: churn fills ca_peers with live entries
	# first (-f), so every connection is a new peer that finds it full.
	fullmap) tool load --pin-dir "$PIN" --quiet --max-peers "$FULLMAP_PEERS" ;;
	ct)
		nft_ruleset | in_ns nft -f -
		# Conntrack keeps TIME_WAIT entries 120 s: at churn rates they
		# would fill nf_conntrack_max and drop SYNs in later ct rounds.
		# 1 s keeps the table small (if anything, that makes ct cheaper).
		# Set after the table exists: that is what loads conntrack.
		in_ns sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 ;;
	esac
}

churn_teardown() {
	case $1 in
	default | cgroup | fullmap) tool unload --pin-dir "$PIN" ;;
	ct)
		in_ns nft delete table inet "$NFT_TABLE"
		# Conntrack then reaps its entries in the background.
		sleep 2 ;;
	floor1 | floor2) floor_stop ;;
	esac
	# Work a configuration deferred (RCU callbacks) runs now, not in the
	# next configuration's round.
	sleep 0.5
}

# The workers run in the test cgroup in every configuration, so that the
# cgroup-scoped mode differs from the others only by what is attached. The
# inner shell moves itself, then becomes nsenter and churn (same pid).
run_churn() {
	local fill=()
	[ "$1" = fullmap ] && fill=(-f "$FULLMAP_PEERS")
	# shellcheck disable=SC2016  # $$ and $@ are the inner shell's
	run_waited sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
		nsenter --net="$NS_PATH" "$OUT/churn" -w "$WORKERS" -k "$CHURN_SOURCES" \
		-t "$CHURN_MS" -p 25 "${fill[@]}"
}

bench_churn() {
	local round config
	say "churn: ${CHURN_CONFIGS[*]}, $CHURN_ROUNDS rounds of $CHURN_MS ms, $WORKERS workers"
	note_other_programs
	for ((round = 0; round < CHURN_ROUNDS; round++)); do
		# A new order each round: no configuration always runs first,
		# or always right after the same neighbour (and what it left).
		for config in $(shuf -e "${CHURN_CONFIGS[@]}"); do
			churn_setup "$config"
			echo "C $round $config $(run_churn "$config")" >>"$RAW"
			churn_teardown "$config"
		done
		say "  round $((round + 1))/$CHURN_ROUNDS done"
	done
}

# Per-program run counts and time, one "link run_cnt run_time_ns" line each.
program_stats() {
	"$TOOL" status --json --pin-dir "$PIN" | grep -o '{"pin": [^}]*}' |
		sed 's/.*"pin": "\([^"]*\)".*"run_cnt": \([0-9]*\), "run_time_ns": \([0-9]*\).*/\1 \2 \3/'
}

# Programs on inet_sock_set_state, one id a line: while nothing of this
# run is loaded, those are other tests' auditors.
tracepoint_progs() {
	bpftool link show | awk '/^[0-9]+:/ { prog = "" }
		{ for (i = 1; i < NF; i++) if ($i == "prog") prog = $(i + 1) }
		/inet_sock_set_state/ && prog != "" { print prog }'
}

# Other programs on the same tracepoint (other tests' auditors) slow every
# churn round, "nothing loaded" included: say so, here and in the table.
note_other_programs() {
	local n
	n=$(tracepoint_progs | wc -l)
	echo "OTHERS $n" >>"$RAW"
	[ "$n" -eq 0 ] || say "warning: $n other program(s) on inet_sock_set_state" \
		"(other tests?) slow every churn configuration alike"
}

# "run_cnt run_time_ns" summed over the given program ids.
prog_totals() {
	local id
	for id in "$@"; do bpftool prog show id "$id" 2>/dev/null; done |
		awk '{ for (i = 1; i < NF; i++) {
			if ($i == "run_cnt") cnt += $(i + 1)
			if ($i == "run_time_ns") ns += $(i + 1) } }
		END { printf "%.0f %.0f\n", cnt, ns }'
}

# One round with kernel.bpf_stats_enabled=1: "P config link runs ns conns"
# for this run's programs, and for other tests' programs in the bare round
# (every configuration pays for those, "nothing loaded" included).
stats_round() {
	local config=$1 others="" line conns c0 t0 c1 t1
	churn_setup "$config"
	[ "$config" = bare ] && others=$(tracepoint_progs)
	sysctl -qw kernel.bpf_stats_enabled=1
	# shellcheck disable=SC2086  # a list of ids
	read -r c0 t0 < <(prog_totals $others)
	line=$(run_churn "$config")
	# shellcheck disable=SC2086
	read -r c1 t1 < <(prog_totals $others)
	conns=$(echo "$line" | awk '{ print $4 }')
	if [ -n "$others" ] && [ "$c1" -gt "$c0" ]; then
		echo "P $config other_tests_programs $((c1 - c0)) $((t1 - t0)) $conns" >>"$RAW"
	fi
	if [ "$config" != bare ]; then
		program_stats | while read -r link cnt ns; do
			echo "P $config $link $cnt $ns $conns"
		done >>"$RAW"
	fi
	sysctl -qw kernel.bpf_stats_enabled="$STATS_SAVED"
	churn_teardown "$config"
}

# Program cost per run comes from rounds of their own, apart from the timed
# ones: the two clock reads the stats add to every run would otherwise be
# charged to connaudit's rate.
bench_program_cost() {
	local config
	say "program cost: one churn round per configuration with kernel.bpf_stats_enabled=1"
	for config in bare default cgroup; do
		stats_round "$config"
	done
}

# ---- 3. memory --------------------------------------------------------------------------

# Ids of every map a load leaves behind: those its programs use (including
# unpinned ones such as .rodata) and the pinned ones.
map_ids() {
	local prog f
	prog=$(bpftool link show pinned "$PIN/link_set_state" | sed -n 's/.*prog \([0-9]*\).*/\1/p')
	bpftool prog show id "$prog" | sed -n 's/.*map_ids \([0-9,]*\).*/\1/p' | tr ',' '\n'
	for f in "$PIN"/ca_*; do
		bpftool map show pinned "$f" | sed -n 's/^\([0-9]*\):.*/\1/p'
	done
}

# One "name max_entries memlock_bytes" line per map (bpftool's plain output
# is "ID: type name NAME flags ..." then "key ..B value ..B max_entries N
# memlock NB" on the next line).
map_memlock() {
	local id
	for id in $(map_ids | sort -un); do
		bpftool map show id "$id" | paste -sd ' ' |
			sed -n 's/.* name \([^ ]*\) .* max_entries \([0-9]*\) *memlock \([0-9]*\)B.*/\1 \2 \3/p'
	done
}

# Preallocated hash maps report memlock for max_entries, used or not: the
# bytes per entry are the difference between two sizes over the difference
# in entries (fixed overheads cancel).
bench_memory() {
	local size
	say "map memory at two map sizes"
	for size in 65536 131072; do
		tool load --pin-dir "$PIN" --quiet --max-peers "$size" --max-prefixes "$size" \
			--max-sessions "$size"
		map_memlock | while read -r name entries bytes; do
			echo "MEM $size $name $entries $bytes"
		done >>"$RAW"
		tool unload --pin-dir "$PIN"
	done
}

# ---- report -------------------------------------------------------------------------------

report() {
	local table=$OUT/table.md
	awk -v quick="$QUICK" -v qdat="$OUT/query.dat" -v cdat="$OUT/churn.dat" \
		-f "$SRC/bench/report.awk" "$RAW" >"$table"
	cat "$table"
	{
		echo "# connaudit benchmark results"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "- kernel: $(uname -r)"
		echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
			"($(nproc) CPUs), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
		echo "- command: \`$COMMAND\` (as root), wall time $((SECONDS / 60)) min $((SECONDS % 60)) s"
		echo "- method: see bench/README.md; medians over rounds; plot: results.png"
		echo
		cat "$table"
	} >"$RESULTS_DIR/RESULTS.md"
	gnuplot -e "qdat='$OUT/query.dat'; cdat='$OUT/churn.dat'; out='$RESULTS_DIR/results.png'" \
		"$SRC/bench/plot.gp"
	say "wrote $RESULTS_DIR/RESULTS.md and $RESULTS_DIR/results.png in ${SECONDS} s"
}

main() {
	SECONDS=0
	build
	: >"$RAW"
	sandbox
	bench_query
	bench_churn
	bench_program_cost
	bench_memory
	report
}

main
