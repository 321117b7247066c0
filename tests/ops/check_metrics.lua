-- check_metrics.lua - a strict checker of the Prometheus text exposition
-- format, version 0.0.4, for what `connaudit metrics` prints.
--
--   lua5.4 check_metrics.lua [--series] FILE
--
-- Checks every line's syntax (metric and label names, escapes in label
-- values and HELP text, numeric values, optional integer timestamps), that
-- each family has one HELP and one TYPE before its samples, that a family's
-- samples are not split by another family's, that no series repeats, and
-- the conventions connaudit follows: counters end in _total and are finite
-- and non-negative. Prints "FILE:LINE: problem" for each problem and exits
-- 1 if there is any. With --series, also prints each series on stdout in a
-- canonical form, labels sorted: name{a="x",b="y"} value.

local METRIC_NAME = "^[a-zA-Z_:][a-zA-Z0-9_:]*$"
local LABEL_NAME = "^[a-zA-Z_][a-zA-Z0-9_]*$"
local TYPES = { counter = true, gauge = true, histogram = true, summary = true, untyped = true }
-- Sample names a histogram or summary family owns besides its own name.
local SUFFIXES = { histogram = { "_bucket", "_sum", "_count" }, summary = { "_sum", "_count" } }

local problems = 0
local source = "?"

local function problem(lineno, fmt, ...)
	io.stderr:write(string.format("%s:%d: " .. fmt .. "\n", source, lineno, ...))
	problems = problems + 1
end

-- A value as Go's strconv.ParseFloat reads it, or nil.
local function parse_value(s)
	if s == "NaN" then return 0 / 0 end
	if s == "+Inf" or s == "Inf" then return math.huge end
	if s == "-Inf" then return -math.huge end
	if not (s:match("^[+-]?%d+%.?%d*$") or s:match("^[+-]?%d*%.%d+$")
		or s:match("^[+-]?%d+%.?%d*[eE][+-]?%d+$") or s:match("^[+-]?%d*%.%d+[eE][+-]?%d+$")) then
		return nil
	end
	return tonumber(s)
end

-- Undo the escapes of a label value (\\, \" and \n); nil for any other.
local function unescape(s, allow_quote)
	local out, i = {}, 1
	while i <= #s do
		local c = s:sub(i, i)
		if c == "\\" then
			local n = s:sub(i + 1, i + 1)
			if n == "\\" then out[#out + 1] = "\\"
			elseif n == "n" then out[#out + 1] = "\n"
			elseif n == '"' and allow_quote then out[#out + 1] = '"'
			else return nil end
			i = i + 2
		else
			out[#out + 1] = c
			i = i + 1
		end
	end
	return table.concat(out)
end

-- Parse `{name="value",...}` at the start of s. Returns a table of labels
-- and the rest of s, or nil and a message.
local function parse_labels(s)
	local labels, rest = {}, s:sub(2)
	while true do
		if rest:sub(1, 1) == "}" then return labels, rest:sub(2) end
		local name, after = rest:match("^([^=]*)=\"(.*)$")
		if not name then return nil, "expected label=\"value\" in " .. s end
		if not name:match(LABEL_NAME) then return nil, "bad label name '" .. name .. "'" end
		if name:sub(1, 2) == "__" then return nil, "label name '" .. name .. "' is reserved" end
		if labels[name] then return nil, "label '" .. name .. "' given twice" end
		-- The value ends at the first quote not escaped by a backslash.
		local j, raw = 1, nil
		while j <= #after do
			local c = after:sub(j, j)
			if c == "\\" then j = j + 2
			elseif c == '"' then raw = after:sub(1, j - 1); break
			else j = j + 1 end
		end
		if not raw then return nil, "unterminated value of label '" .. name .. "'" end
		local value = unescape(raw, true)
		if not value then return nil, "bad escape in value of label '" .. name .. "'" end
		labels[name] = value
		rest = after:sub(j + 1)
		if rest:sub(1, 1) == "," then
			rest = rest:sub(2)
		elseif rest:sub(1, 1) ~= "}" then
			return nil, "expected ',' or '}' after label '" .. name .. "'"
		end
	end
end

local function canonical(name, labels)
	local keys = {}
	for k in pairs(labels) do keys[#keys + 1] = k end
	table.sort(keys)
	local parts = {}
	for _, k in ipairs(keys) do
		local v = labels[k]:gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"')
		parts[#parts + 1] = k .. '="' .. v .. '"'
	end
	return #parts > 0 and name .. "{" .. table.concat(parts, ",") .. "}" or name
end

-- State across lines: what each family declared, and where samples are.
local families = {}	-- name -> { help = bool, type = string|nil, closed = bool }
local current		-- the family whose samples came last
local seen = {}		-- canonical series -> line
local series = {}	-- in order, for --series

local function family(name)
	families[name] = families[name] or {}
	return families[name]
end

-- The family a sample name belongs to: its own, or a histogram/summary base.
local function family_of(name)
	if families[name] and families[name].type then return name end
	for ftype, sufs in pairs(SUFFIXES) do
		for _, suf in ipairs(sufs) do
			local base = name:sub(1, #name - #suf)
			if name:sub(-#suf) == suf and families[base] and families[base].type == ftype then
				return base
			end
		end
	end
	return name
end

local function check_comment(lineno, line)
	local kind, name, text = line:match("^#[ \t]+(%S+)[ \t]+(%S+)[ \t]*(.*)$")
	if kind ~= "HELP" and kind ~= "TYPE" then return end	-- a plain comment
	if not name:match(METRIC_NAME) then return problem(lineno, "bad metric name '%s'", name) end
	local f = family(name)
	if f.closed or (f.samples and current ~= name) then
		return problem(lineno, "%s of %s after its samples", kind, name)
	end
	if kind == "HELP" then
		if f.help then problem(lineno, "second HELP for %s", name) end
		if not unescape(text, false) then problem(lineno, "bad escape in HELP of %s", name) end
		if text == "" then problem(lineno, "empty HELP for %s", name) end
		f.help = true
	else
		if f.type then problem(lineno, "second TYPE for %s", name) end
		if not TYPES[text] then problem(lineno, "unknown type '%s' for %s", text, name) end
		if f.samples then problem(lineno, "TYPE of %s after its samples", name) end
		f.type = text
	end
end

local function check_sample(lineno, line)
	local name, rest = line:match("^([^{ \t]+)(.*)$")
	if not name or not name:match(METRIC_NAME) then
		return problem(lineno, "bad metric name in '%s'", line)
	end
	local labels = {}
	if rest:sub(1, 1) == "{" then
		local err
		labels, err = parse_labels(rest)
		if not labels then return problem(lineno, "%s", err) end
		rest = err
	end
	local value, ts = rest:match("^ +(%S+)$")
	if not value then value, ts = rest:match("^ +(%S+) +(%S+)$") end
	if not value then return problem(lineno, "expected ' VALUE [TIMESTAMP]' in '%s'", line) end
	local v = parse_value(value)
	if not v then return problem(lineno, "bad value '%s'", value) end
	if ts and not ts:match("^-?%d+$") then return problem(lineno, "bad timestamp '%s'", ts) end

	local fname = family_of(name)
	local f = family(fname)
	if current ~= fname then
		if current then families[current].closed = true end
		if f.closed then problem(lineno, "samples of %s are split by others", fname) end
		current = fname
	end
	f.samples = true
	if not f.type then problem(lineno, "%s has no TYPE before its samples", fname) end
	if not f.help then problem(lineno, "%s has no HELP before its samples", fname) end
	if f.type == "counter" then
		if not name:match("_total$") then problem(lineno, "counter %s does not end in _total", name) end
		if v ~= v or v < 0 or v == math.huge then problem(lineno, "counter %s is %s", name, value) end
	end
	local key = canonical(name, labels)
	if seen[key] then problem(lineno, "%s repeats line %d", key, seen[key]) end
	seen[key] = lineno
	series[#series + 1] = key .. " " .. value
end

local function check(text)
	if text ~= "" and text:sub(-1) ~= "\n" then problem(0, "the text does not end in a newline") end
	local lineno = 0
	for line in text:gmatch("([^\n]*)\n?") do
		lineno = lineno + 1
		if line:find("\r", 1, true) then
			problem(lineno, "carriage return in line")
		elseif line:sub(1, 1) == "#" then
			check_comment(lineno, line)
		elseif line:match("^[ \t]*$") then
			-- empty lines are allowed
		else
			check_sample(lineno, line)
		end
	end
end

local print_series = arg[1] == "--series"
source = arg[print_series and 2 or 1]
if not source or arg[print_series and 3 or 2] then
	io.stderr:write("usage: lua5.4 check_metrics.lua [--series] FILE\n")
	os.exit(2)
end
local f, err = io.open(source, "rb")
if not f then
	io.stderr:write(err .. "\n")
	os.exit(2)
end
check(f:read("a"))
f:close()
if print_series then
	for _, s in ipairs(series) do print(s) end
end
os.exit(problems == 0 and 0 or 1)
