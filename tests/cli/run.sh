#!/usr/bin/env bash
# The command line: per-command options and help, --version, --netns
# checking, messages, count --json, status --json with an awkward pin dir,
# and metrics scrapes while idle connections are held (as root: it loads an
# auditor into a test-only pin dir and serves metrics in its own namespace).
# Usage: tests/cli/run.sh BUILD_DIR
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -u

build=${1:?usage: $0 BUILD_DIR}
connaudit=$build/connaudit
ns=connaudit-cli-$$
# A quote in the name and a trailing slash: both once broke status or load.
pin='/sys/fs/bpf/connaudit-cli"q-'$$
passed=0
failed=0
tmp=$(mktemp -d)

ok()     { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }

cleanup() {
  jobs -p | xargs -r kill 2>/dev/null
  wait 2>/dev/null
  [ -e "$pin" ] && "$connaudit" unload --pin-dir "$pin" --quiet 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# expect RC PATTERN DESCRIPTION -- COMMAND...: exit status and output.
expect() {
  local want_rc=$1 pattern=$2 what=$3 out rc
  shift 4
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq "$want_rc" ] && grep -q -- "$pattern" <<<"$out"; then
    ok "$what"
  else
    not_ok "$what: want exit $want_rc and '$pattern', got $rc: $out"
  fi
}

echo "# options, help and version"
expect 0 '^connaudit [0-9]' "--version" -- "$connaudit" --version
expect 0 'Usage: connaudit count CIDR SERVICE' "count --help" -- "$connaudit" count --help
expect 0 '--all-netns' "dump --help lists its options" -- "$connaudit" help dump
expect 2 'status does not take -n' "status -n 3 refused" -- "$connaudit" status -n 3
expect 2 'dump does not take --peer' "dump --peer refused" -- "$connaudit" dump --peer 192.0.2.1
expect 2 'count does not take --replace' "count --replace refused" \
  -- "$connaudit" count /0 SMTP --replace
expect 2 'unknown option' "an unknown option" -- "$connaudit" top SMTP --bogus
expect 2 'count needs CIDR SERVICE' "count without arguments" -- "$connaudit" count
expect 2 'unknown command' "an unknown command" -- "$connaudit" frobnicate
expect 2 'give the client with --peer' "/24 without a peer says --peer" \
  -- "$connaudit" count /24 SMTP
expect 2 '--prefixes' "a bad --prefixes is a usage error" \
  -- "$connaudit" load --prefixes 24,x --pin-dir "$tmp/none"

echo "# --netns"
expect 1 'not a network namespace' "--netns /etc/passwd" \
  -- "$connaudit" count /0 SMTP --netns /etc/passwd
expect 1 'not a network namespace' "--netns /proc/self/ns" \
  -- "$connaudit" count /0 SMTP --netns /proc/self/ns
expect 1 'no such file' "--netns of a missing file" \
  -- "$connaudit" count /0 SMTP --netns /nonexistent/ns
expect 1 'no network namespace with that inode' "--netns 12345" \
  -- "$connaudit" count /0 SMTP --netns 12345
expect 1 'no namespace of that name' "--netns of an unknown name" \
  -- "$connaudit" count /0 SMTP --netns no-such-ns-$$
if id nobody >/dev/null 2>&1; then
  expect 1 'permission denied' "--netns a namespace file nobody may not open" \
    -- setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$connaudit" count /0 SMTP --netns /proc/1/ns/net
fi

echo "# the services file"
printf 'SMTP 25\nSMTP 587\n' > "$tmp/dup.conf"
expect 1 'already defined on line 1' "a service named twice" \
  -- "$connaudit" count /0 SMTP --config "$tmp/dup.conf"
mkfifo "$tmp/fifo"
expect 1 'not a regular file' "--config naming a FIFO does not hang" \
  -- timeout 5 "$connaudit" count /0 SMTP --config "$tmp/fifo"

echo "# a loaded auditor"
ip netns add "$ns" && ip -n "$ns" link set lo up
ns_inode=$(stat -L -c %i "/run/netns/$ns")
if ! "$connaudit" load --pin-dir "$pin/" --quiet --prefixes 33; then
  not_ok "load with a trailing / on --pin-dir"
else
  ok "load with a trailing / on --pin-dir"
  expect 1 'already loaded at .*unload --pin-dir' "a second load names the pin dir" \
    -- "$connaudit" load --pin-dir "$pin"
  expect 0 "\"pin_dir\": \"/sys/fs/bpf/connaudit-cli\\\\\"q-$$\"" \
    "status --json escapes the pin dir" -- "$connaudit" status --json --pin-dir "$pin"
  expect 0 'IPv4 none  IPv6 /33' "status with IPv6 prefixes only" \
    -- "$connaudit" status --pin-dir "$pin"
  expect 0 '"count": 0, "exact": true' "count --json" \
    -- "$connaudit" count /0 SMTP --json --pin-dir "$pin" --config /dev/null --netns "$ns"
  expect 0 '^0$' "--netns by name, path and inode agree" \
    -- "$connaudit" count /0 SMTP --pin-dir "$pin" --config /dev/null --netns "$ns_inode"
  if id nobody >/dev/null 2>&1; then
    expect 1 'cannot remove the pins.*run as root' "a non-root unload says why" \
      -- setpriv --reuid=nobody --regid=nogroup --clear-groups \
      "$connaudit" unload --pin-dir "$pin"
  fi

  echo "# metrics while idle connections are held"
  nsenter --net="/run/netns/$ns" "$connaudit" metrics --listen 127.0.0.1:9477 \
    --pin-dir "$pin" --config /dev/null 2>"$tmp/metrics.err" &
  for _ in $(seq 50); do grep -q serving "$tmp/metrics.err" && break; sleep 0.1; done
  # 20 connections that never send a request (the limit was 16).
  nsenter --net="/run/netns/$ns" bash -c '
    for i in $(seq 20); do exec {fd}<>/dev/tcp/127.0.0.1/9477 || exit 1; done
    sleep 4' &
  sleep 0.5
  out=$(timeout 3 nsenter --net="/run/netns/$ns" bash -c '
    exec 3<>/dev/tcp/127.0.0.1/9477 || exit 1
    printf "GET /metrics HTTP/1.0\r\n\r\n" >&3
    cat <&3')
  if grep -q '^connaudit_up 1' <<<"$out"; then
    ok "a scrape is answered while 20 idle connections are open"
  else
    not_ok "a scrape is answered while 20 idle connections are open: $(head -3 <<<"$out")"
  fi
  expect 1 'Failed to bind to port 9478' "--listen on an address not on this host names its port" \
    -- timeout 5 nsenter --net="/run/netns/$ns" "$connaudit" metrics \
    --listen 192.0.2.1:9478 --pin-dir "$pin"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
