-- haproxy.lua - a connect-time policy for HAProxy 2.6+ (which links Lua
-- 5.3): close a new session when its client's network already holds more
-- than LIMIT sessions on the service, as connaudit counts them.
--
-- haproxy.cfg (the module built for Lua 5.3, the policy lua-loaded):
--
--   global
--       lua-prepend-path /usr/lib/x86_64-linux-gnu/lua/5.3/?.so cpath
--       lua-load /usr/share/doc/connaudit/examples/haproxy.lua
--   frontend smtp
--       mode tcp
--       bind :25
--       tcp-request content lua.connaudit_limit 10
--       tcp-request content reject if { var(txn.connaudit_over) -m bool }
--       default_backend mta
--
-- The rule's argument is LIMIT: the most sessions allowed from one network,
-- this one included (it is established when the rule runs, so it is in the
-- count). The network is the client's /24 for IPv4 and its /64 for IPv6;
-- the service is the frontend's, from connaudit's services.conf. Both can
-- be changed with haproxy's `setenv` in global, before lua-load:
--   CONNAUDIT_HAPROXY_CIDR     default "/24,/64"
--   CONNAUDIT_HAPROXY_SERVICE  default "SMTP"
-- and the module reads CONNAUDIT_PIN_DIR and CONNAUDIT_CONFIG as usual.
-- HAProxy must be able to read the auditor's pins: run it as root, or load
-- the auditor with `connaudit load --group haproxy`.
--
-- When the count is unknown (the auditor is not loaded, no permission) or
-- incomplete (the auditor could not count some sessions, so the number is
-- a lower bound), the policy fails open: it accepts the session, unless
-- the lower bound alone is over the limit, and logs a warning that says
-- so. `setenv CONNAUDIT_HAPROXY_FAIL closed` rejects such sessions instead
-- (also with a warning): a monitoring outage then stops the mail.
local audit = require('msys.audit')

local CIDR = os.getenv('CONNAUDIT_HAPROXY_CIDR') or '/24,/64'
local SERVICE = os.getenv('CONNAUDIT_HAPROXY_SERVICE') or 'SMTP'
local FAIL = os.getenv('CONNAUDIT_HAPROXY_FAIL') or 'open'

if FAIL ~= 'open' and FAIL ~= 'closed' then
  error('CONNAUDIT_HAPROXY_FAIL is "' .. FAIL .. '": set it to open or closed')
end

-- Whether a session from `client` goes over `limit`, and a warning to log
-- when the answer rests on an unknown or incomplete count.
local function over_limit(client, limit)
  local n, note = audit.inbound_session_count(CIDR, SERVICE, client)
  if n == nil then
    return FAIL == 'closed', string.format(
      'connaudit: cannot count %s sessions around %s (%s): %s', SERVICE, client, note,
      FAIL == 'closed' and 'rejected (fail closed)' or 'accepted (fail open)')
  end
  if n > limit then
    return true
  end
  if note then
    return FAIL == 'closed', string.format(
      'connaudit: %s sessions around %s: at least %d of %d (%s): %s', SERVICE, client, n,
      limit, note, FAIL == 'closed' and 'rejected (fail closed)' or 'accepted (fail open)')
  end
  return false
end

core.register_action('connaudit_limit', { 'tcp-req' }, function(txn, limit_arg)
  local limit = tonumber(limit_arg)
  if not limit then
    error('lua.connaudit_limit takes the most sessions allowed per network, as in '
          .. '"tcp-request content lua.connaudit_limit 10"; got ' .. tostring(limit_arg))
  end
  local client = txn.f:src()
  local over, warning = over_limit(client, limit)
  if warning then
    txn:Warning(warning)
  elseif over then
    txn:Info(string.format('connaudit: %s: over %d %s sessions per %s: rejected',
                           client, limit, SERVICE, CIDR))
  end
  txn:set_var('txn.connaudit_over', over)
end, 1)
