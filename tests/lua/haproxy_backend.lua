-- haproxy_backend.lua - the mail server behind the HAProxy of
-- tests/lua/haproxy.sh, as an HAProxy Lua service: it greets each session
-- with one line, then waits until the client side closes and ends its own
-- side. A backend that kept its side open would leave HAProxy's client
-- socket in CLOSE_WAIT, which connaudit rightly goes on counting.
core.register_service('connaudit_test_mta', 'tcp', function(applet)
  applet:send('220 connaudit test MTA\r\n')
  applet:receive() -- without a size: returns once the client has closed
end)
