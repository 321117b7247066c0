-- test_live.lua - msys.audit against the real auditor. Run by tests/lua/run.sh
-- as root inside a private network namespace, where tests/holdconns holds the
-- connections listed in run.sh (LIVE_HOLD_SPECS) and the auditor is loaded at
-- $CONNAUDIT_PIN_DIR. Every expected number comes from `ss` on the same
-- namespace, with ss's own address filter: never from connaudit's matcher.
local T = require('runner')

local PIN_DIR = assert(os.getenv('CONNAUDIT_PIN_DIR'), 'CONNAUDIT_PIN_DIR unset')
local BIN = assert(os.getenv('CONNAUDIT_BIN'), 'CONNAUDIT_BIN unset')
local ENOENT = 2

local audit = require('msys.audit')
local count = audit.inbound_session_count
local policy = require('connection_limit')

local live = require('live')
local PORTS, sh, ss_count = live.PORTS, live.sh, live.ss_count

-- Another suite's load or unload holds the lock for a moment: retry, as
-- tests/lua/live.sh does.
local BUSY = 'another connaudit load or unload is running'

local function connaudit(verb)
  local cmd = BIN .. ' ' .. verb .. ' --pin-dir ' .. PIN_DIR .. ' --quiet'
  local ok, out
  for _ = 1, 100 do
    ok, out = sh(cmd)
    if ok then return end
    if not out:find(BUSY, 1, true) then break end
    os.execute('sleep 0.1')
  end
  error(cmd .. ': ' .. out)
end

local counted = live.counted

---- every CIDR form against ss ------------------------------------------------

-- cidr, peer (nil: none), the same set as an ss filter (nil: all), service;
-- `none` marks the one case that expects no sessions, so that a count stuck
-- at 0 cannot pass the others.
local CASES = {
  { '/32', '127.0.0.2', 'dst 127.0.0.2' },
  { '/24', '127.0.0.2', 'dst 127.0.0.0/24' },
  { '/16', '127.0.0.2', 'dst 127.0.0.0/16' },
  { '/20', '127.0.0.2', 'dst 127.0.0.0/20' },            -- not aggregated: its 16 /24s
  { '/2', '127.0.0.2', 'dst 64.0.0.0/2' },               -- too wide to sum: a scan
  { '/24', '::ffff:127.0.0.3', 'dst 127.0.0.0/24' },     -- v4-mapped peer
  { '/24,/64', '127.0.0.3', 'dst 127.0.0.0/24' },
  { '/24,/64', 'fd00:ca::2', 'dst fd00:ca::/64' },
  { '/24,/48', '[fd00:ca::3]', 'dst fd00:ca::/48' },
  { '/128', 'fd00:ca::2', 'dst [fd00:ca::2]' },
  { '/0', nil, nil },
  { '/0', 'fd00:ca::2', nil },                           -- peer not needed
  { '127.0.1.9', nil, 'dst 127.0.1.9' },
  { '127.0.0.0/24', nil, 'dst 127.0.0.0/24' },
  { '127.0.0.77/16', nil, 'dst 127.0.0.0/16' },          -- host bits masked
  { '::ffff:127.0.0.2', nil, 'dst 127.0.0.2' },
  { '[fd00:ca::3]', nil, 'dst [fd00:ca::3]' },
  { '[fd00:ca::]/48', nil, 'dst fd00:ca::/48' },
  { '[fd00:ca::]/56', nil, 'dst fd00:ca::/56' },         -- its 256 /64s
  { 'fd00:ca:0:1::/64', nil, 'dst fd00:ca:0:1::/64' },
  { '10.9.9.9', nil, 'dst 10.9.9.9', none = true },
  { '/0', nil, nil, 'Control' },
  { '/24', '127.0.0.2', 'dst 127.0.0.0/24', 'Control' },
}

local function describe(c)
  return string.format("count(%q, %q%s)", c[1], c[4] or 'SMTP',
                       c[2] and string.format(', %q', c[2]) or '')
end

local function check_case(c, n, note, errno)
  local service = c[4] or 'SMTP'
  local want = ss_count(PORTS[service], c[3])
  T.eq(want > 0, not c.none, describe(c) .. ': ss finds sessions')
  T.eq(counted(describe(c), n, note, errno), want, describe(c) .. ' vs ss')
end

for _, c in ipairs(CASES) do
  T.test(describe(c) .. ' equals ss', function()
    check_case(c, count(c[1], c[4] or 'SMTP', c[2]))
  end)
end

-- The argument caches key on the text: interleave forms, backwards, twice.
T.test('interleaved forms keep their own answers', function()
  for _ = 1, 2 do
    for i = #CASES, 1, -1 do
      local c = CASES[i]
      check_case(c, count(c[1], c[4] or 'SMTP', c[2]))
    end
  end
end)

T.test('the session peer serves /N forms', function()
  for _, c in ipairs(CASES) do
    if c[2] and c[1]:sub(1, 1) == '/' then
      audit.set_session_peer(c[2])
      check_case(c, count(c[1], c[4] or 'SMTP'))
    end
  end
  audit.set_session_peer(nil)
end)

T.test('a service from configure{config=} counts all its ports', function()
  local path = os.tmpname()
  local f = assert(io.open(path, 'w'))
  f:write('Both 25 2025\n')
  f:close()
  audit.configure { pin_dir = PIN_DIR, config = path }
  local n = counted('Both', count('/24', 'Both', '127.0.0.2'))
  T.eq(n, ss_count({ 25, 2025 }, 'dst 127.0.0.0/24'), "count('/24', 'Both') vs ss")
  T.truthy(n > ss_count({ 25 }, 'dst 127.0.0.0/24'), 'more than SMTP alone')
  audit.configure {}
  os.remove(path)
end)

---- unload and reload under the same Lua state ---------------------------------

T.test('an unload gives nil, a message and ENOENT; a load is seen again', function()
  local want = ss_count(PORTS.SMTP, nil)
  T.eq(counted('before', count('/0', 'SMTP')), want, 'before unload')
  connaudit('unload')
  local n, msg, errno = count('/0', 'SMTP')
  T.eq(n, nil, 'count while unloaded')
  T.contains(msg, 'not loaded', 'message')
  T.eq(errno, ENOENT, 'errno')
  connaudit('load')
  T.eq(counted('after load', count('/0', 'SMTP')), want, 'after load (seeded)')
end)

T.test('a reload (unload + load) with the handle open is picked up', function()
  local want = ss_count(PORTS.SMTP, 'dst 127.0.0.0/24')
  T.eq(counted('before', count('/24', 'SMTP', '127.0.0.2')), want, 'before reload')
  connaudit('unload')
  connaudit('load')
  T.eq(counted('after reload', count('/24', 'SMTP', '127.0.0.2')), want, 'after reload')
  connaudit('unload')
  connaudit('load')
  T.eq(counted('after a second reload', count('/0', 'SMTP')), ss_count(PORTS.SMTP, nil),
       'after a second reload')
end)

T.test('a full peers map gives count, "incomplete: ..."', function()
  -- Two peer entries cannot hold this namespace's distinct peers.
  connaudit('unload')
  connaudit('load --max-peers 2')
  local n, note = count('/0', 'SMTP')
  connaudit('unload')
  connaudit('load')
  T.integer(n, 'count')
  T.truthy(n <= ss_count(PORTS.SMTP, nil), 'a lower bound')
  T.contains(note, 'incomplete: ', 'second result')
  counted('after a full load', count('/0', 'SMTP'))
end)

---- the example policy ---------------------------------------------------------------

-- Limits at exactly the current counts, then one of them a session lower.
local function limits_at(c32, c24, c0)
  local limits = {}
  for i, l in ipairs(policy.limits) do
    limits[i] = { cidr = l.cidr, message = l.message, max = ({ c32, c24, c0 })[i] }
  end
  return limits
end

local function check_policy(peer, filters)
  audit.set_session_peer(peer)
  local c32, c24 = ss_count(PORTS.SMTP, filters[1]), ss_count(PORTS.SMTP, filters[2])
  local c0 = ss_count(PORTS.SMTP, nil)
  T.truthy(c32 < c24 and c24 < c0, 'distinct levels ' .. c32 .. ' < ' .. c24 .. ' < ' .. c0)

  local decision, counts = policy.check(limits_at(c32, c24, c0))
  T.eq(decision, nil, 'at every limit: accept (' .. policy.describe(counts) .. ')')
  T.eq(counts[1].count, c32, '/32 count')
  T.eq(counts[2].count, c24, '/24,/64 count')
  T.eq(counts[3].count, c0, '/0 count')

  local over = { limits_at(c32 - 1, c24, c0), limits_at(c32, c24 - 1, c0),
                 limits_at(c32, c24, c0 - 1) }
  for i, limits in ipairs(over) do
    decision = policy.check(limits)
    T.truthy(decision, 'over limit ' .. i .. ': refused')
    T.eq(decision.code, 421, 'code')
    T.eq(decision.message, policy.limits[i].message, 'message of limit ' .. i)
  end
  audit.set_session_peer(nil)
end

T.test('policy: an IPv4 peer is accepted at each limit and refused over it', function()
  check_policy('127.0.0.2', { 'dst 127.0.0.2', 'dst 127.0.0.0/24' })
end)

T.test('policy: an IPv6 peer is limited per /128 and /64', function()
  check_policy('fd00:ca::2', { 'dst [fd00:ca::2]', 'dst fd00:ca::/64' })
end)

T.test('policy: the default limits accept this light load', function()
  audit.set_session_peer('127.0.0.2')
  local decision, counts = policy.check(nil, nil, {})
  T.eq(decision, nil, 'decision (' .. policy.describe(counts) .. ')')
  audit.set_session_peer(nil)
end)

-- policy.check of the session limits with its log lines caught; fail_open
-- as given. The rate limits are test_rates.lua's: these tests reload the
-- auditor without monitors.
local function check_logged(fail_open)
  local lines, log = {}, policy.log
  policy.log = function(line) lines[#lines + 1] = line end
  policy.fail_open = fail_open
  local decision, counts = policy.check(nil, nil, {})
  policy.log, policy.fail_open = log, true
  return decision, counts, table.concat(lines, '\n')
end

T.test('policy: a failing auditor fails open with a log line, or defers when told to', function()
  audit.set_session_peer('127.0.0.2')
  audit.configure { pin_dir = PIN_DIR .. '-missing' }
  local decision, counts, logged = check_logged(true)
  T.eq(decision, nil, 'decision')
  T.contains(counts.note, PIN_DIR .. '-missing', 'note')
  T.contains(logged, 'accepted (fail open)', 'log line')
  T.contains(logged, PIN_DIR .. '-missing', 'log line names the failure')
  decision, counts, logged = check_logged(false)
  T.eq(decision and decision.code, 421, 'deferred')
  T.contains(decision.message, '4.3.0', 'message')
  T.contains(logged, 'deferred (fail closed)', 'log line')
  audit.configure {}
  audit.set_session_peer(nil)
end)

T.test('policy: an incomplete count is accepted with a log line, or deferred', function()
  audit.set_session_peer('127.0.0.2')
  local decision, _, logged = check_logged(true)
  T.eq(decision, nil, 'complete count: accepted')
  T.eq(logged, '', 'complete count: nothing logged')
  connaudit('unload')
  connaudit('load --max-peers 2') -- too few entries for this namespace's peers
  local counts
  decision, counts, logged = check_logged(true)
  local closed_decision, _, closed_logged = check_logged(false)
  connaudit('unload')
  connaudit('load')
  T.eq(decision, nil, 'fail open: accepted')
  T.contains(counts.note, 'incomplete: ', 'note')
  T.contains(logged, 'accepted (fail open)', 'fail open: log line')
  T.contains(logged, 'incomplete: ', 'fail open: the log line says why')
  T.eq(closed_decision and closed_decision.code, 421, 'fail closed: deferred')
  T.contains(closed_decision.message, '4.3.0', 'fail closed: message')
  T.contains(closed_logged, 'deferred (fail closed)', 'fail closed: log line')
  audit.set_session_peer(nil)
end)

---- the HAProxy policy, outside HAProxy ------------------------------------------

-- lua/examples/haproxy.lua loaded with a stand-in for HAProxy's `core`
-- and its environment settings from `env`; returns a function that runs
-- the registered action for a client and returns whether it marked the
-- session over the limit, and what it logged.
local function haproxy_policy(env)
  local action
  local sandbox = setmetatable({
    core = { register_action = function(_, _, fn) action = fn end },
    os = { getenv = function(name) return env[name] or os.getenv(name) end },
  }, { __index = _G })
  local path = assert(package.path:match('([^;]*examples/)%?%.lua')) .. 'haproxy.lua'
  local chunk
  if setfenv then
    chunk = assert(loadfile(path))
    setfenv(chunk, sandbox)
  else
    chunk = assert(loadfile(path, 't', sandbox))
  end
  chunk()
  return function(client, limit)
    local vars, logged = {}, {}
    local txn = {
      f = { src = function() return client end },
      set_var = function(_, name, value) vars[name] = value end,
      Warning = function(_, line) logged[#logged + 1] = 'warning: ' .. line end,
      Info = function(_, line) logged[#logged + 1] = 'info: ' .. line end,
    }
    action(txn, tostring(limit))
    return vars['txn.connaudit_over'], table.concat(logged, '\n')
  end
end

T.test('haproxy.lua: over the limit or not, by the /24 count', function()
  local check = haproxy_policy {}
  local n = ss_count(PORTS.SMTP, 'dst 127.0.0.0/24')
  local over, logged = check('127.0.0.2', n)
  T.eq(over, false, 'at the limit: not over')
  T.eq(logged, '', 'nothing logged')
  over, logged = check('127.0.0.2', n - 1)
  T.eq(over, true, 'one under the count: over')
  T.contains(logged, 'info: connaudit: 127.0.0.2: over ' .. (n - 1), 'logged')
end)

T.test('haproxy.lua: an unknown count fails open, or closed, with a warning', function()
  audit.configure { pin_dir = PIN_DIR .. '-missing' }
  local over, logged = haproxy_policy {}('127.0.0.2', 1000)
  local closed_over, closed_logged =
    haproxy_policy { CONNAUDIT_HAPROXY_FAIL = 'closed' }('127.0.0.2', 1000)
  audit.configure {}
  T.eq(over, false, 'fail open: not over')
  T.contains(logged, 'warning: connaudit: cannot count SMTP sessions around 127.0.0.2', 'log')
  T.contains(logged, 'accepted (fail open)', 'fail open: log')
  T.eq(closed_over, true, 'fail closed: over')
  T.contains(closed_logged, 'rejected (fail closed)', 'fail closed: log')
end)

T.test('haproxy.lua: an incomplete count fails open, or closed, with a warning', function()
  connaudit('unload')
  connaudit('load --max-peers 2') -- too few entries for this namespace's peers
  local over, logged = haproxy_policy {}('127.0.0.2', 1000)
  local closed_over, closed_logged =
    haproxy_policy { CONNAUDIT_HAPROXY_FAIL = 'closed' }('127.0.0.2', 1000)
  local lower = count('/24,/64', 'SMTP', '127.0.0.2')
  local low_over = haproxy_policy {}('127.0.0.2', lower - 1)
  connaudit('unload')
  connaudit('load')
  T.truthy(lower > 0, 'a lower bound above 0 (' .. lower .. ')')
  T.eq(over, false, 'fail open: not over')
  T.contains(logged, 'incomplete: ', 'fail open: the warning says why')
  T.contains(logged, 'accepted (fail open)', 'fail open: log')
  T.eq(closed_over, true, 'fail closed: over')
  T.contains(closed_logged, 'rejected (fail closed)', 'fail closed: log')
  T.eq(low_over, true, 'a lower bound over the limit: over, either way')
end)

T.test('haproxy.lua: a bad setting or rule argument raises, saying what to write', function()
  T.raises({ 'CONNAUDIT_HAPROXY_FAIL', 'open or closed' }, haproxy_policy,
           { CONNAUDIT_HAPROXY_FAIL = 'maybe' })
  T.raises({ 'lua.connaudit_limit 10' }, haproxy_policy {}, '127.0.0.2', 'ten')
end)

T.run()
