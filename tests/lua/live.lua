-- live.lua - what the live suites (test_live.lua, test_rates.lua) share:
-- ground truth from `ss`, and the check of a complete count. Runs under Lua
-- 5.1, LuaJIT, 5.3 and 5.4.
local T = require('runner')

local L = {}

-- The ports of the services the live auditor is loaded with.
L.PORTS = { SMTP = { 25 }, Control = { 2025 } }

-- The output of the shell command `cmd` (stderr included) and whether it
-- exited 0. The status is read from the output: 5.1's popen:close() does
-- not give it.
function L.sh(cmd)
  local p = assert(io.popen(cmd .. ' 2>&1; echo "exit $?"'))
  local out = p:read('*a')
  p:close()
  local body, status = out:match('^(.-)exit (%d+)\n$')
  return status == '0', body or out
end

-- Sessions ss sees on `ports` (server side: sport) whose peer passes
-- `filter` (an ss expression such as "dst 127.0.0.0/24"; nil for all).
function L.ss_count(ports, filter)
  local sports = {}
  for _, p in ipairs(ports) do sports[#sports + 1] = 'sport = :' .. p end
  local expr = '( ' .. table.concat(sports, ' or ') .. ' )'
  if filter then expr = expr .. ' and ( ' .. filter .. ' )' end
  local ok, out = L.sh("ss -Htn state established state close-wait '" .. expr .. "'")
  assert(ok, 'ss failed on ' .. expr .. ': ' .. out)
  local n = 0
  for _ in out:gmatch('[^\n]+') do n = n + 1 end
  return n
end

-- A count that succeeded and is complete: returns it.
function L.counted(what, n, note, errno)
  T.eq(note, nil, what .. ': second result (' .. tostring(errno) .. ')')
  T.integer(n, what .. ': count')
  return n
end

return L
