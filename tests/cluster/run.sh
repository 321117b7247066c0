#!/usr/bin/env bash
# Cluster-wide counts, end to end: a real redis-server on a UNIX socket in a
# temporary dir (no TCP port, nothing on disk), three network namespaces as
# three nodes, one `connaudit cluster` agent each, all on one auditor with a
# pin dir of its own. Every cluster count is checked against the sum of `ss`
# over the three namespaces.
# Usage: tests/cluster/run.sh BUILD_DIR      (as root)
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -u

build=${1:?usage: $0 BUILD_DIR}
connaudit=$build/connaudit
holdconns=$build/tests/holdconns
pin=/sys/fs/bpf/connaudit-clustertest-$$
nodes=(a b c)
interval=100	# ms, the agents' default
ttl=2		# s
passed=0
failed=0
declare -A agent holders
redis_pid=

ok()     { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
check()  { if "$@"; then ok "$label"; else not_ok "$label"; fi; }

ns_of() { echo "connaudit-cl-$$-$1"; }
in_ns() { local n=$1; shift; nsenter --net="/run/netns/$(ns_of "$n")" "$@"; }

cleanup() {
  local k
  for k in "${agent[@]}" "${holders[@]}" $redis_pid; do
    kill -9 "$k" 2>/dev/null; wait "$k" 2>/dev/null
  done
  [ -e "$pin" ] && "$connaudit" unload --pin-dir "$pin" --quiet 2>/dev/null
  for k in "${nodes[@]}"; do ip netns del "$(ns_of "$k")" 2>/dev/null; done
  [ -n "${tmp:-}" ] && rm -rf "$tmp"
}
trap cleanup EXIT

tmp=$(mktemp -d /tmp/connaudit-cluster.XXXXXX)
sock=$tmp/redis.sock

start_redis() {
  redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save '' \
    --appendonly no --dir "$tmp" >>"$tmp/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -s "$sock" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
  done
  # node c logs in as user c, with the ACL documented in connaudit(8)
  redis-cli -s "$sock" ACL SETUSER c on '>pw-c' resetkeys "~ca:{t$$}:*" resetchannels \
    "&ca:{t$$}:events" -@all +hset +hdel +hgetall +del +pexpire +multi +exec +publish \
    +subscribe +scan +eval +get +set +select +auth 2>&1 | grep -qx OK && return 0
  echo "redis-server did not start:"; cat "$tmp/redis.log"; return 1
}

# start_agent NODE: the agent for NODE in its namespace (c as ACL user c).
start_agent() {
  local n=$1 ns=$1 url="unix://$sock" password=
  [ "$n" = c ] && url="unix://c@$sock" password=pw-c
  # nsenter itself, not in_ns: nsenter execs the agent, so $! is its pid
  CONNAUDIT_REDIS_PASSWORD=$password nsenter --net="/run/netns/$(ns_of "$ns")" "$connaudit" cluster \
    --redis "$url" --node "$n" --cluster "t$$" \
    --pin-dir "$pin" --netns "/run/netns/$(ns_of "$ns")" --interval "$interval" \
    --ttl "$ttl" >>"$tmp/agent-$n.log" 2>&1 &
  agent[$n]=$!
}

# hold NODE TAG SPEC...: holdconns in NODE's namespace, waiting for "ready".
hold() {
  local n=$1 tag=$2 out="$tmp/hold-$1-$2"
  shift 2
  nsenter --net="/run/netns/$(ns_of "$n")" "$holdconns" "$@" >"$out" 2>&1 &
  holders[$n.$tag]=$!
  for _ in $(seq 100); do
    grep -q '^ready$' "$out" 2>/dev/null && return 0
    kill -0 "${holders[$n.$tag]}" 2>/dev/null || break
    sleep 0.05
  done
  echo "holdconns $*:"; sed 's/^/  /' "$out"; return 1
}

release() {
  kill "${holders[$1]}" 2>/dev/null; wait "${holders[$1]}" 2>/dev/null
  unset "holders[$1]"
}

# truth CIDR [NODE...]: sessions on port 25 from CIDR per ss, summed over
# the nodes' namespaces (default all three).
truth() {
  local cidr=$1 n total=0 filter='( sport = :25 )'
  shift
  local addr=$cidr
  [[ $addr == *:* ]] && addr="[$addr]"	# ss's IPv6 form: [addr] or [addr/len]
  [ "$cidr" != /0 ] && filter="( sport = :25 and dst $addr )"
  for n in "${@:-${nodes[@]}}"; do
    total=$((total + $(in_ns "$n" ss -Htn state established state close-wait "$filter" | wc -l)))
  done
  echo "$total"
}

# ask NODE CIDR: "COUNT RC" of a cluster count from NODE's namespace; with
# asking=rates, of the cluster's connections in the last two windows of the
# monitor every node keeps.
asking=sessions
monitor=3600,2
ask() {
  local out rc
  if [ "$asking" = rates ]; then
    out=$("$connaudit" connections "$monitor" "$2" SMTP --cluster --end 1 --pin-dir "$pin" \
      --netns "/run/netns/$(ns_of "$1")" 2>/dev/null)
  else
    out=$("$connaudit" count "$2" inbound_cidr --pin-dir "$pin" --netns "/run/netns/$(ns_of "$1")" 2>/dev/null)
  fi
  rc=$?
  echo "${out:-none} $rc"
}

cidrs=(127.0.0.2 127.0.0.0/24 /0 fd00:ca::2 fd00:ca::/64 127.0.0.0/20 64.0.0.0/2)

# converged SECONDS [NODE...]: within SECONDS, every asked node's cluster
# count equals the truth over NODE... (default all) for every CIDR, exactly
# (with asking=rates: the connections of $made).
converged() {
  local limit=$1 deadline c n want got
  shift
  deadline=$(( $(date +%s%N) + limit * 1000000000 ))
  while :; do
    local bad=
    for c in "${cidrs[@]}"; do
      if [ "$asking" = rates ]; then want="${made[$c]} 0"; else want="$(truth "$c" "$@") 0"; fi
      for n in "${asked[@]}"; do
        got=$(ask "$n" "$c")
        [ "$got" = "$want" ] || { bad="node $n $c: got '$got', want '$want'"; break 2; }
      done
    done
    [ -z "$bad" ] && return 0
    [ "$(date +%s%N)" -gt "$deadline" ] && { echo "  $bad"; return 1; }
    sleep 0.05
  done
}

# flagged SECONDS NODE: within SECONDS NODE's answers exit 3 (and still count).
flagged() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )) got
  while :; do
    got=$(ask "$2" /0)
    [[ $got =~ ^[0-9]+\ 3$ ]] && return 0
    [ "$(date +%s%N)" -gt "$deadline" ] && { echo "  node $2: '$got'"; return 1; }
    sleep 0.05
  done
}

# ---- setup -------------------------------------------------------------------

[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 0; }
command -v redis-server >/dev/null || { echo "redis-server is missing (scripts/deps test)"; exit 1; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
# Each holdconns group listens on port 25 of local addresses of its own
# (127.0.0.G, fd00:ca::G): a listener on [::]:25 would leave none for others.
for n in "${nodes[@]}"; do
  ip netns add "$(ns_of "$n")" && ip -n "$(ns_of "$n")" link set lo up || exit 1
  for a in fd00:ca::2 fd00:ca::3 fd00:ca:0:1::4 $(printf 'fd00:ca::%d ' $(seq 10 30)); do
    ip -n "$(ns_of "$n")" addr add "$a/128" dev lo nodad || exit 1
  done
done
for _ in $(seq 100); do
  out=$("$connaudit" load --pin-dir "$pin" --quiet --monitors "$monitor" 2>&1) && break
  [[ $out == *"another connaudit load or unload"* ]] || { echo "$out"; exit 1; }
  sleep 0.1
done
start_redis || exit 1
for n in "${nodes[@]}"; do start_agent "$n"; done
asked=("${nodes[@]}")

# (holdconns finds a connection's listener by port: one per process)
hold a base 'listen=127.0.0.10:25' 'conn=127.0.0.2>127.0.0.10:25*3' 'conn=127.0.3.1>127.0.0.10:25' || exit 1
hold a base6 'listen=[fd00:ca::10]:25' 'conn=fd00:ca::2>[fd00:ca::10]:25*2' || exit 1
hold b base 'listen=127.0.0.10:25' 'conn=127.0.0.2>127.0.0.10:25*2' 'closewait=127.0.0.9>127.0.0.10:25' || exit 1
hold b base6 'listen=[fd00:ca::10]:25' 'conn=fd00:ca:0:1::4>[fd00:ca::10]:25' || exit 1
hold c base 'listen=127.0.0.10:25' 'conn=127.0.1.7>127.0.0.10:25' || exit 1

# ---- exact, and within a second of each change --------------------------------

label="cluster counts equal ss summed over 3 namespaces (/32 /24 /0 IPv6 /128 /64, /20 from its /24s, /2 by scan)"
check converged 3

# Every session so far is a connection made since the load (none closed):
# the connections each CIDR made, as the test made them, are ss's counts now.
declare -A made
for c in "${cidrs[@]}"; do made[$c]=$(truth "$c"); done
label="cluster-wide rates: connections --cluster equals the connections made on 3 nodes"
asking=rates
check converged 3
asking=sessions
label="... and without --cluster, this node's own"
got=$("$connaudit" connections "$monitor" 127.0.0.0/24 --end 1 --pin-dir "$pin" --netns "/run/netns/$(ns_of b)")
check test "$got" = "$(truth 127.0.0.0/24 b)"
label="Lua: connections(monitor, {cluster = true, ...}) is the cluster's"
got=$(in_ns a env LUA_CPATH="$build/lua/5.4/?.so" CONNAUDIT_PIN_DIR="$pin" \
  CONNAUDIT_CONFIG=/dev/null lua5.4 -e \
  "print(require('msys.audit').connections('$monitor', {cidr = '/24', endv = 1, cluster = true, peer = '127.0.0.77'}))")
check test "$got" = "${made[127.0.0.0/24]}"
label="no cluster agent for a namespace: the local count, flagged"
ip netns add "$(ns_of d)" 2>/dev/null
got=$("$connaudit" count /0 inbound_cidr --pin-dir "$pin" --netns "/run/netns/$(ns_of d)" 2>&1)
rc=$?
ip netns del "$(ns_of d)"
check test "$rc" = 3 -a -n "$(echo "$got" | grep 'no cluster agent')"
label="count --cluster works for any service"
got=$("$connaudit" count 127.0.0.0/24 SMTP --cluster --pin-dir "$pin" --netns "/run/netns/$(ns_of c)")
check test "$got" = "$(truth 127.0.0.0/24)"
label="a bad --redis URL or node name is a usage error (exit 2) that names it"
"$connaudit" cluster --redis "http://$sock" --node x --pin-dir "$pin" 2>"$tmp/usage.log"
rc1=$?
"$connaudit" cluster --redis "unix://$sock" --node 'x y' --pin-dir "$pin" 2>>"$tmp/usage.log"
rc2=$?
check test "$rc1$rc2" = 22 -a "$(grep -c -e 'invalid Redis URL' -e '--node "x y"' "$tmp/usage.log")" = 2
label="SMTP without --cluster stays this node's count"
got=$("$connaudit" count 127.0.0.0/24 SMTP --pin-dir "$pin" --netns "/run/netns/$(ns_of c)")
check test "$got" = "$(truth 127.0.0.0/24 c)"

on_a=(--pin-dir "$pin" --netns "/run/netns/$(ns_of a)")
label="status shows the cluster, Redis, and each node's age"
out=$("$connaudit" status "${on_a[@]}")
check test -n "$(echo "$out" | grep "cluster    \"t$$\" as node \"a\": agent pid [0-9]* running, Redis up, 2 other nodes, view exact")" \
  -a "$(echo "$out" | grep -cE '^  node       [bc] +heard 0\.[0-9] s ago')" = 2
label="status --json says the same"
out=$("$connaudit" status --json "${on_a[@]}")
check test -n "$(echo "$out" | grep '"cluster": {"name": "t'$$'", "node": "a"' | grep '"exact": true' | grep '"name": "b"')"
label="metrics: nodes seen, view age, exact"
out=$("$connaudit" metrics "${on_a[@]}")
check test -n "$(echo "$out" | grep -x 'connaudit_cluster_nodes 2')" \
  -a -n "$(echo "$out" | grep -x 'connaudit_cluster_exact 1')" \
  -a -n "$(echo "$out" | grep -x 'connaudit_cluster_view_age_seconds 0.000')" \
  -a "$(echo "$out" | grep -c '^connaudit_cluster_node_age_seconds{node="[bc]"} 0\.')" = 2
label="top --cluster: the busiest prefixes over every node"
got=$("$connaudit" top SMTP --cluster --prefix 24 -n 1 "${on_a[@]}")
check test "$got" = "$(truth 127.0.0.0/24) 127.0.0.0/24"

# policyd's inbound_cidr rules answer from the same view (one request on
# standard input, as Postfix's spawn would send it).
policy_answer() {	# LIMIT: policyd's action for a client of 127.0.0.0/24
  printf 'inbound_cidr /24 %s\n' "$1" > "$tmp/policy.rules"
  printf 'request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=127.0.0.77\n\n' |
    "$connaudit" policyd --rules "$tmp/policy.rules" --config /dev/null "${on_a[@]}" \
    2>>"$tmp/policyd.log" | sed -n 's/^action=//p'
}
n24=$(truth 127.0.0.0/24)
label="policyd: an inbound_cidr rule rejects over the sum of every node ($n24 sessions)"
check test -n "$(policy_answer $((n24 - 1)) | grep "^421 .*more than $((n24 - 1)) from 127.0.0.0/24")"
label="... and lets the client through at that sum"
check test "$(policy_answer "$n24")" = DUNNO

label="Lua: inbound_session_count('/24', 'inbound_cidr') is the cluster's count"
got=$(in_ns a env LUA_CPATH="$build/lua/5.4/?.so" CONNAUDIT_PIN_DIR="$pin" \
  CONNAUDIT_CONFIG=/dev/null lua5.4 -e \
  "print(require('msys.audit').inbound_session_count('/24', 'inbound_cidr', '127.0.0.77'))")
check test "$got" = "$n24"

label="sessions opened in one node show in every node within 1 s"
hold c more 'listen=127.0.0.11:25' 'conn=127.0.0.2>127.0.0.11:25*4' &&
  hold c more6 'listen=[fd00:ca::11]:25' 'conn=fd00:ca::3>[fd00:ca::11]:25' && check converged 1
# still no session closed: every one is a connection made since the load
for c in "${cidrs[@]}"; do made[$c]=$(truth "$c"); done
label="sessions closed in one node leave every node's count within 1 s"
release a.base && release a.base6 && check converged 1
label="... but not its connections: rates count what was made"
asking=rates
check converged 2
asking=sessions
label="policyd: an inbound_cidr rate rule limits the cluster's connections"
printf 'inbound_cidr rate %s:0-1 /24 %s\n' "$monitor" "$((made[127.0.0.0/24] - 1))" > "$tmp/policy.rules"
got=$(printf 'request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=127.0.0.77\n\n' |
  "$connaudit" policyd --rules "$tmp/policy.rules" --config /dev/null "${on_a[@]}" 2>>"$tmp/policyd.log")
check test -n "$(echo "$got" | grep '^action=421 ')"
label="... and lets the client through at that count"
printf 'inbound_cidr rate %s:0-1 /24 %s\n' "$monitor" "${made[127.0.0.0/24]}" > "$tmp/policy.rules"
got=$(printf 'request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=127.0.0.77\n\n' |
  "$connaudit" policyd --rules "$tmp/policy.rules" --config /dev/null "${on_a[@]}" 2>>"$tmp/policyd.log")
check test "$got" = "action=DUNNO"

# ---- an agent killed, restarted; a second agent for a live name -----------------

label="SIGKILL an agent: the others' answers are flagged within 1 s"
kill -9 "${agent[b]}"; wait "${agent[b]}" 2>/dev/null
check flagged 1 a
label="... and its sessions leave their sums within ttl + 1 s (exact again)"
asked=(a c)
check converged $((ttl + 1)) a c
label="restarted agent: exact again everywhere, nothing counted twice"
start_agent b
asked=("${nodes[@]}")
check converged 2
label="an agent killed and restarted at once (before ttl): exact, nothing counted twice"
kill -9 "${agent[b]}"; wait "${agent[b]}" 2>/dev/null
start_agent b
check converged 2
label="... its connections too (read back from its snapshot)"
asking=rates
check converged 2
asking=sessions
label="a second agent claiming a live node name elsewhere is refused"
ip netns add "$(ns_of d)"
timeout 5 nsenter --net="/run/netns/$(ns_of d)" "$connaudit" cluster --redis "unix://$sock" \
  --node c --cluster "t$$" --pin-dir "$pin" --ttl "$ttl" >"$tmp/dup.log" 2>&1
rc=$?
ip netns del "$(ns_of d)"
check test "$rc" = 1 -a -n "$(grep 'held by another live agent' "$tmp/dup.log")"
label="a second agent for a namespace that has one is refused"
timeout 5 nsenter --net="/run/netns/$(ns_of a)" "$connaudit" cluster --redis "unix://$sock" \
  --node z --cluster "t$$" --pin-dir "$pin" --ttl "$ttl" >"$tmp/dup2.log" 2>&1
rc=$?
check test "$rc" = 1 -a -n "$(grep 'already serves' "$tmp/dup2.log")"
label="the refused agents changed nothing"
check converged 1

# ---- Redis killed and restarted -------------------------------------------------

label="kill redis-server: answers flagged within ttl, still counting"
before=$(truth /0)
kill -9 "$redis_pid"; wait "$redis_pid" 2>/dev/null
check flagged "$ttl" c
label="... with the last known sum"
got=$(ask a /0)
check test "$got" = "$before 3"
label="status and metrics say Redis is down and the view stale"
out=$("$connaudit" status "${on_a[@]}")
check test -n "$(echo "$out" | grep 'Redis DOWN, .* view STALE (Redis is unreachable')" \
  -a -n "$("$connaudit" metrics "${on_a[@]}" | grep -x 'connaudit_cluster_exact 0')"
label="restart redis-server: exact again without restarting agents"
start_redis && check converged 5
label="... rates too"
asking=rates
check converged 2
asking=sessions

# ---- churn --------------------------------------------------------------------------

label="random churn: exact at each quiet checkpoint"
RANDOM=$$
churn_ok=true
for round in 1 2 3 4; do
  for n in "${nodes[@]}"; do
    tag=churn$round g=$((20 + round))
    spec=("listen=127.0.0.$g:25")
    for _ in $(seq $((RANDOM % 3 + 1))); do
      case $((RANDOM % 2)) in
        0) spec+=("conn=127.0.$((RANDOM % 3)).$((RANDOM % 5 + 2))>127.0.0.$g:25*$((RANDOM % 3 + 1))") ;;
        1) spec+=("closewait=127.0.0.$((RANDOM % 5 + 2))>127.0.0.$g:25") ;;
      esac
    done
    hold "$n" "$tag" "${spec[@]}" || churn_ok=false
    [ $((RANDOM % 2)) = 0 ] && { hold "$n" "6$tag" "listen=[fd00:ca::$g]:25" \
      "conn=fd00:ca::$((RANDOM % 2 + 2))>[fd00:ca::$g]:25*$((RANDOM % 2 + 1))" || churn_ok=false; }
    # an earlier round's group closes now and then
    [ $((RANDOM % 2)) = 0 ] && [ -n "${holders[$n.churn$((round - 1))]:-}" ] && release "$n.churn$((round - 1))"
  done
  converged 1 || churn_ok=false
done
check $churn_ok

label="... node c, confined by the documented ACL, took part throughout"
check test -z "$(grep -i -e 'NOPERM' -e 'AUTH' "$tmp/agent-c.log")" \
  -a -n "$(grep 'connected to Redis' "$tmp/agent-c.log")"
label="... and the ACL does confine it"
got=$(redis-cli -s "$sock" --user c --pass pw-c --no-auth-warning set other:key 1 2>&1)
check test -n "$(echo "$got" | grep NOPERM)"
label="agents logged no refused entries"
check test -z "$(grep -l -e refused -e unexpected "$tmp"/agent-[abc].log 2>/dev/null)"

# ---- malformed data in Redis -----------------------------------------------------------

label="malformed or out-of-range remote entries are refused, never summed, and flagged"
redis-cli -s "$sock" hset "ca:{t$$}:node:evil" "25|127.0.0.2" 99999999 "25|127.0.0.02" 1 \
  "25|127.0.0.3" 1 .seq 1 .tok 0123456789abcdef >/dev/null
redis-cli -s "$sock" publish "ca:{t$$}:events" "$(printf 'ca1 evil 0123456789abcdef 1 F 100\n')" >/dev/null
want="$(truth 127.0.0.2) 3"
for _ in $(seq 20); do got=$(ask a 127.0.0.2); [ "$got" = "$want" ] && break; sleep 0.05; done
check test "$got" = "$want"
label="... while its valid entries are counted"
got=$(ask c 127.0.0.3)
check test "$got" = "$(( $(truth 127.0.0.3) + 1 )) 3"
label="... and the refusal is logged and shown by status"
refusal_shown() {
  grep -q 'node evil: refused 2 entries of its hash' "$tmp/agent-a.log" &&
    "$connaudit" status "${on_a[@]}" | grep -q 'node  *evil .*sent refused entries'
}
for _ in $(seq 20); do refusal_shown && break; sleep 0.1; done
check refusal_shown
label="a node that stops sending drops out after ttl: exact again"
check converged $((ttl + 1))
label="... rates too"
rates_exact() { "$connaudit" connections "$monitor" /0 --cluster "${on_a[@]}" >/dev/null 2>&1; }
for _ in $(seq 20); do rates_exact && break; sleep 0.1; done
check rates_exact

label="a node with other monitors: its sessions count, its connections are left out, and rates say so"
redis-cli -s "$sock" hset "ca:{t$$}:node:other" "25|127.0.0.5" 1 "~25|127.0.0.5" "0:1:1" \
  .mon "60,2" .seq 1 .tok 0123456789abcdef >/dev/null
redis-cli -s "$sock" publish "ca:{t$$}:events" "$(printf 'ca1 other 0123456789abcdef 1 F 100\n')" >/dev/null
want="$(( $(truth 127.0.0.5) + 1 )) 0"
for _ in $(seq 20); do got=$(ask a 127.0.0.5); [ "$got" = "$want" ] && break; sleep 0.05; done
out=$("$connaudit" connections "$monitor" /0 --cluster --end 1 "${on_a[@]}" 2>&1)
rc=$?
check test "$got" = "$want" -a "$rc" = 3 -a -n "$(echo "$out" | grep '1 live node keeps other monitors than this node')"
label="... and the agent logs it once, and status shows it"
check test "$(grep -c 'node other keeps monitors "60,2", this node "3600,2"' "$tmp/agent-a.log")" = 1 \
  -a -n "$("$connaudit" status "${on_a[@]}" | grep 'node  *other .*OTHER MONITORS')"

label="unload and load under running agents: they exit (for systemd to restart them)"
"$connaudit" unload --pin-dir "$pin" --quiet && "$connaudit" load --pin-dir "$pin" --quiet
exited=0
for _ in $(seq 60); do
  exited=0
  for n in "${nodes[@]}"; do kill -0 "${agent[$n]}" 2>/dev/null || exited=$((exited + 1)); done
  [ "$exited" = 3 ] && break
  sleep 0.1
done
check test "$exited" = 3 -a "$(grep -c 'unloaded or reloaded' "$tmp"/agent-[abc].log | awk -F: '{s += $2} END {print s}')" -ge 3

label="no agent reported a sanitizer finding (make SANITIZE=1)"
check test -z "$(grep -l Sanitizer "$tmp"/agent-*.log 2>/dev/null)"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
