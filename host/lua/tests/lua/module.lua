-- host/tests/lua/module.lua: the `lmem` module seen from Lua.
local lmem = require "lmem"
assert(type(lmem.backend()) == "string")
local s = lmem.stats()
assert(s.live > 0 and s.peak >= s.live and s.allocations > 0, "stats")
if _VERSION == "Lua 5.1" then
  -- 5.1 passes no type with a new block: everything is "other"
  assert(s.by_tag.other.count > 0 and s.by_tag.table.count == 0, "by_tag")
else
  assert(s.by_tag.table.count > 0 and s.by_tag.string.bytes > 0, "by_tag")
end
assert(#s.histogram > 0 and s.histogram[1] >= 0, "histogram")
assert(lmem.limit() == nil)
assert(lmem.limit("64M") == nil)
assert(lmem.limit() == 64 * 1024 * 1024)
assert(lmem.limit(false) == 64 * 1024 * 1024)
assert(lmem.limit() == nil)
assert(not pcall(lmem.swap, "no-such-backend"))
-- a limit below what is live makes the next allocation fail, inside pcall
lmem.limit(lmem.stats().live + 4096)
local ok, err = pcall(function() local t = {} for i = 1, 1e6 do t[i] = {} end end)
assert(not ok and tostring(err):find("not enough memory"), tostring(err))
lmem.limit(nil)
local t = {} for i = 1, 1000 do t[i] = {} end
print("ok module")
