-- connection_limit.lua - a connect-time policy: refuse a new SMTP session
-- with a 421 when its sender already holds too many, at three scales.
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

M.service = 'SMTP'

-- When the auditor fails (not loaded, no permission) or a count is
-- incomplete (some session could not be counted: the count is a lower
-- bound, see `connaudit status`): accept, so that a monitoring outage never
-- stops the mail, and let the caller log the note (counts.note is set, and
-- M.describe(counts) shows it). A client over a limit on a lower bound is
-- still refused. false defers with a 421 4.3.0 every connection the policy
-- cannot vouch for instead.
M.fail_open = true

local TEMPFAIL = { code = 421, message = '4.3.0 temporary failure, try again later' }

-- Count every limit (so a log line can show all of them), then decide.
-- Returns nil (accept) or {code=421, message=...}, and the counts:
-- { {cidr=, count=, max=}, ..., note = incomplete/failure message or nil }.
-- `limits` defaults to M.limits; `peer` to the session's peer.
function M.check(limits, peer)
  local counts = {}
  local refusal
  for i, limit in ipairs(limits or M.limits) do
    local n, note = msys.audit.inbound_session_count(limit.cidr, M.service, peer)
    counts.note = counts.note or note
    if n == nil then
      if M.fail_open then return nil, counts end
      return TEMPFAIL, counts
    end
    counts[i] = { cidr = limit.cidr, count = n, max = limit.max }
    if not refusal and n > limit.max then
      refusal = { code = 421, message = limit.message }
    end
  end
  if not refusal and counts.note and not M.fail_open then
    return TEMPFAIL, counts    -- incomplete: under the limit proves nothing
  end
  return refusal, counts
end

-- "/32,/128 3/10, /24,/64 5/40, /0 12/500" for a log line.
function M.describe(counts)
  local parts = {}
  for _, c in ipairs(counts) do
    parts[#parts + 1] = string.format('%s %d/%d', c.cidr, c.count, c.max)
  end
  if counts.note then parts[#parts + 1] = '(' .. counts.note .. ')' end
  return table.concat(parts, ', ')
end

return M
