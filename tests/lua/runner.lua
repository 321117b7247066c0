-- runner.lua - the smallest test runner that does the job: each test is a
-- function; a failed check raises, so a test stops at its first failure.
-- Runs under Lua 5.1, LuaJIT, 5.3 and 5.4, as the tests that use it must.
--
--   local T = require('runner')
--   T.test('name', function() T.eq(f(), 3, 'f()') end)
--   T.run()   -- "ok"/"not ok" lines, then "N passed, N failed"; exits 1 on failure
local T = {}

local tests = {}

function T.test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

-- A test that cannot run here says why instead of passing vacuously.
function T.skip(name, why)
  tests[#tests + 1] = { name = name, skip = why }
end

local function show(v)
  if type(v) == 'string' then
    return string.format('%q', #v > 120 and v:sub(1, 120) .. '...' or v)
  end
  return tostring(v)
end

local function fail(fmt, ...)
  error(string.format(fmt, ...), 3)
end

function T.eq(actual, expected, what)
  if actual ~= expected then
    fail('%s: got %s, want %s', what, show(actual), show(expected))
  end
end

-- A whole number: an integer in 5.3+, a number without a fraction in 5.1.
function T.integer(v, what)
  local whole = type(v) == 'number' and v == math.floor(v)
  if math.type then whole = math.type(v) == 'integer' end
  if not whole then fail('%s: got %s, want an integer', what, show(v)) end
  return v
end

function T.truthy(v, what)
  if not v then fail('%s: got %s', what, show(v)) end
  return v
end

-- `s` contains `needle` literally.
function T.contains(s, needle, what)
  if type(s) ~= 'string' or not s:find(needle, 1, true) then
    fail('%s: %s does not contain %s', what, show(s), show(needle))
  end
end

-- fn(...) must raise an error whose message contains every needle; returns
-- the message.
function T.raises(needles, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then fail('expected an error containing %s, got none', show(needles[1])) end
  if type(err) ~= 'string' then fail('error is a %s, not a message', type(err)) end
  for _, n in ipairs(needles) do
    if not err:find(n, 1, true) then
      fail('error %s does not contain %s', show(err), show(n))
    end
  end
  return err
end

function T.run()
  local passed, failed = 0, 0
  for i, t in ipairs(tests) do
    if t.skip then
      print(string.format('ok %d - %s # SKIP %s', i, t.name, t.skip))
    else
      local ok, err = xpcall(t.fn, debug.traceback)
      if ok then
        passed = passed + 1
        print(string.format('ok %d - %s', i, t.name))
      else
        failed = failed + 1
        print(string.format('not ok %d - %s', i, t.name))
        print('  # ' .. tostring(err):gsub('\n', '\n  # '))
      end
    end
  end
  print(string.format('%d passed, %d failed', passed, failed))
  os.exit(failed == 0 and 0 or 1, true) -- 5.2+ close the state: runs __gc
end

return T
