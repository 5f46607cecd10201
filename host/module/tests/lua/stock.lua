-- host/module/tests/lua/stock.lua: the module in a stock interpreter. The allocator's live count
-- is Lua's own count, to the byte, from the take-over on (and after a swap); it drops after a
-- collection; the figures before loading are `uncounted`. arg[1], if given, is a backend to
-- swap to mid-script.
local lmem = require "lmem"

-- Lua's count (read first: reading it allocates nothing) against the allocator's.
local function same(what)
  local lua = collectgarbage("count") * 1024
  local live = lmem.stats().live
  assert(lua == live, what .. ": Lua counts " .. lua .. " bytes, lmem " .. live)
  return live
end

local s = lmem.stats()
assert(s.counting == "since require", s.counting)
assert(s.uncounted > 0 and s.live >= s.uncounted, "uncounted")
assert(s.allocations > 0 and s.peak >= s.live, "counted since require")
same("after require")

local keep = {}
local function work(tag, n)
  local t = {}
  for i = 1, n do t[i] = { tag, i, tag .. i } end
  keep[#keep + 1] = t
  keep[#keep + 1] = string.rep(tag, 5000)
end

work("before", 5000)
local held = same("holding data")
work("garbage", 20000)
keep[#keep], keep[#keep - 1] = nil, nil
collectgarbage()
collectgarbage()
local after = same("after a collection")
assert(after < held + 200000, "the garbage was collected")
local grown = lmem.stats().live
keep = {}
collectgarbage()
collectgarbage()
local dropped = same("after releasing everything")
assert(dropped < grown, "live drops after a collect: " .. grown .. " -> " .. dropped)

local target = arg and arg[1]
if target then
  local ok, err = lmem.swap(target)
  assert(ok, err)
  assert(lmem.backend() == target, lmem.backend())
  work("after swap", 5000)
  same("after the swap")
  keep = {}
  collectgarbage()
  same("after the swap and a collection")
  -- the interpreter's allocator still holds the state's first blocks
  assert(lmem.stats().routing == true, "routing after a swap")
end

local r = lmem.trim()
assert(r == nil or math.type == nil or math.type(r) == "integer", "trim")
same("after trim")
print("ok stock " .. lmem.backend())
