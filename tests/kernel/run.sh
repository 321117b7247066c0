#!/usr/bin/env bash
# The real-kernel tests: BUILD_DIR/tests/kernel_test (library level), then
# the connaudit command checked against the real `ss` in a network namespace.
# Usage: tests/kernel/run.sh BUILD_DIR      (as root)
# Ends with "N passed, N failed" over both; exits non-zero on any failure.
set -u

build=${1:?usage: $0 BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
connaudit=$build/connaudit
holdconns=$build/tests/holdconns
ns=connaudit-clitest-$$
pin=/sys/fs/bpf/connaudit-clitest-$$
passed=0
failed=0
holders=()

# ---- plumbing ---------------------------------------------------------------

ok()     { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }

# Inside the test namespace, keeping our mounts: `ip netns exec` would mount
# a fresh /sys, where /sys/fs/bpf holds no pins.
in_ns() { nsenter --net="/run/netns/$ns" "$@"; }

cleanup() {
  local pid
  for pid in "${holders[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  [ -e "$pin" ] && "$connaudit" unload --pin-dir "$pin" --quiet 2>/dev/null
  [ -e "$pin" ] && rm -rf "$pin"
  ip netns del "$ns" 2>/dev/null
  [ -n "${tmp:-}" ] && rm -rf "$tmp"
}

# Start holdconns in the namespace with these specs; wait for "ready".
hold() {
  local out=$tmp/hold.${#holders[@]}
  # nsenter itself, not in_ns: nsenter execs holdconns, so $! is its pid.
  nsenter --net="/run/netns/$ns" "$holdconns" "$@" >"$out" 2>&1 &
  holders+=($!)
  for _ in $(seq 100); do
    grep -q '^ready$' "$out" && return 0
    kill -0 "${holders[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  echo "holdconns $*:"; sed 's/^/  /' "$out"
  return 1
}

# Stop the most recent holdconns: every connection it held ends.
release() {
  local pid=${holders[-1]}
  kill "$pid"; wait "$pid" 2>/dev/null
  unset 'holders[-1]'
}

# ---- the two views ------------------------------------------------------------

# "PORT ADDRESS COUNT" lines, sorted, from ss: ESTABLISHED and CLOSE-WAIT
# sockets whose local port has a listener, v4-mapped peers as IPv4. The
# last two fields are local and peer whether or not ss prints a state column.
ss_inbound() {
  local ports
  ports=$(in_ns ss -Htln | awk '{ n = split($(NF-1), a, ":"); print a[n] }' | sort -u)
  in_ns ss -Htn state established state close-wait |
    awk -v ports="$ports" '
      BEGIN { n = split(ports, p, "\n"); for (i = 1; i <= n; i++) listening[p[i]] = 1 }
      {
        local = $(NF-1); peer = $NF
        lport = local; sub(/.*:/, "", lport)
        sub(/:[0-9]+$/, "", peer); gsub(/[][]/, "", peer); sub(/^::ffff:/, "", peer)
        if (lport in listening) count[lport " " peer]++
      }
      END { for (k in count) print k, count[k] }' | sort
}

auditor_dump() { in_ns "$connaudit" dump --pin-dir "$pin" | sort; }

total() { awk '{ s += $3 } END { print s + 0 }'; }

# Poll (bounded) until ss shows the $2 sessions we made and the dump agrees
# line for line: loopback handshakes finish a moment after connect returns.
compare_dump() {
  local what=$1 sessions=$2 want got
  for _ in $(seq 40); do
    want=$(ss_inbound); got=$(auditor_dump)
    [ "$want" = "$got" ] && [ "$(total <<<"$want")" -eq "$sessions" ] &&
      { ok "dump matches ss: $what ($sessions sessions)"; return; }
    sleep 0.05
  done
  not_ok "dump matches ss: $what: expected $sessions sessions, ss shows $(total <<<"$want")"
  diff <(echo "$want") <(echo "$got") | sed 's/^/#   /; s/^#   </#   ss only:   /; s/^#   >/#   dump only: /'
}

# Sum of the ss view over port $1 and peers matching regex $2.
ss_sum() {
  ss_inbound | awk -v port="$1" -v re="$2" '$1 == port && $2 ~ re { s += $3 } END { print s + 0 }'
}

# connaudit count ARGS... must print the ss sum over port $1, peers ~ $2.
check_count() {
  local port=$1 re=$2; shift 2
  local want got
  want=$(ss_sum "$port" "$re")
  got=$(in_ns "$connaudit" count --pin-dir "$pin" "$@" 2>&1)
  if [ "$got" = "$want" ] && [ "$want" != 0 ]; then
    ok "count $* = $want"
  else
    not_ok "count $*: ss says $want, connaudit printed '$got'"
  fi
}

check_counts() {
  check_count 25 '^127\.0\.1\.1$' /32 SMTP --peer 127.0.1.1
  check_count 25 '^127\.0\.1\.1$' ::ffff:127.0.1.1 SMTP
  check_count 25 '^127\.0\.1\.' /24 SMTP --peer 127.0.1.200
  check_count 25 '^fd00:ca::[0-9a-f]+$' '[fd00:ca::]/64' SMTP
  check_count 25 '' /0 SMTP
  check_count 2025 '^fd00:ca::[0-9a-f]+$' /24,/64 Control --peer fd00:ca::9
}

# ---- the run --------------------------------------------------------------------

# The library-level scenarios, their tally added to ours.
run_kernel_test() {
  local log=$tmp/kernel_test.log kp='' kf='' rc
  "$build/tests/kernel_test" | tee "$log"
  rc=${PIPESTATUS[0]}
  read -r kp kf < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log" | tail -1)
  passed=$((passed + ${kp:-0}))
  failed=$((failed + ${kf:-0}))
  # A crash or an interrupted run may print no tally, or a clean one.
  if [ -z "$kf" ] || { [ "$rc" -ne 0 ] && [ "$kf" -eq 0 ]; }; then
    not_ok "kernel_test exited with status $rc"
  fi
}

cli_checks() {
  [ -x "$holdconns" ] || { not_ok "$holdconns is missing: run make kernel-test"; return; }
  if ! ip netns add "$ns" || ! in_ns ip link set lo up; then
    not_ok "make namespace $ns"
    return
  fi

  # Sessions from before the load (seeded) ...
  hold addr=fd00:ca::1/128 addr=fd00:ca::2/128 addr=fd00:ca::3/128 \
       'listen=[::]:25' 'listen=[::]:2025' \
       'conn=127.0.1.1>127.0.0.1:25*2' 'conn=fd00:ca::2>[fd00:ca::1]:25' \
       'closewait=127.0.1.2>127.0.0.1:25' 'conn=fd00:ca::3>[fd00:ca::1]:2025' ||
    { not_ok "open the first connections"; return; }
  if "$connaudit" load --pin-dir "$pin" --quiet; then ok "load"; else not_ok "load"; return; fi
  compare_dump "sessions opened before load" 5

  # ... and after it, on listeners of their own.
  hold 'listen=127.0.0.1:1825' 'conn=127.0.1.1>127.0.0.1:1825*3' \
       'listen=[::]:4802' 'conn=127.0.2.1>127.0.0.1:4802' \
       'closewait=fd00:ca::2>[fd00:ca::1]:4802' ||
    { not_ok "open more connections"; return; }
  compare_dump "more sessions after load" 10
  check_counts

  release
  compare_dump "the later sessions closed" 5
  check_counts

  unaudited_port_checks

  if "$connaudit" unload --pin-dir "$pin" --quiet; then ok "unload"; else not_ok "unload"; fi
  if in_ns "$connaudit" dump --pin-dir "$pin" >/dev/null 2>&1; then
    not_ok "dump fails after unload"
  else
    ok "dump fails after unload"
  fi
}

# Sessions to a port no service names are not counted, until a replace
# adds the port: then the ones already open are counted too.
unaudited_port_checks() {
  local line
  hold 'listen=127.0.0.1:8025' 'closewait=127.0.1.3>127.0.0.1:8025*3' ||
    { not_ok "open sessions to port 8025"; return; }
  if [ "$(ss_sum 8025 '')" -eq 3 ] && ! auditor_dump | grep -q '^8025 '; then
    ok "sessions to port 8025 (no service's) are not counted"
  else
    not_ok "port 8025: ss shows $(ss_sum 8025 ''), dump: $(auditor_dump | grep '^8025 ')"
  fi
  if "$connaudit" load --replace --pin-dir "$pin" --quiet --ports 8025; then
    ok "load --replace --ports 8025"
  else
    not_ok "load --replace --ports 8025"
  fi
  for _ in $(seq 40); do
    line=$(auditor_dump | grep '^8025 ')
    [ "$line" = "8025 127.0.1.3 3" ] && break
    sleep 0.05
  done
  if [ "$line" = "8025 127.0.1.3 3" ]; then
    ok "the replace counted the sessions already open on the added port"
  else
    not_ok "after load --replace --ports 8025, dump shows '$line'"
  fi
  if "$connaudit" status --pin-dir "$pin" | grep -q '^  ports      5 '; then
    ok "status shows 5 audited ports"
  else
    not_ok "status: $("$connaudit" status --pin-dir "$pin" | grep ports)"
  fi
  release
  compare_dump "the port 8025 sessions closed" 5
}

# load refuses a bad port list, and --ports with --all-ports.
load_port_checks() {
  local args want out rc
  while IFS='|' read -r args want; do
    # shellcheck disable=SC2086  # args are words on purpose
    out=$("$connaudit" load --pin-dir "$pin-absent" $args 2>&1); rc=$?
    if [ "$rc" -ne 0 ] && grep -q -- "$want" <<<"$out" && [ ! -e "$pin-absent" ]; then
      ok "load $args: refused ($want)"
    else
      not_ok "load $args: want failure and '$want', got $rc: $out"
    fi
  done <<'CASES'
--ports 0|bad port list item "0"
--ports 25,x|bad port list item "x"
--ports 9-8|bad port list item "9-8"
--ports 25 --all-ports|give one
CASES
}

# `connaudit CMD ARGS...` in the namespace must print exactly $want.
check_prints() {
  local want=$1 out; shift
  out=$(in_ns "$connaudit" "$@" --pin-dir "$pin" 2>&1)
  if [ "$out" = "$want" ]; then ok "$* = $want"; else not_ok "$*: want '$want', got '$out'"; fi
}

# Connection rates as a new user would try them: 7 connections from one /24
# counted in the windows, a JSON form, show ip, a reload that keeps them,
# and 1-second windows that empty again.
rates_checks() {
  local out rc
  while [ ${#holders[@]} -gt 0 ]; do release; done
  if "$connaudit" load --pin-dir "$pin" --quiet --monitors "10,6 1,3"; then
    ok "load --monitors"
  else
    not_ok "load --monitors"; return
  fi
  hold 'listen=127.0.0.1:25' 'conn=127.0.1.1>127.0.0.1:25*4' 'conn=127.0.1.2>127.0.0.1:25*3' \
       'listen=127.0.0.1:2025' 'conn=127.0.1.1>127.0.0.1:2025' ||
    { not_ok "open the connections"; return; }
  compare_dump "seven SMTP connections from 127.0.1.0/24" 8
  check_prints 7 connections 10,6 /24 SMTP --peer 127.0.1.9 --end 5
  check_prints 4 connections 10,6 /32 --peer 127.0.1.1 --end 5
  check_prints 1 connections 10,6 /0 Control --end 5
  check_prints 0 connections 10,6 /0 --start 6 --end 9
  out=$(in_ns "$connaudit" connections 10,6 /0 --end 5 --json --pin-dir "$pin")
  if [[ $out == *'"connections":7,"exact":true'* ]]; then ok "connections --json"; else not_ok "connections --json: $out"; fi
  out=$(in_ns "$connaudit" show ip 127.0.1.1 --pin-dir "$pin")
  if grep -qx 'Sessions: 4' <<<"$out" && [ "$(grep -c '^Connections 10/[0-5]: ' <<<"$out")" -eq 6 ] &&
     [ "$(awk -F': ' '/^Connections 10\//{ s += $2 } END { print s }' <<<"$out")" -eq 4 ]; then
    ok "show ip: sessions and every window of 10,6"
  else
    not_ok "show ip: $out"
  fi
  if "$connaudit" status --pin-dir "$pin" | grep -q '^  monitors   10,6 1,3 '; then
    ok "status shows the monitors"
  else
    not_ok "status shows the monitors"
  fi
  out=$(in_ns "$connaudit" connections 10,5 /0 --pin-dir "$pin" 2>&1); rc=$?
  if [ "$rc" -eq 1 ] && [[ $out == *"10,6 1,3"* ]]; then ok "an unknown monitor names the loaded ones"; else not_ok "unknown monitor: $rc $out"; fi
  if "$connaudit" load --replace --pin-dir "$pin" --quiet; then ok "load --replace"; else not_ok "load --replace"; fi
  check_prints 7 connections 10,6 /24 --peer 127.0.1.9 --end 5
  sleep 3.2
  check_prints 0 connections 1,3 /0 --end 2
  release
  if "$connaudit" unload --pin-dir "$pin" --quiet; then ok "unload"; else not_ok "unload"; fi
}

# Bad input is a usage error (exit 2) with a message naming what is wrong,
# whether or not anything is loaded at the pin dir.
bad_input_checks() {
  local args want out rc
  while IFS='|' read -r args want; do
    # shellcheck disable=SC2086  # args are words on purpose
    out=$("$connaudit" count --pin-dir "$pin-absent" $args 2>&1); rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "$want" <<<"$out"; then
      ok "count $args: refused ($want)"
    else
      not_ok "count $args: want exit 2 and '$want', got $rc: $out"
    fi
  done <<'CASES'
/33 SMTP|needs the connecting peer
/64 SMTP --peer 192.0.2.1|cannot apply to IPv4 peer
300.1.2.3 SMTP|300.1.2.3
10.0.0.0/33 SMTP|10.0.0.0/33
fe80::1%eth0 SMTP|fe80::1%eth0
/24 Smtp --peer 192.0.2.1|case-sensitive
/0 ECmmove2|clustering
/0 Nosuch|known services: SMTP
/24 SMTP --peer 1.2.3|1.2.3
CASES
}

rates_bad_input_checks() {
  local args want out rc
  while IFS='|' read -r args want; do
    # shellcheck disable=SC2086  # args are words on purpose
    out=$("$connaudit" $args --pin-dir "$pin-absent" 2>&1); rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "$want" <<<"$out"; then
      ok "$args: refused ($want)"
    else
      not_ok "$args: want exit 2 and '$want', got $rc: $out"
    fi
  done <<'CASES'
connections 300 /0|SIZE,WINDOWS
connections 300,0 /0|SIZE,WINDOWS
connections 300,6|connections needs MONITOR CIDR
connections 300,6 /0 SMTP extra|unexpected argument
connections 300,6 /0 --start 2 --end 1|past --end
connections 300,6 /0 --end -1|window number
connections 300,6 /24|needs the connecting peer
connections 300,6 /0 --node x|does not take --node
show ip|show needs ip ADDR
show ip 1.2.3|1.2.3
CASES
  for args in '300,6;300,6|twice' '1,20;2,20|32 windows'; do
    out=$("$connaudit" load --pin-dir "$pin-absent" --monitors "${args%|*}" 2>&1); rc=$?
    if [ "$rc" -ne 0 ] && [[ $out == *"${args#*|}"* ]] && [ ! -e "$pin-absent" ]; then
      ok "load --monitors ${args%|*}: refused"
    else
      not_ok "load --monitors ${args%|*}: want a failure naming '${args#*|}', got $rc: $out"
    fi
  done
}

tmp=$(mktemp -d)
trap cleanup EXIT
# Built-in services only, whatever the host's services.conf holds.
: > "$tmp/services.conf"
export CONNAUDIT_CONFIG=$tmp/services.conf
trap 'exit 130' INT TERM
run_kernel_test
echo "# the connaudit command against ss, in namespace $ns"
cli_checks
echo "# connection rates through the connaudit command"
rates_checks
echo "# the connaudit command refuses bad input"
bad_input_checks
load_port_checks
rates_bad_input_checks
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
