-- test_rates.lua - msys.audit.connections against the real auditor. Run by
-- tests/lua/run.sh as root inside the private network namespace, right after
-- the auditor was loaded with --monitors "$LIVE_MONITORS" and holdconns made
-- the connections of LIVE_HOLD_SPECS. Every one of them was made after the
-- load and is still open, so the connections of the last minute equal the
-- sessions `ss` shows, filtered by ss's own address matcher.
local T = require('runner')

local audit = require('msys.audit')
local connections = audit.connections
local policy = require('connection_limit')

local live = require('live')
local PORTS, ss_count, counted = live.PORTS, live.ss_count, live.counted

-- Windows 0..1 of "60,2" span at least the last minute.
local MINUTE = '60,2'

-- cidr, peer, ss filter, service
local CASES = {
  { '/32,/128', '127.0.0.2', 'dst 127.0.0.2' },
  { '/24', '127.0.0.2', 'dst 127.0.0.0/24' },
  { '/16', '127.0.1.1', 'dst 127.0.0.0/16' },
  { '/20', '127.0.0.2', 'dst 127.0.0.0/20' },          -- not aggregated: its 16 /24s
  { '/2', '127.0.0.2', 'dst 64.0.0.0/2' },             -- too wide to sum: a scan
  { '/24,/64', 'fd00:ca::2', 'dst fd00:ca::/64' },
  { '/24,/48', 'fd00:ca::3', 'dst fd00:ca::/48' },
  { '/128', 'fd00:ca::2', 'dst [fd00:ca::2]' },
  { '/0', nil, nil },
  { '127.0.1.9', nil, 'dst 127.0.1.9' },
  { '[fd00:ca::]/56', nil, 'dst fd00:ca::/56' },        -- its 256 /64s
  { '/24', '127.0.0.2', 'dst 127.0.0.0/24', 'Control' },
  { '/0', nil, nil, 'Control' },
}

T.test('every CIDR form equals the connections made (option table)', function()
  local nonzero = 0
  for _, c in ipairs(CASES) do
    local cidr, peer, filter, service = c[1], c[2], c[3], c[4] or 'SMTP'
    local what = cidr .. ' peer ' .. tostring(peer) .. ' ' .. service
    local want = ss_count(PORTS[service], filter)
    local n = counted(what, connections(MINUTE, { cidr = cidr, peer = peer, startv = 0,
                                                  endv = 1, service = service }))
    T.eq(n, want, what)
    if want > 0 then nonzero = nonzero + 1 end
  end
  T.truthy(nonzero >= 8, 'most cases expect connections')
end)

T.test('the session peer, a CIDR string, and the default exact peer', function()
  audit.set_session_peer('127.0.0.2')
  local exact = ss_count(PORTS.SMTP, 'dst 127.0.0.2')
  local net = ss_count(PORTS.SMTP, 'dst 127.0.0.0/24')
  T.truthy(exact > 0 and net > exact, 'distinct counts')
  -- windows 0..1 in one call, or summed one by one
  local w0 = counted('window 0', connections(MINUTE, {}))
  local w1 = counted('window 1', connections(MINUTE, { startv = 1, endv = 1 }))
  T.eq(w0 + w1, exact, 'default: the peer itself, windows 0 and 1')
  T.eq(counted('range', connections(MINUTE, { endv = 1 })), exact, 'endv = 1')
  local s0 = counted('string', connections(MINUTE, '/24'))
  local s1 = counted('string', connections(MINUTE, { cidr = '/24', startv = 1, endv = 1 }))
  T.eq(s0 + s1, net, 'a string second argument is the cidr')
  T.eq(counted('past the windows kept', connections(MINUTE, { startv = 2, endv = 9 })), 0,
       'windows the monitor does not keep')
  T.eq(counted('cluster = false', connections(MINUTE, { cluster = false, endv = 1 })), exact,
       'cluster = false')
  audit.set_session_peer(nil)
end)

T.test('a monitor the auditor was not loaded with raises, naming those it was', function()
  T.raises({ 'bad argument #1', '300,6 is not configured', '900,4 60,2 1,3' },
           connections, '300,6', '/0')
end)

T.test('windows of 1 s rotate: the connections leave them', function()
  local before = counted('now', connections('1,3', { cidr = '/0', endv = 2 }))
  T.truthy(before <= ss_count(PORTS.SMTP, nil), 'no more than were made')
  os.execute('sleep 3.2')
  T.eq(counted('3 s later', connections('1,3', { cidr = '/0', endv = 2 })), 0,
       'the last 3 windows of 1 s')
  T.eq(counted('the minute', connections(MINUTE, { cidr = '/0', endv = 1 })),
       ss_count(PORTS.SMTP, nil), 'the minute still holds them')
end)

---- the example policy's rate limits -------------------------------------------

T.test('policy: a peer over its rate limit is refused, one at it accepted', function()
  local made = ss_count(PORTS.SMTP, 'dst 127.0.0.2')
  local limits = { { cidr = '/0', max = 100000, message = 'never' } }
  local rates = { { monitor = MINUTE, cidr = '/32,/128', endv = 1, max = made,
                    message = '4.7.0 connection rate limit exceeded' } }
  local decision, counts = policy.check(limits, '127.0.0.2', rates)
  T.eq(decision, nil, 'at the limit (' .. policy.describe(counts) .. ')')
  T.eq(counts[2].count, made, 'rate count')
  T.contains(policy.describe(counts), 'per ' .. MINUTE, 'described')
  rates[1].max = made - 1
  decision = policy.check(limits, '127.0.0.2', rates)
  T.eq(decision and decision.code, 421, 'over the limit')
  T.eq(decision.message, '4.7.0 connection rate limit exceeded', 'message')
end)

T.test('policy: the default rate limits accept this light load', function()
  audit.set_session_peer('127.0.0.2')
  local decision, counts = policy.check()
  T.eq(decision, nil, 'decision (' .. policy.describe(counts) .. ')')
  T.eq(counts.note, nil, 'every count answered')
  T.eq(#counts, #policy.limits + #policy.rate_limits, 'every limit counted')
  audit.set_session_peer(nil)
end)

T.test('policy: a monitor not loaded fails open, or defers when told to', function()
  local rates = { { monitor = '300,6', cidr = '/0', max = 1, message = 'never' } }
  local decision, counts = policy.check({}, '127.0.0.2', rates)
  T.eq(decision, nil, 'fail open')
  T.contains(counts.note, '300,6 is not configured', 'note')
  policy.fail_open = false
  decision = policy.check({}, '127.0.0.2', rates)
  policy.fail_open = true
  T.eq(decision and decision.code, 421, 'deferred')
end)

T.run()
