-- test_args.lua - msys.audit without an auditor: argument handling, the
-- module's shape, configure and the nil-plus-message failures. Needs no root.
--
-- tests/lua/run.sh sets CONNAUDIT_PIN_DIR to a directory that does not
-- exist and CONNAUDIT_CONFIG to an empty file, so nothing here can reach a
-- real auditor or depend on the host's services.conf.
local T = require('runner')

local MISSING_PIN_DIR = assert(os.getenv('CONNAUDIT_PIN_DIR'), 'CONNAUDIT_PIN_DIR unset')
assert(os.getenv('CONNAUDIT_CONFIG'), 'CONNAUDIT_CONFIG unset')

local audit = require('msys.audit')
local count = audit.inbound_session_count

local HUGE = string.rep('1', 1048576)
-- Quoted bad values are cut, so no message grows with the input.
local MESSAGE_MAX = 600

local function arg_error(n)
  return 'bad argument #' .. n
end

-- Each argument position with valid values for the others.
local function call_with(pos, value)
  local args = { '/24', 'SMTP', '127.0.0.2' }
  args[pos] = value
  return count(args[1], args[2], args[3])
end

local function write_file(text)
  local path = os.tmpname()
  local f = assert(io.open(path, 'w'))
  f:write(text)
  f:close()
  return path
end

-- nil, message, errno: an environment failure, not a raise.
local function expect_failure(needle, ...)
  local n, msg, errno = ...
  T.eq(n, nil, 'count')
  T.contains(msg, needle, 'message')
  T.integer(errno, 'errno')
  T.truthy(errno > 0, 'errno > 0')
end

---- the module -----------------------------------------------------------

T.test('require returns the module and sets global msys.audit', function()
  T.eq(type(audit), 'table', 'module type')
  T.eq(msys.audit, audit, 'msys.audit')
  T.eq(package.loaded['msys.audit'], audit, "package.loaded['msys.audit']")
end)

T.test('require keeps an existing msys table', function()
  local saved = msys
  msys = { core = 'kept' }
  package.loaded['msys.audit'] = nil
  local again = require('msys.audit')
  T.eq(msys.core, 'kept', 'msys.core')
  T.eq(msys.audit, again, 'msys.audit')
  msys = saved
  package.loaded['msys.audit'] = audit
end)

T.test('require refuses a global msys that is not a table', function()
  local saved = msys
  msys = 42
  package.loaded['msys.audit'] = nil
  T.raises({ 'msys', 'number', 'not a table' }, require, 'msys.audit')
  msys = saved
  package.loaded['msys.audit'] = audit
end)

for _, name in ipairs { 'receptions', 'rejections' } do
  T.test(name .. ' raises "not supported": it counts messages', function()
    T.eq(type(audit[name]), 'function', name)
    T.raises({ 'msys.audit.' .. name, 'not supported by connaudit', 'messages' },
             audit[name])
    T.raises({ 'not supported' }, audit[name], '/24', 'SMTP')
  end)
end

---- connections: arguments ---------------------------------------------------

local connections = audit.connections

T.test('connections: a monitor that is not SIZE,WINDOWS raises', function()
  for _, bad in ipairs { '300', '300,0', '0,6', '300,6,1', ' 300,6', '300,33', 'x', '',
                         '300,6\0' } do
    T.raises({ arg_error(1), 'SIZE,WINDOWS' }, connections, bad, '/0')
  end
  T.raises({ arg_error(1), 'got number 300' }, connections, 300, '/0')
  T.raises({ arg_error(1), 'got no value' }, connections)
end)

T.test('connections: bad options raise, naming what is wrong', function()
  local cases = {
    { { cidr = '/129' }, 'invalid CIDR' },
    { { cidr = 24 }, 'option cidr: string expected, got number' },
    { { startv = -1 }, 'out of range' },
    { { endv = 1.5 }, 'option endv: a window number' },
    { { endv = '1' }, 'option endv: a window number' },
    { { startv = 2, endv = 1 }, 'startv 2 is past endv 1' },
    { { startv = 1 }, 'startv 1 is past endv 0' },
    { { service = 'NoSuch' }, 'unknown service' },
    { { service = 'SMTP\0x' }, 'NUL' },
    { { peer = 'not-an-address' }, 'invalid address' },
    { { cidrs = '/24' }, 'unknown option "cidrs"' },
    { { [1] = '/24' }, 'option names are strings' },
  }
  for _, case in ipairs(cases) do
    T.raises({ arg_error(2), case[2] }, connections, '300,6', case[1])
  end
  T.raises({ arg_error(2), 'options table or CIDR string expected, got number' },
           connections, '300,6', 24)
  T.raises({ arg_error(2), 'invalid CIDR' }, connections, '300,6', '/24/')
end)

T.test('connections: a peer-relative CIDR without a peer raises', function()
  audit.set_session_peer(nil)
  T.raises({ arg_error(2), 'no peer address', 'set_session_peer' }, connections, '300,6')
  T.raises({ arg_error(2), 'no peer address' }, connections, '300,6', { cidr = '/24' })
  T.raises({ arg_error(2), 'no peer address' }, connections, '300,6', '/24,/64')
  audit.set_session_peer('192.0.2.1')
  T.raises({ arg_error(2), '/128', 'IPv4' }, connections, '300,6', '/128')
  audit.set_session_peer(nil)
end)

T.test('connections: valid arguments and no auditor give nil and a message', function()
  expect_failure(MISSING_PIN_DIR, connections('300,6', '/0'))
  expect_failure(MISSING_PIN_DIR, connections('300,6', { cidr = '/0', startv = 0, endv = 5,
                                                         service = 'SMTP', cluster = false }))
  expect_failure(MISSING_PIN_DIR, connections('300,6', { peer = '192.0.2.1' }))
  audit.set_session_peer('192.0.2.1')
  expect_failure(MISSING_PIN_DIR, connections('300,6'))
  expect_failure(MISSING_PIN_DIR, connections('300,6', '/24'))
  audit.set_session_peer(nil)
end)

---- wrong types, every position ---------------------------------------------

local wrong_types = {
  { nil, 'got nil' },
  { 24, 'got number 24' },
  { 2.5, 'got number 2.5' },
  { true, 'got boolean true' },
  { false, 'got boolean false' },
  { {}, 'got table' },
  { print, 'got function' },
  { coroutine.create(function() end), 'got thread' },
  { io.stdout, 'got FILE*' },
}

for pos = 1, 3 do
  T.test('argument #' .. pos .. ' of the wrong type raises', function()
    for _, case in ipairs(wrong_types) do
      local value, needle = case[1], case[2]
      if not (pos == 3 and value == nil) then -- nil peer means "none"
        T.raises({ arg_error(pos), 'string expected', needle }, call_with, pos, value)
      end
    end
  end)
end

-- Word for word, so that every Lua (5.1 and LuaJIT included) shows the same.
T.test('the messages are the same in every Lua', function()
  local function message(...)
    local ok, err = pcall(...)
    T.eq(ok, false, 'raised')
    return err
  end
  local fn = "'msys.audit.inbound_session_count'"
  T.eq(message(count, 24, 'SMTP'),
       'bad argument #1 to ' .. fn .. ' (string expected, got number 24)', 'number')
  T.eq(message(count, '/0', io.stdout),
       'bad argument #2 to ' .. fn .. ' (string expected, got FILE*)', 'userdata')
  T.eq(message(count, '/0'), 'bad argument #2 to ' .. fn .. ' (string expected, got no value)',
       'no value')
  T.eq(message(audit.configure, 'x'),
       "bad argument #1 to 'msys.audit.configure' (table expected, got string)", 'configure')
  T.eq(message(audit.connections),
       "bad argument #1 to 'msys.audit.connections' (string expected, got no value)",
       'connections')
  T.eq(message(audit.receptions),
       'msys.audit.receptions is not supported by connaudit: it counts messages, which only '
       .. 'the MTA sees; connaudit counts sessions and connections in the kernel '
       .. '(inbound_session_count, connections)', 'receptions')
end)

T.test('a missing service argument raises', function()
  T.raises({ arg_error(2), 'got no value' }, count, '/0')
end)

---- bad values ----------------------------------------------------------------

T.test('huge strings raise with a cut message, every position', function()
  for pos = 1, 3 do
    local err = T.raises({ arg_error(pos), '...' }, call_with, pos, HUGE)
    T.truthy(#err < MESSAGE_MAX, 'message length ' .. #err)
  end
end)

T.test('strings with NUL bytes raise, showing the NUL escaped', function()
  local cases = { { 1, '/24\0junk' }, { 2, 'SMTP\0junk' }, { 3, '127.0.0.2\0junk' },
                  { 1, '\0' }, { 2, '\0SMTP' }, { 3, '::1\0' } }
  for _, c in ipairs(cases) do
    T.raises({ arg_error(c[1]), '\\x00' }, call_with, c[1], c[2])
  end
end)

T.test('unparsable CIDRs raise, quoting the value', function()
  local bad = { '', '/', '/129', '/24,', '/24,/64,/48', '/24,/129', '/-1', '/0x18',
                '/ 24', ' /24', '/24 ', '/24;/64', '10.0.0/24', '10.0.0.1/33',
                '10.0.0.1/', '10.0.0.1/8/8', '[10.0.0.1]', '[::1', '::1]',
                '[::1]/129', 'fe80::1%eth0', 'SMTP', '\255\254' }
  for _, cidr in ipairs(bad) do
    local quoted = cidr:gsub('[^\32-\126]', function(ch)
      return string.format('\\x%02x', ch:byte())
    end)
    T.raises({ arg_error(1), 'invalid CIDR "' .. quoted .. '"' }, count, cidr, 'SMTP', '::1')
  end
end)

T.test('unknown services raise, listing the known ones', function()
  for _, name in ipairs { '', 'smtp', 'NOPE', 'SMTP ', ' SMTP', 'Control,SMTP' } do
    T.raises({ arg_error(2), 'known services: SMTP' }, count, '/0', name)
  end
  T.raises({ 'case-sensitive' }, count, '/0', 'smtp')
end)

T.test('clustering-only services raise, saying why', function()
  -- inbound_cidr is counted cluster-wide (tests/cluster); ECmmove2 has no port
  T.raises({ arg_error(2), '"ECmmove2"', 'clustering' }, count, '/0', 'ECmmove2')
end)

T.test('bad peers raise, quoting the value', function()
  local bad = { '', 'x', '300.1.1.1', '1.2.3', '10.0.0.1/24', '[10.0.0.1]',
                'fe80::1%lo', '::1]', ' 10.0.0.1', '10.0.0.1 ' }
  for _, peer in ipairs(bad) do
    T.raises({ arg_error(3), 'invalid address "' .. peer .. '"' }, count, '/24', 'SMTP', peer)
  end
end)

T.test('a bad peer raises even when the CIDR needs none', function()
  T.raises({ arg_error(3), 'invalid address' }, count, '/0', 'SMTP', 'nope')
  T.raises({ arg_error(3), 'invalid address' }, count, '10.0.0.0/8', 'SMTP', 'nope')
end)

T.test('a /N CIDR with no peer known raises, saying how to give one', function()
  audit.set_session_peer(nil)
  for _, cidr in ipairs { '/24', '/32', '/24,/64' } do
    T.raises({ arg_error(3), 'no peer address for "' .. cidr .. '"', 'set_session_peer' },
             count, cidr, 'SMTP')
  end
end)

T.test('a /N that does not fit the peer family raises', function()
  T.raises({ arg_error(1), '/64 cannot apply to IPv4 peer 127.0.0.2' },
           count, '/64', 'SMTP', '127.0.0.2')
  T.raises({ arg_error(1), 'IPv4 peer 127.0.0.2' },
           count, '/64', 'SMTP', '::ffff:127.0.0.2')
end)

T.test('a cached argument does not hide a bad one that shares its prefix', function()
  expect_failure(MISSING_PIN_DIR, count('/24', 'SMTP', '127.0.0.2'))
  T.raises({ arg_error(1) }, count, '/24\0', 'SMTP', '127.0.0.2')
  T.raises({ arg_error(2) }, count, '/24', 'SMTP\0', '127.0.0.2')
  T.raises({ arg_error(3) }, count, '/24', 'SMTP', '127.0.0.2\0')
  T.raises({ arg_error(1) }, count, '/24,', 'SMTP', '127.0.0.2')
  T.raises({ arg_error(2) }, count, '/24', 'SMT', '127.0.0.2')
  expect_failure(MISSING_PIN_DIR, count('/24', 'SMTP', '127.0.0.2'))
end)

---- every valid form reaches the auditor ---------------------------------------

T.test('every CIDR form passes argument checks and fails only on the auditor', function()
  local ok = { { '/0' }, { '/32', '10.1.2.3' }, { '/24', '10.1.2.3' },
               { '/24,/64', '10.1.2.3' }, { '/24,/64', 'fd00:ca::2' },
               { '/24,/64', '[fd00:ca::2]' }, { '/24', '::ffff:10.1.2.3' },
               { '/0,/0', 'fd00:ca::2' }, { '10.1.2.3' }, { '10.1.2.0/24' },
               { '10.1.2.3/24' }, { '[fd00:ca::2]' }, { '[fd00:ca::]/48' },
               { 'fd00:ca::/48' }, { '::ffff:10.1.2.3' } }
  for _, c in ipairs(ok) do
    for _, svc in ipairs { 'SMTP', 'Control', 'ECStream', 'ECCluster' } do
      expect_failure(MISSING_PIN_DIR, count(c[1], svc, c[2]))
    end
  end
end)

T.test('a missing pin dir gives nil, a message naming it, and ENOENT', function()
  local n, msg, errno = count('/0', 'SMTP')
  expect_failure(MISSING_PIN_DIR, n, msg, errno)
  T.eq(errno, 2, 'errno (ENOENT)')
end)

---- set_session_peer -------------------------------------------------------------

T.test('set_session_peer: a set peer serves /N, nil clears it', function()
  audit.set_session_peer('127.0.0.2')
  expect_failure(MISSING_PIN_DIR, count('/24', 'SMTP'))
  audit.set_session_peer('[fd00:ca::2]')
  expect_failure(MISSING_PIN_DIR, count('/24,/64', 'SMTP'))
  T.raises({ '/64 cannot apply' }, count, '/64', 'SMTP', '127.0.0.9') -- argument wins
  audit.set_session_peer(nil)
  T.raises({ 'no peer address' }, count, '/24', 'SMTP')
  audit.set_session_peer('127.0.0.2')
  audit.set_session_peer()
  T.raises({ 'no peer address' }, count, '/24', 'SMTP')
end)

T.test('set_session_peer: bad values raise and clear the old peer', function()
  local fn = "set_session_peer'"
  for _, v in ipairs { 'nope', '10.0.0.1/24', '', HUGE, '127.0.0.1\0x' } do
    audit.set_session_peer('127.0.0.2')
    T.raises({ 'bad argument #1', fn, 'invalid address' }, audit.set_session_peer, v)
    T.raises({ 'no peer address' }, count, '/24', 'SMTP')
  end
  for _, v in ipairs { 7, true, {}, print } do
    T.raises({ 'bad argument #1', fn, 'string expected' }, audit.set_session_peer, v)
  end
end)

---- configure --------------------------------------------------------------------

T.test('configure: the argument must be a table', function()
  local fn = "configure'"
  for _, v in ipairs { 'x', 1, true, print } do
    T.raises({ 'bad argument #1', fn, 'table expected' }, audit.configure, v)
  end
  T.raises({ 'table expected, got no value' }, audit.configure)
end)

T.test('configure: unknown or non-string option names raise', function()
  T.raises({ 'unknown option "pindir"', 'pin_dir, config' }, audit.configure, { pindir = '/x' })
  T.raises({ 'unknown option "a\\x00b"' }, audit.configure, { ['a\0b'] = '/x' })
  T.raises({ 'got a number key' }, audit.configure, { '/x' })
  T.raises({ 'got a boolean key' }, audit.configure, { [true] = '/x' })
end)

T.test('configure: option values must be paths', function()
  for _, opt in ipairs { 'pin_dir', 'config' } do
    for _, v in ipairs { 1, true, {}, print } do
      T.raises({ 'option ' .. opt .. ': string expected, got ' .. type(v) },
               audit.configure, { [opt] = v })
    end
    for _, v in ipairs { '', '/a\0b', '/' .. HUGE } do
      T.raises({ 'option ' .. opt, 'is not a path' }, audit.configure, { [opt] = v })
    end
  end
end)

T.test('configure: a failed call changes nothing', function()
  audit.configure { pin_dir = '/nonexistent/first' }
  T.raises({ 'unknown option' }, audit.configure, { pin_dir = '/nonexistent/second', x = 1 })
  expect_failure('/nonexistent/first', count('/0', 'SMTP'))
  audit.configure {}
end)

T.test('configure: pin_dir takes effect at the next query; {} restores the default', function()
  audit.configure { pin_dir = '/nonexistent/configured' }
  expect_failure('/nonexistent/configured', count('/0', 'SMTP'))
  audit.configure {}
  expect_failure(MISSING_PIN_DIR, count('/0', 'SMTP'))
end)

T.test('configure: config loads services from that file', function()
  local path = write_file('Submission 587 465\nSMTP 25 2525\n')
  T.raises({ 'unknown service "Submission"' }, count, '/0', 'Submission')
  audit.configure { config = path }
  expect_failure(MISSING_PIN_DIR, count('/0', 'Submission'))
  audit.configure {}
  T.raises({ 'unknown service "Submission"' }, count, '/0', 'Submission')
  os.remove(path)
end)

T.test('configure: an unusable services file gives nil and a message', function()
  local path = write_file('SMTP not-a-port\n')
  audit.configure { config = path }
  expect_failure(path, count('/0', 'SMTP'))
  audit.configure { config = path .. '.missing' }
  expect_failure(path .. '.missing', count('/0', 'SMTP'))
  audit.configure {}
  os.remove(path)
end)

T.test('close can be called twice, and the next query reopens', function()
  audit.close()
  audit.close()
  expect_failure(MISSING_PIN_DIR, count('/0', 'SMTP'))
end)

T.run()
