-- host/lua/tests/lua/routing.lua: lmem.swap on the plain path hands Lua a routing function
-- (lua_setallocf), old data stays intact, and the counts stay exact.
local lmem = require "lmem"
local s = lmem.stats()
assert(not s.routing, "the lean path does not route")
assert(s.counting == "from start" or (s.counting == "since require" and s.uncounted > 0), s.counting)
local old = {}
for i = 1, 3000 do old[i] = { i, "old" .. i } end
for _, name in ipairs(arg) do
  assert(lmem.swap(name))
  assert(lmem.backend() == name, lmem.backend())
  local st = lmem.stats()
  assert(st.routing, "after a swap, frees are routed")
  local new = {}
  for i = 1, 3000 do new[i] = { i, name .. i } end
  for i = 1, 3000, 37 do assert(old[i][2] == "old" .. i and new[i][2] == name .. i) end
  collectgarbage()
end
local live = lmem.stats().live
old = nil
collectgarbage(); collectgarbage()
assert(lmem.stats().live < live, "freed blocks of the first backend went home")
print("ok routing " .. lmem.stats().swaps)
