#!/usr/bin/env bash
# bench/cluster.sh BUILD_DIR - the cluster benchmark: a redis-server on a
# UNIX socket, three network namespaces as three nodes with one agent each
# (default --interval and --ttl), then BUILD_DIR/bench/cluster measures the
# cluster query cost, the propagation delay from node A to node B, and Redis
# traffic and agent CPU under connection churn in node A.
# BENCH_QUICK=1: 50 sessions and 1 s of churn (a smoke run); else 1000
# sessions (2000 events: each open and each close) and 5 s of churn.
# Needs root and `make all bench-cluster-build`.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: [BENCH_QUICK=1] $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
if [ "${BENCH_QUICK:-0}" = 1 ]; then events=50 churn_ms=1000; else events=1000 churn_ms=5000; fi
tag=connaudit-clbench-$$
pin=/sys/fs/bpf/$tag/ca
tmp=$(mktemp -d /tmp/$tag.XXXXXX)
sock=$tmp/redis.sock
pids=()

cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || :; wait "$p" 2>/dev/null || :; done
  "$build/connaudit" unload --pin-dir "$pin" --quiet 2>/dev/null || :
  rmdir "/sys/fs/bpf/$tag" 2>/dev/null || :
  for n in a b c; do ip netns del "$tag-$n" 2>/dev/null || :; done
  rm -rf "$tmp"
}
trap cleanup EXIT

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mkdir -p "/sys/fs/bpf/$tag"
"$build/connaudit" load --pin-dir "$pin" --quiet
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' --appendonly no \
  --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
agents=()
for n in a b c; do
  ip netns add "$tag-$n"
  ip -n "$tag-$n" link set lo up
  "$build/connaudit" cluster --redis "unix://$sock" --node "$n" --cluster "$tag" \
    --pin-dir "$pin" --netns "/run/netns/$tag-$n" 2>>"$tmp/agents.log" &
  pids+=($!)
  agents+=($!)
done
sleep 1	# every agent hears every other one
"$build/bench/cluster" "$pin" "/run/netns/$tag-a" "/run/netns/$tag-b" "$sock" \
  "$events" "$churn_ms" "${agents[@]}"
