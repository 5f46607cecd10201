-- vectors.lua: grow Lua's internal vectors (luaM_growvector) toward their
-- limits through generated code: a function with more than 2^17 distinct
-- constants (LuaJIT: exactly its limit of 65536), many nested prototypes, a
-- huge table constructor, upvalues up to the limit (255 in 5.2+, 60 in 5.1
-- and LuaJIT) and locals up to 200; one past each limit must make load()
-- return nil plus the "too many ..." message.

local loadsrc = loadstring or load
local concat, format = table.concat, string.format
local is51 = _VERSION == "Lua 5.1"
local isjit = type(jit) == "table"
local MAXUP = is51 and 60 or 255
local MAXLOCALS = 200

local function check(cond, what)
  if not cond then error("vectors: " .. what, 2) end
end

local function compile(src, name)
  local f, err = loadsrc(src, "=" .. name)
  return f, err
end

-- 1. more than 2^17 distinct constants in one function (the k vector, and
--    the code and line-info vectors with it); LuaJIT takes at most 65536
--    numeric constants in a function: that many work, one more fails cleanly
local function constants_source(n)
  local out = { "local s = 0\n" }
  for i = 0, n - 1 do out[#out + 1] = format("s = s + %d.5\n", i) end
  out[#out + 1] = "return s\n"
  return concat(out)
end

do
  local N = isjit and 65536 or 140000
  local f, err = compile(constants_source(N), "constants")
  check(f, "many constants failed to load: " .. tostring(err))
  check(f() == N * N / 2, "many constants: wrong sum")
  if isjit then
    local g, msg = compile(constants_source(N + 1), "constants_over")
    check(g == nil, "one constant too many was accepted")
    check(tostring(msg):find("more than 65536 constants", 1, true),
      "LuaJIT constants message: " .. tostring(msg))
  end
end

-- 2. many nested prototypes in one function (the p vector) and many
--    closures created from them
do
  local N = 3000
  local out = { "local t = {}\n" }
  for i = 1, N do out[#out + 1] = format("t[%d] = function() return %d end\n", i, i) end
  out[#out + 1] = "return t\n"
  local f, err = compile(concat(out), "protos")
  check(f, "many prototypes failed to load: " .. tostring(err))
  local t = f()
  local s = 0
  for i = 1, N do s = s + t[i]() end
  check(s == N * (N + 1) / 2, "many prototypes: wrong sum")
end

-- 3. a huge table constructor (array items flushed in batches, hash items
--    sized at creation) mixing positional and keyed fields
do
  local N = 70000
  local items = {}
  for i = 1, N do
    items[#items + 1] = tostring(i)
    if i % 4 == 0 then items[#items + 1] = format("k%d = %d", i, -i) end
  end
  local f, err = compile("return { " .. concat(items, ",") .. " }", "constructor")
  check(f, "big constructor failed to load: " .. tostring(err))
  local t = f()
  check(#t == N and t[N] == N and t.k4 == -4 and t["k" .. N] == -N, "big constructor contents")
end

-- generate: outer functions declare `count` locals spread over levels of at
-- most 150 locals; the innermost function reads all of them as upvalues
local function upvalue_source(count)
  local out = {}
  local levels = {}
  local left, n = count, 0
  while left > 0 do
    local k = left > 150 and 150 or left
    levels[#levels + 1] = { first = n + 1, last = n + k }
    n = n + k
    left = left - k
  end
  out[#out + 1] = "return (function()\n"
  for li, lv in ipairs(levels) do
    for i = lv.first, lv.last do out[#out + 1] = format("local u%d = %d\n", i, i) end
    if li < #levels then out[#out + 1] = "return (function()\n" end
  end
  out[#out + 1] = "return function()\nlocal s = 0\n"
  for i = 1, count do out[#out + 1] = format("s = s + u%d\n", i) end
  out[#out + 1] = "return s\nend\n"
  for li = #levels, 2, -1 do out[#out + 1] = "end)()\n" end
  out[#out + 1] = "end)()\n"
  return concat(out)
end

-- 4. upvalues: exactly at the limit works, one more fails cleanly
do
  local f, err = compile(upvalue_source(MAXUP), "upvalues_ok")
  check(f, "upvalues at the limit failed: " .. tostring(err))
  local inner = f()
  check(inner() == MAXUP * (MAXUP + 1) / 2, "upvalues at the limit: wrong sum")
  local g, msg = compile(upvalue_source(MAXUP + 1), "upvalues_over")
  check(g == nil, "one upvalue too many was accepted")
  if is51 then
    -- 5.1: "function at line N has more than 60 upvalues"
    check(tostring(msg):find("upvalues", 1, true), "5.1 upvalue message: " .. tostring(msg))
  else
    check(tostring(msg):find("too many upvalues", 1, true), "upvalue message: " .. tostring(msg))
  end
end

-- 5. locals: 200 work, 201 fail cleanly
local function locals_source(count)
  local out = { "return (function()\n" }
  for i = 1, count do out[#out + 1] = format("local v%d = %d\n", i, i) end
  out[#out + 1] = "local s = 0\n"
  out[#out + 1] = "end)\n"
  return concat(out)
end

local function locals_sum_source(count)
  -- `count` locals including the accumulator
  local out = { "return (function()\n" }
  for i = 1, count - 1 do out[#out + 1] = format("local v%d = %d\n", i, i) end
  out[#out + 1] = "local s = 0\n"
  for i = 1, count - 1 do out[#out + 1] = format("s = s + v%d\n", i) end
  out[#out + 1] = "return s\nend)\n"
  return concat(out)
end

do
  local f, err = compile(locals_sum_source(MAXLOCALS), "locals_ok")
  check(f, "200 locals failed: " .. tostring(err))
  check(f()() == (MAXLOCALS - 1) * MAXLOCALS / 2, "200 locals: wrong sum")
  local g, msg = compile(locals_source(MAXLOCALS), "locals_over")   -- 201 locals
  check(g == nil, "201 locals were accepted")
  if is51 then
    check(tostring(msg):find("local variables", 1, true), "5.1 locals message: " .. tostring(msg))
  else
    check(tostring(msg):find("too many local variables", 1, true), "locals message: " .. tostring(msg))
  end
end

-- 6. after the failed compilations the state is fine and memory is reusable
do
  collectgarbage()
  local f = compile("local a, b = ... return a * b", "after")
  check(f and f(6, 7) == 42, "load after errors")
end

print("ok vectors")
