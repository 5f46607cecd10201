-- json.lua: a small JSON encoder and decoder written for this benchmark.
-- Generated documents (nested objects/arrays, escaped strings, integers and
-- fractions, booleans, null) are encoded, decoded and compared for deep
-- equality; re-encoding must reproduce the same text. Stresses string
-- buffers (table.concat), many short strings and many small tables.
-- Usage: lua json.lua [scale]

local scale = (arg and tonumber(arg[1])) or 1
local floor = math.floor
local format, byte, char, sub, find = string.format, string.byte, string.char, string.sub, string.find
local concat = table.concat

local ROUNDS = floor(110 * scale)
if ROUNDS < 4 then ROUNDS = 4 end

local NULL = setmetatable({}, { __tostring = function() return "null" end })

---------------------------------------------------------------- encoder
local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function escape_char(c)
  return escapes[c] or format("\\u%04x", byte(c))
end

local function is_array(t)
  local n = #t
  if n == 0 then return next(t) == nil end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local encode_value
local function encode_value_into(v, out)
  local tv = type(v)
  if v == NULL then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    if v == floor(v) and v > -2^53 and v < 2^53 then
      out[#out + 1] = format("%d", v)
    else
      out[#out + 1] = format("%.17g", v)
    end
  elseif tv == "string" then
    out[#out + 1] = '"' .. v:gsub('[%c"\\]', escape_char) .. '"'
  elseif tv == "table" then
    if is_array(v) and #v > 0 then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_value_into(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("json: non-string key") end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i = 1, #keys do
        if i > 1 then out[#out + 1] = "," end
        encode_value_into(keys[i], out)
        out[#out + 1] = ":"
        encode_value_into(v[keys[i]], out)
      end
      out[#out + 1] = "}"
    end
  else
    error("json: cannot encode " .. tv)
  end
end
encode_value = function(v)
  local out = {}
  encode_value_into(v, out)
  return concat(out)
end

---------------------------------------------------------------- decoder
local decode_at

local function skip_ws(s, i)
  local _, e = find(s, "^[ \n\r\t]*", i)
  return e + 1
end

local function decode_string(s, i)
  -- s:sub(i, i) == '"'
  local parts = {}
  local j = i + 1
  while true do
    local a, b = find(s, '["\\]', j)
    if not a then error("json: unterminated string at " .. i) end
    if a > j then parts[#parts + 1] = sub(s, j, a - 1) end
    if sub(s, a, a) == '"' then
      return concat(parts), b + 1
    end
    local e = sub(s, a + 1, a + 1)
    if e == "u" then
      local code = tonumber(sub(s, a + 2, a + 5), 16)
      if not code or code > 255 then error("json: unsupported \\u escape") end
      parts[#parts + 1] = char(code)
      j = a + 6
    else
      local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ['\\'] = '\\', ['/'] = '/' }
      local c = map[e]
      if not c then error("json: bad escape \\" .. e) end
      parts[#parts + 1] = c
      j = a + 2
    end
  end
end

decode_at = function(s, i)
  i = skip_ws(s, i)
  local c = sub(s, i, i)
  if c == "{" then
    local obj = {}
    i = skip_ws(s, i + 1)
    if sub(s, i, i) == "}" then return obj, i + 1 end
    while true do
      if sub(s, i, i) ~= '"' then error("json: expected key at " .. i) end
      local k
      k, i = decode_string(s, i)
      i = skip_ws(s, i)
      if sub(s, i, i) ~= ":" then error("json: expected ':' at " .. i) end
      local v
      v, i = decode_at(s, i + 1)
      obj[k] = v
      i = skip_ws(s, i)
      local d = sub(s, i, i)
      if d == "}" then return obj, i + 1 end
      if d ~= "," then error("json: expected ',' or '}' at " .. i) end
      i = skip_ws(s, i + 1)
    end
  elseif c == "[" then
    local arr = {}
    i = skip_ws(s, i + 1)
    if sub(s, i, i) == "]" then return arr, i + 1 end
    local n = 0
    while true do
      local v
      v, i = decode_at(s, i)
      n = n + 1
      arr[n] = v
      i = skip_ws(s, i)
      local d = sub(s, i, i)
      if d == "]" then return arr, i + 1 end
      if d ~= "," then error("json: expected ',' or ']' at " .. i) end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif c == "t" and sub(s, i, i + 3) == "true" then
    return true, i + 4
  elseif c == "f" and sub(s, i, i + 4) == "false" then
    return false, i + 5
  elseif c == "n" and sub(s, i, i + 3) == "null" then
    return NULL, i + 4
  else
    local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not a then error("json: unexpected character at " .. i) end
    local v = tonumber(sub(s, a, b))
    if v == nil then error("json: bad number at " .. i) end
    return v, b + 1
  end
end

local function decode(s)
  local v, i = decode_at(s, 1)
  i = skip_ws(s, i)
  if i <= #s then error("json: trailing garbage at " .. i) end
  return v
end

---------------------------------------------------------------- generator
local seed = 4242
local function rand(n)
  seed = (seed * 16807) % 2147483647
  return seed % n + 1
end

local words = { "alpha", "beta", "gamma", "delta", "quote\"d", "back\\slash",
                "new\nline", "tab\there", "ctl\1\31", "plain text", "", "x" }

local function gen(depth)
  local r = rand(10)
  if depth <= 0 or r <= 4 then
    local k = rand(6)
    if k == 1 then return rand(2000000) - 1000000
    elseif k == 2 then return (rand(4096) - 2048) / 64       -- exact binary fraction
    elseif k == 3 then return words[rand(#words)] .. rand(100)
    elseif k == 4 then return rand(2) == 1
    elseif k == 5 then return NULL
    else return 1 / rand(1000) end                           -- needs %.17g to round-trip
  elseif r <= 7 then
    local t = {}
    for i = 1, rand(8) do t[i] = gen(depth - 1) end
    return t
  else
    local t = {}
    for _ = 1, rand(8) do t[words[rand(#words)] .. rand(50)] = gen(depth - 1) end
    return t
  end
end

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

---------------------------------------------------------------- fixed check
do
  local doc = { name = "lmem", list = { 1, 2.5, -3, true, false, NULL }, nested = { s = "a\"b\\c\n" } }
  local text = encode_value(doc)
  local want = '{"list":[1,2.5,-3,true,false,null],"name":"lmem","nested":{"s":"a\\"b\\\\c\\n"}}'
  if text ~= want then error("json: fixed encoding mismatch: " .. text) end
  if not deep_equal(decode(text), doc) then error("json: fixed decode mismatch") end
  if not deep_equal(decode(' [ 1 , {"a" : [ ] } , "\\u0041\\/" ] '), { 1, { a = {} }, "A/" }) then
    error("json: whitespace/escape decode mismatch")
  end
end

local bytes = 0
for r = 1, ROUNDS do
  local doc = {}
  for i = 1, 12 do doc[i] = gen(5) end
  local text = encode_value(doc)
  local back = decode(text)
  if not deep_equal(doc, back) then error("json: round " .. r .. " decode(encode(doc)) ~= doc") end
  local text2 = encode_value(back)
  if text2 ~= text then error("json: round " .. r .. " re-encoding differs") end
  bytes = bytes + #text
end
print(string.format("json ok: %d documents, %d bytes round-tripped", ROUNDS, bytes))
