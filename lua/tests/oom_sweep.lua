-- oom_sweep.lua: a tiny, deterministic script touching many allocation kinds
-- (tables with array and hash parts, short and long strings, closures and
-- upvalues, coroutines, metatables, a loaded chunk, error objects). It is run
-- thousands of times with the k-th allocation failing, so it stays small
-- (a few hundred allocations, well under 20 ms) and does nothing that varies
-- between runs (no time, no addresses, no iteration over table-keyed tables).

local t = {}
for i = 1, 40 do t[i] = i end                         -- array part growth
local h = {}
for i = 1, 24 do h["k" .. i] = i end                  -- short strings + hash growth
t.name = "sweep"

local long = string.rep("ab", 40) .. "!"              -- a long string
local parts = {}
for i = 1, 8 do parts[i] = string.format("%d:%s", i, "v") end
local joined = table.concat(parts, ",")
local replaced = (joined:gsub("v", "w"))

local function counter()
  local n = 0
  return function() n = n + 1; return n end          -- closure + upvalue
end
local c = counter()
c(); c()

local co = coroutine.create(function(a)             -- a thread with its own stack
  local x = coroutine.yield(a + 1)
  return x * 2
end)
-- a failed allocation must surface as its own error ("not enough memory"),
-- never as a different one, so every protected call re-raises what it caught
local function must(ok, v, ...)
  if not ok then error(v, 0) end
  return v, ...
end
local y1 = must(coroutine.resume(co, 1))
local y2 = must(coroutine.resume(co, 5))
local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
local g = gen() + gen() + gen()

local Base = { __index = { kind = function() return "base" end } }
local obj = setmetatable({ v = 1 }, Base)

local chunk, lerr = (loadstring or load)("local a, b = ... return a + b, {a, b}")
if not chunk then error(lerr, 0) end
local sum = chunk(2, 3)

local ok, err = pcall(error, { code = 7 })
if type(err) ~= "table" then error(err, 0) end
local total = 0
for i = 1, #t do total = total + t[i] end
for i = 1, 24 do total = total + h["k" .. i] end

if total ~= 820 + 300 or #long ~= 81 or replaced ~= "1:w,2:w,3:w,4:w,5:w,6:w,7:w,8:w"
  or c() ~= 3 or y1 ~= 2 or y2 ~= 10 or g ~= 6 or obj:kind() ~= "base" or sum ~= 5
  or ok or err.code ~= 7 then
  error("oom_sweep: wrong result")
end
print("ok oom_sweep")
