-- connection_limit.lua - a connect-time policy: refuse a new SMTP session
-- with a 421 when its sender already holds too many, at three scales, or
-- has made too many connections lately (a connection rate).
--
--   local policy = require('connection_limit')
--   local decision, counts = policy.check()           -- peer: the session's
--   if decision then reply(decision.code, decision.message) end
--
-- In Momentum this belongs in a validate_connect hook: the host has set the
-- session peer (msys_audit_set_session_peer from C, or
-- msys.audit.set_session_peer from Lua) before the hook runs. Counts include
-- the session being validated, since it is already established.
require('msys.audit')

local M = {}

-- Most specific first: the first limit exceeded gives the reply. `max` is
-- the most sessions allowed, this one included. "/N,/M" applies N bits to
-- IPv4 peers and M to IPv6 ones: a bare "/32" would group an IPv6 peer with
-- its whole /32 network, not limit the one address.
M.limits = {
  { cidr = '/32,/128', max = 10,
    message = '4.7.0 too many connections from your address' },
  { cidr = '/24,/64', max = 40,
    message = '4.7.0 too many connections from your network' },
  { cidr = '/0', max = 500,
    message = '4.7.0 too many connections, try again later' },
}

-- Connection rates, as Momentum's default policy keeps them: at most `max`
-- connections in windows startv..endv (0 the current one) of `monitor`.
-- Monitor "900,4" is 15-minute windows, the last four kept, so endv = 3 is
-- the last hour or so; the auditor must be loaded with --monitors "900,4".
-- Counts include the session being validated. Bots that connect and quit
-- at once never hold sessions for long: only a rate catches them.
M.rate_limits = {
  { monitor = '900,4', cidr = '/32,/128', endv = 3, max = 30,
    message = '4.7.0 connection rate limit exceeded' },
  { monitor = '900,4', cidr = '/24,/64', endv = 3, max = 120,
    message = '4.7.0 connection rate limit exceeded' },
}

M.service = 'SMTP'

-- When a count is unknown (the auditor is not loaded, no permission) or
-- incomplete (the auditor could not count some sessions, so the number is
-- a lower bound): fail open, accepting the session unless a lower bound is
-- already over its limit, and log a line through M.log that says so, so
-- that a monitoring outage neither stops the mail nor passes unnoticed.
-- false fails closed: such sessions are deferred with a 421 4.3.0 (also
-- logged).
M.fail_open = true

-- Where those lines go: replace it with the host's logger.
function M.log(line)
  io.stderr:write(line, '\n')
end

local TEMPFAIL = { code = 421, message = '4.3.0 temporary failure, try again later' }

-- The decision when a count is unknown or incomplete, logged.
local function unsure(counts)
  local what = M.fail_open and 'accepted (fail open)' or 'deferred (fail closed)'
  M.log('connaudit: ' .. what .. ' on an unknown or incomplete count: ' .. M.describe(counts))
  if M.fail_open then return nil, counts end
  return TEMPFAIL, counts
end

-- The connections of one rate limit. A monitor the auditor was not loaded
-- with raises in msys.audit.connections; here it is a failure like any
-- other, so that a configuration slip follows M.fail_open.
local function rate(limit, peer)
  local ok, n, note = pcall(msys.audit.connections, limit.monitor, {
    cidr = limit.cidr, startv = limit.startv or 0, endv = limit.endv or 0,
    service = M.service, peer = peer })
  if not ok then return nil, n end
  return n, note
end

-- Count every limit (so a log line can show all of them), then decide.
-- Returns nil (accept) or {code=421, message=...}, and the counts:
-- { {cidr=, count=, max=[, monitor=]}, ..., note = incomplete/failure
-- message or nil }. `limits` defaults to M.limits, `rate_limits` to
-- M.rate_limits; `peer` to the session's peer.
function M.check(limits, peer, rate_limits)
  local counts = {}
  local refusal
  local function consider(limit, n, note, monitor)
    counts.note = counts.note or note
    if n == nil then return false end
    counts[#counts + 1] = { cidr = limit.cidr, count = n, max = limit.max, monitor = monitor }
    if not refusal and n > limit.max then
      refusal = { code = 421, message = limit.message }
    end
    return true
  end
  -- A refusal decided on the counts known so far stands.
  local function failed()
    if refusal then return refusal, counts end
    return unsure(counts)
  end
  for _, limit in ipairs(limits or M.limits) do
    local n, note = msys.audit.inbound_session_count(limit.cidr, M.service, peer)
    if not consider(limit, n, note) then return failed() end
  end
  for _, limit in ipairs(rate_limits or M.rate_limits) do
    local n, note = rate(limit, peer)
    if not consider(limit, n, note, limit.monitor) then return failed() end
  end
  if counts.note and not refusal then return unsure(counts) end
  return refusal, counts
end

-- "/32,/128 3/10, /24,/64 5/40, /0 12/500, /32,/128 per 900,4 7/30" for a
-- log line.
function M.describe(counts)
  local parts = {}
  for _, c in ipairs(counts) do
    local per = c.monitor and ' per ' .. c.monitor or ''
    parts[#parts + 1] = string.format('%s%s %d/%d', c.cidr, per, c.count, c.max)
  end
  if counts.note then parts[#parts + 1] = '(' .. counts.note .. ')' end
  return table.concat(parts, ', ')
end

return M
