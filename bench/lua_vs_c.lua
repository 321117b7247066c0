-- lua_vs_c.lua - the Lua side of bench/lua_vs_c.c: returns a function that
-- makes `n` calls of the query a connect-time policy makes, and returns the
-- last count (checked against the C side's, so both measure the same work).
local count = require('msys.audit').inbound_session_count

return function(n, cidr, service, peer)
  local last
  for _ = 1, n do
    last = count(cidr, service, peer)
  end
  return last
end
