#!/bin/bash
# compare.sh BUILD_DIR ROUNDS MS CONFIG... - churn rate of several builds (or
# the floor) side by side, each against nothing loaded, in one run.
#
# CONFIG is a path to a connaudit binary (loaded in whole-host mode), or
# floor1 / floor2 (one or two empty programs on the tracepoint) or
# floor-sockops (an empty sock_ops program at the cgroup2 root that asks for
# state callbacks on every accepted socket). Every round
# runs "nothing loaded" and each CONFIG for MS milliseconds, in a new random
# order, with a pause after each; the output is each CONFIG's median rate and
# the median (min-max) of its per-round ratios to "nothing loaded", and to
# floor2 when floor2 is one of the CONFIGs. Copy a build's
# connaudit aside before rebuilding to compare it with the next one:
#   cp build/connaudit /tmp/before && <change, make> &&
#   sudo bench/compare.sh build 12 3000 /tmp/before build/connaudit
# PER_CPU=1 divides each rate by the share of CPU time the churn's workers
# got, for a machine where other work takes CPU at random moments.
# LOAD_ARGS adds options to every load, CHURN_ARGS to every churn run; the
# worst case of a full ca_peers (every connection a new peer, the map full
# of live entries):
#   LOAD_ARGS="--max-peers 8192" CHURN_ARGS="-f 8192" bench/compare.sh ...
set -u

[ $# -ge 4 ] || { echo "usage: $0 BUILD_DIR ROUNDS MS CONFIG..." >&2; exit 2; }
BUILD=$1 ROUNDS=$2 MS=$3
shift 3
[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (it loads BPF programs)" >&2; exit 1; }
for f in "$BUILD/bench/churn" "$BUILD/bench/floor"; do
	[ -x "$f" ] || { echo "compare.sh: $f is missing: run 'make bench' once" >&2; exit 1; }
done

NS=connaudit-compare-$$
PIN=/sys/fs/bpf/connaudit-compare-$$
FLOOR_PID=
FLOOR_OUT=$(mktemp)
cleanup() {
	[ -n "$FLOOR_PID" ] && kill "$FLOOR_PID" 2>/dev/null
	rm -f "$FLOOR_OUT"
	for c in "$@"; do
		[ -x "$c" ] && [ -e "$PIN" ] && "$c" unload --pin-dir "$PIN" >/dev/null 2>&1
	done
	ip netns del "$NS" 2>/dev/null
}
trap 'cleanup "$@"' EXIT
trap 'exit 130' INT TERM
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns add "$NS" && ip -n "$NS" link set lo up || exit 1

setup() {
	case $1 in
	bare) ;;
	floor1 | floor2 | floor-sockops)
		: >"$FLOOR_OUT"
		local arg=${1#floor}
		"$BUILD/bench/floor" "${arg#-}" >"$FLOOR_OUT" &
		FLOOR_PID=$!
		until grep -q attached "$FLOOR_OUT"; do
			kill -0 "$FLOOR_PID" 2>/dev/null || { echo "compare.sh: floor failed" >&2; return 1; }
			sleep 0.05
		done ;;
	*) "$1" load --pin-dir "$PIN" --quiet ${LOAD_ARGS:-} ;;
	esac
}

teardown() {
	case $1 in
	bare) ;;
	floor1 | floor2 | floor-sockops) kill "$FLOOR_PID"; wait "$FLOOR_PID"; FLOOR_PID= ;;
	*) "$1" unload --pin-dir "$PIN" --quiet ;;
	esac
	sleep 1	# deferred work (RCU callbacks) lands here, not in the next round
}

rate_of() {
	ip netns exec "$NS" "$BUILD/bench/churn" -w "$(nproc)" -k 8 -t "$MS" -p 25 ${CHURN_ARGS:-} |
		awk -v per_cpu="${PER_CPU:-0}" '{ print per_cpu == 1 ? $2 / $10 : $2 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# "median (min-max)" of a list of per-round ratios
summary() {
	local sorted
	sorted=$(tr ' ' '\n' | grep . | sort -g)
	printf '%.3f (%.3f-%.3f)' "$(median <<<"$sorted")" "$(head -n1 <<<"$sorted")" \
		"$(tail -n1 <<<"$sorted")"
}

declare -A rate ratio vs2
for ((r = 0; r < ROUNDS; r++)); do
	declare -A now=()
	for c in $(shuf -e bare "$@"); do
		setup "$c" || exit 1
		now[$c]=$(rate_of)
		teardown "$c"
		rate[$c]="${rate[$c]:-} ${now[$c]}"
	done
	for c in "$@"; do
		ratio[$c]="${ratio[$c]:-} $(awk -v a="${now[$c]}" -v b="${now[bare]}" 'BEGIN { print a / b }')"
		[ -n "${now[floor2]:-}" ] &&
			vs2[$c]="${vs2[$c]:-} $(awk -v a="${now[$c]}" -v b="${now[floor2]}" 'BEGIN { print a / b }')"
	done
	echo "round $((r + 1))/$ROUNDS done" >&2
done
UNIT=conn/s
[ "${PER_CPU:-0}" = 1 ] && UNIT="conn per worker CPU-second"
printf '%-40s %8s %s\n' "nothing loaded" "$(tr ' ' '\n' <<<"${rate[bare]}" | grep . | median)" "$UNIT"
for c in "$@"; do
	printf '%-40s %8s %s  ratio %s' "$c" "$(tr ' ' '\n' <<<"${rate[$c]}" | grep . | median)" "$UNIT" \
		"$(summary <<<"${ratio[$c]}")"
	[ -n "${vs2[$c]:-}" ] && [ "$c" != floor2 ] && printf '  vs floor2 %s' "$(summary <<<"${vs2[$c]}")"
	echo
done
