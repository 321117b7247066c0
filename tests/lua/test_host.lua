-- test_host.lua - the module's C API, run by build/tests/lua/host (see
-- host.c for the c_* globals). Without an auditor, as test_args.lua; with
-- CONNAUDIT_LIVE=1 (tests/lua/run.sh, inside its netns) it also checks that
-- close() and lua_close() release the maps.
local T = require('runner')

local MISSING = 'nope, not an address'
local EINVAL = 22
local LIVE = os.getenv('CONNAUDIT_LIVE') == '1'
local PIN_DIR = assert(os.getenv('CONNAUDIT_PIN_DIR'), 'CONNAUDIT_PIN_DIR unset')

local audit -- required by the first test, after the peer is set from C

-- With no auditor the query fails softly; with one it counts. Either way
-- it did not raise, so the peer was known.
local function peer_was_known(...)
  local n, msg = ...
  if LIVE then
    T.integer(n, 'count')
  else
    T.eq(n, nil, 'count')
    T.contains(msg, PIN_DIR, 'message')
  end
end

T.test('a peer set from C before require serves /N queries', function()
  T.eq(package.loaded['msys.audit'], nil, 'module not loaded yet')
  T.eq(c_set_session_peer('127.0.0.2'), 0, 'msys_audit_set_session_peer')
  audit = require('msys.audit')
  T.eq(msys.audit, audit, 'msys.audit')
  peer_was_known(audit.inbound_session_count('/24', 'SMTP'))
end)

T.test('NULL clears the peer', function()
  T.eq(c_set_session_peer('127.0.0.2'), 0, 'set')
  T.eq(c_set_session_peer(nil), 0, 'clear')
  T.raises({ 'no peer address' }, audit.inbound_session_count, '/24', 'SMTP')
end)

T.test('a bad address is -EINVAL and clears the previous peer', function()
  for _, bad in ipairs { MISSING, '', '10.0.0.1/24', '[10.0.0.1]', string.rep('1', 100000) } do
    T.eq(c_set_session_peer('127.0.0.2'), 0, 'set')
    T.eq(c_set_session_peer(bad), -EINVAL, 'bad address')
    T.raises({ 'no peer address' }, audit.inbound_session_count, '/24', 'SMTP')
  end
end)

T.test('the C and Lua setters share one peer', function()
  audit.set_session_peer('fd00:ca::2')
  peer_was_known(audit.inbound_session_count('/24,/64', 'SMTP'))
  T.eq(c_set_session_peer(nil), 0, 'clear from C')
  T.raises({ 'no peer address' }, audit.inbound_session_count, '/24', 'SMTP')
  T.eq(c_set_session_peer('::ffff:127.0.0.2'), 0, 'set from C')
  T.raises({ 'cannot apply to IPv4 peer 127.0.0.2' }, audit.inbound_session_count, '/64', 'SMTP')
  audit.set_session_peer(nil)
  T.raises({ 'no peer address' }, audit.inbound_session_count, '/24', 'SMTP')
end)

T.test('each lua_State has its own peer', function()
  T.eq(c_set_session_peer('127.0.0.2'), 0, 'set here')
  local ok, msg = c_run_fresh([[
    local audit = require('msys.audit')
    local ok, err = pcall(audit.inbound_session_count, '/24', 'SMTP')
    return err
  ]])
  T.eq(ok, true, 'fresh state ran')
  T.contains(msg, 'no peer address', 'fresh state has no peer')
  peer_was_known(audit.inbound_session_count('/24', 'SMTP'))
end)

if LIVE then
  T.test('close() releases the maps, twice is fine, the next query reopens', function()
    T.integer(audit.inbound_session_count('/0', 'SMTP'), 'count')
    local open = c_fd_count()
    audit.close()
    local closed = c_fd_count()
    T.truthy(closed < open, 'fds after close: ' .. closed .. ' < ' .. open)
    audit.close()
    T.eq(c_fd_count(), closed, 'fds after a second close')
    T.integer(audit.inbound_session_count('/0', 'SMTP'), 'count again')
    T.eq(c_fd_count(), open, 'fds after reopening')
  end)

  T.test('lua_close releases the maps (__gc)', function()
    local before = c_fd_count()
    local ok, inside = c_run_fresh([[
      local n = assert(require('msys.audit').inbound_session_count('/0', 'SMTP'))
      return c_fd_count()
    ]])
    T.eq(ok, true, 'fresh state ran: ' .. tostring(inside))
    T.truthy(tonumber(inside) > before, 'open handle holds fds (' .. inside .. ' > ' .. before .. ')')
    T.eq(c_fd_count(), before, 'fds after lua_close')
  end)
else
  T.skip('close() releases the maps', 'needs the auditor (run as root)')
  T.skip('lua_close releases the maps (__gc)', 'needs the auditor (run as root)')
end

T.run()
